"""The live events hub: bounded, batched, a call's events in order, slow handlers off the screen pop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from calltracking.calls.hub import BatchEnricher, CallEventHub
from calltracking.calls.record import (
    CallCompleted,
    CallProgress,
    Direction,
    EntityKind,
    EntityRef,
    LiveEvent,
    ProgressKind,
)
from tests.helpers.factories import make_call

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ENTITY = EntityRef(1, EntityKind.CONTACT, "c-1", "Ivan")


def progress(call: str, kind: ProgressKind = ProgressKind.RINGING) -> CallProgress:
    return CallProgress(
        kind=kind,
        pbx="office",
        pbx_call_id=call,
        at=AT,
        direction=Direction.INBOUND,
        caller=f"+7916{call}",
        callee="101",
        extension="101",
    )


async def test_a_full_hub_drops_the_newest_events_and_counts_them() -> None:
    dropped: list[LiveEvent] = []
    hub = CallEventHub(capacity=3, on_dropped=dropped.append)
    seen: list[str] = []

    async def handler(event: LiveEvent) -> None:
        assert isinstance(event, CallProgress)
        seen.append(event.pbx_call_id)

    hub.add_handler(handler)
    for n in range(5):
        hub.publish(progress(str(n)))
    runner = asyncio.create_task(hub.run())
    try:
        await hub.drain()
    finally:
        runner.cancel()
    assert (seen, hub.dropped, [e.pbx_call_id for e in dropped if isinstance(e, CallProgress)]) == (
        ["0", "1", "2"],
        2,
        ["3", "4"],
    )


async def test_each_call_keeps_its_order_through_a_slow_enricher() -> None:
    async def enrich(events: Sequence[LiveEvent]) -> list[LiveEvent]:
        await asyncio.sleep(0)  # batches interleave with publishing
        return [replace(event, entity=ENTITY) for event in events]

    hub = CallEventHub(enrich=enrich)
    handled: list[tuple[str, ProgressKind]] = []

    async def handler(event: LiveEvent) -> None:
        assert isinstance(event, CallProgress)
        handled.append((event.pbx_call_id, event.kind))

    hub.add_handler(handler)
    runner = asyncio.create_task(hub.run())
    published: list[tuple[str, ProgressKind]] = []
    try:
        with hub.subscription() as subscription:
            for kind in (ProgressKind.RINGING, ProgressKind.ANSWERED, ProgressKind.DIALING_CUSTOMER):
                for call in ("a", "b", "c"):
                    hub.publish(progress(call, kind))
                    published.append((call, kind))
                    await asyncio.sleep(0)
            received = [await subscription.next() for _ in published]
            await hub.drain()
    finally:
        runner.cancel()
    assert [(e.pbx_call_id, e.kind) for e in received if isinstance(e, CallProgress)] == published
    assert handled == published
    assert all(isinstance(e, CallProgress) and e.entity == ENTITY for e in received)


async def test_a_stuck_handler_does_not_hold_back_subscribers() -> None:
    release = asyncio.Event()

    async def stuck(_events: Sequence[LiveEvent]) -> None:
        await release.wait()

    hub = CallEventHub()
    hub.add_batch_handler(stuck)
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription() as subscription:
            for n in range(20):
                hub.publish(progress(str(n)))
                await asyncio.sleep(0)
            received = [await subscription.next() for _ in range(20)]
        release.set()
        await hub.drain()
    finally:
        runner.cancel()
    assert [e.pbx_call_id for e in received if isinstance(e, CallProgress)] == [str(n) for n in range(20)]


async def test_no_enrichment_when_nobody_listens() -> None:
    enriched: list[LiveEvent] = []

    async def enrich(events: Sequence[LiveEvent]) -> list[LiveEvent]:
        enriched.extend(events)
        return list(events)

    hub = CallEventHub(enrich=enrich)
    webhook_wanted = progress("w")

    async def nothing(_events: Sequence[LiveEvent]) -> None:
        return None

    hub.add_batch_handler(nothing, enriched_for=lambda event: event == webhook_wanted)
    runner = asyncio.create_task(hub.run())
    try:
        hub.publish(progress("x"))
        hub.publish(webhook_wanted)
        await hub.drain()
    finally:
        runner.cancel()
    assert enriched == [webhook_wanted]


async def test_a_subscriber_that_falls_behind_is_told() -> None:
    hub = CallEventHub()
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription(backlog=2) as subscription:
            for n in range(3):
                hub.publish(progress(str(n)))
            await hub.drain()
            assert subscription.overflowed.is_set() and subscription.dropped == 1
    finally:
        runner.cancel()


def slow_for(call: str, release: asyncio.Event) -> BatchEnricher:
    """Looks up the caller of `call` until released; every other event needs no lookup."""

    async def enrich(events: Sequence[LiveEvent]) -> list[LiveEvent]:
        await release.wait()
        return [replace(event, entity=ENTITY) for event in events]

    def at_once(event: LiveEvent) -> LiveEvent | None:
        if isinstance(event, CallProgress) and (event.pbx_call_id, event.kind) == (
            call,
            ProgressKind.RINGING,
        ):
            return None
        return event

    return BatchEnricher(enrich, at_once)


async def test_an_event_needing_no_lookup_is_not_held_behind_another_calls_lookup() -> None:
    release = asyncio.Event()
    hub = CallEventHub(enrich=slow_for("slow", release))
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription() as subscription:
            hub.publish(progress("slow"))
            hub.publish(progress("fast"))
            hub.publish(progress("fast", ProgressKind.ANSWERED))
            async with asyncio.timeout(5):
                first = [await subscription.next() for _ in range(2)]
            release.set()
            async with asyncio.timeout(5):
                last = await subscription.next()
            await hub.drain()
    finally:
        runner.cancel()
    assert [(e.pbx_call_id, e.kind) for e in first if isinstance(e, CallProgress)] == [
        ("fast", ProgressKind.RINGING),
        ("fast", ProgressKind.ANSWERED),
    ]
    assert isinstance(last, CallProgress) and (last.pbx_call_id, last.entity) == ("slow", ENTITY)


async def test_a_calls_answer_waits_for_the_lookup_of_its_ringing() -> None:
    release = asyncio.Event()
    hub = CallEventHub(enrich=slow_for("slow", release))
    handled: list[tuple[str, ProgressKind]] = []

    async def handler(event: LiveEvent) -> None:
        assert isinstance(event, CallProgress)
        handled.append((event.pbx_call_id, event.kind))

    hub.add_handler(handler)
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription() as subscription:
            hub.publish(progress("slow"))
            hub.publish(progress("slow", ProgressKind.ANSWERED))
            hub.publish(progress("fast"))
            async with asyncio.timeout(5):
                fast = await subscription.next()
            await asyncio.sleep(0.05)
            assert handled == [] and subscription._queue.empty()
            release.set()
            async with asyncio.timeout(5):
                slow = [await subscription.next() for _ in range(2)]
            await hub.drain()
    finally:
        runner.cancel()
    assert isinstance(fast, CallProgress) and fast.pbx_call_id == "fast"
    assert [(e.pbx_call_id, e.kind) for e in slow if isinstance(e, CallProgress)] == [
        ("slow", ProgressKind.RINGING),
        ("slow", ProgressKind.ANSWERED),
    ]
    # The handlers still see the order of publication, enriched.
    assert handled == [
        ("slow", ProgressKind.RINGING),
        ("slow", ProgressKind.ANSWERED),
        ("fast", ProgressKind.RINGING),
    ]


async def test_a_completed_call_is_not_held_behind_a_caller_lookup() -> None:
    release = asyncio.Event()

    async def enrich(events: Sequence[LiveEvent]) -> list[LiveEvent]:
        if any(isinstance(event, CallProgress) for event in events):
            await release.wait()  # a caller lookup that takes its time
        return [replace(event, entity=ENTITY) for event in events]

    hub = CallEventHub(enrich=enrich)
    runner = asyncio.create_task(hub.run())
    try:
        with hub.subscription() as subscription:
            hub.publish(progress("slow"))
            hub.publish(CallCompleted(call_id=7, call=make_call(7)))  # published in the same turn
            async with asyncio.timeout(5):
                completed = await subscription.next()
            release.set()
            async with asyncio.timeout(5):
                ringing = await subscription.next()
            await hub.drain()
    finally:
        runner.cancel()
    assert isinstance(completed, CallCompleted) and completed.entity == ENTITY
    assert isinstance(ringing, CallProgress) and ringing.entity == ENTITY
