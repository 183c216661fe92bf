"""Webhooks end to end, on both databases: a real receiver on loopback, the real delivery worker driven by
a fake clock, and the routes over real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from calltracking.metrics import ApiMetrics
from calltracking.store.engine import create_engine, create_sessionmaker, migrate
from calltracking.webhooks.delivery import LEASE_MARGIN, WebhookDeliverer, enqueue
from calltracking.webhooks.repository import (
    create_webhook,
    deactivate_webhook,
    get_webhook,
    list_deliveries,
)
from calltracking.webhooks.subscription import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.webhook_receiver import WebhookReceiver, running_receiver

START = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with running_receiver() as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def call_completed(n: int = 0) -> WebhookEvent:
    return WebhookEvent(
        event_id=f"call.completed:office:1795349935.{n}",
        type="call.completed",
        occurred_at=START - timedelta(minutes=1),
        data={"call_id": n, "status": "answered", "caller_number": "+79161234567"},
    )


async def add_webhook(
    sessions: async_sessionmaker[AsyncSession], url: str, events: Sequence[str] = ("call.completed",)
) -> Webhook:
    async with sessions.begin() as session:
        return await create_webhook(
            session, url=url, events=events, secret="s3cret", description=None, now=START
        )


async def publish(sessions: async_sessionmaker[AsyncSession], event: WebhookEvent, now: datetime) -> int:
    async with sessions.begin() as session:
        return await enqueue(session, event, now=now)


async def deliveries_of(sessions: async_sessionmaker[AsyncSession], webhook_id: int) -> list[WebhookDelivery]:
    async with sessions() as session:
        return await list_deliveries(session, webhook_id, limit=100)


def failures(metrics: ApiMetrics) -> float | None:
    return metrics.registry.get_sample_value("calltracking_webhook_failures_total")


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# --- the delivery worker ------------------------------------------------------------------------------


async def test_failing_receiver_is_retried_with_growing_delays_then_delivered(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    metrics = ApiMetrics()
    async with running_receiver(fail_first=3) as receiver:
        webhook = await add_webhook(sessions, receiver.url)
        await publish(sessions, call_completed(), clock.now)
        waits: list[timedelta] = []
        async with WebhookDeliverer(sessions, clock=clock, metrics=metrics) as deliverer:
            for _ in range(3):
                assert await deliverer.deliver_due() == 1
                [delivery] = await deliveries_of(sessions, webhook.id)
                assert (delivery.status, delivery.last_status_code) == (DeliveryStatus.PENDING, 500)
                wait = delivery.next_attempt_at - clock.now
                waits.append(wait)
                clock.advance(wait - timedelta(seconds=1))
                assert await deliverer.deliver_due() == 0  # not due yet
                clock.advance(timedelta(seconds=1))
            assert await deliverer.deliver_due() == 1

    [delivery] = await deliveries_of(sessions, webhook.id)
    assert waits == [timedelta(seconds=5), timedelta(seconds=30), timedelta(minutes=2)]
    assert (delivery.status, delivery.attempts, delivery.delivered_at) == (
        DeliveryStatus.DELIVERED,
        4,
        clock.now,
    )
    assert delivery.last_error == "HTTP 500: receiver is down"
    assert len(receiver.requests) == 4
    assert {request.headers["X-Calltracking-Delivery"] for request in receiver.requests} == {str(delivery.id)}
    assert failures(metrics) == 3


async def test_receiver_that_always_fails_ends_dead_after_max_attempts(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with running_receiver(always_fail=True) as receiver:
        webhook = await add_webhook(sessions, receiver.url)
        await publish(sessions, call_completed(), clock.now)
        async with WebhookDeliverer(sessions, clock=clock, max_attempts=4) as deliverer:
            for _ in range(6):
                await deliverer.deliver_due()
                clock.advance(timedelta(hours=7))

    [delivery] = await deliveries_of(sessions, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (DeliveryStatus.DEAD, 4, 500)
    assert len(receiver.requests) == 4


async def test_delivery_in_flight_when_the_process_dies_is_sent_after_a_restart(
    database_url: str, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    first_engine = create_engine(database_url)
    await migrate(first_engine)
    first = create_sessionmaker(first_engine)
    webhook = await add_webhook(first, receiver.url)
    await publish(first, call_completed(1), clock.now)
    await publish(first, call_completed(2), clock.now)
    receiver.answering.clear()  # the receiver hangs: event 1 is in flight when the process dies
    dying = WebhookDeliverer(first, clock=clock, batch_size=1)
    attempt = asyncio.create_task(dying.deliver_due())
    await receiver.wait_for(1)
    attempt.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await attempt
    await dying.aclose()
    await first_engine.dispose()
    receiver.answering.set()

    second_engine = create_engine(database_url)
    second = create_sessionmaker(second_engine)
    try:
        async with WebhookDeliverer(second, clock=clock) as restarted:
            assert await restarted.deliver_due() == 1  # event 2 at once; event 1 once its claim lapses
            clock.advance(timedelta(seconds=10) + LEASE_MARGIN)
            assert await restarted.deliver_due() == 1
        statuses = {d.event_id: d.status for d in await deliveries_of(second, webhook.id)}
    finally:
        await second_engine.dispose()

    assert [request.json()["id"] for request in receiver.requests] == [
        call_completed(1).event_id,
        call_completed(2).event_id,
        call_completed(1).event_id,  # at least once: the receiver deduplicates by event id
    ]
    assert statuses == {
        call_completed(1).event_id: DeliveryStatus.DELIVERED,
        call_completed(2).event_id: DeliveryStatus.DELIVERED,
    }


async def test_a_receiver_that_does_not_answer_in_time_is_a_failed_attempt(
    sessions: async_sessionmaker[AsyncSession], receiver: WebhookReceiver, clock: FakeClock
) -> None:
    webhook = await add_webhook(sessions, receiver.url)
    await publish(sessions, call_completed(), clock.now)
    receiver.answering.clear()
    async with WebhookDeliverer(sessions, clock=clock, timeout_seconds=0.05) as deliverer:
        await deliverer.deliver_due()

    [delivery] = await deliveries_of(sessions, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.PENDING,
        1,
        None,
    )
    assert delivery.last_error is not None and "Timeout" in delivery.last_error


async def test_a_refused_connection_is_a_failed_attempt(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    async with running_receiver() as gone:
        url = gone.url
    webhook = await add_webhook(sessions, url)
    await publish(sessions, call_completed(), clock.now)
    async with WebhookDeliverer(sessions, clock=clock) as deliverer:
        await deliverer.deliver_due()

    [delivery] = await deliveries_of(sessions, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        DeliveryStatus.PENDING,
        1,
        None,
    )
    assert delivery.last_error is not None and delivery.last_error.startswith("ClientConnectorError")


async def test_the_worker_survives_a_failing_pass_and_delivers_once_the_database_is_ready(
    database_url: str, receiver: WebhookReceiver
) -> None:
    engine = create_engine(database_url)  # no schema yet: every pass fails until it is migrated
    sessions = create_sessionmaker(engine)
    deliverer = WebhookDeliverer(sessions, poll_seconds=0.01)
    try:
        with capture_logs() as logs:
            running = asyncio.create_task(deliverer.run())
            await until(lambda: any(entry["event"] == "webhook_pass_failed" for entry in logs))
            await migrate(engine)
            await add_webhook(sessions, receiver.url)
            await publish(sessions, call_completed(), datetime.now(UTC))
            [request] = await receiver.wait_for(1)
            assert not running.done()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
    finally:
        await engine.dispose()

    assert request.json()["id"] == call_completed().event_id


# --- the outbox ---------------------------------------------------------------------------------------


async def test_enqueue_is_idempotent_per_event_id(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    first = await add_webhook(sessions, "http://127.0.0.1:9/a")
    second = await add_webhook(sessions, "http://127.0.0.1:9/b")
    event = call_completed()
    replayed = WebhookEvent(event.event_id, event.type, event.occurred_at, {"call_id": 0, "again": True})

    queued = [await publish(sessions, e, clock.now) for e in (event, event, replayed)]

    assert queued == [2, 0, 0]
    for webhook in (first, second):
        [delivery] = await deliveries_of(sessions, webhook.id)
        assert delivery.payload == event.body()


async def test_only_active_webhooks_subscribed_to_the_type_get_deliveries(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    subscribed = await add_webhook(sessions, "http://127.0.0.1:9/a", ["lead.created", "call.completed"])
    other_type = await add_webhook(sessions, "http://127.0.0.1:9/b", ["lead.created"])
    deleted = await add_webhook(sessions, "http://127.0.0.1:9/c", ["call.completed"])
    async with sessions.begin() as session:
        assert await deactivate_webhook(session, deleted.id)

    assert await publish(sessions, call_completed(), clock.now) == 1
    assert [len(await deliveries_of(sessions, w.id)) for w in (subscribed, other_type, deleted)] == [1, 0, 0]


async def test_deleting_a_webhook_kills_what_it_was_still_owed(
    sessions: async_sessionmaker[AsyncSession], receiver: WebhookReceiver, clock: FakeClock
) -> None:
    webhook = await add_webhook(sessions, receiver.url)
    await publish(sessions, call_completed(), clock.now)
    async with sessions.begin() as session:
        assert await deactivate_webhook(session, webhook.id)
        assert await get_webhook(session, webhook.id) is None
    async with WebhookDeliverer(sessions, clock=clock) as deliverer:
        assert await deliverer.deliver_due() == 0

    [delivery] = await deliveries_of(sessions, webhook.id)
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.DEAD, "webhook deleted")
    assert receiver.requests == []


async def test_an_event_queued_in_a_rolled_back_transaction_is_never_sent(
    sessions: async_sessionmaker[AsyncSession], clock: FakeClock
) -> None:
    webhook = await add_webhook(sessions, "http://127.0.0.1:9/a")
    with contextlib.suppress(RuntimeError):
        async with sessions.begin() as session:
            assert await enqueue(session, call_completed(), now=clock.now) == 1
            raise RuntimeError("the fact was not recorded")

    assert await deliveries_of(sessions, webhook.id) == []


# --- the routes ---------------------------------------------------------------------------------------


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        yield harness


async def call(
    api: ApiHarness, method: str, path: str, role: str = "integration", **kwargs: Any
) -> tuple[int, Any]:
    response = await api.client.request(method, path, headers=api.auth(role), **kwargs)
    body = await response.json() if response.content_type == "application/json" else None
    return response.status, body


async def register(api: ApiHarness, url: str, events: Sequence[str] = ("call.completed",)) -> dict[str, Any]:
    status, body = await call(
        api, "POST", "/api/v1/webhooks", json={"url": url, "events": list(events), "description": "CRM"}
    )
    assert status == 201, body
    return dict(body)


async def test_the_secret_given_at_registration_signs_every_delivery(
    api: ApiHarness, receiver: WebhookReceiver, clock: FakeClock
) -> None:
    created = await register(api, receiver.url)
    event = call_completed()
    await publish(api.sessions, event, clock.now)
    async with WebhookDeliverer(api.sessions, clock=clock) as deliverer:
        await deliverer.deliver_due()

    [request] = receiver.requests
    timestamp = request.headers["X-Calltracking-Timestamp"]
    expected = hmac.new(created["secret"].encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256)
    assert request.headers["X-Calltracking-Signature"] == "sha256=" + expected.hexdigest()
    assert int(timestamp) == int(clock.now.timestamp())
    assert request.headers["X-Calltracking-Event"] == "call.completed"
    assert request.headers["Content-Type"] == "application/json"
    assert request.path == "/hooks/crm"
    assert request.json() == {
        "id": event.event_id,
        "type": "call.completed",
        "occurred_at": "2026-11-22T11:59:00+00:00",
        "data": event.data,
    }
    _, log = await call(api, "GET", f"/api/v1/webhooks/{created['id']}/deliveries")
    [delivery] = log["items"]
    assert request.headers["X-Calltracking-Delivery"] == str(delivery["id"])
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == ("delivered", 1, 204)
    assert delivery["next_attempt_at"] is None


async def test_register_list_get_and_delete_a_webhook(api: ApiHarness) -> None:
    created = await register(api, "https://crm.example/hooks?token=1", ["call.completed", "lead.created"])
    assert len(created["secret"]) >= 43

    status, listed = await call(api, "GET", "/api/v1/webhooks", role="admin")
    assert status == 200
    [item] = listed["items"]
    assert item == {k: v for k, v in created.items() if k != "secret"}
    assert item["url"] == "https://crm.example/hooks?token=1"
    assert item["events"] == ["call.completed", "lead.created"]
    status, one = await call(api, "GET", f"/api/v1/webhooks/{created['id']}")
    assert (status, one) == (200, item)

    assert (await call(api, "DELETE", f"/api/v1/webhooks/{created['id']}"))[0] == 204
    status, gone = await call(api, "GET", f"/api/v1/webhooks/{created['id']}")
    assert (status, gone["error"]["code"]) == (404, "not_found")
    assert (await call(api, "GET", "/api/v1/webhooks"))[1] == {"items": []}
    assert (await call(api, "DELETE", f"/api/v1/webhooks/{created['id']}"))[0] == 404


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://crm.example/hooks", "events": ["call.completed"]},
        {"url": "javascript:alert(1)", "events": ["call.completed"]},
        {"url": "http://", "events": ["call.completed"]},
        {"url": "http://crm.example/a b", "events": ["call.completed"]},
        {"url": "https://crm.example/" + "x" * 2048, "events": ["call.completed"]},
        {"url": "https://crm.example/hooks", "events": ["call.exploded"]},
        {"url": "https://crm.example/hooks", "events": []},
        {"url": "https://crm.example/hooks", "events": ["call.completed", "call.completed"]},
        {"url": "https://crm.example/hooks", "events": ["call.completed"], "secret": "mine"},
        {"url": "https://crm.example/hooks"},
    ],
)
async def test_invalid_registrations_are_refused(api: ApiHarness, body: dict[str, Any]) -> None:
    status, answer = await call(api, "POST", "/api/v1/webhooks", json=body)

    assert (status, answer["error"]["code"]) == (422, "invalid_request")
    assert (await call(api, "GET", "/api/v1/webhooks"))[1] == {"items": []}


async def test_unknown_ids_are_404(api: ApiHarness) -> None:
    created = await register(api, "https://crm.example/hooks")
    other = await register(api, "https://crm.example/other")
    await publish(api.sessions, call_completed(), datetime.now(UTC))
    _, log = await call(api, "GET", f"/api/v1/webhooks/{created['id']}/deliveries")
    delivery_id = log["items"][0]["id"]

    for method, path in [
        ("GET", "/api/v1/webhooks/999999"),
        ("DELETE", "/api/v1/webhooks/999999"),
        ("GET", "/api/v1/webhooks/999999/deliveries"),
        ("GET", "/api/v1/webhooks/99999999999999/deliveries"),
        ("POST", f"/api/v1/webhooks/999999/deliveries/{delivery_id}/retry"),
        ("POST", f"/api/v1/webhooks/{created['id']}/deliveries/999999/retry"),
        ("POST", f"/api/v1/webhooks/{other['id']}/deliveries/{delivery_id}/retry"),
    ]:
        status, body = await call(api, method, path)
        assert (status, body["error"]["code"]) == (404, "not_found"), (method, path)


@pytest.mark.parametrize("role", ["manager", "supervisor"])
async def test_managers_and_supervisors_may_not_touch_webhooks(api: ApiHarness, role: str) -> None:
    created = await register(api, "https://crm.example/hooks")
    for method, path, body in [
        ("POST", "/api/v1/webhooks", {"url": "https://evil.example/", "events": ["call.completed"]}),
        ("GET", "/api/v1/webhooks", None),
        ("GET", f"/api/v1/webhooks/{created['id']}", None),
        ("DELETE", f"/api/v1/webhooks/{created['id']}", None),
        ("GET", f"/api/v1/webhooks/{created['id']}/deliveries", None),
        ("POST", f"/api/v1/webhooks/{created['id']}/deliveries/1/retry", None),
    ]:
        status, answer = await call(api, method, path, role=role, json=body)
        assert (status, answer["error"]["code"]) == (403, "forbidden"), (method, path)
    assert (await call(api, "GET", f"/api/v1/webhooks/{created['id']}"))[0] == 200


async def test_a_dead_delivery_is_in_the_log_and_can_be_retried(api: ApiHarness) -> None:
    async with running_receiver(always_fail=True) as receiver:
        created = await register(api, receiver.url)
        deliveries = f"/api/v1/webhooks/{created['id']}/deliveries"
        await publish(api.sessions, call_completed(), datetime.now(UTC))
        async with WebhookDeliverer(api.sessions, max_attempts=1) as deliverer:
            await deliverer.deliver_due()
            status, dead = await call(api, "GET", deliveries, params={"status": "dead"})
            [item] = dead["items"]
            assert status == 200
            assert (item["attempts"], item["last_status_code"], item["last_error"]) == (
                1,
                500,
                "HTTP 500: receiver is down",
            )
            assert (await call(api, "GET", deliveries, params={"status": "pending"}))[1] == {"items": []}

            receiver.always_fail = False
            status, retried = await call(api, "POST", f"{deliveries}/{item['id']}/retry")
            assert (status, retried["status"], retried["attempts"]) == (202, "pending", 0)
            assert await deliverer.deliver_due() == 1

    _, delivered = await call(api, "GET", deliveries, params={"status": "delivered"})
    assert [(d["id"], d["attempts"]) for d in delivered["items"]] == [(item["id"], 1)]
    status, answer = await call(api, "POST", f"{deliveries}/{item['id']}/retry")
    assert (status, answer["error"]["code"]) == (409, "conflict")


@pytest.mark.parametrize("params", [{"status": "lost"}, {"limit": "0"}, {"limit": "501"}, {"colour": "red"}])
async def test_bad_delivery_log_queries_are_422(api: ApiHarness, params: dict[str, str]) -> None:
    created = await register(api, "https://crm.example/hooks")
    status, answer = await call(api, "GET", f"/api/v1/webhooks/{created['id']}/deliveries", params=params)
    assert (status, answer["error"]["code"]) == (422, "invalid_request")
