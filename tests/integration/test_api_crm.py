"""The CRM mirror, lookup and callbacks over real HTTP, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from calltracking.app.replay import replay_captures
from calltracking.config import PbxSettings
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.captures import capture, story_captures
from tests.helpers.listening import database_settings

INTEGRATION = "integration"
MANAGERS = [
    {"external_id": "m-anna", "name": "Anna Petrova", "extensions": ["101"]},
    {"external_id": "m-boris", "name": "Boris Ivanov", "extensions": ["102"]},
    {"external_id": "m-vera", "name": "Vera Smirnova", "extensions": ["103", "203"]},
]


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """The CRM's managers loaded, then the captures replayed with the default switches (leads for unknown
    inbound callers)."""
    async with running_api(database_url, tmp_path, seed=False) as harness:
        answer = await put(harness, "/api/v1/managers", {"items": MANAGERS})
        assert answer["created"] == 3
        await replay_captures(
            [capture(name) for name in story_captures()],
            PbxSettings(name="office"),
            database_settings(database_url, tmp_path),
            tmp_path / "spool",
        )
        yield harness


async def put(api: ApiHarness, path: str, body: Any, status: int = 200) -> Any:
    response = await api.client.put(path, json=body, headers=api.auth(INTEGRATION))
    assert response.status == status, await response.text()
    return await response.json()


async def get(api: ApiHarness, path: str, role: str = INTEGRATION, status: int = 200, **params: str) -> Any:
    response = await api.client.get(path, params=params, headers=api.auth(role))
    assert response.status == status, await response.text()
    return await response.json() if response.content_type == "application/json" else await response.text()


async def test_a_bulk_upsert_keeps_the_good_rows_and_reports_the_bad_ones(api: ApiHarness) -> None:
    items = [
        {"external_id": "c-1", "name": "Ivan", "phones": ["8 (916) 123-45-67"], "owner": "m-anna"},
        {"external_id": "c-2", "name": "Bad amount of phones", "phones": ["1"] * 21},
        {"external_id": "c 3", "name": "Bad id"},
        {"external_id": "c-4", "name": "Odd phone", "phones": ["ext. 12"]},
        {"name": "No id"},
    ]
    # An item that is not even an object breaks the documented shape: the whole request is refused.
    await put(api, "/api/v1/contacts", {"items": [*items, "not an object"]}, status=422)
    await get(api, "/api/v1/contacts/c-1", status=404)

    answer = await put(api, "/api/v1/contacts", {"items": items})
    assert (answer["created"], answer["updated"], answer["rejected"]) == (2, 0, 3)
    assert [(error["index"], error["external_id"]) for error in answer["errors"]] == [
        (1, "c-2"),
        (2, "c 3"),
        (4, None),
    ]
    again = await put(api, "/api/v1/contacts", {"items": items[:1]})
    assert (again["created"], again["updated"]) == (0, 1)

    contact = await get(api, "/api/v1/contacts/c-1")
    assert contact["phones"] == [{"raw": "8 (916) 123-45-67", "e164": "+79161234567", "is_valid": True}]
    odd = await get(api, "/api/v1/contacts/c-4")
    assert odd["phones"] == [{"raw": "ext. 12", "e164": None, "is_valid": False}]


async def test_a_contact_the_crm_sends_later_takes_over_its_calls(api: ApiHarness) -> None:
    calls = await get(api, "/api/v1/calls", number="+79161234567")
    assert {call["entity"]["kind"] for call in calls["items"]} == {"lead"}  # created at the first call

    await put(
        api,
        "/api/v1/contacts/c-1",
        {"external_id": "c-1", "name": "Ivan", "phones": ["+7 916 1234567"], "owner": "m-anna"},
        status=201,
    )
    history = await get(api, "/api/v1/calls", entity="contact:c-1")
    assert len(history["items"]) == len(calls["items"]) == 4
    detail = await get(api, f"/api/v1/calls/{history['items'][0]['id']}")
    assert detail["entity"]["external_id"] == "c-1"
    assert [c["kind"] for c in detail["match"]["candidates"]] == ["contact", "lead"]


async def test_single_put_needs_the_same_id_in_path_and_body(api: ApiHarness) -> None:
    response = await api.client.put(
        "/api/v1/leads/l-1", json={"external_id": "l-2"}, headers=api.auth(INTEGRATION)
    )
    # A body the schema allows, inconsistent with the resource it is PUT to (RFC 9110): a conflict.
    assert (response.status, (await response.json())["error"]["code"]) == (409, "conflict")


async def test_a_deleted_contact_stops_matching_but_can_still_be_read(api: ApiHarness) -> None:
    await put(api, "/api/v1/contacts/c-9", {"external_id": "c-9", "phones": ["+79057770000"]}, status=201)
    assert (await get(api, "/api/v1/lookup", number="+79057770000"))["found"] is True
    response = await api.client.delete("/api/v1/contacts/c-9", headers=api.auth(INTEGRATION))
    assert response.status == 204
    assert (await get(api, "/api/v1/contacts/c-9"))["is_active"] is False
    assert (await get(api, "/api/v1/lookup", number="+79057770000"))["found"] is False
    missing = await api.client.delete("/api/v1/contacts/c-404", headers=api.auth(INTEGRATION))
    assert missing.status == 404


async def test_deals_round_trip_with_exact_amounts(api: ApiHarness) -> None:
    deal = {
        "external_id": "d-1",
        "contact": "c-1",
        "owner": "m-anna",
        "stage": "proposal",
        "amount": "1500.50",
        "currency": "RUB",
        "opened_at": "2026-11-01T09:00:00Z",
    }
    await put(api, "/api/v1/deals/d-1", deal, status=201)
    stored = await get(api, "/api/v1/deals/d-1")
    assert (stored["amount"], stored["currency"], stored["is_won"]) == ("1500.50", "RUB", None)
    bad = await put(
        api, "/api/v1/deals", {"items": [{**deal, "amount": "1.234"}, {**deal, "currency": "rub"}]}
    )
    assert bad["rejected"] == 2


async def test_lookup_names_the_caller_and_the_owners_extension(api: ApiHarness) -> None:
    await put(api, "/api/v1/companies/co-7", {"external_id": "co-7", "name": "Orlov & Sons"}, status=201)
    await put(
        api,
        "/api/v1/contacts/c-100",
        {
            "external_id": "c-100",
            "name": "Ivan Orlov",
            "company": "co-7",
            "owner": "m-vera",
            "phones": ["8 (926) 111-22-33"],
        },
        status=201,
    )
    found = await get(api, "/api/v1/lookup", number="+79261112233")
    assert found["name"] == "Ivan Orlov (Orlov & Sons)"
    assert found["extension"] == "103"
    assert found["entity"]["external_id"] == "c-100"
    assert found["manager"] == {"external_id": "m-vera", "name": "Vera Smirnova", "extension": "103"}
    assert (
        await get(api, "/api/v1/lookup", number="89261112233", format="text")
        == "Ivan Orlov (Orlov & Sons)|103"
    )
    assert await get(api, "/api/v1/lookup", number="+79990000000", format="text") == "|"
    assert await get(api, "/api/v1/lookup", number="12", format="text") == "|"


async def test_lookup_of_an_auto_lead_routes_to_the_manager_who_answered(api: ApiHarness) -> None:
    found = await get(api, "/api/v1/lookup", number="+79161234567")
    # Replayed by name, the ring group's call (answered by 102) is this number's first.
    assert (found["entity"]["external_id"], found["extension"]) == ("ct-79161234567", "102")


async def test_new_leads_can_be_polled_by_creation_time(api: ApiHarness) -> None:
    page = await get(api, "/api/v1/leads", limit="2")
    assert [lead["origin"] for lead in page["items"]] == ["call", "call"]
    rest = await get(api, "/api/v1/leads", cursor=page["next_cursor"])
    assert len(page["items"]) + len(rest["items"]) == 6  # every inbound number (none is in the CRM here)
    latest = max(lead["created_at"] for lead in page["items"] + rest["items"])
    newest = await get(api, "/api/v1/leads", created_since=latest)
    assert [lead["created_at"] for lead in newest["items"]] == [latest]


async def test_callbacks_list_and_report(api: ApiHarness) -> None:
    open_tasks = await get(api, "/api/v1/callbacks", state="open")
    assert sorted(task["number"] for task in open_tasks["items"]) == [
        "+79035550101",
        "+79035550102",
        "+79035550103",
        "+79261112244",
    ]
    # The captures are from the past: every open task is long overdue.
    overdue = await get(api, "/api/v1/callbacks", state="overdue")
    assert len(overdue["items"]) == 4
    assert (await get(api, "/api/v1/callbacks", state="done"))["items"] == []

    report = await get(api, "/api/v1/callbacks/report")
    assert report["total"]["tasks"] == 4
    assert (report["total"]["overdue"], report["total"]["share_returned_in_time"]) == (4, 0.0)
    assert [task["number"] for task in report["unreturned"]][:1] == ["+79035550101"]


async def test_a_manager_token_sees_only_its_own_callbacks(api: ApiHarness) -> None:
    everyone = (await get(api, "/api/v1/callbacks"))["items"]
    mine = (await get(api, "/api/v1/callbacks", role="manager", manager="m-boris"))["items"]
    # The manager token is for extension 101 (Anna): asking for Boris's tasks still shows only hers.
    assert {task["manager"] for task in mine} <= {"m-anna"}
    assert {task["id"] for task in mine} == {task["id"] for task in everyone if task["manager"] == "m-anna"}


async def test_click_to_call_by_crm_manager_id_rings_their_extension(api: ApiHarness) -> None:
    # No PBX is connected here: the request is refused at once, but says which extension it was for.
    mine = await api.client.post(
        "/api/v1/calls/originate",
        json={"manager": "m-anna", "number": "89161234567"},
        headers=api.auth("manager"),
    )
    assert mine.status == 503
    request_id = (await mine.json())["error"]["details"]["request_id"]
    status = await get(api, f"/api/v1/calls/originate/{request_id}")
    assert status["extension"] == "101"

    theirs = await api.client.post(
        "/api/v1/calls/originate",
        json={"manager": "m-boris", "number": "89161234567"},
        headers=api.auth("manager"),
    )
    assert theirs.status == 403
    unknown = await api.client.post(
        "/api/v1/calls/originate",
        json={"manager": "m:nobody", "number": "89161234567"},
        headers=api.auth(INTEGRATION),
    )
    assert unknown.status == 404  # no such manager, and not an extension either


async def test_lookup_breaks_a_tie_by_the_open_deal_and_falls_back_to_the_last_digits(
    api: ApiHarness,
) -> None:
    same = "+7 905 111 22 33"
    await put(api, "/api/v1/contacts", {"items": [{"external_id": "c-a", "name": "Alpha", "phones": [same]}]})
    await put(api, "/api/v1/contacts", {"items": [{"external_id": "c-b", "name": "Beta", "phones": [same]}]})
    assert (await get(api, "/api/v1/lookup", number=same))["entity"]["external_id"] == "c-a"  # mirrored first
    await put(api, "/api/v1/deals/d-b", {"external_id": "d-b", "contact": "c-b", "stage": "new"}, status=201)
    assert (await get(api, "/api/v1/lookup", number=same))["entity"]["external_id"] == "c-b"

    await put(
        api,
        "/api/v1/leads/l-odd",
        {"external_id": "l-odd", "name": "Odd", "phones": ["x5-905-777-88-99"]},
        status=201,
    )
    found = await get(api, "/api/v1/lookup", number="89057778899")
    assert (found["entity"]["external_id"], found["entity"]["matched_by"]) == ("l-odd", "tail")


async def test_a_cursor_beyond_any_id_is_refused_not_a_server_error(api: ApiHarness) -> None:
    for path in ("/api/v1/leads", "/api/v1/callbacks"):
        response = await api.client.get(path, params={"cursor": "3248255163"}, headers=api.auth(INTEGRATION))
        assert (response.status, (await response.json())["error"]["code"]) == (422, "invalid_request")
