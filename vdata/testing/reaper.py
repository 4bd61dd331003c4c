"""Removing the containers the plugin starts, also when pytest is killed.

testcontainers' own reaper (Ryuk) is a container pulled from Docker Hub; an
engine without a registry cannot start it. The plugin does the same job
without an image, two ways:

* a **watchdog**: a small process (``python -m vdata.testing.reaper SESSION``)
  started before the container, in its own session so a Ctrl-C to pytest's
  process group does not reach it. It reads its stdin, a pipe from pytest,
  until end of file; that comes when pytest closes it (the container was
  stopped) or when pytest dies in any way, ``kill -9`` included. It then
  removes every container labelled with its session and exits.
* a **sweep** at the next start: every container labelled as the plugin's
  whose owner (host name, pid and the pid's start time, so a reused pid is
  not mistaken for its owner) is no longer running on this host is removed.
  This catches what a watchdog killed with pytest (a whole process group
  killed with ``SIGKILL``) left behind.

Each container carries ``org.vdata.testing.session`` and
``org.vdata.testing.owner`` labels (see ``labels()``). Only the Docker SDK that
testcontainers installs is used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from typing import IO, Any

__all__ = [
    "LABEL_OWNER",
    "LABEL_SESSION",
    "Watchdog",
    "labels",
    "owner",
    "owner_alive",
    "remove_session",
    "sweep",
]

LABEL_SESSION = "org.vdata.testing.session"
LABEL_OWNER = "org.vdata.testing.owner"


def _start_ticks(pid: int) -> str:
    """The start time of *pid* in clock ticks since boot (``/proc``), or ``""``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return ""
    # Field 22; the command name (field 2) may hold spaces: count from ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def owner(pid: int | None = None) -> str:
    """``host:pid:start`` of *pid* (default: this process), as the owner label holds it."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def owner_alive(label: str) -> bool:
    """False if *label* names a process of this host that no longer runs; else True.

    A container owned on another host (a shared remote engine) is never
    judged dead from here.
    """
    host, _, rest = label.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, as another user
    return not start or _start_ticks(pid) in ("", start)


def labels(session: str) -> dict[str, str]:
    """The labels of a container started for *session* by this process."""
    return {LABEL_SESSION: session, LABEL_OWNER: owner()}


def remove_session(client: Any, session: str) -> int:
    """Remove (force, with volumes) every container labelled with *session*; return how many."""
    removed = 0
    for container in client.containers.list(
        all=True, filters={"label": f"{LABEL_SESSION}={session}"}
    ):
        with contextlib.suppress(Exception):  # already gone, or being removed
            container.remove(force=True, v=True)
            removed += 1
    return removed


def sweep(client: Any) -> list[str]:
    """Remove the plugin's containers whose owner process is gone; return their names."""
    swept = []
    for container in client.containers.list(all=True, filters={"label": LABEL_OWNER}):
        if owner_alive(container.labels.get(LABEL_OWNER, "")):
            continue
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
            swept.append(container.name)
    return swept


class Watchdog:
    """The watchdog process of one session; ``stop()`` lets it remove the session and exit."""

    def __init__(self, session: str) -> None:
        """Start ``python -m vdata.testing.reaper SESSION`` with a pipe on its stdin."""
        self.session = session
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "vdata.testing.reaper", session],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C to pytest's group does not reach it
            env=os.environ.copy(),  # DOCKER_HOST as the plugin found it
        )

    @property
    def pid(self) -> int:
        """The watchdog's process id."""
        return self._proc.pid

    def armed(self, timeout: float = 30.0) -> bool:
        """Wait until the watchdog has said it is watching; False if it died first."""
        stdout: IO[bytes] | None = self._proc.stdout
        if stdout is None:
            return False
        with contextlib.suppress(OSError, ValueError):
            if _readline(stdout, timeout) == b"watching\n":
                return True
        return False

    def stop(self, timeout: float = 30.0) -> None:
        """Close the pipe (the watchdog removes the session's containers) and wait for it."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _readline(stream: IO[bytes], timeout: float) -> bytes:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(stream, selectors.EVENT_READ)
        if not sel.select(timeout):
            return b""
    return stream.readline()


def main(argv: list[str]) -> int:
    """The watchdog: wait for end of file on stdin, then remove the session's containers."""
    if len(argv) != 2:
        print("usage: python -m vdata.testing.reaper SESSION", file=sys.stderr)
        return 2
    session = argv[1]
    import docker  # loaded before watching: a missing SDK fails now, not at the end

    client = docker.from_env()
    with contextlib.suppress(OSError):  # pytest may be gone already: then reap at once
        os.write(sys.stdout.fileno(), b"watching\n")
    while sys.stdin.buffer.read(4096):
        pass  # nothing is ever sent: only the end of file matters
    remove_session(client, session)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
