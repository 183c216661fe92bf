"""The per-manager report: the table supervisors read (JSON, CSV, Excel), and one manager's line with
its series for charts. A manager token gets its own line and nothing else, in every format."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import NotFound
from api.keys import SESSIONS, SETTINGS
from api.manager_stats_schemas import (
    MANAGER_ID,
    ManagerDetailOut,
    ManagerLineOut,
    ManagerReportOut,
    ManagerSeriesOut,
    ManagerStatsQuery,
    SeriesPointOut,
)
from api.operations import Api, Context
from api.report_period import report_period
from api.spreadsheet import CSV, XLSX, csv_text, xlsx_bytes
from api.stats_schemas import PeriodOut
from api.visibility import Audience
from calltracking.calls.rollup import ManagerCounts
from calltracking.config import Settings
from calltracking.crm.repository import manager_of_token
from calltracking.stats.manager_report import ReportScope, manager_report, manager_series
from calltracking.stats.managers import ManagerLine, ManagerReport, line_columns, unassigned_key
from calltracking.stats.period import BusinessHours, Period

api = Api()
TAG = "stats"


@api.route(
    "GET",
    "/api/v1/stats/managers",
    summary="Per-manager stats: calls, customers, callbacks, leads, conversions, deals",
    tag=TAG,
    query=ManagerStatsQuery,
    responses={200: ManagerReportOut},
    extra_content={200: {CSV: {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string"}}}},
    description="Every manager of the CRM mirror has a line, also without calls (`deals_without_calls`, "
    "`inactive`); extensions no manager holds have `ext:<extension>` lines; then teams and the total. "
    "`Accept: text/csv` or the Excel type (or `format=csv|xlsx`) for a file. A manager token gets its "
    "own line only.",
)
async def manager_stats(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(ManagerStatsQuery)
    scope = await _scope(request, ctx, query)
    async with request.app[SESSIONS]() as session:
        report = await manager_report(session, scope)
    period = PeriodOut(from_=scope.period.start, to=scope.period.end, tz=scope.period.zone.key)
    wanted = _wanted_format(request, query)
    if wanted == "json":
        out = ManagerReportOut(
            period=period,
            business_hours=query.business_hours,
            managers=[_line_out(item) for item in report.managers],
            teams=[_line_out(item) for item in report.teams],
            total=_line_out(report.total) if report.total else None,
        )
        return web.json_response(text=out.model_dump_json(by_alias=True))
    rows = [manager_row(item) for item in _all_lines(report)]
    name = f"managers-{scope.period.start.astimezone(scope.period.zone):%Y-%m-%d}"
    if wanted == "csv":
        return web.Response(text=csv_text(rows), content_type=CSV, headers=_attachment(f"{name}.csv"))
    return web.Response(
        body=xlsx_bytes([("managers", rows)]), content_type=XLSX, headers=_attachment(f"{name}.xlsx")
    )


@api.route(
    "GET",
    "/api/v1/stats/managers/{manager_id}",
    summary="One manager's stats, with a series per local day and per hour of the day",
    tag=TAG,
    query=ManagerStatsQuery,
    path_params=MANAGER_ID,
    responses={200: ManagerDetailOut, 404: None},
    description="`manager_id` is the CRM id, or `ext:<extension>` for an extension no manager holds. A "
    "manager token may ask for its own line only (404 for anyone else's).",
)
async def manager_detail(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(ManagerStatsQuery)
    scope = await _scope(request, ctx, query)
    wanted_id = request.match_info["manager_id"]
    if scope.only is not None and scope.only != wanted_id:
        raise NotFound(f"no manager {wanted_id!r}")
    async with request.app[SESSIONS]() as session:
        report = await manager_report(session, scope)
        line = next((item for item in report.managers if wanted_id in (item.key, item.manager_id)), None)
        if line is None:
            raise NotFound(f"no manager {wanted_id!r}")
        days, hours = await manager_series(session, scope, line.extensions)
    out = ManagerDetailOut(
        period=PeriodOut(from_=scope.period.start, to=scope.period.end, tz=scope.period.zone.key),
        business_hours=query.business_hours,
        manager=_line_out(line),
        series=ManagerSeriesOut(
            days=[SeriesPointOut(label=point.label, **_series_counts(point.calls)) for point in days],
            hours=[SeriesPointOut(label=point.label, **_series_counts(point.calls)) for point in hours],
        ),
    )
    return web.json_response(text=out.model_dump_json(by_alias=True))


async def _scope(request: web.Request, ctx: Context, query: ManagerStatsQuery) -> ReportScope:
    settings: Settings = request.app[SETTINGS]
    period = report_period(query.from_, query.to, query.tz, settings.report_timezone)
    return await manager_scope(
        request.app[SESSIONS],
        Audience.of(ctx.caller),
        period,
        BusinessHours.of_settings(settings.stats) if query.business_hours else None,
        query.pbx,
        query.team,
    )


async def manager_scope(
    sessions: async_sessionmaker[AsyncSession],
    audience: Audience,
    period: Period,
    business_hours: BusinessHours | None = None,
    pbx: str | None = None,
    team: str | None = None,
) -> ReportScope:
    """The report's scope as `audience` may see it: a manager's own line only."""
    only = None
    if not audience.sees_everything:
        extension = audience.extension or ""
        async with sessions() as session:
            only = await manager_of_token(session, extension) or unassigned_key(extension)
    return ReportScope(period=period, business_hours=business_hours, pbx=pbx, team=team, only=only)


def _wanted_format(request: web.Request, query: ManagerStatsQuery) -> str:
    if query.format:
        return query.format
    accept = request.headers.get("Accept", "")
    if XLSX in accept:
        return "xlsx"
    return "csv" if CSV in accept else "json"


def _all_lines(report: ManagerReport) -> list[ManagerLine]:
    return [*report.managers, *report.teams, *([report.total] if report.total else [])]


def _line_out(line: ManagerLine) -> ManagerLineOut:
    return ManagerLineOut.model_validate(line_columns(line))


def manager_row(line: ManagerLine) -> dict[str, object]:
    """Amounts as one numeric column per currency, for a spreadsheet to sum."""
    row = {name: value for name, value in line_columns(line).items() if name != "amount_won"}
    for currency, amount in line.amounts_won().items():
        row[f"amount_won_{currency}" if currency else "amount_won"] = amount
    return row


def _series_counts(counts: ManagerCounts) -> dict[str, object]:
    values = asdict(counts)
    return {name: values[name] for name in SeriesPointOut.model_fields if name != "label"}


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}
