"""Each role against each endpoint, over real HTTP: who may do what is written down here, once, and both
the route declarations and the running service must agree with it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.app import all_operations
from tests.helpers.api import ApiHarness, running_api

ADMIN, INTEGRATION, SUPERVISOR, MANAGER = "admin", "integration", "supervisor", "manager"
EVERYONE = {ADMIN, INTEGRATION, SUPERVISOR, MANAGER}
# Supervisors read; only the CRM (integration) and admins configure webhooks; managers and the CRM dial.
ALLOWED: dict[tuple[str, str], set[str]] = {
    ("GET", "/readyz"): EVERYONE,
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
    ("PUT", "/api/v1/recordings/{pbx}/{linkedid}"): {ADMIN, INTEGRATION},
    ("PUT", "/api/v1/calls/{call_id}/legal-hold"): {ADMIN, SUPERVISOR},
}
PUBLIC = {("GET", "/healthz")}


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
