"""User accounts: the named queries of ``sql/users/``, typed.

Login, password and email-verification methods live in ``_users_login``
(a base class of UserRepository), so each module stays short.
"""

from __future__ import annotations

__all__ = ["SORT_KEYS", "UserRepository"]

import builtins
from typing import Any
from uuid import UUID

from vdata.engine.repository import Page, Slice
from vdata.errors import ValidationError
from vdata.models.users import NewUser, User, UserPatch
from vdata.queries import Query, load
from vdata.repositories._users_login import UserLoginMixin
from vdata.validation import check_email, check_text, check_username

_Q = load()

_GET = _Q.bind("users.get_user_by_id", User)
_GET_BY_USERNAME = _Q.bind("users.get_user_by_username", User)
_GET_BY_EMAIL = _Q.bind("users.get_user_by_email", User)
_VERSION = _Q.bind("users.get_user_version", int)
_COUNT = _Q.bind("users.count_users", int)
_LIST_AFTER = _Q.bind("users.list_users_after", User)
_INSERT = _Q.bind("users.insert_user", User)
_UPDATE = _Q.bind("users.update_user", User)
_SET_ACTIVE = _Q.bind("users.set_user_active", User)
_SOFT_DELETE = _Q.bind("users.soft_delete_user", User)
_RESTORE = _Q.bind("users.restore_user", User, entity="deleted user")
_PURGE = _Q.bind("users.purge_user", User, entity="deleted user")

# The allow-list of sort keys: each maps to its own static query, so no
# caller-supplied text ever reaches the SQL.
_LISTS = {
    "created_at": _Q.bind("users.list_users_by_created_at", User),
    "username": _Q.bind("users.list_users_by_username", User),
}
SORT_KEYS = tuple(sorted(_LISTS))

# The schema's check_users_username_shape allows 3-32 characters, tighter
# than vdata.validation's generic 64; say so before the server does.
USERNAME_MAX = 32
FULL_NAME_MAX = 200
_SEARCH_MAX = 254


def _username(value: str) -> str:
    check_username(value)
    if len(value) > USERNAME_MAX:
        raise ValidationError(
            f"username must be at most {USERNAME_MAX} characters", field="username"
        )
    return value


def _sorted(sort: str) -> Query[User]:
    q = _LISTS.get(sort)
    if q is None:
        raise ValidationError("unknown sort key; use one of: " + ", ".join(SORT_KEYS), field="sort")
    return q


def _filters(
    active: bool | None, verified: bool | None, search: str | None, include_deleted: bool
) -> dict[str, object]:
    if search is not None:
        check_text("search", search, max_length=_SEARCH_MAX)
    return {
        "active": active,
        "verified": verified,
        "search": search or None,
        "with_deleted": bool(include_deleted),
    }


def _after(position: tuple[Any, ...] | None) -> dict[str, object]:
    if position is None:
        return {"after_time": None, "after_id": None}
    if len(position) != 2 or not isinstance(position[1], UUID):
        raise ValidationError("invalid or tampered cursor", field="cursor")
    return {"after_time": position[0], "after_id": position[1]}


def _key(user: User) -> tuple[Any, ...]:
    return (user.created_at, user.id)


class UserRepository(UserLoginMixin):
    """Read and write ``app.users``; every method runs one named statement.

    Writes take ``actor=`` (or the transaction's actor) and record their
    audit event in the same statement. Reads never see soft-deleted users
    unless ``include_deleted=True`` is passed to a listing.
    """

    __slots__ = ()

    async def create(self, new: NewUser, *, actor: str | None = None) -> User:
        """Create *new* with an argon2id hash of its password; return the user.

        Raise ValidationError for a bad field (nothing is written) and
        ConflictError (``unique_users_username`` or ``unique_users_email_lower``)
        when the username or the email, in any letter case, is taken.
        """
        who = self.actor(actor)
        _username(new.username)
        check_email(new.email)
        check_text("full_name", new.full_name, max_length=FULL_NAME_MAX)
        password_hash = await self._hasher.hash(new.password)  # checks the policy first
        return await self.one(
            _INSERT,
            username=new.username,
            email=new.email,
            full_name=new.full_name,
            password_hash=password_hash,
            actor=who,
        )

    async def get(self, id: UUID) -> User:
        """Return the live user *id*; raise NotFoundError if absent or soft-deleted."""
        return await self.one(_GET, id=id)

    async def get_by_username(self, username: str) -> User:
        """Return the live user named exactly *username* (case-sensitive); NotFoundError."""
        check_text("username", username, max_length=_SEARCH_MAX)
        return await self.one(_GET_BY_USERNAME, username=username)

    async def get_by_email(self, email: str) -> User:
        """Return the live user with *email* in any letter case; raise NotFoundError."""
        check_text("email", email, max_length=_SEARCH_MAX)
        return await self.one(_GET_BY_EMAIL, email=email)

    async def update(
        self, id: UUID, patch: UserPatch, *, expected_version: int, actor: str | None = None
    ) -> User:
        """Apply *patch* if the user is still at *expected_version*; return the new row.

        Raise StaleVersionError if someone changed it meanwhile (reload and
        retry), NotFoundError if it is gone, ValidationError for a bad or
        empty patch, ConflictError for a taken username or email.
        """
        who = self.actor(actor)
        if not isinstance(expected_version, int) or isinstance(expected_version, bool):
            raise ValidationError("expected_version must be an int", field="expected_version")
        if patch.username is None and patch.email is None and patch.full_name is None:
            raise ValidationError("nothing to update: every field of the patch is None")
        if patch.username is not None:
            _username(patch.username)
        if patch.email is not None:
            check_email(patch.email)
        if patch.full_name is not None:
            check_text("full_name", patch.full_name, max_length=FULL_NAME_MAX)
        return await self.update_versioned(
            _UPDATE,
            _VERSION,
            expected_version,
            id=id,
            username=patch.username,
            email=patch.email,
            full_name=patch.full_name,
            actor=who,
        )

    async def activate(self, id: UUID, *, actor: str | None = None) -> User:
        """Let the live user *id* log in again; return it. Raise NotFoundError."""
        who = self.actor(actor)
        return await self.one(_SET_ACTIVE, id=id, active=True, actor=who)

    async def deactivate(self, id: UUID, *, actor: str | None = None) -> User:
        """Stop the live user *id* from logging in; return it. Raise NotFoundError."""
        who = self.actor(actor)
        return await self.one(_SET_ACTIVE, id=id, active=False, actor=who)

    async def soft_delete(self, id: UUID, *, actor: str | None = None) -> User:
        """Soft-delete the live user *id* (it keeps its username and email); NotFoundError."""
        who = self.actor(actor)
        return await self.one(_SOFT_DELETE, id=id, actor=who)

    async def restore(self, id: UUID, *, actor: str | None = None) -> User:
        """Undo the soft delete of user *id*; raise NotFoundError unless it is soft-deleted."""
        who = self.actor(actor)
        return await self.one(_RESTORE, id=id, actor=who)

    async def purge(self, id: UUID, *, actor: str | None = None) -> User:
        """Delete the soft-deleted user *id* for good, with its keys, sessions and roles.

        Return the row as it was. Raise NotFoundError unless it is
        soft-deleted, ForeignKeyError while it still owns projects.
        """
        who = self.actor(actor)
        return await self.one(_PURGE, id=id, actor=who)

    async def list(
        self,
        *,
        active: bool | None = None,
        verified: bool | None = None,
        search: str | None = None,
        include_deleted: bool = False,
        sort: str = "created_at",
        offset: int = 0,
        limit: int = 50,
    ) -> builtins.list[User]:
        """Return up to *limit* users after skipping *offset*, in *sort* order.

        *search* matches a prefix of the username or email, in any case.
        """
        q = _sorted(sort)
        offset, limit = self.page_bounds(offset, limit)
        filters = _filters(active, verified, search, include_deleted)
        return await self.many(q, offset=offset, page_size=limit, **filters)

    async def list_page(
        self,
        *,
        active: bool | None = None,
        verified: bool | None = None,
        search: str | None = None,
        include_deleted: bool = False,
        sort: str = "created_at",
        offset: int = 0,
        limit: int = 50,
    ) -> Page[User]:
        """Return one offset page of users and the total across pages (see ``list``)."""
        q = _sorted(sort)
        filters = _filters(active, verified, search, include_deleted)
        return await self.offset_page(q, _COUNT, offset, limit, **filters)

    async def list_after(
        self,
        cursor: str | None = None,
        *,
        limit: int = 50,
        active: bool | None = None,
        verified: bool | None = None,
        search: str | None = None,
        include_deleted: bool = False,
    ) -> Slice[User]:
        """Return users after *cursor* (None: from the start), oldest first.

        Pass the result's ``next_cursor`` to get the next slice, with the same
        filters; a tampered or foreign cursor raises ValidationError.
        """
        filters = _filters(active, verified, search, include_deleted)
        return await self.keyset_page(_LIST_AFTER, cursor, limit, _key, _after, **filters)
