"""SQLAlchemy mapped classes over vdata's own tables, for the ``sqlalchemy`` contender.

Only the columns the benchmark reads or writes are mapped where a table has
more; server-side defaults and trigger-set columns are ``FetchedValue`` so the
ORM leaves them to PostgreSQL and reads them back (``eager_defaults``).
"""

from __future__ import annotations

__all__ = ["ApiKey", "AuditLog", "Base", "Project", "Task", "User"]

import datetime as dt
import uuid
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
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, deferred, mapped_column

_SERVER = FetchedValue()


class Base(DeclarativeBase):
    """Declarative base for the ``app`` schema."""


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
    """``app.audit_log``; the chain trigger sets id, xact, prev_hash (null) and row_hash."""

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
