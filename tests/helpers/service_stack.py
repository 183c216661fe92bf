"""The whole service in one process for end-to-end tests: a capture-playing AMI peer, the listener, the
call log on a real database, the live-event hub, click-to-call and the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ami.capture_peer import CapturePeer, PeerSession
from ami.listener import PbxListener
from api.app import create_app
from calltracking.access.tokens import Role
from calltracking.app.runtime import call_pipeline
from calltracking.app.serve import wire_live_events, wire_webhooks
from calltracking.calls.hub import CallEventHub
from calltracking.clicktocall.request import OriginateState
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import load_settings
from tests.helpers.api import make_token
from tests.helpers.captures import capture
from tests.helpers.listening import FAST_RECONNECT, database_settings

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
    sessions: async_sessionmaker[AsyncSession]
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
        wire_webhooks(hub, pipeline.call_log, pipeline.sessionmaker)
        app = create_app(settings, pipeline.sessionmaker, click_to_call=service, hub=hub)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        hub_task = asyncio.create_task(hub.run())
        await pipeline.call_log.flush()  # schema in place before tokens are made
        token = await make_token(pipeline.sessionmaker, Role.INTEGRATION)
        built = Stack(client, peer, listener, service, hub, token, pipeline.sessionmaker)
        service.add_observer(built.history.append)
        listener.start()
        try:
            yield built
        finally:
            await client.close()
            await listener.close()
            hub_task.cancel()
            await peer.stop()
