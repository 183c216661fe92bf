"""The quality page: per manager, their scored calls' average score, pass share, speaking figures and
checklist hit rates, and the period's worst calls, linked to their pages. A manager sees their own line."""

from __future__ import annotations

from aiohttp import web

from api.keys import SESSIONS, SETTINGS
from api.quality_schemas import QualityLineOut
from api.routes.quality_report import quality_lines, quality_row
from api.spreadsheet import CSV, XLSX, csv_text, xlsx_bytes
from api.visibility import Audience
from api.web.period_picker import picked_period
from api.web.render import render, web_session
from calltracking.quality.report import ReportedScore

# The averages shown as columns, in this order (the rest are in the exports).
SHOWN_AVERAGES = (
    "manager_talk_share",
    "silence_share",
    "longest_monologue_seconds",
    "manager_words_per_minute",
)
WORST_SHOWN = 20


def install(app: web.Application) -> None:
    app.router.add_get("/quality", quality_page)


async def quality_page(request: web.Request) -> web.StreamResponse:
    found = web_session(request)
    settings = request.config_dict[SETTINGS]
    picked = picked_period(request, settings)
    report = await quality_lines(
        request.config_dict[SESSIONS], Audience.of(found.principal), picked.period, picked.pbx
    )
    lines = [*report.managers, *([report.total] if report.total else [])]
    wanted = request.query.get("format")
    if wanted in ("csv", "xlsx"):
        rows = [quality_row(QualityLineOut.of(line)) for line in lines]
        name = f"quality-{picked.first_day.isoformat()}.{wanted}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        if wanted == "csv":
            return web.Response(text=csv_text(rows), content_type=CSV, headers=headers)
        return web.Response(body=xlsx_bytes([("quality", rows)]), content_type=XLSX, headers=headers)
    worst: list[ReportedScore] = sorted(
        {call.call_id: call for line in report.managers for call in line.worst_calls}.values(),
        key=lambda call: (call.score, call.call_id),
    )[:WORST_SHOWN]
    checks = sorted({name for line in lines for name in line.hit_rates})
    averages = [name for name in SHOWN_AVERAGES if any(name in line.averages for line in lines)]
    return render(
        request,
        "quality.html",
        {"report": report, "picked": picked, "worst": worst, "checks": checks, "averages": averages},
    )
