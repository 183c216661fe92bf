"""Callback tasks for missed calls, and the report of how many were returned within the SLA."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from api.crm_schemas import (
    CallbackOut,
    CallbackPage,
    CallbackQuery,
    CallbackReportOut,
    CallbackReportQuery,
    SlaLineOut,
)
from api.keys import SESSIONS, SETTINGS
from api.operations import Api, Context
from api.visibility import Audience
from calltracking.access.tokens import Principal
from calltracking.crm.callback_repository import callbacks_missed_between, list_callbacks
from calltracking.crm.callbacks import CallbackState, sla_report
from calltracking.crm.repository import manager_of_token

api = Api()
TAG = "callbacks"


async def _manager_filter(request: web.Request, principal: Principal, asked: str | None) -> str | None:
    """A manager token sees only its own tasks, whatever it asks for."""
    audience = Audience.of(principal)
    if audience.sees_everything:
        return asked
    async with request.app[SESSIONS]() as session:
        own = await manager_of_token(session, audience.extension or "")
    return audience.callback_manager(own, asked)


@api.route(
    "GET",
    "/api/v1/callbacks",
    summary="Callback tasks for missed calls",
    tag=TAG,
    query=CallbackQuery,
    responses={200: CallbackPage},
    description="Oldest first. A manager token sees only the tasks assigned to its manager.",
)
async def callbacks(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(CallbackQuery)
    now = datetime.now(UTC)
    manager = await _manager_filter(request, ctx.caller, query.manager)
    state = CallbackState.DONE if query.state == "done" else CallbackState.OPEN if query.state else None
    async with request.app[SESSIONS]() as session:
        tasks = await list_callbacks(
            session,
            state,
            due_before=now if query.state == "overdue" else None,
            manager=manager,
            after_id=int(query.cursor) if query.cursor else None,
            limit=query.limit + 1,
            pbx=query.pbx,
        )
    items = [CallbackOut.of(task, now) for task in tasks[: query.limit]]
    next_cursor = str(items[-1].id) if len(tasks) > query.limit else None
    return web.json_response(text=CallbackPage(items=items, next_cursor=next_cursor).model_dump_json())


@api.route(
    "GET",
    "/api/v1/callbacks/report",
    summary="Missed calls returned within the SLA, per manager and in total",
    tag=TAG,
    query=CallbackReportQuery,
    responses={200: CallbackReportOut},
    description="Tasks whose first missed call falls in [from, to). A task counts once however many times "
    "the customer called; the share is of the tasks already decided (returned, or open past due).",
)
async def callback_report(request: web.Request, ctx: Context) -> web.StreamResponse:
    query = ctx.query_as(CallbackReportQuery)
    now = datetime.now(UTC)
    manager = await _manager_filter(request, ctx.caller, query.manager)
    async with request.app[SESSIONS]() as session:
        tasks = await callbacks_missed_between(session, query.from_, query.to, manager, query.pbx)
    report = sla_report(tasks, now)
    out = CallbackReportOut(
        sla_minutes=request.app[SETTINGS].crm.callback_due_minutes,
        total=SlaLineOut.of(report.total),
        managers=[SlaLineOut.of(line) for line in report.managers],
        unreturned=[CallbackOut.of(task, now) for task in report.unreturned],
    )
    return web.json_response(text=out.model_dump_json())
