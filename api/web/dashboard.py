"""The dashboard: calls per day by status, calls by hour, missed calls and open callbacks (overdue
first), the per-manager table, queue service level and traffic sources, for a period. A manager sees
their own figures only; queues and sources are for supervisors, as in the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.keys import SESSIONS, SETTINGS
from api.routes.manager_stats import manager_row, manager_scope
from api.spreadsheet import CSV, XLSX, csv_text, xlsx_bytes
from api.visibility import Audience
from api.web.charts import BarChart, stacked_bars
from api.web.period_picker import picked_period
from api.web.render import is_supervisor, render, web_session
from calltracking.calls.record import CallFilter, CallStatus, Direction, StoredCall
from calltracking.calls.repository import search_calls
from calltracking.crm.callback_repository import list_callbacks
from calltracking.crm.callbacks import CallbackState, CallbackTask
from calltracking.crm.repository import manager_of_token
from calltracking.stats.call_volume import VOLUME_SERIES, VolumePoint, call_volume
from calltracking.stats.call_volume_repository import bucket_counts
from calltracking.stats.manager_report import manager_report
from calltracking.stats.managers import ManagerLine
from calltracking.stats.queue_repository import queue_report_between
from calltracking.stats.queues import QueueReport
from calltracking.tracking.service import source_report
from calltracking.tracking.sources import ReportPeriod, SourceReport

SHOWN_MISSED = 20
SHOWN_CALLBACKS = 50


def install(app: web.Application) -> None:
    app.router.add_get("/", dashboard)


@dataclass(frozen=True, slots=True)
class Dashboard:
    days: BarChart
    hours: BarChart
    day_points: list[VolumePoint]
    managers: tuple[ManagerLine, ...]
    teams: tuple[ManagerLine, ...]
    total: ManagerLine | None
    missed: list[StoredCall]
    callbacks: list[CallbackTask]
    queues: QueueReport | None
    sources: SourceReport | None


async def dashboard(request: web.Request) -> web.StreamResponse:
    found = web_session(request)
    settings = request.config_dict[SETTINGS]
    sessions = request.config_dict[SESSIONS]
    picked = picked_period(request, settings.report_timezone)
    period = picked.period
    audience = Audience.of(found.principal)
    scope = await manager_scope(sessions, audience, period)
    supervisor = is_supervisor(found)
    now = datetime.now(UTC)
    async with sessions() as session:
        report = await manager_report(session, scope)
        days, hours = call_volume(period, await bucket_counts(session, period, manager=audience.call_manager))
        missed = await search_calls(
            session,
            CallFilter(
                started_from=period.start,
                started_before=period.end,
                manager=audience.call_manager,
                direction=Direction.INBOUND,
                status=CallStatus.MISSED,
            ),
            SHOWN_MISSED,
        )
        callback_manager = None
        if not audience.sees_everything:
            own_id = await manager_of_token(session, audience.extension or "")
            callback_manager = audience.callback_manager(own_id, None)
        callbacks = await list_callbacks(
            session, CallbackState.OPEN, due_before=None, manager=callback_manager, after_id=None, limit=500
        )
        queues = (
            await queue_report_between(
                session, period.start, period.end, settings.stats.queue_service_level_seconds
            )
            if supervisor
            else None
        )
    sources = await source_report(sessions, ReportPeriod(period.start, period.end)) if supervisor else None
    callbacks.sort(key=lambda task: (not task.is_overdue(now), task.due_at))
    board = Dashboard(
        days=_chart(days, [point.label[5:] for point in days]),
        hours=_chart(hours, [point.label for point in hours], max_labels=12),
        day_points=days,
        managers=report.managers,
        teams=report.teams,
        total=report.total,
        missed=missed,
        callbacks=callbacks[:SHOWN_CALLBACKS],
        queues=queues,
        sources=sources,
    )
    wanted = request.query.get("format")
    if wanted in ("csv", "xlsx"):
        return _export(board, wanted, picked.first_day.isoformat())
    return render(
        request,
        "dashboard.html",
        {
            "board": board,
            "picked": picked,
            "now": now,
            "supervisor": supervisor,
            "query": dict(request.query),
        },
    )


def _chart(points: list[VolumePoint], labels: list[str], max_labels: int = 16) -> BarChart:
    series = [(name, [float(point.counts[name]) for point in points]) for name in VOLUME_SERIES]
    return stacked_bars(labels, series, max_labels=max_labels)


def _export(board: Dashboard, wanted: str, first_day: str) -> web.Response:
    """What the page shows, as files: the manager table as CSV; every table as a sheet of a workbook."""
    managers = [
        manager_row(line) for line in (*board.managers, *board.teams, *([board.total] if board.total else []))
    ]
    name = f"dashboard-{first_day}"
    if wanted == "csv":
        return web.Response(text=csv_text(managers), content_type=CSV, headers=_attachment(f"{name}.csv"))
    tables: list[tuple[str, list[dict[str, Any]]]] = [
        ("managers", managers),
        ("days", [{"day": point.label, **point.counts} for point in board.day_points]),
        (
            "missed",
            [
                {
                    "id": stored.id,
                    "started_at": stored.call.started_at.isoformat(),
                    "caller": stored.call.caller,
                    "did": stored.call.did,
                }
                for stored in board.missed
            ],
        ),
        (
            "callbacks",
            [
                {
                    "id": task.id,
                    "number": task.number,
                    "manager": task.manager,
                    "missed_calls": task.missed_calls,
                    "due_at": task.due_at.isoformat(),
                }
                for task in board.callbacks
            ],
        ),
    ]
    if board.queues is not None:
        tables.append(
            (
                "queues",
                [
                    {
                        "queue": line.queue or "",
                        "offered": line.offered,
                        "answered": line.answered,
                        "abandoned": line.abandoned,
                        "service_level": line.service_level,
                    }
                    for line in (*board.queues.queues, board.queues.total)
                ],
            )
        )
    if board.sources is not None:
        tables.append(
            (
                "sources",
                [
                    {
                        "source": line.source,
                        "medium": line.medium,
                        "campaign": line.campaign,
                        "calls": line.calls,
                        "answered": line.answered,
                        "missed": line.missed,
                        "leads": line.leads,
                        "deals_won": line.deals_won,
                    }
                    for line in (*board.sources.lines, board.sources.total)
                ],
            )
        )
    return web.Response(body=xlsx_bytes(tables), content_type=XLSX, headers=_attachment(f"{name}.xlsx"))


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}
