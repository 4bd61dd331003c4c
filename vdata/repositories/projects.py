"""Projects: the named queries in sql/projects/projects.sql, typed, with access control.

Access rule (the same in every query): a live project is visible to its
owner and, when public, to everyone; only the owner may change it, and an
archived project is read-only until unarchived. A soft-deleted project is
visible to nobody; only its owner may restore it. A project the user may not
see answers NotFoundError, exactly as a project that does not exist, so
that a private project's existence never leaks. A user who can see a
project but not change it (someone else's public project) gets
PermissionDeniedError.
"""

from __future__ import annotations

__all__ = ["ProjectRepository"]

import uuid
from collections.abc import Sequence
from typing import Any, NoReturn

from vdata.engine.repository import Page, Repository, Slice
from vdata.errors import NotFoundError, PermissionDeniedError, StaleVersionError
from vdata.models.projects import NewProject, Project, ProjectAccess, ProjectPatch, ProjectStats
from vdata.queries import load
from vdata.security.validation import (
    check_filter,
    check_identifier,
    check_ids,
    check_input,
    check_text,
    check_version,
)

_Q = load()

_INSERT = _Q.bind("projects.insert_project", Project)
_GET = _Q.bind("projects.get_project_by_id", Project)
_ACCESS = _Q.bind("projects.get_project_access", ProjectAccess)
_LIST = _Q.bind("projects.list_projects_visible", Project, lag_tolerant=True)
_COUNT = _Q.bind("projects.count_projects_visible", int, lag_tolerant=True)
_LIST_AFTER = _Q.bind("projects.list_projects_after", Project, lag_tolerant=True)
_UPDATE = _Q.bind("projects.update_project", Project)
_ARCHIVED = _Q.bind("projects.update_project_archived", Project)
_DELETE = _Q.bind("projects.soft_delete_project", Project)
_RESTORE = _Q.bind("projects.restore_project", Project, entity="deleted project")
_DELETED_VERSION = _Q.bind("projects.get_deleted_project_version", int)
_DELETE_MANY = _Q.bind("projects.soft_delete_projects", Project)
_RESTORE_MANY = _Q.bind("projects.restore_projects", Project, entity="deleted project")
_STATS = _Q.bind("projects.get_project_stats", ProjectStats)

MAX_BULK = 10_000


def _name(value: str) -> str:
    return check_identifier("name", value, max_length=200)


def _description(value: str) -> str:
    return check_text("description", value, max_length=10_000)


def _by_name(project: Project) -> tuple[str, uuid.UUID]:
    return (project.name, project.id)


def _after_name(position: tuple[Any, ...] | None) -> dict[str, object]:
    if position is None:
        return {"after_name": None, "after_id": None}
    return {"after_name": position[0], "after_id": position[1]}


class ProjectRepository(Repository):
    """Read and write ``app.projects`` on behalf of a user (``as_user``)."""

    __slots__ = ()

    async def create(
        self, new: NewProject, *, owner_id: uuid.UUID, actor: str | None = None
    ) -> Project:
        """Create a project owned by *owner_id*, with its audit event; return it.

        Raise NotFoundError if the owner is not an active user,
        ConflictError (``unique_projects_owner_id_and_name``) if the owner
        already has a live project of that name, ValidationError for bad input.
        """
        new = check_input("new", new, NewProject)
        created = await self.one_or_none(
            _INSERT,
            owner_id=owner_id,
            name=_name(new.name),
            description=_description(new.description),
            is_public=new.is_public,
            actor=self.actor(actor),
        )
        if created is None:
            raise NotFoundError("user", owner_id)
        return created

    async def get(self, project_id: uuid.UUID, *, as_user: uuid.UUID) -> Project:
        """Return the project if *as_user* may see it; raise NotFoundError otherwise."""
        return await self.one(_GET, id=project_id, as_user=as_user)

    async def list_visible(
        self,
        *,
        as_user: uuid.UUID,
        search: str | None = None,
        owned_only: bool = False,
        include_archived: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[Project]:
        """Return one offset page (by name) of the projects *as_user* may see, with the total.

        *search* matches a case-insensitive substring of the name.
        """
        return await self.offset_page(
            _LIST,
            _COUNT,
            offset,
            limit,
            as_user=as_user,
            search=check_filter("search", search),
            owned_only=owned_only,
            archived=include_archived,
        )

    async def list_visible_after(
        self,
        *,
        as_user: uuid.UUID,
        search: str | None = None,
        owned_only: bool = False,
        include_archived: bool = True,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Slice[Project]:
        """Return one keyset page (by name) of the projects *as_user* may see.

        Pass the returned ``next_cursor`` for the next page; a tampered
        cursor raises ValidationError.
        """
        return await self.keyset_page(
            _LIST_AFTER,
            cursor,
            limit,
            _by_name,
            _after_name,
            as_user=as_user,
            search=check_filter("search", search),
            owned_only=owned_only,
            archived=include_archived,
        )

    async def update(
        self,
        project_id: uuid.UUID,
        patch: ProjectPatch,
        *,
        expected_version: int,
        as_user: uuid.UUID,
        actor: str | None = None,
    ) -> Project:
        """Apply *patch* at *expected_version*, with its audit event; return the new row.

        Raise NotFoundError (not visible), PermissionDeniedError (not the
        owner, or archived), StaleVersionError (someone changed it first),
        ConflictError on a duplicate name.
        """
        patch = check_input("patch", patch, ProjectPatch)
        updated = await self.one_or_none(
            _UPDATE,
            id=project_id,
            as_user=as_user,
            expected_version=expected_version,
            name=None if patch.name is None else _name(patch.name),
            description=None if patch.description is None else _description(patch.description),
            is_public=patch.is_public,
            actor=self.actor(actor),
        )
        if updated is None:
            await self._refuse(project_id, as_user, expected_version=expected_version)
        return updated

    async def archive(
        self, project_id: uuid.UUID, *, as_user: uuid.UUID, actor: str | None = None
    ) -> Project:
        """Archive the project (read-only from then on); raise as ``update`` does.

        Archiving an archived project raises PermissionDeniedError.
        """
        return await self._set_archived(project_id, as_user, actor, archive=True)

    async def unarchive(
        self, project_id: uuid.UUID, *, as_user: uuid.UUID, actor: str | None = None
    ) -> Project:
        """Make an archived project writable again; PermissionDeniedError if it is not archived."""
        return await self._set_archived(project_id, as_user, actor, archive=False)

    async def soft_delete(
        self,
        project_id: uuid.UUID,
        *,
        as_user: uuid.UUID,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Project:
        """Soft-delete the project (its tasks vanish with it); return the deleted row.

        With *expected_version*, only at that version. Raise NotFoundError
        (not visible), PermissionDeniedError (not the owner),
        StaleVersionError (someone changed it first).
        """
        deleted = await self.one_or_none(
            _DELETE,
            id=project_id,
            as_user=as_user,
            expected_version=check_version(expected_version),
            actor=self.actor(actor),
        )
        if deleted is None:
            await self._refuse(
                project_id, as_user, expected_version=expected_version, archived_ok=True
            )
        return deleted

    async def restore(
        self,
        project_id: uuid.UUID,
        *,
        as_user: uuid.UUID,
        expected_version: int | None = None,
        actor: str | None = None,
    ) -> Project:
        """Undo the soft delete of the project, archived or not; return the restored row.

        Its tasks come back with it (those deleted on their own stay
        deleted). Raise NotFoundError unless it is a soft-deleted project
        *as_user* owns, StaleVersionError when *expected_version* is given
        and the project has moved on, ConflictError
        (``unique_projects_owner_id_and_name``) when a live project of the
        owner has its name now.
        """
        restored = await self.one_or_none(
            _RESTORE,
            id=project_id,
            as_user=as_user,
            expected_version=check_version(expected_version),
            actor=self.actor(actor),
        )
        if restored is None:
            if await self.value(_DELETED_VERSION, id=project_id, as_user=as_user) is None:
                raise NotFoundError("deleted project", project_id)
            raise StaleVersionError(
                "deleted project", project_id, expected_version=expected_version
            )
        return restored

    async def soft_delete_many(
        self, project_ids: Sequence[uuid.UUID], *, as_user: uuid.UUID, actor: str | None = None
    ) -> list[Project]:
        """Soft-delete every project in *project_ids* in one statement, all or nothing.

        Return the deleted rows by id. Raise as ``soft_delete`` for the first
        project that does not qualify (nothing is deleted then).
        """
        ids = check_ids("project_ids", project_ids, max_count=MAX_BULK)

        async def blame(project_id: uuid.UUID) -> None:
            access = await self.one_or_none(_ACCESS, id=project_id, as_user=as_user)
            if access is None or not access.visible:
                raise NotFoundError("project", project_id)
            if not access.is_owner:
                raise PermissionDeniedError("only the owner may change this project")

        return await self.change_all(
            _DELETE_MANY, ids, blame, as_user=as_user, actor=self.actor(actor)
        )

    async def restore_many(
        self, project_ids: Sequence[uuid.UUID], *, as_user: uuid.UUID, actor: str | None = None
    ) -> list[Project]:
        """Restore every soft-deleted project in *project_ids* in one statement, all or nothing.

        Return the restored rows by id. Raise NotFoundError for the first id
        that is not a soft-deleted project of *as_user*, ConflictError as
        ``restore`` (nothing is restored then).
        """
        ids = check_ids("project_ids", project_ids, max_count=MAX_BULK)

        async def blame(project_id: uuid.UUID) -> None:
            if await self.value(_DELETED_VERSION, id=project_id, as_user=as_user) is None:
                raise NotFoundError("deleted project", project_id)

        return await self.change_all(
            _RESTORE_MANY, ids, blame, as_user=as_user, actor=self.actor(actor)
        )

    async def stats(self, project_id: uuid.UUID, *, as_user: uuid.UUID) -> ProjectStats:
        """Return task counts per status, completion rate and overdue count, in one query."""
        return await self.one(_STATS, id=project_id, as_user=as_user)

    async def _set_archived(
        self, project_id: uuid.UUID, as_user: uuid.UUID, actor: str | None, *, archive: bool
    ) -> Project:
        changed = await self.one_or_none(
            _ARCHIVED, id=project_id, as_user=as_user, archive=archive, actor=self.actor(actor)
        )
        if changed is None:
            await self._refuse(project_id, as_user, archived_ok=True, want_archived=not archive)
        return changed

    async def _refuse(
        self,
        project_id: uuid.UUID,
        as_user: uuid.UUID,
        *,
        expected_version: int | None = None,
        archived_ok: bool = False,
        want_archived: bool | None = None,
    ) -> NoReturn:
        """Raise the error that explains why a write to *project_id* touched no row."""
        access = await self.one_or_none(_ACCESS, id=project_id, as_user=as_user)
        if access is None or not access.visible:
            raise NotFoundError("project", project_id)
        if not access.is_owner:
            raise PermissionDeniedError("only the owner may change this project")
        if want_archived is not None and access.archived != want_archived:
            state = "archived" if access.archived else "not archived"
            raise PermissionDeniedError(f"the project is already {state}")
        if access.archived and not archived_ok:
            raise PermissionDeniedError("the project is archived; unarchive it first")
        raise StaleVersionError("project", project_id, expected_version=expected_version)
