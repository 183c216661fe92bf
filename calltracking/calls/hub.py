"""Live call events, fanned out: progress from the AMI dispatcher and completed calls from the call log
reach subscribers such as WebSocket clients and, behind them, async handlers (in order, off the
dispatcher).

`publish` never blocks: the AMI dispatcher and the call writer must not wait for a slow consumer. The
hub's own queue is bounded (`capacity`): when it is full the newest event is dropped, logged and counted
(`on_dropped`), so a stuck consumer can never grow the service's memory. A subscriber that falls behind
loses its oldest events and is told so (`Subscription.overflowed`).

The hub takes whatever is queued as one batch: the batch is enriched in one go (the enricher may look
up several numbers at once), handed to every subscriber at once, then queued for the handlers, which
run in their own task. A slow handler (a database write) therefore never delays a screen pop, and the
handlers still see every event in the order it was published (a call's ringing before its answer
before its completion). Enrichment is skipped for an event nobody would read it in: no subscriber, and
no handler that asked for it (`enriched_for`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

import structlog

from calltracking.calls.record import LiveEvent

log = structlog.get_logger(__name__)

Handler = Callable[[LiveEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[LiveEvent]], Awaitable[None]]
# Adds what the PBX does not know (the caller's CRM entity) to a batch of events, in their order.
Enricher = Callable[[Sequence[LiveEvent]], Awaitable[list[LiveEvent]]]
EventFilter = Callable[[LiveEvent], bool]

SUBSCRIBER_BACKLOG = 1000
HUB_CAPACITY = 10_000
MAX_BATCH = 500
DROP_LOG_INTERVAL_SECONDS = 1.0


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
        self._queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=capacity)
        # Events enriched and sent to subscribers, waiting for the handlers. Bounded like the queue: when
        # handlers stall, the hub waits for them and its own queue fills (and drops), never memory.
        self._handled: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=capacity)
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
        self._queue.put_nowait(event)

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
            tasks.create_task(self._run_handlers())
            while True:
                batch = await self._next_batch(self._queue)
                for event in await self._enriched(batch):
                    for subscriber in list(self._subscribers):
                        subscriber.offer(event)
                    await self._handled.put(event)

    async def _next_batch(self, queue: asyncio.Queue[LiveEvent]) -> list[LiveEvent]:
        batch = [await queue.get()]
        while len(batch) < MAX_BATCH and not queue.empty():
            batch.append(queue.get_nowait())
        return batch

    async def _enriched(self, batch: list[LiveEvent]) -> list[LiveEvent]:
        if self._enrich is None:
            return batch
        wanted = [i for i, event in enumerate(batch) if self._needs_enrichment(event)]
        if not wanted:
            return batch
        try:
            enriched = await self._enrich([batch[i] for i in wanted])
        except Exception:  # the events still go out, without what could not be added
            log.exception("call_event_enrich_failed", events=len(wanted))
            return batch
        result = list(batch)
        for i, event in zip(wanted, enriched, strict=True):
            result[i] = event
        return result

    def _needs_enrichment(self, event: LiveEvent) -> bool:
        return bool(self._subscribers) or any(wants(event) for wants in self._enriched_for)

    async def _run_handlers(self) -> None:
        while True:
            batch = await self._next_batch(self._handled)
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
