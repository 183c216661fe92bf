"""Click-to-call end to end: HTTP API -> Originate over TCP to an AMI peer that answers with the real
capture's response and events -> status follows the call -> linked to the call record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from ami.capture_peer import CapturePeer, PeerSession
from ami.listener import PbxListener
from api.app import create_app
from calltracking.call_events import CallEventHub
from calltracking.click_to_call import OriginateState
from calltracking.click_to_call_service import ClickToCallService
from calltracking.runtime import call_pipeline
from calltracking.service import wire_live_events
from calltracking.settings import load_settings
from calltracking.tokens import Role
from tests.helpers.api import make_token
from tests.helpers.captures import capture
from tests.helpers.listening import FAST_RECONNECT, database_settings, until

FRAME_END = b"\r\n\r\n"
CAPTURED_ACTION_ID = {"click_to_call": b"c2c-1", "click_to_call_manager_no_answer": b"c2c-2"}


def originate_answered_by(name: str) -> tuple[PeerSession, Callable[[dict[str, str]], list[bytes]]]:
    """The capture split at its Originate response: what the PBX says before (greeting), and the
    response plus every event after it, replayed when the client sends its Originate (with the client's
    ActionID in place of the one the capturing client used)."""
    data = capture(name)
    response_at = data.index(b"Response: Success\r\nActionID: ")
    before, after = data[:response_at], data[response_at:]

    def reply(action: dict[str, str]) -> list[bytes]:
        return [
            after.replace(
                b"ActionID: " + CAPTURED_ACTION_ID[name], b"ActionID: " + action["actionid"].encode()
            )
        ]

    return PeerSession(greeting=before, close_at_end=False, action_replies={"originate": reply}), reply


@dataclass
class Stack:
    client: TestClient[Any, Any]
    peer: CapturePeer
    listener: PbxListener
    service: ClickToCallService
    hub: CallEventHub
    token: str
    history: list[OriginateState] = field(default_factory=list)

    async def post(self, body: dict[str, Any], key: str | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} | ({"Idempotency-Key": key} if key else {})
        response = await self.client.post("/api/v1/calls/originate", json=body, headers=headers)
        return response.status, await response.json()

    async def status_of(self, request_id: str) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/calls/originate/{request_id}", headers={"Authorization": f"Bearer {self.token}"}
        )
        assert response.status == 200
        result: dict[str, Any] = await response.json()
        return result

    def originates_sent(self) -> int:
        return sum(action.get("action", "").lower() == "originate" for action in self.peer.actions)


@asynccontextmanager
async def stack(database_url: str, tmp_path: Path, sessions: list[PeerSession]) -> AsyncIterator[Stack]:
    peer = CapturePeer(sessions)
    await peer.start()
    settings = load_settings(
        environ={},
        overrides={
            "database": {"url": database_url, "spool_dir": str(tmp_path / "spool")},
            "pbxs": [{"name": "office", "port": peer.port, **FAST_RECONNECT}],
            "api": {"token_cache_seconds": 0},
        },
    )
    async with call_pipeline(database_settings(database_url, tmp_path)) as pipeline:
        hub = CallEventHub()
        listener = PbxListener(settings.pbxs[0], pipeline.call_log, progress_sink=hub.publish)
        service = ClickToCallService(pipeline.sessionmaker, settings.pbxs, {"office": listener.connection})
        wire_live_events(hub, pipeline.call_log, service)
        app = create_app(settings, pipeline.sessionmaker, click_to_call=service, hub=hub)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        hub_task = asyncio.create_task(hub.run())
        await pipeline.call_log.flush()  # schema in place before tokens are made
        token = await make_token(pipeline.sessionmaker, Role.INTEGRATION)
        built = Stack(client, peer, listener, service, hub, token)
        service.add_observer(built.history.append)
        listener.start()
        try:
            yield built
        finally:
            await client.close()
            await listener.close()
            hub_task.cancel()
            await peer.stop()


async def test_click_to_call_rings_the_manager_then_the_customer_and_links_the_call(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)

        status, accepted = await s.post(
            {"extension": "101", "number": "8 916 123-45-67", "request_id": "req-42"}
        )
        assert (status, accepted["request_id"]) == (202, "req-42")
        assert accepted["status"] in ("queued", "ringing_manager", "ringing_customer", "answered")
        assert accepted["status_url"] == "/api/v1/calls/originate/req-42"
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)
        final = await s.status_of("req-42")

    assert [state.status.value for state in s.history] == [
        "queued",
        "ringing_manager",
        "ringing_customer",
        "answered",
        "answered",
    ]
    assert (final["status"], final["reason"], final["number"]) == ("answered", None, "89161234567")
    assert final["call_id"] == s.history[-1].call_id


async def test_manager_who_does_not_answer_fails_the_request_with_the_reason(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call_manager_no_answer")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        status, _ = await s.post({"manager": "103", "number": "89165550000", "request_id": "req-43"})
        assert status == 202
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)
        final = await s.status_of("req-43")

    assert [state.status.value for state in s.history] == ["queued", "ringing_manager", "failed", "failed"]
    assert (final["status"], final["reason"]) == ("failed", "manager_no_answer")


async def test_a_retry_with_the_same_key_returns_the_first_answer_and_never_dials_again(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        body = {"extension": "101", "number": "89161234567", "request_id": "req-42"}
        answers = await asyncio.gather(*(s.post(body, key="crm-7") for _ in range(5)))
        again = await s.post({"extension": "101", "number": "89161234567"}, key="crm-7")
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)

        conflict = await s.post({"extension": "102", "number": "89161234567", "request_id": "req-42"})
        assert s.originates_sent() == 1

    assert {(status, body["request_id"]) for status, body in answers} == {(202, "req-42")}
    assert again[1]["request_id"] == "req-42"
    assert conflict[0] == 409


async def test_link_dropped_while_the_originate_is_in_flight_dials_once(
    database_url: str, tmp_path: Path
) -> None:
    dropping, _ = originate_answered_by("click_to_call")
    dropping.hang_up_on = frozenset({"originate"})
    after_reconnect, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [dropping, after_reconnect]) as s:
        await until(lambda: s.listener.connection.is_ready)

        status, accepted = await s.post({"extension": "101", "number": "89161234567"}, key="crm-8")
        await until(lambda: s.listener.connection.sessions == 2 and s.listener.connection.is_ready)
        retried = await s.post({"extension": "101", "number": "89161234567"}, key="crm-8")
        state = await s.status_of(accepted["request_id"])

        assert s.originates_sent() == 1
    assert status == 202
    assert (state["status"], state["reason"]) == ("failed", "pbx_connection_lost")
    assert retried == (202, accepted)


async def test_pbx_down_is_503_at_once_and_nothing_is_dialled(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path, []) as s:
        started = asyncio.get_running_loop().time()
        status, body = await s.post({"extension": "101", "number": "89161234567", "request_id": "req-9"})
        elapsed = asyncio.get_running_loop().time() - started
        state = await s.status_of("req-9")

    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert elapsed < 5
    assert (state["status"], state["reason"]) == ("failed", "pbx_unreachable")
    assert s.originates_sent() == 0


async def test_bad_requests_are_422(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path, []) as s:
        for body in (
            {"number": "89161234567"},
            {"extension": "101", "manager": "101", "number": "89161234567"},
            {"extension": "101", "number": "call me"},
            {"extension": "101; Action: Hangup", "number": "89161234567"},
            {"extension": "101", "number": "89161234567\r\nAction: Originate"},
            {"extension": "101", "number": "89161234567", "request_id": "has spaces"},
            {"extension": "101", "number": "89161234567", "pbx": "elsewhere"},
        ):
            status, answer = await s.post(body)
            assert (status, answer["error"]["code"]) == (422, "invalid_request"), body
        assert s.originates_sent() == 0
