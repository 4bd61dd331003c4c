"""The story ``vdata demo`` tells: each step's call printed beside its result.

It runs on a migrated database as the service role and uses only the public
API, as a service would. When the demo started its own server it also stops
and starts that server mid-story, to show the same ``Database`` ride through.
"""

from __future__ import annotations

__all__ = ["Outage", "story"]

import asyncio
import time
from collections import Counter
from typing import IO, Any, Protocol

import vdata

LOCKOUT_AFTER = 3
# The story's made-up passwords (printed nowhere; the demo shows they are
# never stored or logged).
_ADA_PW = "analytical engine 1843"
_ADA_NEW_PW = "notes on the engine"
_BOB_PW = "difference engine"
_OTHER_PW = "another passphrase"


class Outage(Protocol):
    """A server the story may stop and start (``vdata.testing.pgserver.PgServer``)."""

    def stop_server(self) -> None: ...

    def start_server(self) -> None: ...


def settings() -> vdata.Settings:
    """The demo's settings: a quick lockout, and a breaker that reacts in about a second."""
    return vdata.Settings.from_env(
        env={},
        lockout_threshold=LOCKOUT_AFTER,
        connect_timeout=1.0,
        breaker_failure_threshold=3,
        breaker_cooldown=1.0,
        breaker_cooldown_jitter=0.0,
        retry_tries=2,
        retry_max_time=1.0,
    )


class _Printer:
    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def title(self, text: str) -> None:
        print(f"\n{text}", file=self.out, flush=True)

    def step(self, call: str, result: str) -> None:
        print(f"   {call}\n      -> {result}", file=self.out, flush=True)

    def note(self, text: str) -> None:
        print(f"   ({text})", file=self.out, flush=True)


def _short(value: object) -> str:
    """Return the first 8 characters of an id, enough to tell rows apart in the story."""
    return "" if value is None else str(value)[:8]


def _error(exc: vdata.VdataError) -> str:
    return f"{type(exc).__name__}: {exc}"


async def story(app_dsn: str, out: IO[str], outage: Outage | None) -> None:
    """Run the story on *app_dsn*, printing each step; stop/start *outage* if given."""
    p = _Printer(out)
    async with await vdata.connect(app_dsn, settings=settings()) as db:
        ada, bob = await _users(db, p)
        await _logins(db, p)
        await _api_key(db, p, ada)
        await _session(db, p, ada)
        project = await _projects_and_tasks(db, p, ada, bob)
        await _pagination(db, p, ada, project)
        await _audit(db, p)
        if outage is None:
            p.title("9. An outage: skipped (it stops the server; run without --dsn to see it)")
        else:
            await _outage(db, p, outage, ada)


async def _users(db: vdata.Database, p: _Printer) -> tuple[vdata.User, vdata.User]:
    p.title("1. Users (passwords stored as argon2id, never in clear)")
    ada = await db.users.create(
        vdata.NewUser(
            username="ada", email="Ada@Example.org", password=_ADA_PW, full_name="Ada Lovelace"
        ),
        actor="admin",
    )
    p.step(
        'db.users.create(NewUser(username="ada", email="Ada@Example.org", password=...), '
        'actor="admin")',
        f"User ada, id {_short(ada.id)}, email {ada.email}",
    )
    bob = await db.users.create(
        vdata.NewUser(username="bob", email="bob@example.org", password=_BOB_PW, full_name="Bob"),
        actor="admin",
    )
    p.step(
        'db.users.create(NewUser(username="bob", ...), actor="admin")',
        f"User bob, id {_short(bob.id)}",
    )
    try:
        await db.users.create(
            vdata.NewUser(username="ada2", email="ADA@example.org", password=_OTHER_PW),
            actor="admin",
        )
    except vdata.ConflictError as exc:
        p.step(
            'db.users.create(NewUser(username="ada2", email="ADA@example.org", ...))',
            f"ConflictError on {exc.constraint}",
        )
    return ada, bob


async def _logins(db: vdata.Database, p: _Printer) -> None:
    p.title("2. Logins")
    try:
        await db.users.authenticate("ada", "wrong guess", ip="203.0.113.7")
    except vdata.AuthenticationError as exc:
        p.step('db.users.authenticate("ada", "wrong guess")', _error(exc))
    who = await db.users.authenticate("ada@example.org", _ADA_PW, ip="203.0.113.7")
    p.step(
        'db.users.authenticate("ada@example.org", <right password>, ip="203.0.113.7")',
        f"User ada, logged in; last login from {who.last_login_ip}",
    )

    p.title(f"3. Lockout after {LOCKOUT_AFTER} failures (Settings.lockout_threshold)")
    for attempt in range(1, LOCKOUT_AFTER + 1):
        call = f'db.users.authenticate("bob", "guess {attempt}")'
        try:
            await db.users.authenticate("bob", f"guess {attempt}", ip="198.51.100.9")
        except vdata.AccountLockedError as exc:
            p.step(call, f"wrong password {attempt} -> {_error(exc)}")
        except vdata.AuthenticationError:
            p.step(call, f"wrong password {attempt} -> AuthenticationError")
    try:
        await db.users.authenticate("bob", _BOB_PW)
    except vdata.AccountLockedError:
        p.step(
            'db.users.authenticate("bob", <right password>)',
            "right password while locked -> AccountLockedError",
        )


async def _api_key(db: vdata.Database, p: _Printer, ada: vdata.User) -> None:
    p.title("4. An API key (the plaintext is returned once; only a digest is stored)")
    issued = await db.api_keys.issue(ada.id, name="ci", scopes=["read"], actor="ada")
    p.step(
        'db.api_keys.issue(ada.id, name="ci", scopes=["read"], actor="ada")',
        f"IssuedApiKey, token {issued.token[:12]}...",
    )
    key = await db.api_keys.verify(issued.token)
    await db.api_keys.flush_usage()  # pooled verifies count uses in memory, written in batches
    uses = (await db.api_keys.get(key.id)).use_count
    p.step(
        "db.api_keys.verify(issued.token)",
        f"ApiKey {key.prefix}, scopes {key.scopes}, uses {uses}",
    )
    await db.api_keys.revoke(key.id, actor="ada")
    try:
        await db.api_keys.verify(issued.token)
    except vdata.AuthenticationError:
        p.step(
            'db.api_keys.revoke(key.id, actor="ada"); db.api_keys.verify(issued.token)',
            "revoked; verifying again -> AuthenticationError",
        )


async def _session(db: vdata.Database, p: _Printer, ada: vdata.User) -> None:
    p.title("5. A session")
    opened = await db.sessions.create(ada.id, ip="203.0.113.7", user_agent="demo/1.0", actor="ada")
    checked = await db.sessions.validate(opened.token)
    p.step(
        'db.sessions.create(ada.id, ip="203.0.113.7", ...); db.sessions.validate(token)',
        f"Session {_short(checked.id)}, expires {checked.expires_at:%Y-%m-%d %H:%M}",
    )
    await db.users.change_password(
        ada.id, old_password=_ADA_PW, new_password=_ADA_NEW_PW, actor="ada"
    )
    try:
        await db.sessions.validate(opened.token)
    except vdata.AuthenticationError:
        p.step(
            "db.users.change_password(ada.id, ...); db.sessions.validate(token)",
            "AuthenticationError: her sessions were revoked with it",
        )


async def _projects_and_tasks(
    db: vdata.Database, p: _Printer, ada: vdata.User, bob: vdata.User
) -> vdata.Project:
    p.title("6. Projects and tasks (who may see and change what is checked in the SQL)")
    names = ["Analytical Engine", "Bernoulli numbers", "Difference Engine", "Notes", "Punch cards"]
    projects = []
    for name in names:
        projects.append(
            await db.projects.create(vdata.NewProject(name=name), owner_id=ada.id, actor="ada")
        )
    engine = projects[0]
    p.step(
        'db.projects.create(NewProject(name="Analytical Engine"), owner_id=ada.id, actor="ada")',
        f"Project {engine.name!r}, id {_short(engine.id)}, private, version {engine.version} "
        f"(and {len(names) - 1} more like it)",
    )
    try:
        await db.projects.get(engine.id, as_user=bob.id)
    except vdata.NotFoundError as exc:
        p.step("db.projects.get(engine.id, as_user=bob.id)", f"{_error(exc)} (private to ada)")
    titles = [f"Note {letter}" for letter in "ABCDEFG"]
    tasks = await db.tasks.create_many(
        engine.id, [vdata.NewTask(title=t) for t in titles], as_user=ada.id, actor="ada"
    )
    p.step(
        'db.tasks.create_many(engine.id, [NewTask(title="Note A"), ... "Note G"], as_user=ada.id)',
        f"{len(tasks)} tasks in one COPY: " + ", ".join(t.title for t in tasks),
    )
    assigned = await db.tasks.assign(tasks[0].id, bob.id, as_user=ada.id, actor="ada")
    p.step(
        "db.tasks.assign(note_a.id, bob.id, as_user=ada.id)",
        f"Task {assigned.title!r}, assignee bob, version {assigned.version}",
    )
    moved = await db.tasks.set_status(tasks[0].id, "in_progress", as_user=bob.id, actor="bob")
    p.step(
        'db.tasks.set_status(note_a.id, "in_progress", as_user=bob.id)',
        f"Task {moved.title!r}, status {moved.status}, version {moved.version}",
    )
    try:
        await db.tasks.update(
            tasks[0].id,
            vdata.TaskPatch(title="Note A, revised"),
            as_user=ada.id,
            expected_version=assigned.version,
            actor="ada",
        )
    except vdata.StaleVersionError as exc:
        p.step(
            f"db.tasks.update(note_a.id, TaskPatch(...), expected_version={assigned.version})",
            f"{_error(exc)} (bob changed it since)",
        )
    try:
        await db.tasks.create(
            engine.id, vdata.NewTask(title="from bob"), as_user=bob.id, actor="bob"
        )
    except (vdata.NotFoundError, vdata.PermissionDeniedError) as exc:
        p.step(
            'db.tasks.create(engine.id, NewTask(title="from bob"), as_user=bob.id)',
            f"{_error(exc)} (bob cannot see it, so cannot add to it)",
        )
    return engine


async def _pagination(
    db: vdata.Database, p: _Printer, ada: vdata.User, engine: vdata.Project
) -> None:
    p.title("7. Pagination: offset pages with a total, keyset pages with a signed cursor")
    page = await db.projects.list_visible(as_user=ada.id, limit=2)
    p.step(
        "db.projects.list_visible(as_user=ada.id, limit=2)",
        f"Page: {[x.name for x in page.items]}, total {page.total}",
    )
    page = await db.projects.list_visible(as_user=ada.id, offset=2, limit=2)
    p.step(
        "db.projects.list_visible(as_user=ada.id, offset=2, limit=2)",
        f"Page: {[x.name for x in page.items]}, total {page.total}",
    )
    cursor: str | None = None
    call = "db.tasks.list_by_project(engine.id, as_user=ada.id, limit=3)"
    while True:
        part = await db.tasks.list_by_project(engine.id, as_user=ada.id, cursor=cursor, limit=3)
        following = "None" if part.next_cursor is None else f"'{part.next_cursor[:16]}...'"
        p.step(call, f"Slice: {[t.title for t in part.items]}, next_cursor {following}")
        if part.next_cursor is None:
            break
        cursor = part.next_cursor
        call = "db.tasks.list_by_project(engine.id, as_user=ada.id, cursor=next_cursor, limit=3)"
    try:
        await db.tasks.list_by_project(engine.id, as_user=ada.id, cursor="x" + (cursor or "y"))
    except vdata.ValidationError as exc:
        p.step('db.tasks.list_by_project(..., cursor="x" + next_cursor)', _error(exc))


async def _audit(db: vdata.Database, p: _Printer) -> None:
    events = (await db.audit.search(limit=1000)).items
    p.title("8. The audit trail (written in the same statement as each change)")
    counts = Counter(e.action for e in events)
    p.step("db.audit.search(limit=1000)", f"{len(events)} events:")
    for action, count in sorted(counts.items()):
        print(f"         {count:>2} x {action}", file=p.out)
    report = await db.audit.verify_chain()
    p.step(
        "db.audit.verify_chain()",
        f"hash chain verified: {'ok' if report.ok else 'BROKEN'} ({report.rows_checked} rows)",
    )


async def _outage(db: vdata.Database, p: _Printer, server: Outage, ada: vdata.User) -> None:
    cfg = db.settings
    p.title(
        f"9. A short outage: the demo's server is stopped, then started; the same Database "
        f"rides through (retries: {cfg.retry_tries} tries; breaker: opens after "
        f"{cfg.breaker_failure_threshold} failures, cooldown "
        f"{min(cfg.breaker_min_cooldown, cfg.breaker_cooldown):g} s doubling up to "
        f"{cfg.breaker_cooldown:g} s)"
    )
    health = await db.health()
    p.step("db.health()", _health(health))
    started = time.monotonic()
    server.stop_server()
    p.step("server.stop_server()", "PostgreSQL is down (a fast shutdown)")
    for _ in range(cfg.breaker_failure_threshold + 1):
        began = time.perf_counter()
        try:
            await db.users.get(ada.id)
            p.step("db.users.get(ada.id)", "served (from a connection still open)")
        except vdata.UnavailableError as exc:
            took = (time.perf_counter() - began) * 1000
            p.step(
                "db.users.get(ada.id)",
                f"{_error(exc)} [{took:.0f} ms, breaker {db.breaker.state}]",
            )
    server.start_server()
    p.step("server.start_server()", "PostgreSQL is up again, same port")
    for _ in range(100):
        try:
            user = await db.users.get(ada.id)
        except vdata.UnavailableError:
            await asyncio.sleep(0.1)
            continue
        p.step(
            "db.users.get(ada.id)  # retried until the breaker lets a trial call through",
            f"User {user.username} again, {time.monotonic() - started:.1f} s after the stop; "
            f"breaker {db.breaker.state}",
        )
        break
    p.step("db.health()", _health(await db.health()))


def _health(h: Any) -> str:
    return (
        f"Health(ok={h.ok}, breaker={h.breaker.state!r}, times_opened={h.breaker.times_opened}, "
        f"retries={h.retries}, connect_failures={h.connect_failures}, pool size={h.pool.size})"
    )
