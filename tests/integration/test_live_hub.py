"""Live events without a database round trip per event: progress webhooks cost nothing when no webhook
subscribes, a webhook registered through the API gets the very next call.ringing, and a WebSocket client
that does not read never holds back one that does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from calltracking.access.tokens import Role
from calltracking.calls.hub import CallEventHub
from calltracking.calls.record import CallProgress, Direction, ProgressKind
from calltracking.config import load_settings
from calltracking.crm.call_webhooks import completed_queuer, progress_queuer, wants_progress
from calltracking.webhooks.repository import list_deliveries
from calltracking.webhooks.roster import WebhookRoster
from tests.helpers.api import make_token
from tests.helpers.databases import Statements
from tests.helpers.factories import make_call
from tests.helpers.listening import until

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def ringing(call: str, caller: str = "+79161234567") -> CallProgress:
    return CallProgress(
        kind=ProgressKind.RINGING,
        pbx="office",
        pbx_call_id=call,
        at=AT,
        direction=Direction.INBOUND,
        caller=caller,
        callee="101",
        extension="101",
    )


@dataclass
class Live:
    hub: CallEventHub
    roster: WebhookRoster
    client: TestClient[Any, Any]
    token: str


@asynccontextmanager
async def live(sessions: async_sessionmaker[AsyncSession], roster: WebhookRoster) -> AsyncIterator[Live]:
    hub = CallEventHub()
    hub.add_batch_handler(progress_queuer(sessions, roster), enriched_for=lambda e: wants_progress(e, roster))
    url = sessions.kw["bind"].url.render_as_string(hide_password=False)
    settings = load_settings(
        environ={}, overrides={"database": {"url": url}, "api": {"token_cache_seconds": 0}}
    )
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(settings, sessions, hub=hub)))
    await client.start_server()
    runner = asyncio.create_task(hub.run())
    try:
        yield Live(hub, roster, client, await make_token(sessions, Role.INTEGRATION))
    finally:
        runner.cancel()
        await client.close()


async def test_progress_events_without_webhooks_cost_no_statement_each(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    roster = WebhookRoster()
    async with live(sessions, roster) as s:
        s.hub.publish(ringing("1795349935.0"))  # the first one reads the (empty) webhooks table
        await s.hub.drain()
        statements = Statements(sessions)
        for n in range(1, 41):
            s.hub.publish(ringing(f"1795349935.{n}"))
            await s.hub.drain()
        async with sessions.begin() as session:
            before = statements.count
            await completed_queuer(roster=roster)(session, [make_call(1)], [1])
            by_completion = statements.count - before
    # The old queuer opened a transaction and read the webhooks table for each of the 40.
    assert (statements.count - by_completion, by_completion) == (0, 0)


async def test_a_webhook_registered_through_the_api_gets_the_next_ringing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with live(sessions, WebhookRoster(max_age_seconds=3600)) as s:
        s.hub.publish(ringing("1795349935.1"))
        await s.hub.drain()
        assert not s.roster.is_stale  # it knows there is no webhook, for an hour
        response = await s.client.post(
            "/api/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["call.ringing"]},
            headers={"Authorization": f"Bearer {s.token}"},
        )
        assert response.status == 201
        webhook_id = (await response.json())["id"]
        s.hub.publish(ringing("1795349935.2"))
        await s.hub.drain()
        async with sessions() as session:
            owed = await list_deliveries(session, webhook_id)
    assert [(d.event_type, d.payload["data"]["linkedid"]) for d in owed] == [("call.ringing", "1795349935.2")]


async def test_a_webhook_added_by_another_process_is_seen_once_the_roster_ages(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = [0.0]
    roster = WebhookRoster(max_age_seconds=5.0, clock=lambda: now[0])
    async with live(sessions, roster) as s:
        s.hub.publish(ringing("1795349935.1"))
        await s.hub.drain()
        async with sessions.begin() as session:  # as the CLI would, unseen by this process's roster
            await session.execute(
                text(
                    "INSERT INTO webhooks (url, events, secret, description, is_active, created_at) "
                    "VALUES ('http://127.0.0.1:9/hook', :events, 's', NULL, :active, :at)"
                ),
                {"events": '["call.ringing"]', "active": True, "at": datetime(2026, 11, 22)},
            )
        assert not roster.may_want("call.ringing")
        now[0] = 5.0
        s.hub.publish(ringing("1795349935.2"))
        await s.hub.drain()
        async with sessions() as session:
            owed = await list_deliveries(session, 1)
    assert [d.payload["data"]["linkedid"] for d in owed] == ["1795349935.2"]


async def test_a_client_that_does_not_read_never_holds_back_one_that_does(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # Events this big fill the socket buffers and the slow client's backlog well before the end.
    events = [ringing(f"1795349935.{n}", caller="+7916" + "1" * 20_000) for n in range(2_500)]
    async with live(sessions, WebhookRoster()) as s:
        headers = {"Authorization": f"Bearer {s.token}"}
        slow = await s.client.ws_connect("/api/v1/events", headers=headers)
        fast = await s.client.ws_connect("/api/v1/events", headers=headers, max_msg_size=0)
        await until(lambda: len(s.hub._subscribers) == 2)
        received: list[str] = []
        async with asyncio.timeout(60):
            for start in range(0, len(events), 100):  # as fast as the fast client reads
                for one in events[start : start + 100]:
                    s.hub.publish(one)
                received.extend([(await fast.receive_json())["linkedid"] for _ in range(100)])
        # The slow one's backlog filled: it is closed (or cut), and no longer a subscriber.
        await until(lambda: len(s.hub._subscribers) == 1, timeout=30)
        kinds = []
        async with asyncio.timeout(30):
            while (message := await slow.receive()).type is aiohttp.WSMsgType.TEXT:
                kinds.append(message.type)
        await fast.close()
    assert received == [one.pbx_call_id for one in events]
    assert len(kinds) < len(events)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    if message.type is aiohttp.WSMsgType.CLOSE:
        assert message.data == aiohttp.WSCloseCode.POLICY_VIOLATION
