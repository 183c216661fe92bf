"""The period a page shows: its `from` and `to` dates in the PBX's zone, this month by default, with
the quick choices the picker offers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from api.report_period import report_period
from calltracking.stats.period import Period


@dataclass(frozen=True, slots=True)
class PickedPeriod:
    period: Period
    first_day: date
    last_day: date
    presets: tuple[tuple[str, date, date], ...]


def picked_period(request: web.Request, zone_name: str) -> PickedPeriod:
    """422 (an error page) for dates that cannot be read, as the API answers."""
    period = report_period(request.query.get("from"), request.query.get("to"), None, zone_name)
    today = datetime.now(ZoneInfo(zone_name)).date()
    first_of_month = today.replace(day=1)
    last_month_end = first_of_month - timedelta(days=1)
    return PickedPeriod(
        period=period,
        first_day=period.start.astimezone(period.zone).date(),
        last_day=(period.end - timedelta(microseconds=1)).astimezone(period.zone).date(),
        presets=(
            ("today", today, today),
            ("last_7_days", today - timedelta(days=6), today),
            ("this_month", first_of_month, today),
            ("last_month", last_month_end.replace(day=1), last_month_end),
        ),
    )
