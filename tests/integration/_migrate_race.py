"""Two `vdata migrate` processes racing for the migration lock, both seen waiting on it."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from vdata import migrations


def race_two_runs(dsn: str, *args: str) -> list[tuple[int, str, str]]:
    """Run two ``vdata migrate --dsn DSN *args`` at once; return (exit, stdout, stderr) of each.

    The lock is held until both runs are waiting on it, so they certainly
    race for it when it is let go.
    """
    command = [sys.executable, "-m", "vdata.cli", "migrate", "--dsn", dsn, *args]
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrations.LOCK_KEY,))
        runs = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).fetchone()
            if waiting and waiting[0] == 2:
                break
            time.sleep(0.05)
        else:
            for run in runs:
                run.kill()
            pytest.fail("the two runs never both waited for the migration lock")
        holder.execute("SELECT pg_advisory_unlock(%s)", (migrations.LOCK_KEY,))
        outputs = [run.communicate(timeout=120) for run in runs]
    return [(run.returncode, out, err) for run, (out, err) in zip(runs, outputs, strict=True)]
