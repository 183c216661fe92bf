"""A report request's period: its `from`, `to` and `tz`, read once for every report endpoint."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from api.errors import InvalidRequest
from calltracking.stats.period import Period, PeriodInvalid, parse_zone


def report_period(start: str | None, end: str | None, zone: str | None, default_zone: str) -> Period:
    """422 `invalid_request` naming the part that cannot be read."""
    name = zone or default_zone
    try:
        today = datetime.now(ZoneInfo(parse_zone(name).key)).date()
        return Period.parse(start, end, name, today)
    except PeriodInvalid as exc:
        raise InvalidRequest(str(exc), {"from": start, "to": end, "tz": name}) from exc
    except OverflowError as exc:
        # A day so near year 1 or 9999 that its local midnight has no UTC time.
        raise InvalidRequest("the period lies outside the times this service can count") from exc
