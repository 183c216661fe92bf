"""The dashboard: calls per day by status, calls by hour, missed calls and open callbacks (overdue
first), the per-manager table, queue service level and traffic sources, for a period. A manager sees
their own figures only; queues and sources are for supervisors, as in the API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.keys import SESSIONS, SETTINGS
from api.routes.manager_stats import manager_row, manager_scope
from api.spreadsheet import CSV, XLSX, csv_text, xlsx_bytes
from api.visibility import Audience
from api.web.charts import BarChart, stacked_bars
from api.web.period_picker import picked_period
from api.web.render import is_supervisor, render, web_session
from calltracking.calls.record import CallFilter, CallStatus, Direction, StoredCall
from calltracking.calls.repository import search_calls
from calltracking.config import Settings
from calltracking.crm.callback_repository import list_callbacks
from calltracking.crm.callbacks import CallbackState, CallbackTask
from calltracking.crm.repository import manager_of_token
from calltracking.stats.call_volume import VOLUME_SERIES, VolumePoint, call_volume
from calltracking.stats.call_volume_repository import bucket_counts
from calltracking.stats.manager_report import manager_report
from calltracking.stats.managers import ManagerReport
from calltracking.stats.period import Period
from calltracking.stats.queue_repository import queue_report_between
from calltracking.stats.queues import QueueReport
from calltracking.tracking.service import source_report
from calltracking.tracking.sources import ReportPeriod, SourceReport

T = TypeVar("T")
SHOWN_MISSED = 20
SHOWN_CALLBACKS = 50


# The two reports that cost the most (the per-manager table and traffic sources) are not waited for:
# the page renders without them and its script fetches each as an HTML fragment.
FRAGMENTS = ("managers", "sources")


def install(app: web.Application) -> None:
    app.router.add_get("/", dashboard)
    app.router.add_get(r"/fragments/{part:managers|sources}", dashboard_fragment)


@dataclass(frozen=True, slots=True)
class Dashboard:
    days: BarChart
    hours: BarChart
    day_points: list[VolumePoint]
    missed: list[StoredCall]
    callbacks: list[CallbackTask]
    queues: QueueReport | None
    report: ManagerReport | None = None
    sources: SourceReport | None = None


async def dashboard(request: web.Request) -> web.StreamResponse:
    found = web_session(request)
    settings = request.config_dict[SETTINGS]
    sessions = request.config_dict[SESSIONS]
    picked = picked_period(request, settings)
    period, pbx = picked.period, picked.pbx
    audience = Audience.of(found.principal)
    supervisor = is_supervisor(found)
    exporting = request.query.get("format") in ("csv", "xlsx")
    now = datetime.now(UTC)
    # The parts read the database independently, side by side (a connection each): the page costs its
    # slowest part, not their sum. A file holds every table, so an export also waits for the fragments.
    (days, hours), missed, callbacks, queues, report, sources = await asyncio.gather(
        _read(sessions, lambda session: _volume(session, period, audience, pbx)),
        _read(sessions, lambda session: _missed(session, period, audience, pbx)),
        _read(sessions, lambda session: _open_callbacks(session, audience, pbx)),
        _read(sessions, lambda session: _queues(session, period, settings, supervisor, pbx)),
        _managers(sessions, audience, period, pbx) if exporting else _nothing(),
        _sources(sessions, period, supervisor, pbx) if exporting else _nothing(),
    )
    callbacks.sort(key=lambda task: (not task.is_overdue(now), task.due_at))
    board = Dashboard(
        days=_chart(days, [point.label[5:] for point in days]),
        hours=_chart(hours, [point.label for point in hours], max_labels=12),
        day_points=days,
        missed=missed,
        callbacks=callbacks[:SHOWN_CALLBACKS],
        queues=queues,
        report=report,
        sources=sources,
    )
    if exporting:
        return _export(board, request.query["format"], picked.first_day.isoformat())
    return render(
        request,
        "dashboard.html",
        {
            "board": board,
            "picked": picked,
            "now": now,
            "supervisor": supervisor,
            "fragments": {part: f"/ui/fragments/{part}?{picked.query()}" for part in FRAGMENTS},
        },
    )


async def dashboard_fragment(request: web.Request) -> web.StreamResponse:
    """One of the dashboard's slow tables, for its script to put in place (or to read on its own)."""
    found = web_session(request)
    settings = request.config_dict[SETTINGS]
    sessions = request.config_dict[SESSIONS]
    picked = picked_period(request, settings)
    period, pbx = picked.period, picked.pbx
    part = request.match_info["part"]
    if part == "managers":
        report = await _managers(sessions, Audience.of(found.principal), period, pbx)
        return render(request, "dashboard_managers.html", {"report": report})
    if not is_supervisor(found):
        raise web.HTTPNotFound()
    sources = await _sources(sessions, period, True, pbx)
    return render(request, "dashboard_sources.html", {"sources": sources})


async def _managers(
    sessions: async_sessionmaker[AsyncSession], audience: Audience, period: Period, pbx: str | None
) -> ManagerReport:
    scope = await manager_scope(sessions, audience, period, pbx=pbx)
    return await _read(sessions, lambda session: manager_report(session, scope))


async def _sources(
    sessions: async_sessionmaker[AsyncSession], period: Period, supervisor: bool, pbx: str | None
) -> SourceReport | None:
    if not supervisor:
        return None
    return await source_report(sessions, ReportPeriod(period.start, period.end), pbx)


async def _read(
    sessions: async_sessionmaker[AsyncSession], query: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    async with sessions() as session:
        return await query(session)


async def _nothing() -> None:
    return None


async def _volume(
    session: AsyncSession, period: Period, audience: Audience, pbx: str | None
) -> tuple[list[VolumePoint], list[VolumePoint]]:
    return call_volume(period, await bucket_counts(session, period, manager=audience.call_manager, pbx=pbx))


async def _missed(
    session: AsyncSession, period: Period, audience: Audience, pbx: str | None
) -> list[StoredCall]:
    where = CallFilter(
        started_from=period.start,
        started_before=period.end,
        pbx=pbx,
        manager=audience.call_manager,
        direction=Direction.INBOUND,
        status=CallStatus.MISSED,
    )
    return await search_calls(session, where, SHOWN_MISSED)


async def _open_callbacks(session: AsyncSession, audience: Audience, pbx: str | None) -> list[CallbackTask]:
    """A manager's own tasks (by CRM id, or by extension when the CRM does not know them)."""
    manager = None
    if not audience.sees_everything:
        own_id = await manager_of_token(session, audience.extension or "")
        manager = audience.callback_manager(own_id, None)
    return await list_callbacks(
        session, CallbackState.OPEN, due_before=None, manager=manager, after_id=None, limit=500, pbx=pbx
    )


async def _queues(
    session: AsyncSession, period: Period, settings: Settings, supervisor: bool, pbx: str | None
) -> QueueReport | None:
    if not supervisor:
        return None
    return await queue_report_between(
        session, period.start, period.end, settings.stats.queue_service_level_seconds, pbx=pbx
    )


def _chart(points: list[VolumePoint], labels: list[str], max_labels: int = 16) -> BarChart:
    series = [(name, [float(point.counts[name]) for point in points]) for name in VOLUME_SERIES]
    return stacked_bars(labels, series, max_labels=max_labels)


def _export(board: Dashboard, wanted: str, first_day: str) -> web.Response:
    """What the page shows, as files: the manager table as CSV; every table as a sheet of a workbook."""
    report = board.report
    lines = [*report.managers, *report.teams, *([report.total] if report.total else [])] if report else []
    managers = [manager_row(line) for line in lines]
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
