"""Read replicas: which reads may leave the primary, and the replicas they go to.

A read may go to a replica when all of these hold:

* it runs on the pool (``db.<area>``), never inside ``db.transaction()``;
* its query only reads (``Query.read_only``);
* it tolerates lag: the query was bound with ``lag_tolerant=True`` (the
  repository declares it: listings, searches, stats), or the caller is
  inside ``with db.reads("tolerant"):``. Inside ``with db.reads("fresh"):``
  nothing goes to a replica;
* some replica is eligible: its monitor saw it as a standby no further
  behind than ``replica_max_lag``, its own breaker admits the call, and it
  has replayed this Database's last write (read-your-writes, below).

Read-your-writes, by WAL position, at no cost per write: a monitor task
reads the primary's WAL position every ``replica_check_interval`` (noting
the time *before* asking), then each replica's replay position. A replica
that has replayed past the position sampled at time *t* holds every write
acknowledged before *t*. The Database notes the time each write (or
transaction) ends; a lag-tolerant read goes to a replica only if that
replica has caught up with a sample taken after the Database's last write.
So for about one check interval plus the replica's lag after a write, this
Database's lag-tolerant reads stay on the primary.

A replica that fails a read is skipped: the read runs on the primary at
once, and the replica's own breaker (never the primary's) counts the failure.
"""

from __future__ import annotations

__all__ = ["Freshness", "Replica", "Replicas", "preference", "reads"]

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

import asyncpg
import msgspec

from vdata.dsn import parse_dsn
from vdata.engine.breaker import CircuitBreaker
from vdata.engine.connect import connector
from vdata.engine.failures import is_availability_failure, is_transient, translate
from vdata.engine.health import BreakerHealth, PoolHealth, ReplicaHealth
from vdata.engine.pool import ConnectionPool
from vdata.errors import UnavailableError, VdataError
from vdata.queries import load

if TYPE_CHECKING:
    from vdata.engine.deadlines import Deadlines
    from vdata.queries import Query
    from vdata.settings import Settings

log = logging.getLogger("vdata.replicas")


class ReplicaStatus(msgspec.Struct, frozen=True):
    """What a replica says of itself: a standby or not, and the WAL it has replayed."""

    in_recovery: bool
    replayed: int | None


_STATUS = load().bind("replication.get_replica_status", ReplicaStatus, entity="replica status")
_POSITION = load().bind("replication.get_wal_position", int, entity="WAL position")

Freshness = Literal["fresh", "tolerant"]

_PREFERENCE: contextvars.ContextVar[Freshness | None] = contextvars.ContextVar(
    "vdata_read_freshness", default=None
)


def preference() -> Freshness | None:
    """Return what the caller asked for around this read (None: the query decides)."""
    return _PREFERENCE.get()


@contextlib.contextmanager
def reads(freshness: Freshness) -> Iterator[None]:
    """``with reads("fresh")`` / ``with reads("tolerant")``: route this task's reads so."""
    if freshness not in ("fresh", "tolerant"):
        raise ValueError(f"freshness must be 'fresh' or 'tolerant', not {freshness!r}")
    token = _PREFERENCE.set(freshness)
    try:
        yield
    finally:
        _PREFERENCE.reset(token)


class Replica:
    """One streaming standby: its pool, its breaker, and what the monitor last saw."""

    def __init__(self, name: str, pool: ConnectionPool, breaker: CircuitBreaker) -> None:
        self.name = name
        self.pool = pool
        self.breaker = breaker
        self.state = "unknown"  # ok, lagging, down, not_standby, unknown
        self.lag: float | None = None
        self.replayed: int | None = None
        self.caught_up_at = float("-inf")  # monotonic time of the last primary sample it passed
        self.error: str | None = None
        self.reads = 0
        self.fallbacks = 0

    def __repr__(self) -> str:
        return f"<vdata.Replica {self.name} {self.state} lag={self.lag}>"

    def health(self) -> ReplicaHealth:
        snap = self.breaker.snapshot()
        size, idle = self.pool.get_size(), self.pool.get_idle_size()
        return ReplicaHealth(
            name=self.name,
            state=self.state,
            lag_seconds=self.lag,
            replayed_lsn=self.replayed,
            error=self.error,
            reads=self.reads,
            fallbacks=self.fallbacks,
            pool=PoolHealth(
                size=size,
                min_size=self.pool.get_min_size(),
                max_size=self.pool.get_max_size(),
                idle=idle,
                in_use=size - idle,
            ),
            breaker=BreakerHealth(
                state=str(snap.state),
                consecutive_failures=snap.consecutive_failures,
                times_opened=snap.times_opened,
                last_failure_kind=snap.last_failure_kind,
            ),
        )


def _name(dsn: str) -> str:
    """host:port of a replica DSN, for health and logs (never its password)."""
    params = parse_dsn(dsn).params
    return f"{params.get('host', 'localhost')}:{params.get('port', '5432')}"


class Replicas:
    """The replicas of one Database, a monitor task keeping their state, and the routing."""

    def __init__(
        self, settings: Settings, primary: ConnectionPool, replicas: Sequence[Replica]
    ) -> None:
        self.replicas = list(replicas)
        self._primary = primary
        self._max_lag = settings.replica_max_lag
        self._interval = settings.replica_check_interval
        self._acquire_timeout = settings.acquire_timeout
        self._timeout = max(settings.connect_timeout, settings.replica_check_interval)
        self._next = 0
        self._closed = False
        self._checked = asyncio.Event()
        self._monitor: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, settings: Settings, primary: ConnectionPool) -> Replicas:
        """Make a pool and a breaker per replica DSN and start the monitor (no connection yet)."""
        made = []
        for dsn in settings.replica_dsns:
            own = settings.replace(dsn=dsn)
            pool = ConnectionPool(
                connector(own),
                min_size=0,
                max_size=settings.pool_max_size,
                reset_timeout=settings.command_timeout,
                max_inactive=settings.max_inactive_connection_lifetime,
            )
            breaker = CircuitBreaker(
                failure_threshold=settings.breaker_failure_threshold,
                cooldown=settings.breaker_cooldown,
                min_cooldown=settings.breaker_min_cooldown,
                jitter=settings.breaker_cooldown_jitter,
                half_open_max_calls=settings.breaker_half_open_max_calls,
            )
            made.append(Replica(_name(dsn), pool, breaker))
        replicas = cls(settings, primary, made)
        replicas._monitor = asyncio.get_running_loop().create_task(
            replicas._watch(), name="vdata replica monitor"
        )
        return replicas

    # -- routing -------------------------------------------------------------

    def pick(self, last_write: float) -> Replica | None:
        """Return the next eligible replica (round robin), or None: read on the primary.

        Eligible: seen as a standby within the lag bound, caught up with a
        primary position sampled after *last_write*, its breaker closed.
        """
        replicas = self.replicas
        count = len(replicas)
        for step in range(count):
            replica = replicas[(self._next + step) % count]
            if (
                replica.state == "ok"
                and replica.caught_up_at >= last_write
                and replica.breaker.admits()  # open: skipped until its cooldown is over
            ):
                self._next = (self._next + step + 1) % count
                return replica
        return None

    async def run(
        self,
        replica: Replica,
        q: Query[Any],
        method: Callable[..., Awaitable[Any]],
        args: Sequence[object],
        deadlines: Deadlines,
    ) -> Any:
        """Run *q* on *replica*; raise a vdata error (the caller falls back to the primary)."""
        breaker = replica.breaker
        breaker.before_call()
        pool = replica.pool
        conn = pool.try_acquire()
        if conn is None:
            try:
                conn = await pool.acquire(self._acquire_timeout)
            except BaseException as exc:
                error = (
                    translate(exc, query=q.name, stage="acquire")
                    if isinstance(exc, Exception)
                    else exc
                )
                breaker.on_failure(error)
                raise error from exc
        deadlines.start(conn)
        try:
            result = await method(conn, q.sql, *args)
        except BaseException as caught:
            deadlines.stop(conn)
            cause = deadlines.explain(conn, caught)
            if isinstance(cause, asyncpg.exceptions.InternalClientError):
                conn.terminate()
            pool.release_dirty(conn)
            if not isinstance(cause, Exception):
                breaker.on_failure(cause)
                raise cause from None
            error = translate(cause, query=q.name)
            breaker.on_failure(error)
            raise error from cause
        deadlines.stop(conn)
        pool.release(conn)
        breaker.on_success()
        replica.reads += 1
        return result

    @staticmethod
    def falls_back(error: VdataError) -> bool:
        """Return True if a read that failed on a replica should run on the primary instead.

        The replica could not serve it (down, refused, no reply, a recovery
        conflict, its breaker open), or refused it as a write (25006: a
        SELECT that calls a writing function; refused, so never run); a
        business error or a bug would fail on the primary too, and is raised.
        """
        return (
            error.sqlstate == "25006"
            or isinstance(error, UnavailableError)
            or is_transient(error)
            or is_availability_failure(error)
        )

    # -- the monitor -----------------------------------------------------------

    async def wait_checked(self, timeout: float) -> None:
        """Wait until the monitor has looked at every replica once (tests, start-up)."""
        async with asyncio.timeout(timeout):
            await self._checked.wait()

    async def check(self) -> None:
        """Sample the primary's WAL position, then each replica's replay position and state."""
        sampled_at = time.monotonic()  # before asking: writes acknowledged earlier are included
        position: int | None = None
        try:
            async with asyncio.timeout(self._timeout), self._primary.connection() as conn:
                position = int(await conn.fetchval(_POSITION.sql))
        except Exception as exc:  # the primary is down or not a primary: no yardstick
            log.debug("replica monitor: no WAL position from the primary (%s)", type(exc).__name__)
        await asyncio.gather(*(self._check_one(r, position, sampled_at) for r in self.replicas))
        self._checked.set()

    async def _check_one(self, replica: Replica, position: int | None, sampled_at: float) -> None:
        try:
            async with asyncio.timeout(self._timeout), replica.pool.connection() as conn:
                row = await conn.fetchrow(_STATUS.sql)
        except Exception as exc:
            replica.state = "down"
            replica.error = f"{type(exc).__name__}: {translate(exc, stage='connect')}"
            return
        replica.error = None
        assert row is not None  # one row, always
        status = ReplicaStatus(*row[:])
        if not status.in_recovery:
            replica.state = "not_standby"  # promoted, or a primary listed by mistake
            return
        replica.replayed = status.replayed
        if position is not None and replica.replayed is not None:
            if replica.replayed >= position:
                replica.caught_up_at = sampled_at
            if replica.caught_up_at == float("-inf"):
                replica.state = "lagging"  # not once caught up since vdata started watching
                replica.lag = None
                return
            replica.lag = max(0.0, sampled_at - replica.caught_up_at)
        if replica.lag is None:
            replica.state = "unknown"  # never compared with the primary yet
        elif replica.lag > self._max_lag:
            replica.state = "lagging"
        else:
            replica.state = "ok"

    async def _watch(self) -> None:
        while not self._closed:
            try:
                await self.check()
            except Exception:  # never let the monitor die; the next round tries again
                log.exception("replica monitor: check failed")
            await asyncio.sleep(self._interval)

    # -- health and closing ----------------------------------------------------

    def health(self) -> list[ReplicaHealth]:
        """Return each replica's state, lag, breaker and pool."""
        return [replica.health() for replica in self.replicas]

    async def close(self, timeout: float) -> None:
        """Stop the monitor and close every replica's pool."""
        self._closed = True
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        await asyncio.gather(*(r.pool.close(timeout) for r in self.replicas))
