"""The call history page: the API's filters as a form, a page of calls at a time (the API's cursor),
each call linking to its own page, and the page on screen as CSV or XLSX."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError

from api.errors import UnknownPbx
from api.keys import SESSIONS, SETTINGS
from api.routes.calls import call_history, call_rows
from api.schemas import CallPage, CallQuery
from api.spreadsheet import CSV, XLSX, csv_text, xlsx_bytes
from api.visibility import Audience
from api.web.render import render, web_session
from calltracking.calls.record import CallStatus, Direction
from calltracking.stats.period import PeriodInvalid

PAGE_SIZE = 50
# The form's fields that go to the API's query as they are; `from` and `to` are dates in the PBX's zone.
PASSED = ("pbx", "manager", "direction", "status", "number", "did", "entity", "text", "cursor")


def install(app: web.Application) -> None:
    app.router.add_get("/calls", call_list)


async def call_list(request: web.Request) -> web.StreamResponse:
    found = web_session(request)
    settings = request.config_dict[SETTINGS]
    audience = Audience.of(found.principal)
    form = {name: value.strip() for name, value in request.query.items() if isinstance(value, str)}
    pbxs = [pbx.name for pbx in settings.pbxs]
    if form.get("pbx") and form["pbx"] not in pbxs:
        raise UnknownPbx(f"no PBX named {form['pbx']!r}", {"pbx": form["pbx"], "known": sorted(pbxs)})
    error = None
    page = CallPage(items=[], next_cursor=None)
    try:
        query = _query(form, settings.report_timezone, audience.sees_everything)
    except (ValidationError, PeriodInvalid) as exc:
        error = _first_problem(exc)
    else:
        page = await call_history(request.config_dict[SESSIONS], settings, query, audience)
    wanted = form.get("format")
    if error is None and wanted in ("csv", "xlsx"):
        return _export(page, wanted)
    next_href = (
        str(request.rel_url.update_query(cursor=page.next_cursor).without_query_params("format"))
        if page.next_cursor
        else None
    )
    return render(
        request,
        "calls.html",
        {
            "form": form,
            "page": page,
            "error": error,
            "next_href": next_href,
            "first_href": str(request.rel_url.without_query_params("cursor", "format"))
            if "cursor" in form
            else None,
            "directions": [item.value for item in Direction],
            "statuses": [item.value for item in CallStatus],
            "sees_everything": audience.sees_everything,
            # The PBX picker, when there is more than one to pick from.
            "pbxs": pbxs if len(pbxs) > 1 else [],
        },
        status=422 if error else 200,
    )


def _query(form: dict[str, str], zone: str, sees_everything: bool) -> CallQuery:
    """The form as the API's query: empty fields are no filter; dates become the zone's local days."""
    values: dict[str, Any] = {name: form[name] for name in PASSED if form.get(name)}
    if not sees_everything:
        values.pop("manager", None)
    if form.get("recording") in ("yes", "no"):
        values["has_recording"] = form["recording"] == "yes"
    if form.get("from"):
        values["from"] = _local_midnight(form["from"], zone, "from")
    if form.get("to"):
        values["to"] = _local_midnight(form["to"], zone, "to") + timedelta(days=1)
    values["limit"] = PAGE_SIZE
    return CallQuery.model_validate(values)


def _local_midnight(text: str, zone: str, name: str) -> datetime:
    """A date picked in the form, as the start of that day in the PBX's zone (`to` is inclusive)."""
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise PeriodInvalid(f"`{name}` is not a date (YYYY-MM-DD)") from exc
    return datetime.combine(day, time(), tzinfo=ZoneInfo(zone))


def _first_problem(exc: ValidationError | PeriodInvalid) -> str:
    if isinstance(exc, PeriodInvalid):
        return str(exc)
    problem = exc.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}"


def _export(page: CallPage, wanted: str) -> web.Response:
    rows = call_rows(page.items)
    headers = {"Content-Disposition": f'attachment; filename="calls.{wanted}"'}
    if wanted == "csv":
        return web.Response(text=csv_text(rows), content_type=CSV, headers=headers)
    return web.Response(body=xlsx_bytes([("calls", rows)]), content_type=XLSX, headers=headers)
