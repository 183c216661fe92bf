"""Call history over real HTTP, on both databases, with every kind of caller."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from calltracking.access.repository import revoke_token
from tests.helpers.api import MANAGER, ApiHarness, running_api
from tests.helpers.captures import story_captures


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path) as harness:
        yield harness


async def get(api: ApiHarness, path: str, role: str = "supervisor", **params: Any) -> tuple[int, Any]:
    response = await api.client.get(path, params=params, headers=api.auth(role))
    return response.status, await response.json()


async def test_history_is_newest_first_and_pages_through_everything_once(api: ApiHarness) -> None:
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 5} | ({"cursor": cursor} if cursor else {})
        status, page = await get(api, "/api/v1/calls", **params)
        assert status == 200
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen)) == len(story_captures())
    _, everything = await get(api, "/api/v1/calls", limit=100)
    starts = [item["started_at"] for item in everything["items"]]
    assert starts == sorted(starts, reverse=True)
    assert [item["id"] for item in everything["items"]] == seen


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"direction": "outbound"}, 4),
        ({"status": "missed"}, 3),
        ({"direction": "inbound", "status": "answered"}, 3),
        ({"number": "8 (916) 123-45-67"}, 4),
        ({"did": "74951110003"}, 2),
        ({"manager": "102"}, 3),
        ({"has_recording": "true"}, 5),  # the answered calls; the others left header-only files
        ({"has_recording": "false"}, 7),
        ({"from": "2026-11-22T12:20:00Z"}, 5),
        ({"to": "2026-11-22T12:19:30Z"}, 5),
    ],
)
async def test_filters(api: ApiHarness, params: dict[str, str], expected: int) -> None:
    status, page = await get(api, "/api/v1/calls", limit=100, **params)
    assert status == 200
    assert len(page["items"]) == expected, [(c["direction"], c["status"], c["caller"]) for c in page["items"]]


async def test_csv_export(api: ApiHarness) -> None:
    response = await api.client.get(
        "/api/v1/calls", params={"limit": 3}, headers={**api.auth("integration"), "Accept": "text/csv"}
    )
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    _, page = await get(api, "/api/v1/calls", limit=3)

    assert response.status == 200 and response.content_type == "text/csv"
    # The three newest calls, as the JSON page lists them.
    assert [(row["direction"], row["status"], row["caller"], row["callee"]) for row in rows] == [
        ("outbound", "failed", "103", "89165550000"),
        ("outbound", "answered", "101", "89161234567"),
        ("internal", "answered", "101", "102"),
    ]
    assert [int(row["id"]) for row in rows] == [item["id"] for item in page["items"]]
    assert response.headers["X-Next-Cursor"]


async def test_one_call_with_its_legs(api: ApiHarness) -> None:
    _, page = await get(api, "/api/v1/calls", did="74951110002")
    [call] = page["items"]
    status, detail = await get(api, f"/api/v1/calls/{call['id']}")

    assert status == 200
    # 102 reported ringing a few milliseconds before 101.
    assert (detail["answered_by"], detail["rang"]) == ("102", ["102", "101"])
    assert [leg["kind"] for leg in detail["legs"]] == ["trunk", "extension", "extension"]


async def test_a_manager_sees_only_own_calls_and_others_do_not_exist(api: ApiHarness) -> None:
    _, mine = await get(api, "/api/v1/calls", role="manager", limit=100, manager="102")
    assert {item["manager"] for item in mine["items"]} == {MANAGER}
    _, all_calls = await get(api, "/api/v1/calls", limit=100)
    someone_elses = next(item for item in all_calls["items"] if item["manager"] not in (MANAGER, None))

    status, body = await get(api, f"/api/v1/calls/{someone_elses['id']}", role="manager")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _ = await get(api, f"/api/v1/calls/{mine['items'][0]['id']}", role="manager")
    assert status == 200


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "unauthorized"),
        ({"Authorization": "Bearer ct_not-a-real-token"}, 401, "unauthorized"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, "unauthorized"),
        ({"Authorization": "Bearer " + "x" * 5000}, 401, "unauthorized"),
    ],
)
async def test_missing_or_wrong_token(
    api: ApiHarness, headers: dict[str, str], status: int, code: str
) -> None:
    response = await api.client.get("/api/v1/calls", headers=headers)
    assert (response.status, (await response.json())["error"]["code"]) == (status, code)


async def test_revoked_token_stops_working(api: ApiHarness) -> None:
    assert (await get(api, "/api/v1/calls", role="integration"))[0] == 200
    async with api.sessions.begin() as session:
        prefix = api.tokens["integration"][:10]
        assert await revoke_token(session, prefix) == 1

    status, body = await get(api, "/api/v1/calls", role="integration")
    assert (status, body["error"]["code"]) == (401, "unauthorized")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "many"},
        {"direction": "sideways"},
        {"from": "yesterday"},
        {"cursor": "!!!"},
        {"cursor": "WyJub3QtYS1kYXRlIiwgMV0"},
        {"unknown": "1"},
        {"number": "1" * 40},
    ],
)
async def test_bad_query_is_a_422_with_details(api: ApiHarness, params: dict[str, str]) -> None:
    status, body = await get(api, "/api/v1/calls", **params)
    assert status == 422
    assert body["error"]["code"] == "invalid_request"


async def test_wrong_role_is_403(api: ApiHarness) -> None:
    status, body = await get(api, "/metrics", role="manager")
    assert (status, body["error"]["code"]) == (403, "forbidden")


async def test_health_ready_metrics(api: ApiHarness) -> None:
    assert (await api.client.get("/healthz")).status == 200
    status, ready = await get(api, "/readyz", role="integration")
    assert (status, ready["ready"], ready["database"]) == (200, True, True)
    response = await api.client.get("/metrics", headers=api.auth("admin"))
    text = await response.text()
    assert response.status == 200 and "calltracking_http_request_seconds" in text
    assert 'calltracking_pbx_connected{pbx="office"} 1.0' in text


async def test_unknown_path_and_method_are_json_errors(api: ApiHarness) -> None:
    response = await api.client.get("/api/v1/nope", headers=api.auth("admin"))
    assert (response.status, (await response.json())["error"]["code"]) == (404, "not_found")
    response = await api.client.delete("/api/v1/calls", headers=api.auth("admin"))
    assert (response.status, (await response.json())["error"]["code"]) == (405, "method_not_allowed")


async def test_rate_limit_per_token(database_url: str, tmp_path: Path) -> None:
    now = [1000.0]  # the limiter's clock: still while the burst is spent, then moved on by hand
    async with running_api(
        database_url, tmp_path, seed=False, clock=lambda: now[0], rate_limit_per_minute=60
    ) as api:

        async def status(role: str) -> int:
            return (await api.client.get("/api/v1/calls", headers=api.auth(role))).status

        burst = [await status("integration") for _ in range(11)]
        limited = await api.client.get("/api/v1/calls", headers=api.auth("integration"))
        body = await limited.json()
        other = await status("supervisor")
        now[0] += 1.0  # at 60 a minute, one more request's worth
        refilled = [await status("integration") for _ in range(2)]

    assert burst == [200] * 10 + [429]  # a burst of 10 (a sixth of the minute's rate, at least 10)
    assert (limited.status, body["error"]["code"], body["error"]["details"]) == (
        429,
        "rate_limited",
        {"retry_after_seconds": 1.0},
    )
    assert other == 200
    assert refilled == [200, 429]


async def test_a_nul_byte_in_the_query_is_a_422_not_a_database_error(api: ApiHarness) -> None:
    status, body = await get(api, "/api/v1/calls", number="8916\x001234567")
    assert (status, body["error"]["code"]) == (422, "invalid_request")
    status, body = await get(api, "/api/v1/calls", sort="-started_at", limit="5", cursor="a\x00b")
    assert (status, body["error"]["code"]) == (422, "invalid_request")
