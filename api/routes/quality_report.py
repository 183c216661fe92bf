"""The call-quality report: per manager, their scored calls' figures in a period (JSON, CSV). A manager
token gets its own line and nothing else, in every format."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.keys import SESSIONS, SETTINGS
from api.operations import Api, Context
from api.quality_schemas import QualityLineOut, QualityReportOut, QualityReportQuery
from api.report_period import report_period
from api.spreadsheet import CSV, csv_text
from api.stats_schemas import PeriodOut
from api.visibility import Audience
from calltracking.config import Settings
from calltracking.crm.repository import list_managers, manager_of_token
from calltracking.quality.report import UNASSIGNED_PREFIX, QualityReport, quality_report
from calltracking.quality.repository import reported_scores
from calltracking.stats.period import Period

api = Api()
TAG = "reports"


@api.route(
    "GET",
    "/api/v1/reports/quality",
    summary="Call quality per manager: scores, metrics, checklist hits, worst calls",
    tag=TAG,
    query=QualityReportQuery,
    responses={200: QualityReportOut},
    extra_content={200: {CSV: {"schema": {"type": "string"}}}},
    description="From the scores stored when each transcript was made (or `calltracking quality rescore`), "
    "by the calls' start. `Accept: text/csv` for a file, a row per line. A manager token gets its own line "
    "only.",
)
async def quality(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(QualityReportQuery)
    settings: Settings = request.app[SETTINGS]
    period = report_period(query.from_, query.to, query.tz, settings.report_timezone)
    report = await quality_lines(
        request.app[SESSIONS], Audience.of(ctx.caller), period, query.pbx, query.team, query.manager
    )
    lines = [*report.managers, *([report.total] if report.total else [])]
    if CSV in request.headers.get("Accept", ""):
        name = f"quality-{period.start.astimezone(period.zone):%Y-%m-%d}.csv"
        rows = [quality_row(QualityLineOut.of(line)) for line in lines]
        return web.Response(
            text=csv_text(rows),
            content_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    out = QualityReportOut(
        period=PeriodOut(from_=period.start, to=period.end, tz=period.zone.key),
        managers=[QualityLineOut.of(line) for line in report.managers],
        total=QualityLineOut.of(report.total) if report.total else None,
    )
    return web.json_response(text=out.model_dump_json(by_alias=True))


async def quality_lines(
    sessions: async_sessionmaker[AsyncSession],
    audience: Audience,
    period: Period,
    pbx: str | None = None,
    team: str | None = None,
    manager: str | None = None,
) -> QualityReport:
    """The report as `audience` may see it: a manager token gets its own line and nothing else."""
    only = manager
    async with sessions() as session:
        if not audience.sees_everything:
            extension = audience.extension or ""
            only = await manager_of_token(session, extension) or UNASSIGNED_PREFIX + extension
        scores = await reported_scores(session, period.start, period.end, pbx)
        managers = await list_managers(session)
    if manager not in (None, only):
        # A manager token asking for another manager's line: it is simply not there for them.
        return QualityReport(managers=(), total=None)
    return quality_report(scores, managers, only=only, team=team)


def quality_row(line: QualityLineOut) -> dict[str, object]:
    """One column per figure, for a spreadsheet: metrics, buckets and hit rates spread out."""
    row: dict[str, object] = {
        name: getattr(line, name)
        for name in ("key", "manager_id", "name", "team", "calls_scored", "average_score", "passed_share")
    }
    row |= {f"average_{name}": value for name, value in line.averages.items()}
    row |= {f"score_{bucket}": calls for bucket, calls in line.score_histogram.items()}
    row["talk_share_quartiles"] = line.talk_share_quartiles or []
    row |= {f"hit_rate_{name}": rate for name, rate in line.hit_rates.items()}
    row["worst_calls"] = [call.call_id for call in line.worst_calls]
    return row
