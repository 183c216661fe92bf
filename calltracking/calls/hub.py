"""Live call events, fanned out: progress from the AMI dispatcher and completed calls from the call log
reach subscribers such as WebSocket clients and, behind them, async handlers (in order, off the
dispatcher).

`publish` never blocks: the AMI dispatcher and the call writer must not wait for a slow consumer. The
hub's own queue is bounded (`capacity`): when it is full the newest event is dropped, logged and counted
(`on_dropped`), so a stuck consumer can never grow the service's memory. A subscriber that falls behind
loses its oldest events and is told so (`Subscription.overflowed`).

An event goes to the subscribers as soon as it and the earlier events of its call are ready, never
behind another call's: a ringing from a known number, an answer, a completion go out at once, while a
ringing whose caller's CRM entity is being looked up waits for that lookup only (and holds back the later
events of its own call, so a call's ringing still comes before its answer before its completion).
An event the enricher can complete without waiting (`BatchEnricher.at_once`: nothing to look up, a
number looked up seconds ago) is ready when published. The others start their enrichment the moment
they are published, on the next turn of the event loop, so that all published until then are enriched
together (the enricher looks up their numbers in one query); up to `ENRICHING_AT_ONCE` enrichments run
at once, so a slow lookup delays the events that need it, not the next ones.

The handlers run in their own task and see every event, enriched, in the order it was published: a slow
handler (a database write) therefore never delays a screen pop. Enrichment is skipped for an event
nobody would read it in: no subscriber, and no handler that asked for it (`enriched_for`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import structlog

from calltracking.calls.record import CallCompleted, LiveEvent

log = structlog.get_logger(__name__)

Handler = Callable[[LiveEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[LiveEvent]], Awaitable[None]]
# Adds what the PBX does not know (the caller's CRM entity) to a batch of events, in their order.
Enricher = Callable[[Sequence[LiveEvent]], Awaitable[list[LiveEvent]]]
EventFilter = Callable[[LiveEvent], bool]


class BatchEnricher:
    """An enricher that can also say, without waiting, what it would make of one event: the hub sends
    such an event on at once instead of enriching it with the others (`at_once` returns None when the
    event needs the batch, e.g. a lookup)."""

    def __init__(self, enrich: Enricher, at_once: Callable[[LiveEvent], LiveEvent | None]) -> None:
        self._enrich = enrich
        self.at_once = at_once

    async def __call__(self, events: Sequence[LiveEvent]) -> list[LiveEvent]:
        return await self._enrich(events)


SUBSCRIBER_BACKLOG = 1000
HUB_CAPACITY = 10_000
MAX_BATCH = 500
# Enrichments (lookups) in flight at once; the events arriving meanwhile are enriched together next.
ENRICHING_AT_ONCE = 8  # the lookup pool has 10 connections: 2 stay for the dialplan
DROP_LOG_INTERVAL_SECONDS = 1.0


CallKey = tuple[str, str]


class _Pending:
    """A published event, until it is enriched (when it needs to be) and through the handlers."""

    __slots__ = ("call", "event", "ready", "waiter")

    def __init__(self, event: LiveEvent, call: CallKey, ready: bool) -> None:
        self.event = event
        self.call = call
        self.ready = ready
        self.waiter: asyncio.Future[None] | None = None  # made only when a handler waits for it

    def settle(self, event: LiveEvent) -> None:
        self.event = event
        self.ready = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self) -> LiveEvent:
        if not self.ready:
            if self.waiter is None:
                self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        return self.event


def _call_of(event: LiveEvent) -> CallKey:
    if isinstance(event, CallCompleted):
        return (event.call.pbx, event.call.pbx_call_id)
    return (event.pbx, event.pbx_call_id)


class Subscription:
    def __init__(self, hub: CallEventHub, backlog: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=backlog)
        self.dropped = 0
        # Set the first time the backlog was full: the consumer reads too slowly to keep up.
        self.overflowed = asyncio.Event()

    def offer(self, event: LiveEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            self.overflowed.set()
        self._queue.put_nowait(event)

    async def next(self) -> LiveEvent:
        return await self._queue.get()

    def close(self) -> None:
        self._hub._subscribers.discard(self)


class CallEventHub:
    def __init__(
        self,
        enrich: Enricher | None = None,
        *,
        capacity: int = HUB_CAPACITY,
        on_dropped: Callable[[LiveEvent], None] | None = None,
    ) -> None:
        self._enrich = enrich
        # The events published and not yet through the handlers: when handlers stall it fills, and the
        # newest events are dropped, never memory.
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=capacity)
        # Per call, its events published but not yet delivered to the subscribers, in order.
        self._undelivered: dict[CallKey, collections.deque[_Pending]] = {}
        # Events waiting for an enrichment to start; the enrichments started (one may not have taken its
        # events yet: those published until it runs join it).
        self._to_enrich: list[_Pending] = []
        self._enriching = 0
        self._enrichment_starting = False
        self._tasks: asyncio.TaskGroup | None = None
        self._handlers: list[Handler] = []
        self._batch_handlers: list[BatchHandler] = []
        self._enriched_for: list[EventFilter] = []
        self._subscribers: set[Subscription] = set()
        self._on_dropped = on_dropped
        self._unfinished = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0
        self._last_drop_log = -DROP_LOG_INTERVAL_SECONDS

    def add_handler(self, handler: Handler) -> None:
        """A handler called once per event, in order."""
        self._handlers.append(handler)

    def add_batch_handler(self, handler: BatchHandler, *, enriched_for: EventFilter | None = None) -> None:
        """A handler called with the events that arrived together (e.g. to write them in one
        transaction), in order. `enriched_for` names the events it reads the enrichment of."""
        self._batch_handlers.append(handler)
        if enriched_for is not None:
            self._enriched_for.append(enriched_for)

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: LiveEvent) -> None:
        if self._queue.full():
            self._drop(event)
            return
        self._unfinished += 1
        self._idle.clear()
        wanted = self._enrich is not None and self._needs_enrichment(event)
        if wanted and isinstance(self._enrich, BatchEnricher):
            enriched = self._enrich.at_once(event)
            if enriched is not None:
                event, wanted = enriched, False
        pending = _Pending(event, _call_of(event), ready=not wanted)
        self._queue.put_nowait(pending)
        waiting = self._undelivered.get(pending.call)
        if wanted:
            self._to_enrich.append(pending)
            self._start_enrichment()
            self._undelivered.setdefault(pending.call, collections.deque()).append(pending)
        elif waiting:  # behind an earlier event of its call, still being enriched
            waiting.append(pending)
        else:
            self._offer(event)

    def _drop(self, event: LiveEvent) -> None:
        self.dropped += 1
        if self._on_dropped is not None:
            self._on_dropped(event)
        now = time.monotonic()
        if now - self._last_drop_log >= DROP_LOG_INTERVAL_SECONDS:
            self._last_drop_log = now
            log.warning(
                "call_event_dropped",
                event_kind=type(event).__name__,
                dropped_total=self.dropped,
                capacity=self._queue.maxsize,
            )

    @contextlib.contextmanager
    def subscription(self, backlog: int = SUBSCRIBER_BACKLOG) -> Iterator[Subscription]:
        subscription = Subscription(self, backlog)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            try:
                self._start_enrichment()  # what was published before
                await self._run_handlers()
            finally:
                self._tasks = None

    def _start_enrichment(self) -> None:
        if (
            self._tasks is not None
            and self._to_enrich
            and not self._enrichment_starting
            and self._enriching < ENRICHING_AT_ONCE
        ):
            self._enriching += 1
            self._enrichment_starting = True
            self._tasks.create_task(self._enrich_then_deliver())

    async def _enrich_then_deliver(self) -> None:
        # Runs from the next turn of the event loop: everything published until then is enriched together.
        self._enrichment_starting = False
        batch, self._to_enrich = self._to_enrich, []
        # Completed calls (their entity read back with the call) apart from the live events (a caller
        # lookup): a screen pop never waits for the call log's database, nor a completion for a lookup.
        completed = [pending for pending in batch if isinstance(pending.event, CallCompleted)]
        live = [pending for pending in batch if not isinstance(pending.event, CallCompleted)]
        try:
            await asyncio.gather(*(self._enrich_some(part) for part in (completed, live) if part))
        finally:
            self._enriching -= 1
        self._start_enrichment()  # what was published meanwhile

    async def _enrich_some(self, batch: list[_Pending]) -> None:
        assert self._enrich is not None
        events = [pending.event for pending in batch]
        try:
            events = await self._enrich(events)
        except Exception:  # the events still go out, without what could not be added
            log.exception("call_event_enrich_failed", events=len(batch))
        for pending, event in zip(batch, events, strict=True):
            pending.settle(event)
        for call in dict.fromkeys(pending.call for pending in batch):
            self._deliver(call)

    def _deliver(self, call: CallKey) -> None:
        """Hands the subscribers the call's ready events, up to the first one still being enriched."""
        waiting = self._undelivered.get(call)
        while waiting and waiting[0].ready:
            self._offer(waiting.popleft().event)
        if not waiting:
            self._undelivered.pop(call, None)

    def _offer(self, event: LiveEvent) -> None:
        for subscriber in list(self._subscribers):
            subscriber.offer(event)

    async def _next_batch(self) -> list[_Pending]:
        batch = [await self._queue.get()]
        while len(batch) < MAX_BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def _needs_enrichment(self, event: LiveEvent) -> bool:
        return bool(self._subscribers) or any(wants(event) for wants in self._enriched_for)

    async def _run_handlers(self) -> None:
        while True:
            batch = [await pending.wait() for pending in await self._next_batch()]
            for event in batch:
                for handler in self._handlers:
                    try:
                        await handler(event)
                    except Exception:  # one consumer's failure must not stop the others, or the hub
                        log.exception("call_event_handler_failed", event_kind=type(event).__name__)
            for batch_handler in self._batch_handlers:
                try:
                    await batch_handler(batch)
                except Exception:
                    log.exception("call_event_handler_failed", events=len(batch))
            self._unfinished -= len(batch)
            if self._unfinished == 0:
                self._idle.set()

    async def drain(self) -> None:
        """Wait until everything published so far went through the handlers (tests, shutdown)."""
        await self._idle.wait()
