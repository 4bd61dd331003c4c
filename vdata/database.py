"""vdata.Database and vdata.Transaction: the engine with vdata's bundled areas typed, and connect().

The engine (``vdata.engine``) knows no repository; this module composes
it with the bundled domain (``vdata.repositories``) and with whatever
areas a service registers, and declares the bundled areas' types so that
``db.users.get(...)`` is typed.
"""

from __future__ import annotations

__all__ = ["Database", "Transaction", "connect"]

from collections.abc import Mapping
from typing import TYPE_CHECKING

from vdata.engine import database as engine
from vdata.engine import transaction
from vdata.engine.repository import Repository
from vdata.repositories import BUNDLED_AREAS
from vdata.settings import Settings

if TYPE_CHECKING:
    from vdata.repositories.api_keys import ApiKeyRepository
    from vdata.repositories.audit import AuditRepository
    from vdata.repositories.maintenance import MaintenanceRepository
    from vdata.repositories.projects import ProjectRepository
    from vdata.repositories.roles import RoleRepository
    from vdata.repositories.sessions import SessionRepository
    from vdata.repositories.tasks import TaskRepository
    from vdata.repositories.users import UserRepository


class Transaction(transaction.Transaction):
    """One connection inside BEGIN ... COMMIT, with every registered area."""

    # The bundled areas, typed; instances are made on first access.
    users: UserRepository
    roles: RoleRepository
    api_keys: ApiKeyRepository
    sessions: SessionRepository
    audit: AuditRepository
    projects: ProjectRepository
    tasks: TaskRepository
    maintenance: MaintenanceRepository


class Database(engine.Database[Transaction]):
    """A pool of connections to one PostgreSQL, with every registered area."""

    users: UserRepository
    roles: RoleRepository
    api_keys: ApiKeyRepository
    sessions: SessionRepository
    audit: AuditRepository
    projects: ProjectRepository
    tasks: TaskRepository
    maintenance: MaintenanceRepository


async def connect(
    dsn: str | None = None,
    *,
    settings: Settings | None = None,
    areas: Mapping[str, type[Repository]] | None = None,
    bundled: bool = True,
) -> Database:
    """Open a pool to *dsn* (or ``settings.dsn``, or ``VDATA_DSN``) and return the Database.

    *areas* are a service's repositories by attribute name: ``db.<name>``
    and ``tx.<name>``. vdata's own areas (``users`` ... ``tasks``) are
    registered too unless *bundled* is False; a service's area of the same
    name replaces the bundled one. *dsn* may take any form libpq reads:
    ``host=... dbname=...``, ``postgresql://``, ``postgres://``,
    ``postgresql+psycopg://``. Raise ConfigurationError for a missing or
    malformed DSN or a bad setting, UnavailableError if the server cannot
    be reached.
    """
    settings = settings or Settings.from_env()
    if dsn is not None:
        settings = settings.replace(dsn=dsn)
    registered = {**BUNDLED_AREAS, **(areas or {})} if bundled else dict(areas or {})
    return await Database.open(settings, transaction_class=Transaction, areas=registered)
