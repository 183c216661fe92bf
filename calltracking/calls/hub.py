"""Live call events, fanned out: progress from the AMI dispatcher and completed calls from the call log
reach async handlers (in order, off the dispatcher) and subscribers such as WebSocket clients.

`publish` never blocks: the AMI dispatcher and the call writer must not wait for a slow consumer. A
subscriber that falls behind loses its oldest events, never the service's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

import structlog

from calltracking.calls.record import LiveEvent

log = structlog.get_logger(__name__)

Handler = Callable[[LiveEvent], Awaitable[None]]
Enricher = Callable[[LiveEvent], Awaitable[LiveEvent]]
SUBSCRIBER_BACKLOG = 1000


class Subscription:
    def __init__(self, hub: CallEventHub, backlog: int) -> None:
        self._hub = hub
        self._queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize=backlog)
        self.dropped = 0

    def offer(self, event: LiveEvent) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def next(self) -> LiveEvent:
        return await self._queue.get()

    def close(self) -> None:
        self._hub._subscribers.discard(self)


class CallEventHub:
    def __init__(self, enrich: Enricher | None = None) -> None:
        # Adds what the PBX does not know (the caller's CRM entity) before anyone hears of the event.
        self._enrich = enrich
        self._queue: asyncio.Queue[LiveEvent] = asyncio.Queue()
        self._handlers: list[Handler] = []
        self._subscribers: set[Subscription] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def publish(self, event: LiveEvent) -> None:
        self._idle.clear()
        self._queue.put_nowait(event)

    @contextlib.contextmanager
    def subscription(self, backlog: int = SUBSCRIBER_BACKLOG) -> Iterator[Subscription]:
        subscription = Subscription(self, backlog)
        self._subscribers.add(subscription)
        try:
            yield subscription
        finally:
            subscription.close()

    async def run(self) -> None:
        while True:
            event = await self._queue.get()
            if self._enrich is not None:
                try:
                    event = await self._enrich(event)
                except Exception:  # the event still goes out, without what could not be added
                    log.exception("call_event_enrich_failed", event=type(event).__name__)
            for handler in self._handlers:
                try:
                    await handler(event)
                except Exception:  # one consumer's failure must not stop the others, or the hub
                    log.exception("call_event_handler_failed", event=type(event).__name__)
            for subscriber in list(self._subscribers):
                subscriber.offer(event)
            if self._queue.empty():
                self._idle.set()

    async def drain(self) -> None:
        """Wait until everything published so far went through the handlers (tests, shutdown)."""
        await self._idle.wait()
