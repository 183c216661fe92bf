"""`/api/v1/reports/quality` over HTTP on both databases: four scored calls counted by hand (Anna: the
good call, 100, and the bad one, 25; Boris: the bad one; extension 109, no manager: the good one), the
team filter, a manager token's own line only (JSON and CSV), a bad period 422."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from calltracking.crm.mirror import ManagerIn
from calltracking.crm.repository import upsert_managers
from calltracking.quality.checklist import checklist_in_force
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.factories import make_call
from tests.helpers.quality import BAD, GOOD, NOW, store_scored

PERIOD = {"from": "2026-10-01", "to": "2026-10-31", "tz": "Europe/Moscow"}
EXAMPLE = checklist_in_force(None)


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[ApiHarness, dict[str, int]]]:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        async with harness.sessions.begin() as session:
            await upsert_managers(
                session,
                [
                    ManagerIn(external_id="m-anna", name="Anna", extensions=["101"], team="north"),
                    ManagerIn(external_id="m-boris", name="Boris", extensions=["102"], team="north"),
                ],
                NOW,
            )

        def call(n: int, manager: str, day: int) -> object:
            return make_call(n, manager=manager, started_at=datetime(2026, 10, day, 9, tzinfo=UTC))

        ids = {
            "anna_good": await store_scored(harness.sessions, call(1, "101", 2), GOOD, EXAMPLE),  # type: ignore[arg-type]
            "anna_bad": await store_scored(harness.sessions, call(2, "101", 3), BAD, EXAMPLE),  # type: ignore[arg-type]
            "boris_bad": await store_scored(harness.sessions, call(3, "102", 4), BAD, EXAMPLE),  # type: ignore[arg-type]
            "ext_good": await store_scored(harness.sessions, call(4, "109", 5), GOOD, EXAMPLE),  # type: ignore[arg-type]
            # Started 30 September 23:00 UTC: 1 October in Moscow, in the period.
            "edge": await store_scored(
                harness.sessions,
                make_call(5, manager="102", started_at=datetime(2026, 9, 30, 21, 30, tzinfo=UTC)),
                GOOD,
                EXAMPLE,
            ),
            # 31 October 21:30 UTC is 1 November in Moscow: out.
            "late": await store_scored(
                harness.sessions,
                make_call(6, manager="102", started_at=datetime(2026, 10, 31, 21, 30, tzinfo=UTC)),
                BAD,
                EXAMPLE,
            ),
        }
        yield harness, ids


async def report(api: ApiHarness, role: str, **query: str) -> dict[str, object]:
    response = await api.client.get("/api/v1/reports/quality", params=PERIOD | query, headers=api.auth(role))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert isinstance(body, dict)
    return body


async def test_a_supervisor_gets_every_line_counted_by_hand(api: tuple[ApiHarness, dict[str, int]]) -> None:
    harness, ids = api
    body = await report(harness, "supervisor")
    lines = {line["key"]: line for line in body["managers"]}  # type: ignore[attr-defined]
    assert list(lines) == ["m-anna", "m-boris", "ext:109"]
    anna = lines["m-anna"]
    assert (anna["calls_scored"], anna["average_score"], anna["passed_share"]) == (2, 62.5, 0.5)
    assert (anna["name"], anna["team"]) == ("Anna", "north")
    assert anna["score_histogram"]["20-30"] == anna["score_histogram"]["90-100"] == 1
    assert sum(anna["score_histogram"].values()) == 2
    # Talk shares 0.316 and 0.641: quartiles between them.
    assert anna["talk_share_quartiles"] == pytest.approx([0.397, 0.4785, 0.560], abs=0.001)
    assert anna["averages"]["manager_hesitations_per_minute"] == 10.0
    assert (anna["hit_rates"]["required.greeting"], anna["hit_rates"]["forbidden.dont_know"]) == (0.5, 0.5)
    assert anna["worst_calls"][0] == {
        "call_id": ids["anna_bad"],
        "started_at": "2026-10-03T09:00:00Z",
        "score": 25.0,
        "passed": False,
        "call": f"/api/v1/calls/{ids['anna_bad']}",
        "transcript": f"/api/v1/calls/{ids['anna_bad']}/transcript",
    }
    assert [call["call_id"] for call in anna["worst_calls"]] == [ids["anna_bad"], ids["anna_good"]]
    boris = lines["m-boris"]
    assert (boris["calls_scored"], boris["average_score"]) == (2, 62.5)  # the bad call and the edge one
    total = body["total"]
    assert (total["key"], total["calls_scored"], total["average_score"], total["passed_share"]) == (  # type: ignore[index]
        "total",
        5,
        70.0,
        0.6,
    )
    assert body["period"] == {
        "from": "2026-09-30T21:00:00Z",
        "to": "2026-10-31T21:00:00Z",
        "tz": "Europe/Moscow",
    }


async def test_one_team_and_one_manager(api: tuple[ApiHarness, dict[str, int]]) -> None:
    harness, _ = api
    north = await report(harness, "supervisor", team="north")
    assert [line["key"] for line in north["managers"]] == ["m-anna", "m-boris"]  # type: ignore[attr-defined]
    assert (north["total"]["key"], north["total"]["calls_scored"]) == ("team:north", 4)  # type: ignore[index]
    one = await report(harness, "supervisor", manager="ext:109")
    assert [line["key"] for line in one["managers"]] == ["ext:109"]  # type: ignore[attr-defined]


async def test_a_manager_token_gets_only_its_own_line_in_json_and_csv(
    api: tuple[ApiHarness, dict[str, int]],
) -> None:
    harness, _ = api
    # The manager token is extension 101's: Anna's.
    body = await report(harness, "manager")
    assert ([line["key"] for line in body["managers"]], body["total"]) == (["m-anna"], None)  # type: ignore[attr-defined]
    other = await report(harness, "manager", manager="m-boris")
    assert (other["managers"], other["total"]) == ([], None)
    response = await harness.client.get(
        "/api/v1/reports/quality", params=PERIOD, headers=harness.auth("manager") | {"Accept": "text/csv"}
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(row["key"], row["calls_scored"], row["average_score"]) for row in rows] == [
        ("m-anna", "2", "62.5")
    ]
    supervisor = await harness.client.get(
        "/api/v1/reports/quality", params=PERIOD, headers=harness.auth("supervisor") | {"Accept": "text/csv"}
    )
    assert [row["key"] for row in csv.DictReader(io.StringIO(await supervisor.text()))] == [
        "m-anna",
        "m-boris",
        "ext:109",
        "total",
    ]


@pytest.mark.parametrize(
    "query", [{"from": "2026-13-01"}, {"from": "2026-10-31", "to": "2026-10-01"}, {"tz": "Mars/Base"}]
)
async def test_a_bad_period_is_422(api: tuple[ApiHarness, dict[str, int]], query: dict[str, str]) -> None:
    harness, _ = api
    response = await harness.client.get(
        "/api/v1/reports/quality", params=PERIOD | query, headers=harness.auth("supervisor")
    )
    assert response.status == 422
