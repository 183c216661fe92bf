"""Recordings over HTTP: streamed with Range, one side at a time, only to those allowed, every read
audited; pushed by a PBX on another host; held past their retention age."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.status import ServiceStatus
from calltracking.calls.recording import RecordingState
from calltracking.store.tables import AuditRow
from recordings.retention import apply_retention
from recordings.storage import RecordingStore
from tests.helpers.api import tokens_for_every_role
from tests.helpers.factories import make_call
from tests.helpers.recording_stack import (
    ANSWERED_BASE,
    SHARED_RECORDINGS,
    RecordingStack,
    pbx_path,
    recording_stack,
)


@dataclass
class RecordingApi:
    client: TestClient[Any, Any]
    stack: RecordingStack
    tokens: dict[str, str]
    call_id: int

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def audit_count(self) -> int:
        async with self.stack.sessions() as session:
            return int(
                (
                    await session.execute(
                        select(func.count()).select_from(AuditRow).where(AuditRow.action == "recording.read")
                    )
                ).scalar_one()
            )


@pytest.fixture
async def recording_api(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> AsyncIterator[RecordingApi]:
    stack = recording_stack(sessions, database_url, tmp_path, max_push_bytes=200_000)
    stack.place_shared(ANSWERED_BASE)
    call_id = await stack.add_call(
        make_call(
            1, recording_file=pbx_path(f"{ANSWERED_BASE}.wav"), recording_channel="PJSIP/provider-00000001"
        )
    )
    await stack.worker.process_due()
    tokens = await tokens_for_every_role(sessions)
    app = create_app(stack.settings, sessions, ServiceStatus(), recording_worker=stack.worker)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield RecordingApi(client=client, stack=stack, tokens=tokens, call_id=call_id)
    finally:
        await client.close()


async def test_recording_streams_whole_as_ogg_opus_and_is_audited(recording_api: RecordingApi) -> None:
    recording = await recording_api.stack.recording(recording_api.call_id)
    response = await recording_api.client.get(
        f"/api/v1/calls/{recording_api.call_id}/recording", headers=recording_api.auth("supervisor")
    )
    body = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"] == "audio/ogg; codecs=opus"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert body[:4] == b"OggS"
    assert hashlib.sha256(body).hexdigest() == recording.sha256 == response.headers["X-Content-SHA256"]
    assert await recording_api.audit_count() == 1


async def test_range_requests_return_the_asked_bytes_for_seeking(recording_api: RecordingApi) -> None:
    url = f"/api/v1/calls/{recording_api.call_id}/recording"
    whole = await (await recording_api.client.get(url, headers=recording_api.auth("admin"))).read()
    part = await recording_api.client.get(
        url, headers={**recording_api.auth("admin"), "Range": "bytes=100-299"}
    )
    tail = await recording_api.client.get(url, headers={**recording_api.auth("admin"), "Range": "bytes=-50"})
    beyond = await recording_api.client.get(
        url, headers={**recording_api.auth("admin"), "Range": f"bytes={len(whole) + 10}-"}
    )
    assert part.status == 206
    assert part.headers["Content-Range"] == f"bytes 100-299/{len(whole)}"
    assert await part.read() == whole[100:300]
    assert tail.status == 206 and await tail.read() == whole[-50:]
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"
    assert (await beyond.json())["error"]["code"] == "range_not_satisfiable"
    assert await recording_api.audit_count() == 4


async def test_one_side_of_a_split_recording_is_served_alone(recording_api: RecordingApi) -> None:
    recording = await recording_api.stack.recording(recording_api.call_id)
    url = f"/api/v1/calls/{recording_api.call_id}/recording"
    customer = await recording_api.client.get(f"{url}?side=customer", headers=recording_api.auth("admin"))
    manager = await recording_api.client.get(f"{url}?side=manager", headers=recording_api.auth("admin"))
    wrong = await recording_api.client.get(f"{url}?side=both", headers=recording_api.auth("admin"))
    assert customer.status == manager.status == 200
    assert hashlib.sha256(await customer.read()).hexdigest() == recording.files["customer"].sha256
    assert hashlib.sha256(await manager.read()).hexdigest() == recording.files["manager"].sha256
    assert recording.files["customer"].sha256 != recording.files["manager"].sha256
    assert wrong.status == 422


async def test_managers_hear_only_their_own_calls(recording_api: RecordingApi) -> None:
    url = f"/api/v1/calls/{recording_api.call_id}/recording"
    own = await recording_api.client.get(url, headers=recording_api.auth("manager"))
    other = await recording_api.client.get(url, headers=recording_api.auth("other_manager"))
    anonymous = await recording_api.client.get(url)
    assert own.status == 200
    assert other.status == 404
    assert anonymous.status == 401
    assert await recording_api.audit_count() == 1


async def test_call_history_names_the_recording(recording_api: RecordingApi) -> None:
    response = await recording_api.client.get(
        f"/api/v1/calls/{recording_api.call_id}", headers=recording_api.auth("integration")
    )
    listed = await recording_api.client.get(
        "/api/v1/calls?has_recording=true", headers=recording_api.auth("integration")
    )
    call = await response.json()
    assert call["has_recording"] is True
    assert call["recording_state"] == "ready"
    assert call["recording"]["sides"] == ["customer", "manager"]
    assert call["recording"]["url"] == f"/api/v1/calls/{recording_api.call_id}/recording"
    assert call["recording"]["duration_seconds"] == pytest.approx(6.02, abs=0.05)
    assert [item["id"] for item in (await listed.json())["items"]] == [recording_api.call_id]


async def test_a_pending_recording_is_404_with_its_state(recording_api: RecordingApi) -> None:
    call_id = await recording_api.stack.add_call(
        make_call(2, recording_file=pbx_path("2026/11/22/not-yet.wav"))
    )
    response = await recording_api.client.get(
        f"/api/v1/calls/{call_id}/recording", headers=recording_api.auth("admin")
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "recording_pending"


async def test_pushed_recording_is_converted_for_its_call(recording_api: RecordingApi) -> None:
    call = make_call(3)
    call_id = await recording_api.stack.add_call(call)
    url = f"/api/v1/recordings/office/{call.pbx_call_id}"
    for part, suffix in (("mix", ""), ("rx", "-rx"), ("tx", "-tx")):
        data = (SHARED_RECORDINGS / f"{ANSWERED_BASE}{suffix}.wav").read_bytes()
        response = await recording_api.client.put(
            f"{url}?part={part}", data=data, headers=recording_api.auth("integration")
        )
        assert response.status == 202, await response.text()
        assert (await response.json())["bytes"] == len(data)
    recording_api.stack.clock.now = datetime.now(UTC) + timedelta(
        seconds=1
    )  # the API stamps pushes with the real time
    await recording_api.stack.worker.process_due()
    recording = await recording_api.stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.sides == ("customer", "manager")
    assert not (recording_api.stack.store_dir / "inbox" / "office" / call.pbx_call_id).exists()


async def test_push_over_the_limit_is_refused_and_leaves_nothing(recording_api: RecordingApi) -> None:
    url = "/api/v1/recordings/office/1795349999.1"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"\x00" * 10_000

    declared = await recording_api.client.put(
        url, data=b"\x00" * 200_001, headers=recording_api.auth("integration")
    )
    streamed = await recording_api.client.put(url, data=chunks(), headers=recording_api.auth("integration"))
    assert declared.status == streamed.status == 413
    assert (await streamed.json())["error"]["code"] == "body_too_large"
    store = recording_api.stack.store_dir
    assert not (store / "inbox" / "office" / "1795349999.1").exists()
    assert list((store / "tmp").glob("*.upload")) == []


async def test_push_is_refused_to_other_roles_pbxs_and_ids(recording_api: RecordingApi) -> None:
    data = b"RIFF"
    manager = await recording_api.client.put(
        "/api/v1/recordings/office/1.1", data=data, headers=recording_api.auth("manager")
    )
    unknown_pbx = await recording_api.client.put(
        "/api/v1/recordings/elsewhere/1.1", data=data, headers=recording_api.auth("admin")
    )
    dotted = await recording_api.client.put(
        "/api/v1/recordings/office/a..b", data=data, headers=recording_api.auth("admin")
    )
    empty = await recording_api.client.put(
        "/api/v1/recordings/office/1.1", data=b"", headers=recording_api.auth("admin")
    )
    assert manager.status == 403
    assert unknown_pbx.status == 404
    assert dotted.status == 404  # not a name the store files under: names nothing
    assert empty.status == 422


async def test_legal_hold_keeps_audio_that_retention_deletes_otherwise(recording_api: RecordingApi) -> None:
    stack = recording_api.stack
    stack.place("2026/11/22/second.wav", SHARED_RECORDINGS / f"{ANSWERED_BASE}.wav")
    second = await stack.add_call(make_call(4, recording_file=pbx_path("2026/11/22/second.wav")))
    await stack.worker.process_due()
    held = await recording_api.client.put(
        f"/api/v1/calls/{recording_api.call_id}/legal-hold",
        json={"legal_hold": True},
        headers=recording_api.auth("supervisor"),
    )
    refused = await recording_api.client.put(
        f"/api/v1/calls/{second}/legal-hold", json={"legal_hold": True}, headers=recording_api.auth("manager")
    )
    kept_file = stack.store_dir / (await stack.recording(recording_api.call_id)).files["mix"].path
    deleted = await stack.recording(second)
    deleted_file = stack.store_dir / deleted.files["mix"].path

    report = await apply_retention(
        stack.sessions, RecordingStore(stack.store_dir), 180, now=stack.clock() + timedelta(days=181)
    )

    assert held.status == 200 and (await held.json())["legal_hold"] is True
    assert refused.status == 403
    assert report.call_ids == [second]
    assert kept_file.exists() and not deleted_file.exists()
    assert (await stack.recording(second)).state is RecordingState.DELETED
    gone = await recording_api.client.get(
        f"/api/v1/calls/{second}/recording", headers=recording_api.auth("admin")
    )
    still = await recording_api.client.get(f"/api/v1/calls/{second}", headers=recording_api.auth("admin"))
    assert gone.status == 410
    assert still.status == 200 and (await still.json())["recording_state"] == "deleted"
