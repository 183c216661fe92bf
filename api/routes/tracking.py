"""Call tracking: the website's number pool, and the report per traffic source."""

from __future__ import annotations

from aiohttp import web

from api.errors import Conflict
from api.keys import NUMBER_POOL, POOL_LIMITER, SESSIONS, SETTINGS
from api.operations import Api, Context
from api.report_period import report_period
from api.spreadsheet import CSV, csv_text
from api.stats_schemas import PeriodOut
from api.tracking_schemas import (
    SourceLineOut,
    SourceReportOut,
    SourceReportQuery,
    TrackingSessionIn,
    TrackingSessionOut,
)
from calltracking.access.tokens import Role
from calltracking.tracking.service import source_report
from calltracking.tracking.sources import ReportPeriod

api = Api()
TAG = "tracking"


@api.route(
    "POST",
    "/api/v1/tracking/sessions",
    summary="A pool number for a website visit",
    tag=TAG,
    roles=(Role.ADMIN, Role.INTEGRATION),
    body=TrackingSessionIn,
    responses={200: TrackingSessionOut, 409: None},
    description="The visitor's own number while it holds one: send the same `visitor_id` on every page "
    "view to keep it (the answer is the same session, its expiry renewed to now + ttl_seconds). Otherwise "
    "the free pool number reserved least recently. Every number held: the fallback number "
    "(`is_fallback`), or 409 `tracking_pool_exhausted` when none is configured. Rate limited per token "
    "at `[tracking.pool] sessions_per_minute`.",
)
async def reserve_number(request: web.Request, ctx: Context) -> web.StreamResponse:
    request.app[POOL_LIMITER].take(ctx.caller.token_id)
    reservation = await request.app[NUMBER_POOL].reserve(ctx.body_as(TrackingSessionIn).visit())
    if reservation is None:
        raise PoolExhausted("every pool number is held and no fallback_number is configured")
    return web.json_response(text=TrackingSessionOut.of(reservation).model_dump_json())


class PoolExhausted(Conflict):
    code = "tracking_pool_exhausted"


@api.route(
    "GET",
    "/api/v1/reports/sources",
    summary="Calls, callers, leads and won deals per traffic source",
    tag=TAG,
    roles=(Role.ADMIN, Role.INTEGRATION, Role.SUPERVISOR),
    query=SourceReportQuery,
    responses={200: SourceReportOut},
    extra_content={200: {CSV: {"schema": {"type": "string"}}}},
    description="Inbound calls of the period per source, medium and campaign (null: unattributed), and "
    "the total. The period is read as every report's (`from`, `to`, `tz`: see the per-manager report). "
    "Send `Accept: text/csv` for CSV.",
)
async def sources_report(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(SourceReportQuery)
    period = report_period(query.from_, query.to, query.tz, request.app[SETTINGS].report_timezone)
    report = await source_report(request.app[SESSIONS], ReportPeriod(period.start, period.end), query.pbx)
    out = SourceReportOut(
        period=PeriodOut(from_=period.start, to=period.end, tz=period.zone.key),
        lines=[SourceLineOut.of(line) for line in report.lines],
        total=SourceLineOut.of(report.total),
    )
    if CSV in request.headers.get("Accept", ""):
        return _csv_response(out)
    return web.json_response(text=out.model_dump_json())


def _csv_response(report: SourceReportOut) -> web.Response:
    # utm values come from any website visitor: csv_text quotes one that starts like a formula.
    rows = [line.model_dump(mode="json") for line in [*report.lines, report.total]]
    return web.Response(text=csv_text(rows), content_type=CSV)
