"""Load the invoices HTTP server on loopback with wrk, healthy and with a fault.

    cd examples/invoices && python load/run.py [--duration 10] [--connections 32]

Starts a throwaway PostgreSQL (vdata.testing.pgserver; fsync on, as in
production), migrates invoices/migrations, seeds invoices through the
repository (COPY), starts ``uvicorn invoices.web:app`` on 127.0.0.1 as the
service role, then runs wrk twice for --duration seconds each: once
healthy, once with every backend of the database terminated
(``pg_terminate_backend``) halfway through. 9 in 10 requests GET a seeded
invoice, 1 in 10 POST a new one. Prints p50/p99 latency, requests/s and the
responses by status; everything it started is stopped at the end. Needs
``wrk`` (apt install wrk), vdata-pg[test], starlette and uvicorn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import vdata
import vdata.migrations
from vdata.testing import pgserver
from vdata.testing.admin import Admin as ServerAdmin

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from invoices.models import NewInvoice  # noqa: E402
from invoices.repositories import AREAS, Invoices  # noqa: E402

ADMIN = vdata.load_queries(Path(__file__).parent / "sql")
TERMINATE: vdata.Query[int] = ADMIN.bind("load.terminate_backends", int)
DBNAME = "postgres"  # a throwaway server: its default database is the service's


class Admin(vdata.Repository):
    """The owner's view of the server: the fault injection."""

    async def terminate_backends(self, dbname: str) -> int:
        return await self.value(TERMINATE, dbname=dbname) or 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 2.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


async def seed(app_dsn: str, count: int) -> None:
    async with await vdata.connect(app_dsn, areas=AREAS, bundled=False) as db:
        new = [
            NewInvoice(number=f"S-{i}", customer=f"c{i % 50}", total_cents=i) for i in range(count)
        ]
        await db.area(Invoices).import_many(new, actor="load")


def wrk(url: str, duration: int, connections: int, seeded: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(Path(__file__).parent / "mix.lua"),
            url,
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEEDED": str(seeded)},
    )


def summary(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=120)
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    return dict(json.loads(line.removeprefix("WRK_JSON ")))


async def terminate(owner_dsn: str) -> int:
    async with await vdata.connect(owner_dsn, areas={"admin": Admin}, bundled=False) as db:
        return await db.area(Admin).terminate_backends(DBNAME)


def run(url: str, args: argparse.Namespace, owner_dsn: str | None) -> dict[str, Any]:
    """One wrk run; with *owner_dsn*, terminate every backend halfway through."""
    before = get_json(url + "/health")[1]
    proc = wrk(url, args.duration, args.connections, args.seed)
    if owner_dsn is not None:
        time.sleep(args.duration / 2)
        result = {"terminated": asyncio.run(terminate(owner_dsn))}
    else:
        result = {}
    result.update(summary(proc))
    result["health"] = get_json(url + "/health")[1]
    result["health_before"] = before
    return result


def report(name: str, r: dict[str, Any]) -> str:
    """One table row; vdata's counters are the server's over this run only."""
    seconds = r["duration_us"] / 1e6
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(r["statuses"].items()))
    bad = sum(v for k, v in r["statuses"].items() if not k.startswith("2"))
    now, was = r["health"], r["health_before"]
    retries = now["retries"] - was["retries"]
    failed = now["connect_failures"] - was["connect_failures"]
    transient = now["failures"].get("TransientError", 0) - was["failures"].get("TransientError", 0)
    opened = now["breaker"]["times_opened"] - was["breaker"]["times_opened"]
    return (
        f"| {name} | {r['requests']} | {r['requests'] / seconds:,.0f} | {r['p50_us'] / 1000:.2f} | "
        f"{r['p99_us'] / 1000:.2f} | {r['max_us'] / 1000:.1f} | {bad} | {r['socket_errors']} | "
        f"{statuses} | {transient} / {retries} / {failed} / {opened} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--seed", type=int, default=1000, help="invoices seeded (1000)")
    parser.add_argument(
        "--warmup", type=int, default=10, help="seconds of load first, not reported (10)"
    )
    parser.add_argument("--kind", default="auto", choices=["auto", "local", "embedded"])
    args = parser.parse_args()
    if not 1 <= args.duration <= 60 or not 0 <= args.warmup <= 60:
        parser.error("--duration: 1 to 60 seconds; --warmup: 0 to 60")
    if shutil.which("wrk") is None:
        parser.error("wrk is not on PATH (apt install wrk)")
    conf = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
    with pgserver.start(args.kind, conf=conf) as server:
        admin = ServerAdmin(server)
        admin.ensure_app_role(None)
        admin.close()
        owner_dsn, app_dsn = server.dsn(DBNAME), server.dsn(DBNAME, user="vdata_app")
        vdata.migrations.apply(owner_dsn, migrations=ROOT / "invoices" / "migrations")
        asyncio.run(seed(app_dsn, args.seed))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "invoices.web:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env={**os.environ, "VDATA_DSN": app_dsn},
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if get_json(url + "/health")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or web.poll() is not None:
                    raise SystemExit("the server did not become healthy within 20 s")
                time.sleep(0.2)
            if args.warmup:  # the pool grows, statements get prepared, caches fill
                summary(wrk(url, args.warmup, args.connections, args.seed))
            healthy = run(url, args, None)
            faulty = run(url, args, owner_dsn)
        finally:
            web.terminate()
            web.wait(timeout=15)
    print(
        f"wrk -t2 -c{args.connections} -d{args.duration}s, 9 GET : 1 POST, loopback; "
        f"PostgreSQL {server.version_text} ({server.kind}), fsync on; uvicorn, 1 worker; "
        f"{args.seed} invoices seeded; {args.warmup} s warm-up not reported"
    )
    print(
        "| run | requests | req/s | p50 ms | p99 ms | max ms | non-2xx | socket errors "
        "| by status | vdata: transient failures / retries / connect failures / breaker opened |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(report("healthy", healthy))
    name = f"{faulty['terminated']} backends terminated at {args.duration / 2:g} s"
    print(report(name, faulty))
    print(json.dumps({"healthy": healthy, "terminated": faulty}), file=sys.stderr)


if __name__ == "__main__":
    main()
