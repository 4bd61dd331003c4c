"""Property-based fuzzing of the public entry points against a real PostgreSQL.

Every input a caller can build in Python (text with lone surrogates, NUL,
controls, SQL and LIKE metacharacters, very long strings; values of the wrong
type; random bytes as cursors and tokens) gives either a correct answer or a
``vdata.VdataError``; text a write accepts reads back verbatim; afterwards the
pool holds no connection in use and still serves. Profiles: tests/fuzz/conftest.py.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import vdata
from tests.fuzz.conftest import fuzz_settings
from tests.integration._credentials import make_user
from tests.integration._users import cheap_settings

pytestmark = [pytest.mark.fuzz, pytest.mark.integration]

# -- strategies -----------------------------------------------------------------

_NASTY = [
    "\ud800",
    "\udfff",
    "a\ud83dz",
    "\x00",
    "\x01",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\ufeff",
    "%",
    "_",
    "\\",
    "'",
    '"',
    "' OR 1=1 --",
    "'; DROP TABLE app.users; --",
    "%_\\%",
    "$1",
    ":name",
    "\u0130",
    "ß",
    "😀",
]
_CHARS = st.one_of(
    st.characters(codec=None, exclude_categories=()),  # every code point, surrogates too
    st.sampled_from(_NASTY),
)
TEXT = st.one_of(
    st.lists(_CHARS, max_size=30).map("".join),
    st.sampled_from(_NASTY),
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["a", "%", "\ud800", "é", "x\x00"]),
        st.integers(199, 20_001),
    ),
)
WRONG = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(object()),
    st.just(uuid.UUID(int=0)),
    TEXT,
)
RANDOM_BYTES = st.binary(max_size=120)


def as_token(raw: bytes, how: int) -> str:
    """Random bytes in the shapes a token or a cursor may arrive in."""
    if how == 0:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    if how == 1:
        return "vdk_" + raw.hex()
    if how == 2:
        return raw.decode("latin-1")
    return raw.decode("utf-8", "surrogateescape")  # lone surrogates for invalid bytes


# -- the harness ----------------------------------------------------------------


async def _awaited(fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()


class Harness:
    """A Database on its own event loop, a user and a project, and outcome counts."""

    def __init__(self, dsn: str, owner_dsn: str) -> None:
        self.runner = asyncio.Runner()
        self.outcomes: Counter[str] = Counter()
        self.db: vdata.Database = self.runner.run(
            vdata.connect(dsn, settings=cheap_settings(pool_max_size=4))
        )
        self.user_id, self.project_id, self.task_id = self.runner.run(self._seed(owner_dsn))
        self.serial = 0

    async def _seed(self, owner_dsn: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
        owner = await asyncpg.connect(owner_dsn)
        try:
            user_id = await make_user(owner, "fuzzer")
        finally:
            await owner.close()
        project = await self.db.projects.create(
            vdata.NewProject(name="fuzz"), owner_id=user_id, actor="fuzz"
        )
        task = await self.db.tasks.create(
            project.id, vdata.NewTask(title="fuzz"), as_user=user_id, actor="fuzz"
        )
        return user_id, project.id, task.id

    def unique(self) -> str:
        self.serial += 1
        return f"f{self.serial}"

    def call(self, name: str, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run one entry point; return its result, or None after a vdata error."""
        try:
            result: Any = self.runner.run(_awaited(fn))
        except vdata.VdataError as error:
            self.outcomes[f"{type(error).__name__}"] += 1
            return None
        except Exception as exc:  # the property: nothing else escapes
            raise AssertionError(f"{name} raised {type(exc).__name__}, not a vdata error") from exc
        self.outcomes["accepted"] += 1
        return result

    def assert_pool_whole(self) -> None:
        health = self.runner.run(self.db.health())
        assert health.ok, health.error
        assert health.pool.in_use == 0, health.pool
        assert health.pool.size <= self.db.settings.pool_max_size
        assert health.breaker.state == "closed"

    def close(self) -> None:
        self.runner.run(self.db.close())
        self.runner.close()

    def report(self, what: str) -> None:
        total = sum(self.outcomes.values())
        parts = ", ".join(f"{k} {v}" for k, v in self.outcomes.most_common())
        print(f"\nfuzz {what}: {total} calls: {parts}")


@pytest.fixture
def harness(vdata_app_dsn: str, vdata_dsn: str) -> Iterator[Harness]:
    h = Harness(vdata_app_dsn, vdata_dsn)
    try:
        yield h
    finally:
        h.close()


# -- entry points taking text ------------------------------------------------------

Call = Callable[[Harness, Any], Awaitable[Any]]


async def _create_user(h: Harness, t: str) -> None:
    name = h.unique()
    user = await h.db.users.create(
        vdata.NewUser(username=name, email=f"{name}@example.org", password="x" * 12, full_name=t),
        actor="fuzz",
    )
    assert (await h.db.users.get(user.id)).full_name == t


async def _create_role(h: Harness, t: str) -> None:
    role = await h.db.roles.create(h.unique(), description=t, actor="fuzz")
    assert (await h.db.roles.get(role.id)).description == t


async def _create_project(h: Harness, t: str) -> None:
    project = await h.db.projects.create(
        vdata.NewProject(name=t, description=t), owner_id=h.user_id, actor="fuzz"
    )
    again = await h.db.projects.get(project.id, as_user=h.user_id)
    assert (again.name, again.description) == (t, t)


async def _create_task(h: Harness, t: str) -> None:
    task = await h.db.tasks.create(
        h.project_id, vdata.NewTask(title=t, description=t), as_user=h.user_id, actor="fuzz"
    )
    again = await h.db.tasks.get(task.id, as_user=h.user_id)
    assert (again.title, again.description) == (t, t)


async def _record(h: Harness, t: str) -> None:
    event = await h.db.audit.record("fuzz.event", "fuzz", t, after={"k": t}, actor="fuzz")
    (stored,) = [e for e in await h.db.audit.history("fuzz", t) if e.id == event.id]
    assert stored.entity_id == t
    assert stored.after is not None
    assert msgspec.json.decode(stored.after) == {"k": t}


async def _record_as(h: Harness, t: str) -> None:
    event = await h.db.audit.record("fuzz.event", "fuzz", before=[t], actor=t)
    assert event.actor == t


TEXT_CALLS: dict[str, Call] = {
    "users.create": _create_user,
    "users.get_by_username": lambda h, t: h.db.users.get_by_username(t),
    "users.get_by_email": lambda h, t: h.db.users.get_by_email(t),
    "users.list": lambda h, t: h.db.users.list(search=t),
    "users.list_page": lambda h, t: h.db.users.list_page(search=t),
    "users.list_after": lambda h, t: h.db.users.list_after(t, search=t),
    "users.authenticate": lambda h, t: h.db.users.authenticate(t, t, ip=t),
    "users.verify_email": lambda h, t: h.db.users.verify_email(t),
    "users.update": lambda h, t: h.db.users.update(
        h.user_id, vdata.UserPatch(full_name=t), expected_version=10**6, actor="fuzz"
    ),
    "roles.create": _create_role,
    "roles.get_by_name": lambda h, t: h.db.roles.get_by_name(t),
    "roles.get_permission_by_name": lambda h, t: h.db.roles.get_permission_by_name(t),
    "roles.has_permission": lambda h, t: h.db.roles.has_permission(h.user_id, t),
    "roles.create_permission": lambda h, t: h.db.roles.create_permission(t, actor="fuzz"),
    "api_keys.verify": lambda h, t: h.db.api_keys.verify(t, required_scopes=[t]),
    "api_keys.issue": lambda h, t: h.db.api_keys.issue(h.user_id, name=t, scopes=[t], actor="fuzz"),
    "sessions.validate": lambda h, t: h.db.sessions.validate(t),
    "sessions.create": lambda h, t: h.db.sessions.create(h.user_id, ip=t, user_agent=t),
    "audit.record": _record,
    "audit.record(actor)": _record_as,
    "audit.search": lambda h, t: h.db.audit.search(actor=t, entity_type=t, entity_id=t, action=t),
    "audit.history": lambda h, t: h.db.audit.history(t, t),
    "audit.activity": lambda h, t: h.db.audit.activity(t, cursor=t),
    "projects.create": _create_project,
    "projects.list_visible": lambda h, t: h.db.projects.list_visible(as_user=h.user_id, search=t),
    "projects.list_visible_after": lambda h, t: h.db.projects.list_visible_after(
        as_user=h.user_id, search=t, cursor=t
    ),
    "projects.update": lambda h, t: h.db.projects.update(
        h.project_id,
        vdata.ProjectPatch(name=t, description=t),
        expected_version=10**6,
        as_user=h.user_id,
        actor="fuzz",
    ),
    "tasks.create": _create_task,
    "tasks.set_status": lambda h, t: h.db.tasks.set_status(
        h.task_id, t, as_user=h.user_id, actor="fuzz"
    ),
    "tasks.list_by_status": lambda h, t: h.db.tasks.list_by_status(t, as_user=h.user_id),
    "tasks.list_by_project": lambda h, t: h.db.tasks.list_by_project(
        h.project_id, as_user=h.user_id, status=t, cursor=t
    ),
    "transaction(actor)": lambda h, t: _in_transaction(h, t),
}


async def _in_transaction(h: Harness, t: str) -> None:
    async with h.db.transaction(actor=t) as tx:
        await tx.audit.record("fuzz.tx", "fuzz", actor=None)


def test_arbitrary_text_gives_a_vdata_error_or_reads_back_verbatim(harness: Harness) -> None:
    @fuzz_settings()
    @given(st.sampled_from(sorted(TEXT_CALLS)), TEXT)
    def one(name: str, text: str) -> None:
        harness.call(name, lambda: TEXT_CALLS[name](harness, text))

    one()
    harness.assert_pool_whole()
    harness.report("text")


# -- wrong types -------------------------------------------------------------------

WRONG_CALLS: dict[str, Call] = {
    "users.get": lambda h, w: h.db.users.get(w),
    "users.get_by_username": lambda h, w: h.db.users.get_by_username(w),
    "users.list_page": lambda h, w: h.db.users.list_page(offset=w, limit=w),
    "users.list_after": lambda h, w: h.db.users.list_after(w, limit=w),
    "users.authenticate": lambda h, w: h.db.users.authenticate(w, w),
    "users.activate": lambda h, w: h.db.users.activate(w, actor="fuzz"),
    "roles.get": lambda h, w: h.db.roles.get(w),
    "roles.create": lambda h, w: h.db.roles.create(w, description=w, actor="fuzz"),
    "roles.grant": lambda h, w: h.db.roles.grant(w, w, actor="fuzz"),
    "api_keys.verify": lambda h, w: h.db.api_keys.verify(w),
    "api_keys.get": lambda h, w: h.db.api_keys.get(w),
    "sessions.validate": lambda h, w: h.db.sessions.validate(w),
    "sessions.create": lambda h, w: h.db.sessions.create(h.user_id, ttl=w),
    "sessions.cleanup_expired": lambda h, w: h.db.sessions.cleanup_expired(
        older_than=w, actor="fuzz"
    ),
    "audit.record": lambda h, w: h.db.audit.record(w, w, w, after=w, actor=w),
    "audit.history": lambda h, w: h.db.audit.history(w, w, limit=w),
    "audit.stats": lambda h, w: h.db.audit.stats(since=w, until=w),
    "projects.get": lambda h, w: h.db.projects.get(w, as_user=w),
    "tasks.get": lambda h, w: h.db.tasks.get(w, as_user=h.user_id),
    "tasks.overdue": lambda h, w: h.db.tasks.overdue(as_user=h.user_id, limit=w),
    "tasks.set_status": lambda h, w: h.db.tasks.set_status(
        h.task_id, w, as_user=h.user_id, actor="fuzz"
    ),
}


def test_values_of_the_wrong_type_give_a_vdata_error_or_an_answer(harness: Harness) -> None:
    @fuzz_settings()
    @given(st.sampled_from(sorted(WRONG_CALLS)), WRONG)
    def one(name: str, value: Any) -> None:
        harness.call(name, lambda: WRONG_CALLS[name](harness, value))

    one()
    harness.assert_pool_whole()
    harness.report("wrong types")


# -- random bytes as cursors and tokens ------------------------------------------------

BYTES_CALLS: dict[str, Call] = {
    "users.list_after": lambda h, t: h.db.users.list_after(t),
    "projects.list_visible_after": lambda h, t: h.db.projects.list_visible_after(
        as_user=h.user_id, cursor=t
    ),
    "tasks.list_by_project": lambda h, t: h.db.tasks.list_by_project(
        h.project_id, as_user=h.user_id, cursor=t
    ),
    "audit.activity": lambda h, t: h.db.audit.activity("fuzz", cursor=t),
    "api_keys.verify": lambda h, t: h.db.api_keys.verify(t),
    "sessions.validate": lambda h, t: h.db.sessions.validate(t),
    "users.verify_email": lambda h, t: h.db.users.verify_email(t),
}


def test_random_bytes_as_cursors_and_tokens_are_refused_as_vdata_errors(
    harness: Harness,
) -> None:
    @fuzz_settings()
    @given(st.sampled_from(sorted(BYTES_CALLS)), RANDOM_BYTES, st.integers(0, 3))
    def one(name: str, raw: bytes, how: int) -> None:
        token = as_token(raw, how)
        result = harness.call(name, lambda: BYTES_CALLS[name](harness, token))
        # Nothing random is a valid token; an empty page is the most a cursor gets.
        if result is not None:
            assert name.endswith(("_after", "list_by_project", "activity")), name

    one()
    harness.assert_pool_whole()
    harness.report("random bytes")
