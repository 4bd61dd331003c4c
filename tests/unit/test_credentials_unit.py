"""Issued keys and sessions hide their token; the API-key usage buffer, without a server."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

import vdata
from vdata.models.api_keys import ApiKey, IssuedApiKey
from vdata.models.sessions import IssuedSession, Session
from vdata.repositories import _api_key_usage as api_keys_module
from vdata.repositories._api_key_usage import UsageBuffer
from vdata.security.tokens import SecretStr

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "vdk_AbCdEfGh_" + "s" * 43 + "c" * 6


def make_key(**changes: Any) -> ApiKey:
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": uuid.uuid4(),
        "name": "ci",
        "prefix": "AbCdEfGh",
        "scopes": ["read"],
        "expires_at": None,
        "revoked_at": None,
        "last_used_at": None,
        "use_count": 0,
        "rotated_from_id": None,
        "created_at": NOW,
        "created_by": "a",
        "updated_at": NOW,
        "updated_by": "a",
        "version": 1,
    }
    values.update(changes)
    return ApiKey(*values.values())  # positional, as rows are built


def make_session() -> Session:
    return Session(uuid.uuid4(), uuid.uuid4(), None, None, NOW, NOW, None, NOW, "a", NOW, "a", 1)


def test_issued_api_key_hides_the_token_but_gives_it_on_request() -> None:
    issued = IssuedApiKey(make_key(), SecretStr(TOKEN))
    assert issued.token == TOKEN and isinstance(issued.token, str)
    for text in (repr(issued), str(issued), f"{issued}", repr([issued])):
        assert TOKEN not in text and "s" * 10 not in text
        assert "**********" in text and "AbCdEfGh" in text
    with pytest.raises(TypeError):
        msgspec.json.encode(issued)  # not a Struct: cannot be serialised by accident
    with pytest.raises(TypeError):
        hash(issued)
    assert issued == IssuedApiKey(issued.key, SecretStr(TOKEN))
    assert issued != IssuedApiKey(issued.key, SecretStr(TOKEN[:-1] + "d"))


def test_issued_session_hides_the_token() -> None:
    issued = IssuedSession(make_session(), SecretStr("t0k3n" * 9))
    assert issued.token == "t0k3n" * 9
    assert "t0k3n" not in repr(issued) and "t0k3n" not in str(issued)
    assert str(issued.session.id) in repr(issued)


def test_rows_are_frozen_and_hold_no_secret_field() -> None:
    key = make_key()
    with pytest.raises(AttributeError):
        key.name = "other"  # type: ignore[misc]
    for struct in (ApiKey, Session):
        assert not any(
            word in field
            for field in struct.__struct_fields__
            for word in ("hash", "secret", "token")
        )
    assert key.has_scopes(["read"]) and not key.has_scopes(["read", "write"])


class FakeDb:
    """Records batches; fails the next call with *fail* when set."""

    def __init__(self) -> None:
        self.batches: list[tuple[list[uuid.UUID], list[int]]] = []
        self.hooks: list[Callable[[], Awaitable[None]]] = []
        self.fail: vdata.VdataError | None = None

    def add_close_hook(self, hook: Callable[[], Awaitable[None]]) -> None:
        self.hooks.append(hook)

    async def fetchval(self, q: Any, args: Sequence[Any]) -> int:
        if self.fail is not None:
            error, self.fail = self.fail, None
            raise error
        ids, uses = list(args[q.params.index("ids")]), list(args[q.params.index("uses")])
        self.batches.append((ids, uses))
        return len(ids)


def buffer(db: FakeDb) -> UsageBuffer:
    return UsageBuffer(db)  # type: ignore[arg-type]


async def test_usage_buffer_writes_sorted_batches_and_registers_a_close_hook(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api_keys_module, "_BATCH", 2)
    monkeypatch.setattr(api_keys_module, "USAGE_FLUSH_INTERVAL", 3600.0)
    db = FakeDb()
    usage = buffer(db)
    ids = [uuid.uuid4() for _ in range(3)]
    for key_id, n in zip(ids, (3, 1, 2), strict=True):
        for _ in range(n):
            usage.add(key_id)
    assert await usage.flush() == 3
    flat_ids = db.batches[0][0] + db.batches[1][0]
    flat_uses = db.batches[0][1] + db.batches[1][1]
    assert dict(zip(flat_ids, flat_uses, strict=True)) == {ids[0]: 3, ids[1]: 1, ids[2]: 2}
    assert db.batches[0][0] + db.batches[1][0] == sorted(ids)  # one lock order
    assert [len(b[0]) for b in db.batches] == [2, 1]
    assert await usage.flush() == 0
    usage.add(ids[0])
    assert len(db.hooks) == 1
    await db.hooks[0]()  # what Database.close() runs
    assert db.batches[-1] == ([ids[0]], [1])


async def test_a_batch_that_never_left_is_kept_and_one_that_may_have_is_not(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(api_keys_module, "USAGE_FLUSH_INTERVAL", 3600.0)
    db = FakeDb()
    usage = buffer(db)
    key_id = uuid.uuid4()
    usage.add(key_id)
    db.fail = vdata.UnavailableError("breaker open", not_sent=True)
    with pytest.raises(vdata.UnavailableError):
        await usage.flush()
    assert await usage.flush() == 1 and db.batches == [([key_id], [1])]
    usage.add(key_id)
    db.fail = vdata.TransientError("deadlock detected", sqlstate="40P01")  # rolled back
    with pytest.raises(vdata.TransientError):
        await usage.flush()
    assert await usage.flush() == 1 and db.batches[-1] == ([key_id], [1])
    usage.add(key_id)
    db.fail = vdata.TransientError("connection lost", sqlstate="08006")  # in doubt
    with (
        caplog.at_level(logging.WARNING, logger="vdata.api_keys"),
        pytest.raises(vdata.TransientError),
    ):
        await usage.flush()
    assert "may be lost" in caplog.text
    assert await usage.flush() == 0  # not re-queued: it could count twice
    await usage.close()
