"""The queue report over real HTTP, on both databases: constructed calls counted by hand, and the queue
captures replayed."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.app.replay import replay_captures
from calltracking.calls.record import CallRecord, CallStatus
from calltracking.calls.repository import save_calls
from calltracking.config import PbxSettings
from calltracking.stats.queue_repository import queue_report_between
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.captures import capture, story_captures
from tests.helpers.factories import make_call
from tests.helpers.listening import database_settings

PATH = "/api/v1/stats/queues"
# 1 March 2026 in Moscow (UTC+3): [28 Feb 21:00 UTC, 1 Mar 21:00 UTC).
DAY = {"from": "2026-03-01", "to": "2026-03-01", "tz": "Europe/Moscow"}
START = datetime(2026, 2, 28, 21, 0, tzinfo=UTC)
END = START + timedelta(days=1)


def answered(
    n: int, queue: str, agent: str, wait: float, talk: float, at: datetime, **changes: Any
) -> CallRecord:
    return make_call(
        n,
        queue=queue,
        answered_by=agent,
        manager=agent,
        queue_wait_seconds=wait,
        talk_seconds=talk,
        started_at=at,
        answered_at=at + timedelta(seconds=wait),
        ended_at=at + timedelta(seconds=wait + talk),
        **changes,
    )


def unanswered(n: int, queue: str, wait: float, at: datetime, *, abandoned: bool) -> CallRecord:
    return make_call(
        n,
        queue=queue,
        status=CallStatus.MISSED,
        answered_by=None,
        manager=None,
        abandoned=abandoned,
        queue_wait_seconds=wait,
        talk_seconds=0.0,
        started_at=at,
        answered_at=None,
        ended_at=at + timedelta(seconds=wait),
    )


HOUR = timedelta(hours=1)
CALLS = [
    # sales: the first call starts exactly at the period's start (counted).
    answered(1, "sales", "102", 5.0, 60.0, START),
    answered(2, "sales", "102", 15.0, 120.0, START + HOUR),
    answered(3, "sales", "103", 25.0, 30.0, START + 2 * HOUR),
    answered(4, "sales", "103", 40.0, 90.0, START + 3 * HOUR),
    unanswered(5, "sales", 4.0, START + 4 * HOUR, abandoned=True),
    unanswered(6, "sales", 30.0, START + 5 * HOUR, abandoned=True),
    unanswered(7, "sales", 60.0, START + 6 * HOUR, abandoned=False),  # the queue timed out
    # Outside the period: exactly at its end, and a second before its start.
    answered(8, "sales", "102", 1.0, 10.0, END),
    answered(9, "sales", "102", 1.0, 10.0, START - timedelta(seconds=1)),
    # Not queued at all.
    make_call(10, started_at=START + HOUR),
    # support
    answered(11, "support", "101", 2.0, 10.0, START + 7 * HOUR),
    unanswered(12, "support", 12.0, START + 8 * HOUR, abandoned=True),
    # Another PBX's sales queue.
    answered(13, "sales", "201", 8.0, 20.0, START + 9 * HOUR, pbx="branch"),
]

NO_AGENTS: list[dict[str, Any]] = []
SALES = {
    "queue": "sales",
    "offered": 7,
    "answered": 4,
    "abandoned": 2,
    "other_unanswered": 1,
    "short_abandoned": 1,  # 4 s; 30 s is not
    "abandoned_average_wait_seconds": 17.0,  # (4 + 30) / 2
    "abandoned_p90_wait_seconds": 27.4,  # 4 + 0.9 * (30 - 4)
    "answered_within_service_level": 2,  # 5 s and 15 s of 5, 15, 25, 40
    "service_level": 0.2857,  # 2 / 7
    "answered_average_wait_seconds": 21.25,  # 85 / 4
    "answered_p90_wait_seconds": 35.5,  # rank 2.7 of 5, 15, 25, 40: 25 + 0.7 * 15
    "agents": [
        {"agent": "102", "answered": 2, "talk_seconds": 180.0, "average_talk_seconds": 90.0},
        {"agent": "103", "answered": 2, "talk_seconds": 120.0, "average_talk_seconds": 60.0},
    ],
}
SUPPORT = {
    "queue": "support",
    "offered": 2,
    "answered": 1,
    "abandoned": 1,
    "other_unanswered": 0,
    "short_abandoned": 0,  # 12 s
    "abandoned_average_wait_seconds": 12.0,
    "abandoned_p90_wait_seconds": 12.0,
    "answered_within_service_level": 1,
    "service_level": 0.5,
    "answered_average_wait_seconds": 2.0,
    "answered_p90_wait_seconds": 2.0,
    "agents": [{"agent": "101", "answered": 1, "talk_seconds": 10.0, "average_talk_seconds": 10.0}],
}
TOTAL = {
    "queue": None,
    "offered": 9,
    "answered": 5,
    "abandoned": 3,
    "other_unanswered": 1,
    "short_abandoned": 1,
    "abandoned_average_wait_seconds": 15.333,  # (4 + 30 + 12) / 3
    "abandoned_p90_wait_seconds": 26.4,  # rank 1.8 of 4, 12, 30: 12 + 0.8 * 18
    "answered_within_service_level": 3,
    "service_level": 0.3333,
    "answered_average_wait_seconds": 17.4,  # 87 / 5
    "answered_p90_wait_seconds": 34.0,  # rank 3.6 of 2, 5, 15, 25, 40: 25 + 0.6 * 15
    "agents": [
        {"agent": "101", "answered": 1, "talk_seconds": 10.0, "average_talk_seconds": 10.0},
        {"agent": "102", "answered": 2, "talk_seconds": 180.0, "average_talk_seconds": 90.0},
        {"agent": "103", "answered": 2, "talk_seconds": 120.0, "average_talk_seconds": 60.0},
    ],
}
PERIOD = {"from": "2026-02-28T21:00:00Z", "to": "2026-03-01T21:00:00Z", "tz": "Europe/Moscow"}


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path, seed=False, pbxs=("office", "branch")) as harness:
        async with harness.sessions.begin() as session:
            await save_calls(session, CALLS)
        yield harness


async def get(api: ApiHarness, role: str = "supervisor", status: int = 200, **params: str) -> Any:
    response = await api.client.get(PATH, params=params, headers=api.auth(role))
    assert response.status == status, await response.text()
    return await response.json()


async def test_report_of_a_day_counts_each_queue_and_the_total_by_hand(api: ApiHarness) -> None:
    report = await get(api, **DAY, pbx="office")

    assert report == {
        "period": PERIOD,
        "service_level_seconds": 20.0,
        "queues": [SALES, SUPPORT],
        "total": TOTAL,
    }


async def test_report_of_every_pbx_and_of_one_queue(api: ApiHarness) -> None:
    everywhere = await get(api, **DAY)
    branch_sales = await get(api, **DAY, pbx="branch", queue="sales")

    assert (everywhere["queues"][0]["offered"], everywhere["total"]["offered"]) == (8, 10)
    assert [line["queue"] for line in branch_sales["queues"]] == ["sales"]
    assert branch_sales["total"]["agents"] == [
        {"agent": "201", "answered": 1, "talk_seconds": 20.0, "average_talk_seconds": 20.0}
    ]


async def test_service_level_seconds_in_the_query_overrides_the_setting(api: ApiHarness) -> None:
    report = await get(api, **DAY, pbx="office", service_level_seconds="25")

    assert report["service_level_seconds"] == 25.0
    # 5, 15 and 25 s: a call answered at exactly the threshold is within it.
    assert [line["answered_within_service_level"] for line in report["queues"]] == [3, 1]
    assert report["total"]["service_level"] == round(4 / 9, 4)


async def test_a_date_time_period_with_its_zone_is_taken_as_given(api: ApiHarness) -> None:
    # The first four sales calls, 21:00 to 00:00 UTC (the fourth starts at 00:00, the end: not counted).
    report = await get(
        api, **{"from": "2026-03-01T00:00:00+03:00", "to": "2026-03-01T00:00:00Z"}, pbx="office"
    )

    assert report["period"]["from"] == "2026-02-28T21:00:00Z"
    assert [(line["queue"], line["offered"]) for line in report["queues"]] == [("sales", 3)]


@pytest.mark.parametrize("role", ["admin", "integration", "supervisor"])
async def test_readers_get_the_report(api: ApiHarness, role: str) -> None:
    report = await get(api, role, **DAY, pbx="office")

    assert report["total"]["offered"] == 9


async def test_a_manager_token_is_refused(api: ApiHarness) -> None:
    answer = await get(api, "manager", 403, **DAY)

    assert answer["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-02-30"},
        {"from": "yesterday"},
        {"from": "2026-03-01T00:00:00"},  # a time without its zone
        {"to": "1700000000"},
        {"tz": "Mars/Olympus"},
        {"from": "2026-03-02", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},  # more than 400 days
        {"from": "0001-01-01", "to": "0001-01-02", "tz": "Asia/Tokyo"},  # no UTC time for that midnight
        {"service_level_seconds": "0"},
        {"service_level_seconds": "soon"},
        {"queue": "sales\x01"},
        {"group": "sales"},
    ],
)
async def test_bad_query_is_a_422_with_the_api_error(api: ApiHarness, params: dict[str, str]) -> None:
    answer = await get(api, "admin", 422, **params)

    assert answer["error"]["code"] == "invalid_request"


async def test_csv_has_a_row_per_queue_and_the_total_last(api: ApiHarness) -> None:
    response = await api.client.get(
        PATH, params={**DAY, "pbx": "office"}, headers={**api.auth("supervisor"), "Accept": "text/csv"}
    )

    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [row["queue"] for row in rows] == ["sales", "support", ""]
    assert rows[0]["from"] == PERIOD["from"] and rows[0]["service_level_seconds"] == "20.0"
    assert (rows[0]["offered"], rows[0]["answered_p90_wait_seconds"], rows[0]["agents"]) == (
        "7",
        "35.5",
        "102:2:180.0;103:2:120.0",
    )
    assert (rows[2]["offered"], rows[2]["service_level"]) == ("9", "0.3333")


async def test_queries_read_calls_through_the_queue_index(api: ApiHarness) -> None:
    """No statement the report runs scans the calls: on SQLite each is planned on the (queue, started_at)
    index; PostgreSQL may prefer the started_at index for a short period, an index all the same."""
    statements: list[tuple[str, Any]] = []
    engine = api.sessions.kw["bind"]

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with api.sessions() as session:
            await queue_report_between(session, START, END, 20.0)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)

    assert statements
    async with api.sessions() as session:
        plans = [await _plan(session, statement, parameters) for statement, parameters in statements]
    for plan in plans:
        assert "SCAN calls" not in plan and "Seq Scan on calls" not in plan, plan
        if engine.dialect.name == "sqlite":
            assert "USING COVERING INDEX ix_calls_queue_started_at" in plan or (
                "USING INDEX ix_calls_queue_started_at" in plan
            ), plan
        else:
            assert "Index" in plan, plan


async def _plan(session: AsyncSession, statement: str, parameters: Any) -> str:
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(str(row[-1]) for row in rows)
    # A handful of rows would be read faster in full: ask whether the index serves, as it must at scale.
    await connection.execute(text("SET LOCAL enable_seqscan = off"))
    rows = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
    return "\n".join(str(row[0]) for row in rows)


async def test_queue_captures_replayed_give_the_report_counted_by_hand(
    database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        await replay_captures(
            [capture(name) for name in story_captures()],
            PbxSettings(name="office"),
            database_settings(database_url, tmp_path),
            tmp_path / "spool",
        )
        report = await get(harness, **{"from": "2026-11-22", "to": "2026-11-22", "tz": "UTC"})

    # inbound_queue_answered: joined 12:19:40.856, bridged with 103 at 12:19:43.866 (3.01 s), talked until
    # 12:19:49.850 (5.983 s). inbound_queue_abandoned: joined 12:19:52.492, hung up at 12:20:00.485 (7.993 s).
    sales = {
        "queue": "sales",
        "offered": 2,
        "answered": 1,
        "abandoned": 1,
        "other_unanswered": 0,
        "short_abandoned": 1,
        "abandoned_average_wait_seconds": 7.993,
        "abandoned_p90_wait_seconds": 7.993,
        "answered_within_service_level": 1,
        "service_level": 0.5,
        "answered_average_wait_seconds": 3.01,
        "answered_p90_wait_seconds": 3.01,
        "agents": [{"agent": "103", "answered": 1, "talk_seconds": 5.983, "average_talk_seconds": 5.983}],
    }
    assert report["queues"] == [sales]
    assert report["total"] == {**sales, "queue": None}
