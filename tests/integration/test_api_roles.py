"""Each role against each endpoint, over real HTTP: who may do what is written down here, once, and both
the route declarations and the running service must agree with it."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.app import all_operations
from api.keys import HUB
from calltracking.calls.record import CallCompleted, CallProgress, CallRecord, Direction, ProgressKind
from calltracking.calls.repository import list_calls
from tests.helpers.api import ApiHarness, running_api

ADMIN, INTEGRATION, SUPERVISOR, MANAGER = "admin", "integration", "supervisor", "manager"
EVERYONE = {ADMIN, INTEGRATION, SUPERVISOR, MANAGER}
# Supervisors read; only the CRM (integration) and admins configure webhooks; managers and the CRM dial.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("GET", "/metrics"): {ADMIN, SUPERVISOR},
    ("GET", "/api/v1/calls"): EVERYONE,
    ("GET", "/api/v1/calls/{call_id}"): EVERYONE,
    ("POST", "/api/v1/calls/originate"): {ADMIN, INTEGRATION, MANAGER},
    ("GET", "/api/v1/calls/originate/{request_id}"): {ADMIN, INTEGRATION, MANAGER},
    ("GET", "/api/v1/events"): EVERYONE,
    ("POST", "/api/v1/webhooks"): {ADMIN, INTEGRATION},
    ("GET", "/api/v1/webhooks"): {ADMIN, INTEGRATION},
    ("GET", "/api/v1/webhooks/{webhook_id}"): {ADMIN, INTEGRATION},
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): {ADMIN, INTEGRATION},
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): {ADMIN, INTEGRATION},
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): {ADMIN, INTEGRATION},
    # The CRM mirror: the CRM (and admins) write it, supervisors may read it, managers only through calls.
    **{
        (method, f"/api/v1/{plural}{suffix}"): roles
        for plural in ("managers", "contacts", "companies", "leads", "deals")
        for method, suffix, roles in (
            ("PUT", "", {ADMIN, INTEGRATION}),
            ("PUT", "/{external_id}", {ADMIN, INTEGRATION}),
            ("GET", "/{external_id}", {ADMIN, INTEGRATION, SUPERVISOR}),
            ("DELETE", "/{external_id}", {ADMIN, INTEGRATION}),
        )
    },
    ("GET", "/api/v1/leads"): {ADMIN, INTEGRATION, SUPERVISOR},
    ("GET", "/api/v1/lookup"): {ADMIN, INTEGRATION, SUPERVISOR},
    # Managers see their own callback tasks and SLA.
    ("GET", "/api/v1/callbacks"): EVERYONE,
    ("GET", "/api/v1/callbacks/report"): EVERYONE,
    ("GET", "/api/v1/duplicates"): {ADMIN, INTEGRATION, SUPERVISOR},
    ("POST", "/api/v1/duplicates/merge"): {ADMIN, INTEGRATION},
    # Recordings: managers hear their own calls; a PBX pushes with the CRM's (or an admin's) token; a
    # supervisor decides what is kept for a dispute.
    ("GET", "/api/v1/calls/{call_id}/recording"): EVERYONE,
    ("GET", "/api/v1/calls/{call_id}/transcript"): EVERYONE,
    ("PUT", "/api/v1/recordings/{pbx}/{linkedid}"): {ADMIN, INTEGRATION},
    ("PUT", "/api/v1/calls/{call_id}/legal-hold"): {ADMIN, SUPERVISOR},
    # Call tracking: the website (through the CRM's or an admin's token) asks for numbers; reports are
    # for whoever reads every call.
    ("POST", "/api/v1/tracking/sessions"): {ADMIN, INTEGRATION},
    ("GET", "/api/v1/reports/sources"): {ADMIN, INTEGRATION, SUPERVISOR},
    # Managers too: their own line only (tests/integration/test_quality_report.py).
    ("GET", "/api/v1/reports/quality"): EVERYONE,
    ("GET", "/api/v1/stats/queues"): {ADMIN, INTEGRATION, SUPERVISOR},
    # Managers too: their own line only (tests/integration/test_api_manager_stats.py).
    ("GET", "/api/v1/stats/managers"): EVERYONE,
    ("GET", "/api/v1/stats/managers/{manager_id}"): EVERYONE,
}
# Probes (a load balancer, an orchestrator) carry no token; neither answer needs the database.
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}


def test_every_endpoint_has_its_roles_written_down() -> None:
    declared = {(op.method, op.path): {role.value for role in op.roles} for op in all_operations().operations}
    assert {key for key in declared if key not in PUBLIC} == set(ALLOWED)
    assert {key: declared[key] for key in ALLOWED} == ALLOWED


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        yield harness


@pytest.mark.parametrize(("method", "path"), sorted(ALLOWED))
async def test_each_role_is_let_in_or_turned_away(api: ApiHarness, method: str, path: str) -> None:
    concrete = path.replace("{call_id}", "1").replace("{webhook_id}", "1").replace("{delivery_id}", "1")
    concrete = concrete.replace("{request_id}", "req-1").replace("{external_id}", "x-1")
    concrete = concrete.replace("{pbx}", "office").replace("{linkedid}", "1795349935.0")
    concrete = concrete.replace("{manager_id}", "ext:101")
    answers = {}
    for role in sorted(EVERYONE):
        response = await api.client.request(method, concrete, headers=api.auth(role), json={})
        answers[role] = response.status
        if response.status >= 400:
            assert "error" in await response.json()

    turned_away = {role for role, status in answers.items() if status == 403}
    assert turned_away == EVERYONE - ALLOWED[(method, path)], answers
    assert 401 not in answers.values()
    anonymous = await api.client.request(method, concrete, json={})
    assert anonymous.status == 401


async def test_a_manager_cannot_dial_from_someone_elses_extension(api: ApiHarness) -> None:
    response = await api.client.post(
        "/api/v1/calls/originate",
        json={"extension": "102", "number": "89161234567"},
        headers=api.auth(MANAGER),
    )
    assert (response.status, (await response.json())["error"]["code"]) == (403, "forbidden")


async def test_an_oversized_body_is_refused_with_a_json_error(api: ApiHarness) -> None:
    response = await api.client.post(
        "/api/v1/webhooks",
        data=io.BytesIO(b'{"url": "' + b"a" * (2 * 1024 * 1024) + b'"}'),
        headers={**api.auth(INTEGRATION), "Content-Type": "application/json"},
    )
    assert (response.status, (await response.json())["error"]["code"]) == (413, "body_too_large")


async def test_a_body_that_is_not_json_is_a_422(api: ApiHarness) -> None:
    response = await api.client.post(
        "/api/v1/webhooks",
        data=b"{nope",
        headers={**api.auth(INTEGRATION), "Content-Type": "application/json"},
    )
    assert (response.status, (await response.json())["error"]["code"]) == (422, "invalid_request")


# One visibility rule on every channel (api/visibility.py): a manager sees, as JSON, as CSV, as
# audio and live, exactly the calls whose manager is its extension; of any other call only the ring at
# its own phone.
MANAGERS = [("manager", "101"), ("other_manager", "103")]
END = "end-of-events"


@pytest.fixture
async def seeded(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path) as harness:
        yield harness


@pytest.mark.parametrize(("token", "extension"), MANAGERS)
async def test_a_manager_sees_the_same_calls_on_every_channel(
    seeded: ApiHarness, token: str, extension: str
) -> None:
    api = seeded
    async with api.sessions() as session:
        stored = await list_calls(session)
    theirs = {s.id for s in stored if s.call.manager == extension}
    rang_for_someone_else = {s.id for s in stored if extension in s.call.rang and s.id not in theirs}
    # The story holds calls of theirs, calls of others, and calls that rang them but were someone else's.
    assert theirs and rang_for_someone_else and theirs != {s.id for s in stored}

    live = await _live_events(api, token, [(s.id, s.call) for s in stored], extension)
    completed = {m["call"]["id"] for m in live if m["type"] == "call.completed"}
    progress = {(m["type"], m["extension"]) for m in live if m["type"] != "call.completed"}
    listed = await _listed_ids(api, token)
    exported = await _exported_ids(api, token)
    readable = {s.id for s in stored if await _status(api, token, f"/api/v1/calls/{s.id}") == 200}
    audible = {s.id for s in stored if await _recording_visible(api, token, s.id)}

    assert completed == listed == exported == readable == audible == theirs
    assert progress <= {("call.ringing", extension), ("call.answered", extension)}
    rings = {m["linkedid"] for m in live if m["type"] == "call.ringing"}
    assert {s.call.pbx_call_id for s in stored if s.id in rang_for_someone_else} <= rings
    callbacks = await api.client.get("/api/v1/callbacks", headers=api.auth(token))
    assert {item["manager"] for item in (await callbacks.json())["items"]} <= {f"extension:{extension}"}


async def _live_events(
    api: ApiHarness, token: str, calls: list[tuple[int, CallRecord]], extension: str
) -> list[dict[str, Any]]:
    """What the token's WebSocket receives while every stored call is played out on the hub as it
    happened: a ring at each extension that rang, the answer, the completed record."""
    hub = api.client.server.app[HUB]
    runner = asyncio.create_task(hub.run())
    socket = await api.client.ws_connect("/api/v1/events", headers=api.auth(token))
    try:
        for call_id, call in calls:
            for rung in call.rang:
                hub.publish(_progress(call, ProgressKind.RINGING, rung))
            if call.answered_at is not None and call.manager is not None:
                hub.publish(_progress(call, ProgressKind.ANSWERED, call.manager))
            hub.publish(CallCompleted(call_id=call_id, call=call))
        # A ring of its own last, so the socket has had everything once this arrives.
        hub.publish(
            CallProgress(
                ProgressKind.RINGING, "office", END, datetime.now(UTC), Direction.INBOUND, "1", "2", extension
            )
        )
        received = []
        async with asyncio.timeout(30):
            while (message := await socket.receive_json()).get("linkedid") != END:
                received.append(message)
        return received
    finally:
        await socket.close()
        runner.cancel()


def _progress(call: CallRecord, kind: ProgressKind, extension: str) -> CallProgress:
    return CallProgress(
        kind, call.pbx, call.pbx_call_id, call.started_at, call.direction, call.caller, call.callee, extension
    )


async def _listed_ids(api: ApiHarness, token: str) -> set[int]:
    response = await api.client.get("/api/v1/calls", params={"limit": 500}, headers=api.auth(token))
    return {item["id"] for item in (await response.json())["items"]}


async def _exported_ids(api: ApiHarness, token: str) -> set[int]:
    response = await api.client.get(
        "/api/v1/calls", params={"limit": 500}, headers={**api.auth(token), "Accept": "text/csv"}
    )
    assert response.content_type == "text/csv"
    return {int(row["id"]) for row in csv.DictReader(io.StringIO(await response.text()))}


async def _status(api: ApiHarness, token: str, path: str) -> int:
    response = await api.client.get(path, headers=api.auth(token))
    return response.status


async def _recording_visible(api: ApiHarness, token: str, call_id: int) -> bool:
    """Whether the recording endpoint admits the call exists: its audio, or why there is none."""
    response = await api.client.get(f"/api/v1/calls/{call_id}/recording", headers=api.auth(token))
    if response.status == 200:
        return True
    return bool((await response.json())["error"]["code"] != "not_found")
