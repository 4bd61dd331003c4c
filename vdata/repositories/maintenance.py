"""Cleanup: delete what has expired, once at a time across every instance.

``cleanup()`` runs in one transaction that first takes a transaction-level
advisory lock (``pg_try_advisory_xact_lock``): a run that finds the lock
taken does nothing and says so, so every instance of a service may run it
from cron or a Kubernetes CronJob at the same moment. Each step deletes only
what is past its bound at that moment, so a second run finds nothing left:
running it again, or twice at once, is harmless.
"""

from __future__ import annotations

__all__ = ["CLEANUP_ACTOR", "MaintenanceRepository"]

from datetime import timedelta

from vdata.engine.repository import Repository
from vdata.errors import ValidationError
from vdata.models.audit import DroppedPartition
from vdata.models.maintenance import CleanupReport
from vdata.queries import Query, load
from vdata.repositories.api_keys import ApiKeyRepository
from vdata.repositories.audit import AuditRepository
from vdata.repositories.sessions import SessionRepository
from vdata.security.validation import check_seconds

_Q = load()

_LOCK = _Q.bind("maintenance.try_cleanup_lock", bool)
_EXPIRED_PARTITIONS = _Q.bind("maintenance.list_expired_audit_partitions", DroppedPartition)
_COUNT_SESSIONS = _Q.bind("sessions.count_expired_sessions", int)
_COUNT_EXPIRED_KEYS = _Q.bind("api_keys.count_expired_api_keys", int)
_COUNT_REVOKED_KEYS = _Q.bind("api_keys.count_revoked_api_keys", int)
_COUNT_RESETS = _Q.bind("users.count_expired_password_resets", int)
_DELETE_RESETS = _Q.bind("users.delete_expired_password_resets", int)
_COUNT_VERIFICATIONS = _Q.bind("users.count_expired_email_verifications", int)
_CLEAR_VERIFICATIONS = _Q.bind("users.clear_expired_email_verifications", int)

# The actor cleanup's audit events carry when the caller names none.
CLEANUP_ACTOR = "vdata-cleanup"
_MAX_SECONDS = 100 * 365 * 86400.0


class MaintenanceRepository(Repository):
    """Periodic cleanup of sessions, API keys, tokens and old audit months."""

    __slots__ = ()

    async def cleanup(
        self,
        *,
        dry_run: bool = False,
        sessions_older_than: float | timedelta = 0.0,
        expired_keys_older_than: float | timedelta = 0.0,
        revoked_keys_older_than: float | timedelta = 30 * 86400.0,
        audit_keep_months: int | None = None,
        actor: str | None = None,
    ) -> CleanupReport:
        """Delete what is past its bound, in one transaction, unless another run is at it.

        Deletes sessions expired or revoked more than *sessions_older_than*
        ago, API keys expired more than *expired_keys_older_than* ago or
        revoked more than *revoked_keys_older_than* ago (each audited as a
        purge), expired password-reset tokens and email-verification tokens,
        and, when *audit_keep_months* is given, the audit months before the
        last *audit_keep_months* (owner only: the service role gets
        PermissionDeniedError and nothing is deleted). With *dry_run*,
        return what would be deleted and delete nothing. Return
        ``ran=False`` and zeros when another run holds the lock.
        """
        who = self.actor(actor if actor is not None else self.executor.actor or CLEANUP_ACTOR)
        sessions_s = check_seconds("sessions_older_than", sessions_older_than, maximum=_MAX_SECONDS)
        expired_s = check_seconds(
            "expired_keys_older_than", expired_keys_older_than, maximum=_MAX_SECONDS
        )
        revoked_s = check_seconds(
            "revoked_keys_older_than", revoked_keys_older_than, maximum=_MAX_SECONDS
        )
        if audit_keep_months is not None and (
            not isinstance(audit_keep_months, int)
            or isinstance(audit_keep_months, bool)
            or audit_keep_months < 1
        ):
            raise ValidationError(
                "audit_keep_months must be an integer >= 1", field="audit_keep_months"
            )
        async with self.executor.transaction() as tx:
            here = Repository(tx)
            if not await here.value(_LOCK):
                return CleanupReport(ran=False, dry_run=dry_run)
            if dry_run:
                partitions: list[str] = []
                if audit_keep_months is not None:
                    rows = await here.many(_EXPIRED_PARTITIONS, keep_months=audit_keep_months)
                    partitions = [row.partition_name for row in rows]
                return CleanupReport(
                    ran=True,
                    dry_run=True,
                    sessions=await _count(here, _COUNT_SESSIONS, older_than_seconds=sessions_s),
                    expired_api_keys=await _count(
                        here, _COUNT_EXPIRED_KEYS, older_than_seconds=expired_s
                    ),
                    revoked_api_keys=await _count(
                        here, _COUNT_REVOKED_KEYS, older_than_seconds=revoked_s
                    ),
                    password_resets=await _count(here, _COUNT_RESETS),
                    email_verifications=await _count(here, _COUNT_VERIFICATIONS),
                    audit_partitions=partitions,
                )
            keys = ApiKeyRepository(tx)
            report = CleanupReport(
                ran=True,
                dry_run=False,
                sessions=await SessionRepository(tx).cleanup_expired(
                    older_than=sessions_s, actor=who
                ),
                revoked_api_keys=await keys.cleanup_revoked(older_than=revoked_s, actor=who),
                expired_api_keys=await keys.cleanup_expired(older_than=expired_s, actor=who),
                password_resets=await _count(here, _DELETE_RESETS),
                email_verifications=await _count(here, _CLEAR_VERIFICATIONS),
                # Last: dropping a partition locks app.audit_log until commit.
                audit_partitions=(
                    []
                    if audit_keep_months is None
                    else await AuditRepository(tx).drop_partitions(keep_months=audit_keep_months)
                ),
            )
        return report


async def _count(repository: Repository, q: Query[int], **params: object) -> int:
    return int(str(await repository.value(q, **params)))
