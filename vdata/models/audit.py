"""Structs of the audit trail: events, daily counts and the chain report."""

from __future__ import annotations

__all__ = [
    "AuditActorCount",
    "AuditDailyCount",
    "AuditEntityTypeCount",
    "AuditEvent",
    "ChainHead",
    "ChainReport",
    "DroppedPartition",
]

import datetime as dt

import msgspec


class AuditEvent(msgspec.Struct, frozen=True):
    """One row of ``app.audit_log``; ``before``/``after`` are JSON text (or None)."""

    id: int
    occurred_at: dt.datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str | None
    before: str | None
    after: str | None
    request_id: str | None
    prev_hash: bytes | None
    row_hash: bytes
    ip: str | None


class AuditDailyCount(msgspec.Struct, frozen=True):
    """How many events of one action happened on one UTC day."""

    action: str
    occurred_on: dt.date
    events: int


class AuditActorCount(msgspec.Struct, frozen=True):
    """How many events one actor caused in a time range, and when the first and last."""

    actor: str
    events: int
    first_at: dt.datetime
    last_at: dt.datetime


class AuditEntityTypeCount(msgspec.Struct, frozen=True):
    """How many events touched one entity type in a time range, by how many actors."""

    entity_type: str
    events: int
    actors: int
    first_at: dt.datetime
    last_at: dt.datetime


class ChainReport(msgspec.Struct, frozen=True):
    """The outcome of re-computing the audit trail's hashes over a range of ids.

    ``ok`` is False when something does not hold; ``broken_id`` is then the
    first row whose hash, link or seal does not hold (for a seal: the first
    id it lists), and ``reason`` says which check failed.
    ``first_id``/``last_id`` bound what was checked; ``genesis`` says the
    range starts at the very first entry (nothing was ever written before
    it), otherwise its start was trusted (retention, or a range that starts
    later). ``unsealed``: rows committed after the newest seal, whose hash
    covers only themselves until the next seal (see docs/audit-chain.md).
    """

    first_id: int | None
    last_id: int | None
    broken_id: int | None
    reason: str | None
    ok: bool
    rows_checked: int
    genesis: bool
    unsealed: int


class DroppedPartition(msgspec.Struct, frozen=True):
    """The name of one audit partition that retention dropped."""

    partition_name: str


class ChainHead(msgspec.Struct, frozen=True):
    """The newest seal (its number and seal_hash): an anchor to keep outside the database.

    An anchor taken before sealing existed names a linked row (its id and
    row_hash) instead; ``verify_chain`` accepts both.
    """

    last_id: int | None
    last_hash: bytes | None


class SealReport(msgspec.Struct, frozen=True):
    """What one run of the sealer did: the new seal's number (None: nothing to seal)."""

    seal_id: int | None
    rows_sealed: int
