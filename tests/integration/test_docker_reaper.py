"""The docker provider's containers go away when pytest is killed (kill -9).

An inner pytest (a subprocess, forced onto the docker provider) starts its
container, says so, and waits; the test kills it with SIGKILL. Its watchdog
then removes the container. If the watchdog is killed too, the container
stays until the next start of the provider sweeps it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import _docker
from vdata.testing import providers, reaper

INNER = """
import os
import time
from pathlib import Path

def test_hold_the_server(vdata_server):
    Path(os.environ["VDATA_INNER_OUT"]).write_text(vdata_server.dsn())
    time.sleep(120)  # killed long before; bounded if it is not
"""


class Inner:
    """An inner pytest on the docker provider that holds its server until killed."""

    def __init__(self, folder: Path, image: str) -> None:
        (folder / "test_hold.py").write_text(INNER)
        self.out = folder / "dsn.txt"
        self.owner = ""
        env = {
            **os.environ,
            "VDATA_TEST_PROVIDER": "docker",
            "VDATA_TEST_IMAGE": image,
            "VDATA_INNER_OUT": str(self.out),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_hold.py"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait_for_server(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while not self.out.exists() or not self.out.read_text():
            assert self.proc.poll() is None, "the inner pytest ended before its server was up"
            assert time.monotonic() < deadline, "the inner pytest's server did not come up"
            time.sleep(0.2)
        self.owner = reaper.owner(self.proc.pid)  # while it runs: it holds its start time
        return self.out.read_text()

    def containers(self, engine: Any) -> list[Any]:
        mine = f"{reaper.LABEL_OWNER}={self.owner}"
        return list(engine.containers.list(all=True, filters={"label": mine}))

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


@pytest.fixture
def inner(tmp_path: Path) -> Iterator[Inner]:
    started = Inner(tmp_path, _docker.image_or_skip())
    try:
        yield started
    finally:
        started.stop()


def _watchdog_pid(session: str) -> int:
    """The pid of the watchdog of *session* (its command line names the session)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"vdata.testing.reaper" in argv and session.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no watchdog for session {session}")


def _gone(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return False
    except psycopg.OperationalError:
        return True


def test_a_killed_pytest_leaves_no_container(inner: Inner) -> None:
    dsn = inner.wait_for_server()
    with _docker.client() as engine:
        (container,) = inner.containers(engine)
        assert container.status == "running"
        inner.kill()
        deadline = time.monotonic() + 30
        while inner.containers(engine):
            assert time.monotonic() < deadline, "the container outlived its pytest by 30 s"
            time.sleep(0.2)
    assert _gone(dsn)


def test_a_container_whose_watchdog_was_killed_too_is_swept_at_the_next_start(
    inner: Inner,
) -> None:
    dsn = inner.wait_for_server()
    with _docker.client() as engine:
        (container,) = inner.containers(engine)
        os.kill(_watchdog_pid(container.labels[reaper.LABEL_SESSION]), signal.SIGKILL)
        inner.kill()
        time.sleep(1)
        assert [c.id for c in inner.containers(engine)] == [container.id]  # nobody reaped it
        assert not _gone(dsn)
        server = providers.start_provider(providers.ProviderChoice("docker", "test", forced=True))
        try:
            assert inner.containers(engine) == []  # swept before the new one started
        finally:
            server.stop()
    assert _gone(dsn)


def test_an_owner_is_alive_while_its_process_runs() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        label = reaper.owner(proc.pid)
        assert reaper.owner_alive(label)
        assert reaper.owner_alive(reaper.owner())
        host, pid, start = label.split(":")
        assert not reaper.owner_alive(f"{host}:{pid}:{int(start) + 1}")  # a reused pid
        assert reaper.owner_alive(f"another-{host}:{pid}:{start}")  # not ours to judge
    finally:
        proc.kill()
        proc.wait()
    assert not reaper.owner_alive(label)
