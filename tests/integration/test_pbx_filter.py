"""Two PBXs in one database, over real HTTP on both databases: every list and report asked with `pbx`
gives that PBX's rows only, without it both PBXs' rows; a PBX the settings do not name is a 400. The
CLI's `calls --pbx` and `stats --pbx`, and the web pages' PBX picker, likewise."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from calltracking.app.cli import main
from calltracking.calls.record import CallRecord, CallStatus
from calltracking.calls.repository import save_calls
from calltracking.calls.rollup_repository import rebuild_rollups
from calltracking.crm.callback_repository import CallbackOpening, open_callbacks
from calltracking.quality.checklist import checklist_in_force
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.captures import TRACES
from tests.helpers.factories import make_call
from tests.helpers.quality import GOOD, store_scored
from tests.integration.test_web_forms import sign_in

PERIOD_DAYS = {"from": "2026-10-01", "to": "2026-10-31"}
PERIOD = PERIOD_DAYS | {"tz": "UTC"}
CHECKLIST = checklist_in_force(None)
HOUR = timedelta(hours=1)


def answered(n: int, pbx: str, extension: str, queue: str, source: str) -> CallRecord:
    caller = f"+7916000000{n}"
    started = datetime(2026, 10, n, 9, tzinfo=UTC)
    return make_call(
        n,
        pbx=pbx,
        caller=caller,
        caller_number=caller,
        answered_by=extension,
        manager=extension,
        rang=(extension,),
        queue=queue,
        queue_wait_seconds=3.0,
        source=source,
        started_at=started,
        answered_at=started + timedelta(seconds=2),
        ended_at=started + timedelta(seconds=8),
    )


def missed(n: int, pbx: str, extension: str, source: str) -> CallRecord:
    """Rang `extension`, nobody answered."""
    return replace(
        answered(n, pbx, extension, "", source),
        queue=None,
        queue_wait_seconds=None,
        status=CallStatus.MISSED,
        answered_by=None,
        manager=None,
        answered_at=None,
        talk_seconds=0.0,
    )


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """Each PBX: an answered, scored, queued call from one source, and a missed call with its callback."""
    async with running_api(database_url, tmp_path, seed=False, pbxs=("office", "branch")) as harness:
        for call in (
            answered(1, "office", "101", "sales", "google"),
            answered(2, "branch", "201", "support", "yandex"),
        ):
            await store_scored(harness.sessions, call, GOOD, CHECKLIST)
        async with harness.sessions.begin() as session:
            calls = [missed(3, "office", "101", "google"), missed(4, "branch", "201", "yandex")]
            ids = await save_calls(session, calls)
            await open_callbacks(
                session,
                [
                    CallbackOpening(call.caller, call_id, call.started_at, call.ended_at + HOUR, None, None)
                    for call, call_id in zip(calls, ids, strict=True)
                ],
            )
            await rebuild_rollups(session)
        yield harness


async def get(api: ApiHarness, path: str, params: dict[str, str], expected: int = 200) -> Any:
    response = await api.client.get(path, params=params, headers=api.auth("supervisor"))
    assert response.status == expected, await response.text()
    return await response.json()


# Each list and report: its path, its other parameters, and what tells its rows' PBX apart.
ENDPOINTS: list[tuple[str, dict[str, str], Callable[[Any], object]]] = [
    ("/api/v1/calls", {}, lambda body: sorted(item["linkedid"] for item in body["items"])),
    (
        "/api/v1/calls",
        {"status": "missed"},
        lambda body: sorted(item["linkedid"] for item in body["items"]),
    ),
    (
        "/api/v1/stats/managers",
        PERIOD,
        lambda body: ([line["key"] for line in body["managers"]], body["total"]["inbound_received"]),
    ),
    (
        "/api/v1/stats/queues",
        PERIOD,
        lambda body: ([line["queue"] for line in body["queues"]], body["total"]["offered"]),
    ),
    (
        "/api/v1/reports/sources",
        PERIOD,
        lambda body: ([line["source"] for line in body["lines"]], body["total"]["calls"]),
    ),
    ("/api/v1/reports/quality", PERIOD, lambda body: body["total"]["calls_scored"]),
    ("/api/v1/callbacks", {}, lambda body: sorted(item["number"] for item in body["items"])),
    ("/api/v1/callbacks/report", {}, lambda body: body["total"]["tasks"]),
]
# What each endpoint's rows say, unfiltered and for each PBX, in the order above.
EXPECTED: list[dict[str | None, object]] = [
    {
        None: ["1795349935.1", "1795349935.2", "1795349935.3", "1795349935.4"],
        "office": ["1795349935.1", "1795349935.3"],
        "branch": ["1795349935.2", "1795349935.4"],
    },
    {None: ["1795349935.3", "1795349935.4"], "office": ["1795349935.3"], "branch": ["1795349935.4"]},
    {None: (["ext:101", "ext:201"], 4), "office": (["ext:101"], 2), "branch": (["ext:201"], 2)},
    {None: (["sales", "support"], 2), "office": (["sales"], 1), "branch": (["support"], 1)},
    {None: (["google", "yandex"], 4), "office": (["google"], 2), "branch": (["yandex"], 2)},
    {None: 2, "office": 1, "branch": 1},
    {None: ["+79160000003", "+79160000004"], "office": ["+79160000003"], "branch": ["+79160000004"]},
    {None: 2, "office": 1, "branch": 1},
]


async def test_every_list_and_report_gives_one_pbxs_rows_or_both(api: ApiHarness) -> None:
    seen = []
    for path, params, rows in ENDPOINTS:
        seen.append(
            {
                pbx: rows(await get(api, path, params | ({"pbx": pbx} if pbx else {})))
                for pbx in (None, "office", "branch")
            }
        )
    assert seen == EXPECTED


async def test_a_pbx_the_settings_do_not_name_is_refused(api: ApiHarness) -> None:
    for path, params, _ in ENDPOINTS:
        body = await get(api, path, params | {"pbx": "warehouse"}, expected=400)
        assert body["error"]["code"] == "unknown_pbx", path
        assert body["error"]["details"] == {"pbx": "warehouse", "known": ["branch", "office"]}
    # The document the API serves names the configured PBXs as the only ones to ask for.
    document = await (await api.client.get("/api/v1/openapi.json")).json()
    for path, _, _ in ENDPOINTS:
        (pbx,) = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == "pbx"]
        assert pbx["schema"] == {"type": "string", "enum": ["branch", "office"]}, path


def test_the_cli_lists_and_reports_one_pbxs_calls(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`calls --pbx` and `stats --pbx` ask the API's own queries (SQL tested on both databases above)."""
    config = tmp_path / "calltracking.toml"
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    config.write_text(f'[database]\nurl = "{url}"\n\n[[pbx]]\nname = "office"\n\n[[pbx]]\nname = "branch"\n')
    at = ["--config", str(config)]
    assert main([*at, "replay", str(TRACES / "inbound_group_answered.ami"), "--pbx", "office"]) == 0
    assert main([*at, "replay", str(TRACES / "outbound_busy.ami"), "--pbx", "branch"]) == 0
    capsys.readouterr()

    def json_lines(*args: str) -> list[dict[str, Any]]:
        assert main([*at, *args, "--json"]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert [(c["pbx"], c["direction"]) for c in json_lines("calls")] == [
        ("branch", "outbound"),
        ("office", "inbound"),
    ]
    assert [(c["pbx"], c["direction"]) for c in json_lines("calls", "--pbx", "office")] == [
        ("office", "inbound")
    ]
    day = ["--from", "2026-11-22", "--to", "2026-11-22", "--tz", "UTC"]
    totals = {
        pbx: next(row for row in json_lines("stats", *day, *pbx_args) if row["key"] == "total")
        for pbx, pbx_args in (("all", []), ("office", ["--pbx", "office"]), ("branch", ["--pbx", "branch"]))
    }
    assert {pbx: (row["inbound_received"], row["outbound_made"]) for pbx, row in totals.items()} == {
        "all": (1, 1),
        "office": (1, 0),
        "branch": (0, 1),
    }
    for command in (["calls"], ["stats", *day]):
        assert main([*at, *command, "--pbx", "warehouse"]) == 2
        assert "no PBX named 'warehouse'" in capsys.readouterr().err


async def test_the_web_pages_pick_a_pbx_when_there_are_several(api: ApiHarness) -> None:
    await sign_in(api.client, api.tokens["supervisor"])

    async def page(path: str, expected: int = 200, **params: str) -> str:
        response = await api.client.get(path, params=PERIOD_DAYS | params)
        assert response.status == expected, path
        return await response.text()

    everyone, office = await page("/ui/"), await page("/ui/", pbx="office")
    assert 'id="pbx-picker"' in everyone
    assert '<option value="office" selected>' in office
    # The missed calls and open callbacks of the dashboard, and the link to its managers' table.
    assert "+79160000003" in everyone and "+79160000004" in everyone
    assert "+79160000003" in office and "+79160000004" not in office
    assert "/ui/fragments/managers?from=2026-10-01&amp;to=2026-10-31&amp;pbx=office" in office
    managers = await page("/ui/fragments/managers", pbx="branch")
    assert 'data-key="ext:201"' in managers and 'data-key="ext:101"' not in managers
    sources = await page("/ui/fragments/sources", pbx="branch")
    assert "yandex" in sources and "google" not in sources
    calls = await page("/ui/calls", pbx="branch")
    assert "+79160000002" in calls and "+79160000001" not in calls
    assert '<option value="branch" selected>' in calls
    await page("/ui/quality", pbx="office")
    for path in ("/ui/", "/ui/calls", "/ui/quality", "/ui/fragments/managers"):
        assert "warehouse" in await page(path, 400, pbx="warehouse")
