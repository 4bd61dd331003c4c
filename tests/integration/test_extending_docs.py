"""docs/extending.md, done as a reader would: a service built only from the page's files.

The files marked ``<!-- file: PATH -->`` are written into a folder outside
the repository; vdata built as a wheel and installed into a fresh
virtualenv (its dependencies seen through a ``.pth`` line, as in
tests/test_packaging.py) then migrates the service's table, runs its code through
``db.<area>`` and ``tx.<area>``, checks its SQL, runs its tests under the
pytest plugin and mypy --strict, and, once the page's later migration
renames a column, ``vdata check`` fails naming the queries.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration._docs import DOCS, file_blocks

pytestmark = pytest.mark.slow

REPOSITORY = DOCS.parent


@pytest.fixture(scope="module")
def wheel_bin() -> Iterator[Path]:
    """The bin/ of a fresh virtualenv whose vdata is a wheel built from this tree."""
    root = Path(tempfile.mkdtemp(prefix="vdata-wheel-"))
    try:
        for cmd in (
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(root / "w"),
                str(REPOSITORY),
            ],
            [sys.executable, "-m", "venv", str(root / "venv")],
        ):
            subprocess.run(cmd, cwd=root, check=True, capture_output=True, timeout=300)
        (own_site,) = (root / "venv" / "lib").glob("python3*/site-packages")
        (own_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        (wheel,) = (root / "w").glob("vdata_pg-*.whl")  # the distribution is vdata-pg
        subprocess.run(
            [
                root / "venv" / "bin" / "python",
                "-m",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--no-index",
                wheel,
            ],
            cwd=root,
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield root / "venv" / "bin"
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def service() -> Iterator[Path]:
    """An empty folder outside the repository, holding the page's files."""
    root = Path(tempfile.mkdtemp(prefix="vdata-extending-"))
    try:
        assert REPOSITORY not in root.parents
        for path, body in file_blocks("extending.md").items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


PROBE = """\
import vdata
from invoices.repositories import Invoices


async def probe(db: vdata.Database) -> None:
    wrong: str = await db.area(Invoices).get(1)
    async with db.transaction(actor="ops") as tx:
        page: int = await tx.area(Invoices).list_by_customer("acme")
"""


def _env(**extra: str) -> dict[str, str]:
    # Nothing of this test run leaks in: no VDATA_*, no PYTEST_*, no PYTHONPATH.
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VDATA_", "PYTEST_")) and k != "PYTHONPATH"
    }
    return {**keep, **extra}


def _run(cwd: Path, *args: str | Path, timeout: float = 60, **env: str) -> tuple[int, str]:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_service_built_from_the_page_alone(
    service: Path, wheel_bin: Path, vdata_server: Any, empty_dsn: str
) -> None:
    started = time.monotonic()
    vdata_cmd = wheel_bin / "vdata"
    python = wheel_bin / "python"
    database = empty_dsn.rsplit("/", 1)[1]
    app_dsn = vdata_server.dsn(database, user="vdata_app")

    # The wheel's vdata is used: not the source tree, not a copy in the service's folder.
    code, out = _run(service, python, "-c", "import vdata; print(vdata.__file__)")
    assert code == 0, out
    assert Path(out.strip()).is_relative_to(wheel_bin.parent), out

    # Migrate the service's own table (its source is "invoices").
    code, out = _run(
        service, vdata_cmd, "migrate", "--migrations", "invoices/migrations", VDATA_DSN=empty_dsn
    )
    assert code == 0, out
    assert "0001.create-invoices" in out
    code, out = _run(
        service,
        vdata_cmd,
        "migrate",
        "status",
        "--migrations",
        "invoices/migrations",
        VDATA_DSN=empty_dsn,
    )
    assert code == 0, out
    assert "applied" in out and "pending" not in out

    # Its code, on the pool and in a transaction, as the service role.
    code, out = _run(service, python, "-m", "invoices", "DOC-1", VDATA_DSN=app_dsn)
    assert code == 0, out
    assert out.splitlines()[:3] == [
        "created DOC-1 1250 version 1",
        "changed DOC-1 1500 version 2",
        "acme has 1 invoice(s)",
    ]
    assert out.splitlines()[3].startswith("stale: ")

    # Its tests under the plugin (on this test's server) and its types.
    code, out = _run(
        service,
        python,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        VDATA_TEST_DSN=vdata_server.dsn(),
        # A server with password auth (docker) gave vdata_app a password.
        VDATA_TEST_APP_PASSWORD=getattr(vdata_server, "app_password", None) or "",
    )
    assert code == 0, out
    assert " passed" in out and "failed" not in out and "error" not in out.lower()
    # The type check needs mypy, which the dev extra brings; without it the
    # rest still runs and the test then skips, naming the extra.
    have_mypy = importlib.util.find_spec("mypy") is not None
    if have_mypy:
        code, out = _run(service, python, "-m", "mypy", "--cache-dir", service / ".mypy_cache")
        assert code == 0, out
        # Typed, not Any: mypy sees an Invoice from db.area() and a Slice from tx.area().
        (service / "probe_types.py").write_text(PROBE, encoding="utf-8")
        code, out = _run(
            service, python, "-m", "mypy", "--cache-dir", service / ".mypy_cache", "probe_types.py"
        )
        assert code == 1, out
        assert 'expression has type "Invoice", variable has type "str"' in out, out
        assert 'expression has type "Slice[Invoice]", variable has type "int"' in out, out
        (service / "probe_types.py").unlink()

    # vdata check passes on its SQL with its Structs...
    check = (
        vdata_cmd,
        "check",
        "--sql",
        "invoices/sql",
        "--migrations",
        "invoices/migrations",
        "--module",
        "invoices.repositories",
    )
    code, out = _run(service, *check)
    assert code == 0, out
    assert "vdata check OK: 6 queries" in out

    # ...and fails, naming the queries, once a migration renames their column.
    for path, body in file_blocks("extending.md", "later").items():
        (service / path).write_text(body, encoding="utf-8")
    code, out = _run(service, *check)
    assert code == 1, out
    for name in (
        "invoices.get_invoice",
        "invoices.insert_invoice",
        "invoices.list_invoices_by_customer",
    ):
        assert f"{name} [prepare] does not prepare: 42703" in out
    # The same migration on the service's database applies, and rolls back.
    code, out = _run(
        service, vdata_cmd, "migrate", "--migrations", "invoices/migrations", VDATA_DSN=empty_dsn
    )
    assert code == 0 and "0002.rename-invoices-customer" in out, out
    code, out = _run(
        service,
        vdata_cmd,
        "check",
        "--dsn",
        app_dsn,
        "--sql",
        "invoices/sql",
        "--module",
        "invoices.repositories",
    )
    assert code == 1 and "invoices.get_invoice [prepare]" in out, out
    code, out = _run(
        service,
        vdata_cmd,
        "migrate",
        "rollback",
        "1",
        "--migrations",
        "invoices/migrations",
        VDATA_DSN=empty_dsn,
    )
    assert code == 0, out
    code, out = _run(
        service,
        vdata_cmd,
        "check",
        "--dsn",
        app_dsn,
        "--sql",
        "invoices/sql",
        "--module",
        "invoices.repositories",
    )
    assert code == 0, out

    assert time.monotonic() - started < 60
    if not have_mypy:
        pytest.skip(
            "all but the type check passed; mypy is in the dev extra: pip install 'vdata-pg[dev]'"
        )
