"""The call log service: completed calls go to the spool, then to the database, in order, once.

`submit` journals the call before it returns (one `write()` to the open journal, no fsync), so the AMI
dispatcher hands a call over between two frames and no completed call ever waits in memory: the spool
is the queue, and a kill of the process at any moment finds every submitted call in it. A single writer
task then does the slow part: one fsync for everything journaled since the last (a group commit, in a
worker thread), then the upserts of the spool's pending entries. When the database is down it keeps
the calls journaled and retries with backoff, and on start it first writes whatever a previous process
left in the spool.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence

import structlog
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallRecord
from calltracking.calls.repository import save_calls
from calltracking.calls.spool import CallSpool, SpoolEntry
from calltracking.config import DatabaseSettings
from calltracking.errors import CallNotJournaled

log = structlog.get_logger(__name__)

# Run inside the transaction, before the calls are written: returns them with what it adds (call tracking's
# attribution), in the same order.
Enricher = Callable[[AsyncSession, Sequence[CallRecord]], Awaitable[Sequence[CallRecord]]]
# Run inside the transaction that writes the calls (so what they write commits with the calls, or not at all).
StoredHook = Callable[[AsyncSession, Sequence[CallRecord], Sequence[int]], Awaitable[None]]
# Told after the commit (real-time notifications); must not block.
CommitObserver = Callable[[Sequence[CallRecord], Sequence[int]], None]
Preparation = Callable[[], Awaitable[None]]


class CallLog:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        spool: CallSpool,
        settings: DatabaseSettings,
        prepare: Preparation | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._spool = spool
        self._settings = settings
        self._enrichers: list[Enricher] = []
        self._stored_hooks: list[StoredHook] = []
        self._commit_observers: list[CommitObserver] = []
        # Run at start and retried like any write until it succeeds (the schema migration): a database
        # that is down at start delays the writes, never the spooling.
        self._prepare = prepare
        # Set when a call is journaled: wakes the writer.
        self._journaled = asyncio.Event()
        self._retry_delay = settings.retry_initial_seconds
        self._retry_at = 0.0
        self._failures = 0
        self._idle = asyncio.Event()
        self._update_idle()
        # Set once the schema is up to date: workers that read the database start after it.
        self.migrated = asyncio.Event()
        if prepare is None:
            self.migrated.set()
        self.stored_total = 0

    @property
    def spool_depth(self) -> int:
        """Calls accepted (journaled) but not yet in the database."""
        return self._spool.pending_count

    @property
    def is_database_up(self) -> bool:
        return self._failures == 0 and self._prepare is None

    def add_enricher(self, enricher: Enricher) -> None:
        self._enrichers.append(enricher)

    def add_stored_hook(self, hook: StoredHook) -> None:
        self._stored_hooks.append(hook)

    def add_commit_observer(self, observer: CommitObserver) -> None:
        self._commit_observers.append(observer)

    def submit(self, call: CallRecord) -> None:
        """Journal a completed call before returning: a kill from then on cannot lose it. Raises
        CallNotJournaled if the journal cannot be written (the caller still holds the call)."""
        try:
            self._spool.append(call)
        except OSError as exc:
            raise CallNotJournaled(f"call {call.pbx_call_id} not journaled: {exc}") from exc
        self._idle.clear()
        self._journaled.set()

    async def flush(self) -> None:
        """Wait until the database is ready and holds every submitted call."""
        await self._idle.wait()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wait_for_work(loop)
            if not self._spool.is_synced:
                await asyncio.to_thread(self._spool.sync)
            if (self._spool.pending_count or self._prepare is not None) and loop.time() >= self._retry_at:
                await self._write_pending(loop)
            self._update_idle()

    async def _wait_for_work(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until a call is journaled, or a retry of the database is due."""
        self._journaled.clear()
        if not self._spool.is_synced:
            return
        timeout = None
        if self._spool.pending_count or self._prepare is not None:
            timeout = self._retry_at - loop.time()
            if timeout <= 0:
                return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._journaled.wait(), timeout)

    async def _write_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        size = self._settings.batch_size
        try:
            if self._prepare is not None:
                await self._prepare()
                self._prepare = None
                self.migrated.set()
                log.info("database_ready")
            while chunk := self._spool.oldest(batch_size(self._spool.pending_count, size)):
                if not self._spool.is_synced:
                    # Calls journaled while the last chunk was written: fsync'd before the database sees them.
                    await asyncio.to_thread(self._spool.sync)
                try:
                    await self._write(chunk)
                except (DataError, IntegrityError) as exc:
                    # The database refuses this data, not the connection: find the record, set it aside.
                    await self._isolate(chunk, exc)
        except Exception as exc:  # the database is a remote boundary: anything may come back
            self._failures += 1
            self._retry_at = loop.time() + self._retry_delay
            log.warning(
                "database_write_failed",
                error=_describe(exc),
                spool_depth=self.spool_depth,
                retry_in_seconds=self._retry_delay,
                attempt=self._failures,
            )
            self._retry_delay = min(self._retry_delay * 2, self._settings.retry_max_seconds)
            return
        if self._failures:
            log.info("database_write_recovered", after_attempts=self._failures)
        self._failures = 0
        self._retry_delay = self._settings.retry_initial_seconds

    async def _isolate(self, chunk: list[SpoolEntry], exc: Exception) -> None:
        if len(chunk) == 1:
            await asyncio.to_thread(self._spool.reject, chunk[0], _describe(exc))
            await asyncio.to_thread(self._spool.ack, chunk[0].seq)
            return
        for entry in chunk:
            try:
                await self._write([entry])
            except (DataError, IntegrityError) as single:
                await self._isolate([entry], single)

    async def _write(self, chunk: list[SpoolEntry]) -> None:
        calls: Sequence[CallRecord] = [entry.call for entry in chunk]
        async with self._sessionmaker.begin() as session:
            for enrich in self._enrichers:
                calls = await enrich(session, calls)
            ids = await save_calls(session, calls)
            for hook in self._stored_hooks:
                await hook(session, calls, ids)
        await asyncio.to_thread(self._spool.ack, chunk[-1].seq)
        self.stored_total += len(chunk)
        for call, call_id in zip(calls, ids, strict=True):
            log.info(
                "call_logged",
                pbx=call.pbx,
                call_id=call_id,
                pbx_call_id=call.pbx_call_id,
                direction=call.direction.value,
                status=call.status.value,
                reconciled=call.reconciled,
            )
        for observer in self._commit_observers:
            try:
                observer(calls, ids)
            except Exception:  # a notification must not undo a durable write
                log.exception("call_commit_observer_failed")

    def _update_idle(self) -> None:
        if not self._spool.pending_count and self._prepare is None:
            self._idle.set()
        else:
            self._idle.clear()


def batch_size(pending: int, limit: int) -> int:
    """How many of the pending calls one transaction writes: `limit`, or the largest power of two not above
    `pending`. Every distinct batch size is a distinct statement (a VALUES or IN list as long as the batch)
    that the drivers keep prepared, SQLite 128 and asyncpg 100 per connection, hundreds of KB each for a
    large batch: batches of any size filled those caches (bench/README.md "memory.py"). A dozen sizes keep
    them small, for a few more transactions when a backlog is written (n calls take popcount(n) of them)."""
    if pending >= limit:
        return limit
    return 1 << max(0, pending.bit_length() - 1)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
