"""The operations measured, the data they use, and seeding that data.

Every contender runs the same operation on the same rows: ``Workload`` holds
the ids, emails, the keyset cursor, an API key, the project for bulk inserts
and the optimistic-lock versions. The raw asyncpg contenders send the SQL
text of vdata's own named queries (``vdata.queries.load()``), so the server
does the same work for all of them.
"""

from __future__ import annotations

__all__ = [
    "ACTOR",
    "BENCH_SECRET",
    "BULK",
    "OPS",
    "PASSWORD",
    "Workload",
    "cheap_settings",
    "positions",
    "read_sql",
    "seed",
    "seed_audit",
]

import datetime as dt
import itertools
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

import asyncpg

import vdata
from vdata.models.tasks import NewTask
from vdata.queries import Query

# The measured operations, in report order; BULK runs in latency mode only.
OPS = (
    "get_by_id",
    "get_by_email",
    "insert",
    "keyset_page",
    "update",
    "api_key_verify",
    "bulk_insert",
)
BULK = "bulk_insert"
PASSWORD = "bench-password-1"  # noqa: S105 (a throwaway benchmark account)
ACTOR = "bench"
BENCH_SECRET = "vdata-bench-secret"  # noqa: S105 (pepper of a throwaway database)
UPDATE_TARGETS = 65  # one row per throughput worker (64) and one for latency mode


def positions(q: Query[Any]) -> dict[str, int]:
    """Return each parameter's index in *q*'s positional arguments."""
    return {name: i for i, name in enumerate(q.params)}


def cheap_settings(**overrides: Any) -> vdata.Settings:
    """Return settings for the contenders: the cheapest argon2id the schema accepts.

    ``users.create`` hashes the new password; with the default parameters
    (~120 ms) the insert would measure argon2, not the data layer. Every
    contender hashes with these same parameters. ``authenticate`` uses the
    defaults (``login_settings``).
    """
    base = {
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 8,
        "argon2_parallelism": 1,
        "secret_key": BENCH_SECRET,
        "slow_query_threshold": 60.0,
    }
    return vdata.Settings.build(**{**base, **overrides})


def read_sql(name: str) -> str:
    """Return the text of the SQL file *name* shipped in ``vdata.bench``."""
    return resources.files("vdata.bench").joinpath(name).read_text(encoding="utf-8")


async def seed(owner: asyncpg.Connection, *, users: int, run: str) -> None:
    """Insert *users* users and a project (``seed.sql``) as the owner."""
    await owner.execute(
        "SELECT set_config('vdata_bench.users', $1, false),"
        " set_config('vdata_bench.run', $2, false)",
        str(users),
        run,
    )
    await owner.execute(read_sql("seed.sql"))


async def seed_audit(owner: asyncpg.Connection, *, rows: int) -> None:
    """Insert *rows* audit rows (``seed_audit.sql``) as the owner."""
    await owner.execute("SELECT set_config('vdata_bench.audit_rows', $1, false)", str(rows))
    await owner.execute(read_sql("seed_audit.sql"))


class Workload:
    """The rows every contender works on, and the mutable state they share."""

    def __init__(self, *, app_dsn: str, run: str, bulk_rows: int) -> None:
        self.app_dsn = app_dsn
        self.run = run
        self.bulk_rows = bulk_rows
        self.user_ids: list[uuid.UUID] = []
        self.emails: list[str] = []  # stored in mixed case; looked up in lower case
        self.update_ids: list[uuid.UUID] = []
        self.versions: dict[uuid.UUID, int] = {}
        self.owner_id: uuid.UUID | None = None
        self.project_id: uuid.UUID | None = None
        self.token = ""
        self.key_prefix = ""
        self.cursor: str | None = None  # vdata's signed cursor of the page
        self.after: tuple[dt.datetime, uuid.UUID] | None = None  # the same position, raw
        self._insert_seq = itertools.count(1)
        self.new_tasks: list[NewTask] = []

    async def load(self, db: vdata.Database) -> None:
        """Read the seeded rows and issue the API key, through vdata as the service role."""
        async with db._pool.connection() as conn:
            rows = await conn.fetch(
                "SELECT id, email FROM app.users WHERE username LIKE $1 ORDER BY username",
                f"b{self.run}\\_%",
            )
            owner = rows[0]["id"] if rows else None
            async with conn.transaction():
                # app.projects has row-level security: act as the owner to see theirs.
                await conn.execute("SELECT app.act_as($1)", owner)
                self.project_id = await conn.fetchval(
                    "SELECT id FROM app.projects WHERE owner_id = $1", owner
                )
        if len(rows) < UPDATE_TARGETS + 100:
            raise RuntimeError(f"seed produced {len(rows)} users; need at least 165")
        self.owner_id = rows[0]["id"]
        self.update_ids = [r["id"] for r in rows[1 : UPDATE_TARGETS + 1]]
        rest = rows[UPDATE_TARGETS + 1 :]
        self.user_ids = [r["id"] for r in rest]
        self.emails = [str(r["email"]).lower() for r in rest]
        for uid in self.update_ids:
            self.versions[uid] = (await db.users.get(uid)).version
        issued = await db.api_keys.issue(self.owner_id, name="bench", scopes=["read"], actor=ACTOR)
        self.token = issued.token
        self.key_prefix = issued.key.prefix
        # A page from the middle of the table: the cursor after the 100th user.
        first = await db.users.list_after(None, limit=100)
        self.cursor = first.next_cursor
        last = first.items[-1]
        self.after = (last.created_at, last.id)
        self.new_tasks = [
            NewTask(title=f"bench task {i}", priority=i % 5) for i in range(self.bulk_rows)
        ]

    def cycle_ids(self) -> Callable[[], uuid.UUID]:
        """Return a function giving the seeded user ids in turn."""
        return itertools.cycle(self.user_ids).__next__

    def cycle_emails(self) -> Callable[[], str]:
        """Return a function giving the seeded emails (lower case) in turn."""
        return itertools.cycle(self.emails).__next__

    def new_username(self) -> str:
        """Return a username no one has (3-32 characters, as the schema wants)."""
        return f"n{self.run}_{next(self._insert_seq)}"

    def task_records(self) -> list[tuple[Any, ...]]:
        """Return the bulk rows as raw contenders send them (fresh ids), in COPY column order."""
        project, who = self.project_id, ACTOR
        return [
            (
                uuid.uuid4(),
                project,
                t.title,
                t.description,
                t.priority,
                t.assignee_id,
                t.due_at,
                who,
                who,
            )
            for t in self.new_tasks
        ]
