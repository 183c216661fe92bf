"""`/api/v1/stats/managers` over HTTP on the constructed October: JSON, CSV and Excel carry the same
lines; a manager token gets its own line and nothing more in every format; bad periods are 422."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import openpyxl
import pytest

from api.spreadsheet import XLSX
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.october import write_october

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31", "tz": "Europe/Moscow"}
EVERY_LINE = ["m-anna", "m-boris", "m-dina", "m-gleb", "ext:109", "team:north", "team:south", "total"]


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        await write_october(harness.sessions)
        yield harness


async def get_json(api: ApiHarness, role: str, path: str = "/api/v1/stats/managers", **query: str) -> object:
    response = await api.client.get(path, params=OCTOBER | query, headers=api.auth(role))
    assert response.status == 200, await response.text()
    return await response.json()


async def csv_rows(api: ApiHarness, role: str) -> list[dict[str, str]]:
    response = await api.client.get(
        "/api/v1/stats/managers", params=OCTOBER, headers=api.auth(role) | {"Accept": "text/csv"}
    )
    assert response.status == 200
    assert response.content_type == "text/csv"
    return list(csv.DictReader(io.StringIO(await response.text())))


async def xlsx_rows(api: ApiHarness, role: str) -> list[dict[str, object]]:
    response = await api.client.get(
        "/api/v1/stats/managers", params=OCTOBER, headers=api.auth(role) | {"Accept": XLSX}
    )
    assert response.status == 200
    assert response.content_type == XLSX
    sheet = openpyxl.load_workbook(io.BytesIO(await response.read())).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    return [dict(zip(header, row, strict=True)) for row in rows]  # type: ignore[arg-type]


async def test_a_supervisor_gets_every_line_in_every_format(api: ApiHarness) -> None:
    body = await get_json(api, "supervisor")
    assert isinstance(body, dict)
    keys = [line["key"] for line in body["managers"] + body["teams"]] + [body["total"]["key"]]
    assert keys == EVERY_LINE
    assert body["period"] == {
        "from": "2026-09-30T21:00:00Z",
        "to": "2026-10-31T21:00:00Z",
        "tz": "Europe/Moscow",
    }
    gleb = next(line for line in body["managers"] if line["key"] == "m-gleb")
    assert (gleb["deals_without_calls"], gleb["inactive"], gleb["deals_won"]) == (True, False, 2)
    assert gleb["amount_won"] == {"RUB": "3500.50"}
    assert gleb["won_deals_without_calls"] == ["d-g1", "d-g2"]

    rows = await csv_rows(api, "supervisor")
    assert [row["key"] for row in rows] == EVERY_LINE
    boris = next(row for row in rows if row["key"] == "m-boris")
    assert (boris["inbound_received"], boris["amount_won_RUB"], boris["leads_converted"]) == (
        "3",
        "5000.00",
        "2",
    )
    assert next(row for row in rows if row["key"] == "m-gleb")["won_deals_without_calls"] == "d-g1;d-g2"

    sheet = await xlsx_rows(api, "supervisor")
    assert [row["key"] for row in sheet] == EVERY_LINE
    total = sheet[-1]
    assert (total["inbound_received"], total["talk_seconds"], total["amount_won_RUB"]) == (6, 515, 8500.5)
    assert next(row for row in sheet if row["key"] == "m-dina")["inactive"] is True


async def test_a_manager_token_gets_only_its_own_line_in_every_format(api: ApiHarness) -> None:
    # The manager token is extension 101's: Anna's.
    body = await get_json(api, "manager")
    assert isinstance(body, dict)
    assert ([line["key"] for line in body["managers"]], body["teams"], body["total"]) == (
        ["m-anna"],
        [],
        None,
    )
    assert [row["key"] for row in await csv_rows(api, "manager")] == ["m-anna"]
    assert [row["key"] for row in await xlsx_rows(api, "manager")] == ["m-anna"]
    for other in ("m-boris", "m-gleb", "ext:109"):
        response = await api.client.get(
            f"/api/v1/stats/managers/{other}", params=OCTOBER, headers=api.auth("manager")
        )
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"
    own = await get_json(api, "manager", "/api/v1/stats/managers/m-anna")
    assert isinstance(own, dict)
    assert own["manager"]["key"] == "m-anna"


async def test_one_manager_with_a_series_per_day_and_hour(api: ApiHarness) -> None:
    body = await get_json(api, "supervisor", "/api/v1/stats/managers/m-boris")
    assert isinstance(body, dict)
    assert body["manager"]["inbound_answered"] == 2
    days = {point["label"]: point for point in body["series"]["days"]}
    assert len(days) == 31
    assert days["2026-10-31"]["inbound_answered"] == 1
    assert days["2026-10-31"]["talk_seconds"] == 50
    hours = {point["label"]: point["inbound_answered"] for point in body["series"]["hours"]}
    assert (len(hours), hours["14"], hours["23"], sum(hours.values())) == (24, 1, 1, 2)
    missing = await api.client.get("/api/v1/stats/managers/m-nobody", headers=api.auth("supervisor"))
    assert missing.status == 404


@pytest.mark.parametrize(
    "query",
    [
        {"tz": "Mars/Olympus"},
        {"from": "2026-10-31", "to": "2026-10-01"},
        {"from": "2026-10-01T10:07:00+03:00"},
        {"from": "yesterday"},
        {"business_hours": "maybe"},
        {"format": "pdf"},
        {"team": "a\x00b"},
        {"from": "2020-01-01", "to": "2026-01-01"},
    ],
)
async def test_a_period_or_filter_it_cannot_read_is_422_in_json(
    api: ApiHarness, query: dict[str, str]
) -> None:
    response = await api.client.get(
        "/api/v1/stats/managers", params=OCTOBER | query, headers=api.auth("admin")
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] in {"invalid_request", "validation_error"}


async def test_no_token_is_401(api: ApiHarness) -> None:
    response = await api.client.get("/api/v1/stats/managers", params=OCTOBER)
    assert response.status == 401
