"""Live events over a real WebSocket while a real captured call runs through the listener."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from calltracking.access.tokens import Role
from tests.helpers.api import make_token
from tests.helpers.listening import until
from tests.helpers.service_stack import Stack, originate_answered_by, stack


async def collect_until_completed(socket: aiohttp.ClientWebSocketResponse) -> list[dict[str, Any]]:
    messages = []
    async with asyncio.timeout(10):
        while True:
            message = await socket.receive_json()
            messages.append(message)
            if message["type"] == "call.completed":
                return messages


async def connect(s: Stack, token: str, in_query: bool = False) -> aiohttp.ClientWebSocketResponse:
    if in_query:
        return await s.client.ws_connect("/api/v1/events", params={"access_token": token})
    return await s.client.ws_connect("/api/v1/events", headers={"Authorization": f"Bearer {token}"})


async def test_screen_pop_answer_and_completion_reach_the_right_people(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        anna = await make_token(s.sessions, Role.MANAGER, "101")
        vera = await make_token(s.sessions, Role.MANAGER, "103")
        crm, annas_browser, veras = (
            await connect(s, s.token),
            await connect(s, anna, in_query=True),
            await connect(s, vera),
        )

        status, _ = await s.post({"extension": "101", "number": "89161234567", "request_id": "req-42"})
        assert status == 202
        for_crm = await collect_until_completed(crm)
        for_anna = await collect_until_completed(annas_browser)
        for socket in (crm, annas_browser, veras):
            await socket.close()

    assert [m["type"] for m in for_crm] == ["call.ringing", "call.answered", "call.completed"]
    assert for_anna == for_crm
    ringing = for_crm[0]
    # The manager's own phone rings first; the customer's number is dialled only once it is answered.
    assert (ringing["extension"], ringing["direction"], ringing["request_id"]) == (
        "101",
        "outbound",
        "req-42",
    )
    completed = for_crm[-1]["call"]
    assert (completed["status"], completed["callee"], completed["request_id"]) == (
        "answered",
        "89161234567",
        "req-42",
    )


async def test_a_manager_receives_nothing_of_other_managers_calls(database_url: str, tmp_path: Path) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        vera = await connect(s, await make_token(s.sessions, Role.MANAGER, "103"))
        crm = await connect(s, s.token)
        await s.post({"extension": "101", "number": "89161234567"})
        await collect_until_completed(crm)
        # Everything was fanned out in one pass: Vera's queue had its chance at every event already.
        await s.hub.drain()
        try:
            leaked = await vera.receive(timeout=0.2)
        except TimeoutError:
            leaked = None
        await vera.close()
        await crm.close()

    assert leaked is None


async def test_without_a_token_no_websocket(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path, []) as s:
        response = await s.client.get("/api/v1/events")
        assert (response.status, (await response.json())["error"]["code"]) == (401, "unauthorized")
        response = await s.client.get("/api/v1/events", headers={"Authorization": f"Bearer {s.token}"})
        assert (response.status, (await response.json())["error"]["code"]) == (400, "websocket_expected")
        response = await s.client.get("/api/v1/events", params={"access_token": s.token})
        assert response.status == 401  # the query token is for WebSocket upgrades only
