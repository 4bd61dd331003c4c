"""vdata behind a real PgBouncer (1.18) in transaction pooling mode.

PgBouncer's ``default_pool_size`` (2) is smaller than vdata's pool (8), so
server connections are shared between vdata's client connections: each
transaction, and each statement outside one, may run on another backend.

* With ``statement_cache_size=0`` a concurrent workload (users, API keys,
  transactions with a savepoint, ``run_in_transaction``, rollbacks) is
  correct and the audit chain verifies.
* vdata's cheap release (no reset query after a clean call) leaks nothing:
  transaction-scoped settings never reach another client, and a cancelled
  call leaves the pool usable.
* With the default statement cache (100), a cached statement that runs on
  another backend fails; vdata surfaces it as a vdata error.
* Left unset, the statement cache is chosen at open: vdata sees that the
  backend pid reported at login is not the server's (PgBouncer answered the
  login) and uses 0; an explicit cache > 0 there is refused.
* vdata's timeouts are startup parameters, which PgBouncer refuses unless
  ignored, and then drops: server-side timeouts must come from the role.

Skipped when ``pgbouncer`` is not installed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg
import pytest

import vdata
from tests import _pgbouncer
from tests.integration._users import cheap_settings, new_user
from vdata.queries import Query, QueryKind
from vdata.security.tokens import mint_api_key
from vdata.testing.admin import dbname, ident
from vdata.testing.providers import APP_ROLE, Server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        _pgbouncer.find_pgbouncer() is None,
        reason="pgbouncer is not installed (apt-get install pgbouncer); "
        "the PgBouncer tests need the real binary",
    ),
]

PEPPER = "test-pepper-not-a-real-secret"
SERVER_POOL = 2  # PgBouncer's default_pool_size: server connections per database and role
CLIENT_POOL = 8  # vdata's pool_max_size: client connections to PgBouncer
WORKERS = 8


def probe(name: str, sql: str) -> Query[Any]:
    """A test-only named query returning one value."""
    return Query(
        name=f"pgbouncer.{name}",
        sql=sql,
        params=(),
        kind=QueryKind.VALUE,
        doc="",
        path=Path(__file__),
        line=0,
    )


SET_LOCAL = probe(
    "set_local",
    "SELECT set_config('vdata.leak_probe', $1, true)"
    " || set_config('statement_timeout', '4321ms', true)",
)
READ_PROBE = probe("read_probe", "SELECT coalesce(current_setting('vdata.leak_probe', true), '')")
STATEMENT_TIMEOUT = probe("statement_timeout", "SELECT current_setting('statement_timeout')")
LOCK_TIMEOUT = probe("lock_timeout", "SELECT current_setting('lock_timeout')")
APPLICATION_NAME = probe("application_name", "SELECT current_setting('application_name')")
SLEEP = probe("sleep", "SELECT pg_sleep($1::float8)::text")
DIVIDE_BY_ZERO = probe("divide_by_zero", "SELECT 1 / 0")


def _users(server: Server) -> dict[str, str | None]:
    """The roles PgBouncer must know, with their server passwords (None: trust)."""
    users: dict[str, str | None] = {}
    for role in (None, APP_ROLE):
        parts = urlsplit(server.dsn("postgres", user=role))
        assert parts.username
        users[unquote(parts.username)] = unquote(parts.password) if parts.password else None
    return users


@pytest.fixture
def bouncer(vdata_server: Server) -> Iterator[_pgbouncer.PgBouncer]:
    """A PgBouncer in transaction mode in front of the session's server, stopped after."""
    started = _pgbouncer.start(
        vdata_server.host, vdata_server.port, _users(vdata_server), pool_size=SERVER_POOL
    )
    try:
        yield started
    finally:
        started.stop()


def settings(**overrides: Any) -> vdata.Settings:
    values: dict[str, Any] = {
        "statement_cache_size": 0,
        "pool_max_size": CLIENT_POOL,
        "secret_key": PEPPER,
    }
    values.update(overrides)
    return cheap_settings(**values)


async def through(bouncer: _pgbouncer.PgBouncer, app_dsn: str, **overrides: Any) -> vdata.Database:
    """Connect vdata as the service role to the test's database, through PgBouncer."""
    return await vdata.connect(
        bouncer.dsn(dbname(app_dsn), APP_ROLE), settings=settings(**overrides)
    )


async def server_backends(owner: asyncpg.Connection, db: str) -> int:
    """How many backends the service role has on *db* (PgBouncer's server connections)."""
    return int(
        await owner.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
            db,
            APP_ROLE,
        )
    )


async def worker(db: vdata.Database, i: int) -> None:
    """One client's realistic session; every step checks its result."""
    name = f"wk{i}"
    ada = await db.users.create(new_user(name), actor=name)
    assert (await db.users.get(ada.id)).username == name
    assert (await db.users.get_by_email(ada.email.upper())).id == ada.id
    renamed = await db.users.update(
        ada.id, vdata.UserPatch(full_name=f"Worker {i}"), expected_version=ada.version, actor=name
    )
    assert renamed.version == ada.version + 1 and renamed.full_name == f"Worker {i}"
    with pytest.raises(vdata.StaleVersionError):
        await db.users.update(
            ada.id, vdata.UserPatch(full_name="late"), expected_version=ada.version, actor=name
        )

    issued = await db.api_keys.issue(ada.id, name="ci", scopes=["read"], actor=name)
    for _ in range(3):
        key = await db.api_keys.verify(issued.token, required_scopes=["read"])
        assert key.id == issued.key.id and key.user_id == ada.id
    with pytest.raises(vdata.AuthenticationError):
        await db.api_keys.verify(mint_api_key(PEPPER).token)  # well formed, unknown

    # several statements, and a savepoint whose failure undoes only its own work
    async with db.transaction(actor=name) as tx:
        friend = await tx.users.create(new_user(f"{name}f"))
        await tx.api_keys.issue(friend.id, name="tx", scopes=["read"])
        with pytest.raises(vdata.ConflictError):
            async with tx.transaction() as savepoint:
                await savepoint.users.create(new_user(f"{name}g"))
                await savepoint.users.create(new_user(name))  # taken
        friend = await tx.users.update(
            friend.id, vdata.UserPatch(full_name="Friend"), expected_version=friend.version
        )
    assert (await db.users.get(friend.id)).version == friend.version
    assert len(await db.api_keys.list_by_owner(friend.id)) == 1
    with pytest.raises(vdata.NotFoundError):
        await db.users.get_by_username(f"{name}g")

    async def rename(tx: vdata.Transaction) -> vdata.User:
        current = await tx.users.get(ada.id)
        patch = vdata.UserPatch(full_name=f"Worker {i} again")
        return await tx.users.update(ada.id, patch, expected_version=current.version)

    # serializable: a 40001 from the concurrent workers re-runs the whole
    # unit, on whatever backend PgBouncer picks
    again = await db.run_in_transaction(rename, actor=name, retries=30)
    assert again.version == renamed.version + 1

    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction(actor=name) as tx:
            await tx.users.create(new_user(f"{name}r"))
            raise RuntimeError("boom")
    with pytest.raises(vdata.NotFoundError):
        await db.users.get_by_username(f"{name}r")


async def test_concurrent_workload_is_correct_with_statement_cache_off(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str, owner: asyncpg.Connection
) -> None:
    database = dbname(vdata_app_dsn)
    backends: list[int] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            backends.append(await server_backends(owner, database))
            await asyncio.sleep(0.01)

    db = await through(bouncer, vdata_app_dsn, retry_max_time=30.0)
    try:
        watcher = asyncio.create_task(watch())
        try:
            await asyncio.gather(*(worker(db, i) for i in range(WORKERS)))
        finally:
            done.set()
            await watcher
        clients = (await db.health()).pool.size
        report = await db.audit.verify_chain()
        assert report.ok, report
        await db.api_keys.flush_usage()
    finally:
        await db.close()

    # PgBouncer really multiplexed: more client connections than backends
    assert clients > SERVER_POOL, clients
    assert 1 <= max(backends) <= SERVER_POOL, backends
    # each worker: itself and a friend (the savepoint and the rollback left nothing)
    assert await owner.fetchval("SELECT count(*) FROM app.users") == 2 * WORKERS
    uses = await owner.fetchval("SELECT sum(use_count) FROM app.api_keys")
    assert uses == 3 * WORKERS
    # create, update, rename again, create friend, update friend, 2 key issues
    assert await owner.fetchval("SELECT count(*) FROM app.audit_log") >= 7 * WORKERS


async def test_transaction_scoped_settings_never_reach_another_client(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str
) -> None:
    # Control: session state *does* travel between clients through PgBouncer
    # (sequential calls reuse the one idle backend), so this probe would see
    # a leak; vdata never sets session state, only SET LOCAL / set_config(.., true).
    dsn = bouncer.dsn(dbname(vdata_app_dsn), APP_ROLE)
    a = await asyncpg.connect(dsn, statement_cache_size=0)
    b = await asyncpg.connect(dsn, statement_cache_size=0)
    try:
        await a.execute("SELECT set_config('vdata.control_probe', 'session', false)")
        seen = await b.fetchval("SELECT current_setting('vdata.control_probe', true)")
        assert seen == "session", "the control should leak through the shared backend"
        await a.execute("RESET vdata.control_probe")
    finally:
        await a.close()
        await b.close()

    db = await through(bouncer, vdata_app_dsn)
    try:
        baseline = await db.fetchval(STATEMENT_TIMEOUT, ())
        assert baseline != "4321ms"
        outside: Counter[tuple[object, object]] = Counter()

        async def in_transaction(i: int) -> None:
            for j in range(15):
                token = f"t{i}.{j}"
                async with db.transaction() as tx:
                    await tx.fetchval(SET_LOCAL, (token,))
                    await asyncio.sleep(0)  # let other clients run meanwhile
                    assert await tx.fetchval(READ_PROBE, ()) == token
                    assert await tx.fetchval(STATEMENT_TIMEOUT, ()) == "4321ms"

        async def pooled() -> None:
            for _ in range(30):
                seen = await db.fetchval(READ_PROBE, ())
                timeout = await db.fetchval(STATEMENT_TIMEOUT, ())
                outside[(seen, timeout)] += 1

        await asyncio.gather(*(in_transaction(i) for i in range(4)), *(pooled() for _ in range(4)))
        assert outside == Counter({("", baseline): 120})
    finally:
        await db.close()


async def test_cancelled_call_leaves_the_pool_usable(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str, owner: asyncpg.Connection
) -> None:
    # A cancelled call gets asyncpg's full reset on release (vdata marks it);
    # through PgBouncer the cancel request must reach the backend too.
    db = await through(bouncer, vdata_app_dsn)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.3):
                await db.fetchval(SLEEP, (30,))
        values = await asyncio.gather(*(db.fetchval(READ_PROBE, ()) for _ in range(20)))
        assert values == [""] * 20
        deadline = time.monotonic() + 5
        while await owner.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND query LIKE '%pg_sleep%'"
            " AND state = 'active'",
            APP_ROLE,
        ):
            assert time.monotonic() < deadline, "the cancelled pg_sleep is still running"
            await asyncio.sleep(0.05)
    finally:
        await db.close()


async def test_application_name_travels_through_pgbouncer(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str
) -> None:
    # PgBouncer tracks application_name per client and sets it on whichever
    # backend serves the client.
    db = await through(bouncer, vdata_app_dsn, application_name="vdata-bouncer-test")
    try:
        names = await asyncio.gather(*(db.fetchval(APPLICATION_NAME, ()) for _ in range(16)))
        assert set(names) == {"vdata-bouncer-test"}
    finally:
        await db.close()


async def test_application_name_survives_a_failed_call(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str
) -> None:
    db = await through(bouncer, vdata_app_dsn, pool_max_size=1, application_name="kept")
    try:
        before = await db.fetchval(APPLICATION_NAME, ())
        with pytest.raises(vdata.ValidationError):  # 22012, on the pool's one connection
            await db.fetchval(DIVIDE_BY_ZERO, ())
        after = await db.fetchval(APPLICATION_NAME, ())
    finally:
        await db.close()
    assert before == "kept", "precondition: the name reached the backend"
    assert after == "kept"


@pytest.mark.parametrize("cache", [0, 100])
async def test_cached_statement_on_another_backend(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str, cache: int
) -> None:
    # Deterministic: with one client connection, statements run on the one
    # backend PgBouncer opened; a second client then pins that backend in a
    # transaction, so the next call must run on a new backend, where a
    # statement asyncpg prepared and cached does not exist.
    # pooler="session" tells vdata not to refuse the cache: what goes wrong then.
    db = await through(
        bouncer, vdata_app_dsn, statement_cache_size=cache, pool_max_size=1, pooler="session"
    )
    pinner = await asyncpg.connect(
        bouncer.dsn(dbname(vdata_app_dsn), APP_ROLE), statement_cache_size=0
    )
    try:
        with pytest.raises(vdata.NotFoundError):
            await db.users.get_by_email("nobody@example.org")
        async with pinner.transaction():
            cached_here = await pinner.fetchval(
                "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE '__asyncpg_stmt_%'"
            )
            assert (cached_here > 0) == (cache > 0), cached_here
            if cache == 0:
                with pytest.raises(vdata.NotFoundError):
                    await db.users.get_by_email("nobody@example.org")
            else:
                with pytest.raises(vdata.DatabaseError) as caught:
                    await db.users.get_by_email("nobody@example.org")
                assert caught.value.sqlstate == "26000"  # invalid SQL statement name
                assert isinstance(caught.value.__cause__, asyncpg.InvalidSQLStatementNameError)
    finally:
        await pinner.close()
        await db.close()


async def test_default_statement_cache_fails_under_concurrency_as_vdata_errors(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str, vdata_dsn: str
) -> None:
    # The same concurrency with the default cache: calls fail whenever a
    # cached statement runs on another backend than the one that prepared it.
    # asyncpg names statements uniquely per process, so in one process the
    # failure is "does not exist" (26000); several processes behind one
    # PgBouncer can also collide on names (42P05) or run another process's
    # statement. What is robust to assert: failures happen, and every one is
    # a vdata error (never a raw asyncpg exception).
    db = await through(bouncer, vdata_app_dsn, statement_cache_size=100, pooler="session")
    failures: Counter[tuple[str, str | None]] = Counter()
    raw: list[BaseException] = []
    done = 0

    async def careless(i: int) -> None:
        nonlocal done
        for j in range(6):
            try:
                user = await db.users.create(new_user(f"c{i}x{j}"), actor="c")
                await db.users.get(user.id)
                await db.users.get_by_email(user.email)
                await db.users.update(
                    user.id,
                    vdata.UserPatch(full_name="C"),
                    expected_version=user.version,
                    actor="c",
                )
                issued = await db.api_keys.issue(user.id, name="k", actor="c")
                await db.api_keys.verify(issued.token)
                done += 1
            except vdata.VdataError as exc:
                failures[(type(exc).__name__, exc.sqlstate)] += 1
            except Exception as exc:  # collected: the test asserts there are none
                raw.append(exc)

    try:
        await asyncio.gather(*(careless(i) for i in range(WORKERS)))
    finally:
        await db.close()
    assert not raw, raw
    assert failures, f"no failure in {done} sequences: was there no concurrency?"
    assert set(failures) <= {("DatabaseError", "26000"), ("DatabaseError", "42P05")}, failures
    # the failed calls wrote nothing half-way: the chain still verifies
    async with await vdata.connect(vdata_app_dsn, settings=settings()) as direct:
        assert (await direct.audit.verify_chain()).ok


async def test_timeouts_must_come_from_the_role_behind_pgbouncer(
    vdata_server: Server,
    bouncer: _pgbouncer.PgBouncer,
    vdata_app_dsn: str,
    owner: asyncpg.Connection,
) -> None:
    # Without ignore_startup_parameters PgBouncer refuses vdata's connection.
    strict = _pgbouncer.start(
        vdata_server.host,
        vdata_server.port,
        _users(vdata_server),
        pool_size=SERVER_POOL,
        ignore_startup_parameters=(),
    )
    try:
        with pytest.raises(vdata.UnavailableError) as refused:
            await through(strict, vdata_app_dsn)
        assert "unsupported startup parameter" in str(refused.value.__cause__)
    finally:
        strict.stop()

    # With it, the parameters are dropped; the role's per-database settings
    # (read when PgBouncer opens a backend) are what the server enforces.
    database = dbname(vdata_app_dsn)
    await owner.execute(
        f"ALTER ROLE {ident(APP_ROLE)} IN DATABASE {ident(database)}"
        " SET statement_timeout = '300ms'"
    )
    server_default = await owner.fetchval("SHOW lock_timeout")
    db = await through(bouncer, vdata_app_dsn, statement_timeout=20.0, lock_timeout=7.0)
    try:
        assert await db.fetchval(LOCK_TIMEOUT, ()) == server_default  # not 7s: dropped
        assert await db.fetchval(STATEMENT_TIMEOUT, ()) == "300ms"  # from the role
        with pytest.raises(vdata.QueryTimeoutError) as slow:
            await db.fetchval(SLEEP, (5,))
        assert slow.value.sqlstate == "57014"
        assert await db.fetchval(READ_PROBE, ()) == ""  # and the pool goes on
    finally:
        await db.close()


PRIVATE_SEEN = probe("private_seen", "SELECT count(*)::text FROM app.projects WHERE NOT is_public")


async def test_the_acting_user_never_crosses_clients_through_pgbouncer(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str
) -> None:
    # Row-level security's acting user is transaction-local: statements that
    # set it in themselves, and transactions that set it, interleave on
    # PgBouncer's two server connections with calls that set no user.
    db = await through(bouncer, vdata_app_dsn)
    try:
        owners = [(await db.users.create(new_user(f"rls{i}"), actor="t")).id for i in range(4)]
        mine = {
            uid: (
                await db.projects.create(vdata.NewProject(name="private"), owner_id=uid, actor="t")
            ).id
            for uid in owners
        }
        nobody: Counter[str] = Counter()

        async def acting(uid: uuid.UUID) -> None:
            for _ in range(10):
                page = await db.projects.list_visible(as_user=uid, limit=10)
                assert [p.id for p in page.items] == [mine[uid]]
                async with db.transaction(as_user=uid) as tx:
                    await asyncio.sleep(0)  # let other clients run meanwhile
                    assert await tx.fetchval(PRIVATE_SEEN, ()) == "1"

        async def anonymous() -> None:
            for _ in range(20):
                nobody[str(await db.fetchval(PRIVATE_SEEN, ()))] += 1

        await asyncio.gather(*(acting(uid) for uid in owners), *(anonymous() for _ in range(4)))
        assert nobody == Counter({"0": 80})
    finally:
        await db.close()


async def test_statement_cache_is_chosen_by_what_answers_the_login(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str
) -> None:
    # Unset: 0 through PgBouncer, 100 direct; a concurrent workload then works.
    db = await through(bouncer, vdata_app_dsn, statement_cache_size=None)
    direct = await vdata.connect(vdata_app_dsn, settings=settings(statement_cache_size=None))
    try:
        assert db.settings.statement_cache_size == 0
        assert direct.settings.statement_cache_size == 100
        await asyncio.gather(*(worker(db, 100 + i) for i in range(WORKERS)))
    finally:
        await db.close()
        await direct.close()


async def test_explicit_statement_cache_behind_pgbouncer_is_refused(
    bouncer: _pgbouncer.PgBouncer, vdata_app_dsn: str
) -> None:
    with pytest.raises(vdata.ConfigurationError) as refused:
        await through(bouncer, vdata_app_dsn, statement_cache_size=100)
    message = str(refused.value)
    assert "connection pooler" in message and "statement_cache_size" in message
    assert "pooler='session'" in message
    # Told it is transaction pooling, vdata refuses without probing as well.
    with pytest.raises(vdata.ConfigurationError):
        await vdata.connect(
            vdata_app_dsn, settings=settings(statement_cache_size=50, pooler="transaction")
        )
