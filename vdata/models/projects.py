"""Structs of projects: the row, its inputs and its statistics."""

from __future__ import annotations

__all__ = ["NewProject", "Project", "ProjectAccess", "ProjectPatch", "ProjectStats"]

import datetime as dt
import uuid

import msgspec


class Project(msgspec.Struct, frozen=True):
    """One row of ``app.projects``, built positionally from a Record."""

    id: uuid.UUID
    owner_id: uuid.UUID
    name: str
    description: str
    is_public: bool
    archived_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str
    updated_at: dt.datetime
    updated_by: str
    version: int
    deleted_at: dt.datetime | None
    deleted_by: str | None


class NewProject(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller gives to create a project; the owner is the acting user."""

    name: str
    description: str = ""
    is_public: bool = False


class ProjectPatch(msgspec.Struct, frozen=True, kw_only=True):
    """Fields to change on a project; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    is_public: bool | None = None


class ProjectStats(msgspec.Struct, frozen=True):
    """Task counts of one project, computed in one query.

    ``completion_rate`` is done / (all - cancelled), 0.0 when that is zero;
    ``overdue`` counts open tasks whose ``due_at`` has passed.
    """

    project_id: uuid.UUID
    total: int
    todo: int
    in_progress: int
    blocked: int
    done: int
    cancelled: int
    completion_rate: float
    overdue: int


class ProjectAccess(msgspec.Struct, frozen=True):
    """What one user may do with one live project; explains a refused write."""

    version: int
    archived: bool
    is_owner: bool
    visible: bool
