"""The period a page shows: its `from` and `to` dates in the PBX's zone, this month by default, with
the quick choices the picker offers; and, when several PBXs are configured, which one (or all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from api.errors import UnknownPbx
from api.report_period import report_period
from calltracking.config import Settings
from calltracking.stats.period import Period


@dataclass(frozen=True, slots=True)
class PickedPeriod:
    period: Period
    first_day: date
    last_day: date
    presets: tuple[tuple[str, date, date], ...]
    # One PBX's figures, or every PBX's (None); the PBXs to choose from, none when only one is configured.
    pbx: str | None = None
    pbxs: tuple[str, ...] = ()

    def query(self, start: date | None = None, end: date | None = None) -> str:
        """The page's query for this period (or another's days), keeping the PBX picked."""
        days = {"from": (start or self.first_day).isoformat(), "to": (end or self.last_day).isoformat()}
        return urlencode(days | ({"pbx": self.pbx} if self.pbx else {}))


def picked_period(request: web.Request, settings: Settings) -> PickedPeriod:
    """422 (an error page) for dates that cannot be read, 400 for a PBX the settings do not name, as the
    API answers."""
    zone_name = settings.report_timezone
    period = report_period(request.query.get("from"), request.query.get("to"), None, zone_name)
    names = tuple(pbx.name for pbx in settings.pbxs)
    pbx = request.query.get("pbx") or None  # the picker's "all PBXs" sends it empty
    if pbx is not None and pbx not in names:
        raise UnknownPbx(f"no PBX named {pbx!r}", {"pbx": pbx, "known": sorted(names)})
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
        pbx=pbx,
        pbxs=names if len(names) > 1 else (),
    )
