"""The SQLAlchemy 2 async ORM contender (asyncpg driver), over vdata's own tables.

Imported only when the ``sqlalchemy`` contender runs (``pip install
vdata[bench]``). Each operation is what an ORM user writes for the same
result: a session per call, mapped classes for users, API keys, tasks and
the audit log, the audit row added in the same transaction as the change
(vdata writes it in the same statement), ``version_id_col`` with the server
bumping the version (SQLAlchemy's documented server-side optimistic lock).
"""

from __future__ import annotations

__all__ = ["SqlAlchemy"]

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    FetchedValue,
    Identity,
    Integer,
    LargeBinary,
    Text,
    and_,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

from vdata.bench.contenders import Contender
from vdata.bench.operations import ACTOR, BULK, PASSWORD, Workload, cheap_settings
from vdata.bench.runner import BatchFn
from vdata.errors import AuthenticationError
from vdata.passwords import hasher_for
from vdata.tokens import hash_secret, parse_api_key

_SERVER = FetchedValue()


class Base(DeclarativeBase):
    """Declarative base for the ``app`` schema."""


def _stamps() -> dict[str, Any]:
    return {}


class User(Base):
    """``app.users`` (password_hash deferred: not loaded by a get)."""

    __tablename__ = "users"
    __table_args__ = {"schema": "app"}  # noqa: RUF012
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, server_default=_SERVER)
    username: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    full_name: Mapped[str] = mapped_column(Text)
    password_hash: Mapped[str] = deferred(mapped_column(Text))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=_SERVER)
    email_verified_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    failed_login_count: Mapped[int] = mapped_column(Integer, server_default=_SERVER)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_login_ip: Mapped[str | None] = mapped_column(INET)
    password_changed_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=_SERVER
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_SERVER)
    created_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_SERVER)
    updated_by: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=_SERVER, server_onupdate=_SERVER)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_by: Mapped[str | None] = mapped_column(Text)
    __mapper_args__ = {  # noqa: RUF012
        "version_id_col": version,
        "version_id_generator": False,  # the stamp_row trigger bumps it
        "eager_defaults": True,
    }


class ApiKey(Base):
    """``app.api_keys``."""

    __tablename__ = "api_keys"
    __table_args__ = {"schema": "app"}  # noqa: RUF012
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID)
    name: Mapped[str] = mapped_column(Text)
    prefix: Mapped[str] = mapped_column(Text)
    secret_hash: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text))
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    use_count: Mapped[int] = mapped_column(BigInteger)
    rotated_from_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Task(Base):
    """``app.tasks``."""

    __tablename__ = "tasks"
    __table_args__ = {"schema": "app"}  # noqa: RUF012
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    project_id: Mapped[uuid.UUID] = mapped_column(UUID)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=_SERVER)
    priority: Mapped[int] = mapped_column(Integer)
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_SERVER)
    created_by: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=_SERVER)
    updated_by: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, server_default=_SERVER)


class Project(Base):
    """``app.projects`` (the columns the bulk insert's access check reads)."""

    __tablename__ = "projects"
    __table_args__ = {"schema": "app"}  # noqa: RUF012
    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AuditLog(Base):
    """``app.audit_log``; the chain trigger sets id, prev_hash and row_hash."""

    __tablename__ = "audit_log"
    __table_args__ = {"schema": "app"}  # noqa: RUF012
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=_SERVER
    )
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(Text)
    entity_type: Mapped[str] = mapped_column(Text)
    entity_id: Mapped[str | None] = mapped_column(Text)
    before: Mapped[Any] = mapped_column(JSONB)
    after: Mapped[Any] = mapped_column(JSONB)
    row_hash: Mapped[bytes] = deferred(mapped_column(LargeBinary, server_default=_SERVER))


_PUBLIC = [c.key for c in User.__table__.columns if c.key != "password_hash"]


def _snapshot(user: User) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _PUBLIC:
        value = getattr(user, key)
        out[key] = (
            value.isoformat()
            if isinstance(value, dt.datetime | dt.date)
            else (str(value) if isinstance(value, uuid.UUID) else value)
        )
    return out


def _live_user() -> Any:
    return User.deleted_at.is_(None)


def sa_op(
    op: str, w: Workload
) -> Callable[[async_sessionmaker[AsyncSession], int], Awaitable[object]]:
    """Return ``f(sessionmaker, worker)``: one ORM call of *op*, in its own session."""
    if op == "get_by_id":
        nxt = w.cycle_ids()

        async def get(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            async with sm() as s:
                stmt = select(User).where(User.id == nxt(), _live_user())
                return (await s.execute(stmt)).scalar_one()

        return get
    if op == "get_by_email":
        nxt_email = w.cycle_emails()

        async def by_email(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            async with sm() as s:
                email = nxt_email()
                stmt = select(User).where(func.lower(User.email) == func.lower(email), _live_user())
                return (await s.execute(stmt)).scalar_one()

        return by_email
    if op == "insert":
        hasher = hasher_for(cheap_settings())

        async def create(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            name = w.new_username()
            password_hash = await hasher.hash(PASSWORD)
            async with sm.begin() as s:
                user = User(
                    username=name,
                    email=f"{name}@example.org",
                    full_name="",
                    password_hash=password_hash,
                    created_by=ACTOR,
                    updated_by=ACTOR,
                )
                s.add(user)
                await s.flush()
                s.add(_audit("user.create", "user", str(user.id), None, _snapshot(user)))
            return user

        return create
    if op == "keyset_page":
        assert w.after is not None
        after_time, after_id = w.after

        async def page(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            async with sm() as s:
                stmt = (
                    select(User)
                    .where(_live_user(), tuple_(User.created_at, User.id) > (after_time, after_id))
                    .order_by(User.created_at, User.id)
                    .limit(51)
                )
                return (await s.execute(stmt)).scalars().all()

        return page
    if op == "update":
        ids = w.update_ids

        async def update(sm: async_sessionmaker[AsyncSession], worker: int) -> object:
            uid = ids[worker]
            async with sm.begin() as s:
                stmt = select(User).where(User.id == uid, _live_user())
                user = (await s.execute(stmt)).scalar_one()
                before = _snapshot(user)
                user.full_name = f"v{user.version}"
                user.updated_by = ACTOR
                await s.flush()  # UPDATE ... WHERE id = ? AND version = ? RETURNING version
                s.add(_audit("user.update", "user", str(uid), before, _snapshot(user)))
            w.versions[uid] = user.version
            return user

        return update
    if op == "api_key_verify":
        token, pepper = w.token, cheap_settings().secret_key

        async def verify(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
            prefix, secret = parse_api_key(token)
            digest = hash_secret(secret, pepper)
            owner_ok = exists().where(
                User.id == ApiKey.user_id, User.is_active, User.deleted_at.is_(None)
            )
            stmt = select(ApiKey).where(
                ApiKey.prefix == prefix,
                ApiKey.secret_hash == digest,
                ApiKey.revoked_at.is_(None),
                ApiKey.deleted_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
                owner_ok,
            )
            async with sm() as s:
                key = (await s.execute(stmt)).scalar_one_or_none()
            if key is None:
                raise AuthenticationError("invalid API key")
            return key

        return verify
    if op == BULK:
        return _bulk(w)
    raise ValueError(f"unknown operation {op!r}")


def _audit(action: str, entity_type: str, entity_id: str, before: Any, after: Any) -> AuditLog:
    return AuditLog(
        actor=ACTOR,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
    )


def _bulk(w: Workload) -> Callable[[async_sessionmaker[AsyncSession], int], Awaitable[object]]:
    """ORM bulk INSERT ... RETURNING of the tasks, then one audit row per task."""

    async def bulk(sm: async_sessionmaker[AsyncSession], _w: int) -> object:
        rows = [
            {
                "id": r[0],
                "project_id": r[1],
                "title": r[2],
                "description": r[3],
                "priority": r[4],
                "assignee_id": r[5],
                "due_at": r[6],
                "created_by": r[7],
                "updated_by": r[8],
            }
            for r in w.task_records()
        ]
        async with sm.begin() as s:
            check = (
                select(Project.id)
                .where(
                    and_(
                        Project.id == w.project_id,
                        Project.owner_id == w.owner_id,
                        Project.archived_at.is_(None),
                        Project.deleted_at.is_(None),
                    )
                )
                .with_for_update(read=True)
            )
            if (await s.execute(check)).scalar_one_or_none() is None:
                raise RuntimeError("bench project not found")
            tasks = (await s.scalars(insert(Task).returning(Task), rows)).all()
            audit = [
                {
                    "actor": ACTOR,
                    "action": "task.create",
                    "entity_type": "task",
                    "entity_id": str(t.id),
                    "after": {"id": str(t.id), "title": t.title, "status": t.status},
                }
                for t in tasks
            ]
            await s.execute(insert(AuditLog), audit)
        return tasks

    return bulk


class SqlAlchemy(Contender):
    """SQLAlchemy 2 async ORM on ``postgresql+asyncpg``, a session per call."""

    name = "sqlalchemy"

    async def open(self, pool_size: int) -> None:
        url = self.w.app_dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        url = url.replace("postgres://", "postgresql+asyncpg://", 1)
        self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    def batch(self, op: str) -> BatchFn:
        f, sm = sa_op(op, self.w), self.sessions

        async def run(worker: int, n: int) -> None:
            for _ in range(n):
                await f(sm, worker)

        return run

    async def close(self) -> None:
        await self.engine.dispose()
