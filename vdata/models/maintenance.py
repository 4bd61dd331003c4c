"""Cleanup: what one run deleted (or, dry, would delete)."""

from __future__ import annotations

__all__ = ["CleanupReport"]

import msgspec


class CleanupReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of one cleanup run.

    ``ran`` is False when another run held the cleanup lock: this one then
    did nothing (every count is 0). With ``dry_run`` the counts are what a
    real run would delete, and nothing was deleted. ``audit_partitions``
    names the monthly audit partitions dropped (or to drop); it is empty
    unless a retention in months was given.
    """

    ran: bool
    dry_run: bool
    sessions: int = 0
    expired_api_keys: int = 0
    revoked_api_keys: int = 0
    password_resets: int = 0
    email_verifications: int = 0
    audit_partitions: list[str] = msgspec.field(default_factory=list)
