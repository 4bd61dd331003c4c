"""The wheel carries sql/ and migrations/: an installed vdata needs no source tree."""

from __future__ import annotations

import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vdata._resources import migrations_dir, sql_dir
from vdata.queries import load

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, vdata, vdata._resources as r, vdata.queries as q
print(json.dumps({
    "module": vdata.__file__,
    "sql": str(r.sql_dir()),
    "migrations": str(r.migrations_dir()),
    "queries": len(q.load()),
    "migration_files": len(list(r.migrations_dir().glob("*.sql"))),
}))
"""


def run(*cmd: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_installed_wheel_finds_its_queries_and_migrations(tmp_path: Path) -> None:
    import json

    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, ROOT, cwd=tmp_path)
    (wheel,) = wheels.glob("vdata_pg-*.whl")  # the distribution is vdata-pg
    names = zipfile.ZipFile(wheel).namelist()
    assert "vdata/py.typed" in names
    assert any(n.startswith("vdata/_sql/") and n.endswith(".sql") for n in names)
    assert any(n.startswith("vdata/_migrations/") and n.endswith(".rollback.sql") for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "vdata = vdata.cli:main" in text
    assert "vdata = vdata.testing.plugin" in text
    assert "vdata/check/explain_seed.sql" in names  # data beside the code of vdata explain

    # A fresh virtualenv that sees this environment's dependencies through a
    # .pth line (a folder named in a .pth is not scanned for .pth files, so
    # the editable vdata is invisible there) and gets vdata only from the
    # wheel; it runs from a folder with no source tree in it.
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    (own_site,) = (venv / "lib").glob("python3*/site-packages")
    (own_site / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=tmp_path)
    found = json.loads(run(python, "-c", PROBE, cwd=tmp_path))

    assert found["module"].startswith(str(venv))
    assert found["sql"].startswith(str(venv)) and found["sql"].endswith("_sql")
    assert found["migrations"].startswith(str(venv))
    assert found["queries"] == len(load()) > 0
    assert found["migration_files"] == len(list(migrations_dir().glob("*.sql")))
    assert sql_dir() == ROOT / "sql"  # this test process uses the source tree
