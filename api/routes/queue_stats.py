"""The queue report: offered, answered, abandoned, service level and waits per queue and agent."""

from __future__ import annotations

from aiohttp import web

from api.keys import SESSIONS, SETTINGS
from api.operations import Api, Context
from api.report_period import report_period
from api.spreadsheet import CSV, csv_text
from api.stats_schemas import PeriodOut, QueueLineOut, QueueReportOut, QueueStatsQuery
from calltracking.access.tokens import Role
from calltracking.stats.queue_repository import queue_report_between

api = Api()
READERS = (Role.ADMIN, Role.INTEGRATION, Role.SUPERVISOR)


@api.route(
    "GET",
    "/api/v1/stats/queues",
    summary="Queue report: offered, answered, abandoned, service level, waits, per agent",
    tag="stats",
    roles=READERS,
    query=QueueStatsQuery,
    responses={200: QueueReportOut},
    extra_content={200: {CSV: {"schema": {"type": "string"}}}},
    description="Calls that joined a queue and started in [from, to), per queue and in total. `from` and "
    "`to` are dates in `tz` or ISO 8601 date-times; a period ends after it starts and covers at most "
    "400 days (422 otherwise). Send `Accept: text/csv` for one CSV row per queue and a last row, with an "
    "empty queue, for the total.",
)
async def queue_stats(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(QueueStatsQuery)
    settings = request.app[SETTINGS]
    period = report_period(query.from_, query.to, query.tz, settings.report_timezone)
    service_level = query.service_level_seconds
    if service_level is None:
        service_level = settings.stats.queue_service_level_seconds
    async with request.app[SESSIONS]() as session:
        report = await queue_report_between(
            session, period.start, period.end, service_level, pbx=query.pbx, queue=query.queue
        )
    out = QueueReportOut.of(PeriodOut(from_=period.start, to=period.end, tz=period.zone.key), report)
    if CSV in request.headers.get("Accept", ""):
        return _csv_response(out)
    return web.json_response(text=out.model_dump_json())


CSV_FIELDS = [name for name in QueueLineOut.model_fields if name != "agents"] + ["agents"]


def _csv_response(out: QueueReportOut) -> web.Response:
    period = out.period.model_dump(mode="json")
    rows = []
    for line in [*out.queues, out.total]:
        row = line.model_dump(mode="json")
        row["agents"] = ";".join(
            f"{agent['agent']}:{agent['answered']}:{agent['talk_seconds']}" for agent in row["agents"]
        )
        rows.append(
            {**period, "service_level_seconds": out.service_level_seconds}
            | {name: row[name] for name in CSV_FIELDS}
        )
    return web.Response(text=csv_text(rows), content_type=CSV)
