"""A report's period: local dates or times in a zone, turned into UTC bounds and rollup buckets. Pure.

Reports count days where the people are: a call at 23:30 Moscow time on 31 October is October's in
Moscow and November's in Vladivostok. Rollup buckets are UTC quarter hours, and every zone's offset is a
whole number of quarter hours, so local days and business hours are whole buckets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from calltracking.calls.rollup import BUCKET_SECONDS, ceil_to
from calltracking.config import StatsSettings
from calltracking.errors import CalltrackingError

MAX_DAYS = 400


class PeriodInvalid(CalltrackingError):
    """A report period that cannot be read: the message says which part."""


@dataclass(frozen=True, slots=True)
class BusinessHours:
    start: time
    end: time
    weekdays: frozenset[int]  # ISO: 1 = Monday

    @classmethod
    def of(cls, start: str, end: str, weekdays: tuple[int, ...]) -> BusinessHours:
        return cls(
            start=time.fromisoformat(start),
            end=time.max if end == "24:00" else time.fromisoformat(end),
            weekdays=frozenset(weekdays),
        )

    @classmethod
    def of_settings(cls, stats: StatsSettings) -> BusinessHours:
        """`[stats]` business hours: what `business_hours=true` keeps."""
        return cls.of(stats.business_hours_start, stats.business_hours_end, stats.business_days)


@dataclass(frozen=True, slots=True)
class Period:
    """[start, end) in UTC, and the zone whose days the report is counted in."""

    start: datetime
    end: datetime
    zone: ZoneInfo

    @classmethod
    def parse(cls, start: str | None, end: str | None, zone_name: str, today: date) -> Period:
        """`start`/`end`: a date (YYYY-MM-DD) or an ISO time, local to the zone when it names none. A date
        `end` is inclusive: `from=2026-10-01&to=2026-10-31` is all of October. Defaults: this month so far."""
        zone = parse_zone(zone_name)
        first_of_month, tomorrow = today.replace(day=1), today + timedelta(days=1)
        begin = _moment(start, zone, "from", end_of_day=False) if start else _local(first_of_month, zone)
        finish = _moment(end, zone, "to", end_of_day=True) if end else _local(tomorrow, zone)
        if finish <= begin:
            raise PeriodInvalid("`to` must be after `from`")
        if finish - begin > timedelta(days=MAX_DAYS):
            raise PeriodInvalid(f"a report covers at most {MAX_DAYS} days")
        return cls(start=begin, end=finish, zone=zone)

    @property
    def buckets(self) -> tuple[int, int]:
        """The rollup buckets of the period: [first, last) in seconds since 1970."""
        return _bucket_ceil(self.start), _bucket_ceil(self.end)

    def days(self) -> Iterator[tuple[date, datetime, datetime]]:
        """Each local day the period touches, with its part of the period in UTC."""
        day = self.start.astimezone(self.zone).date()
        while True:
            begin, finish = _local(day, self.zone), _local(day + timedelta(days=1), self.zone)
            if begin >= self.end:
                return
            yield day, max(begin, self.start), min(finish, self.end)
            day += timedelta(days=1)

    def business_ranges(self, hours: BusinessHours) -> list[tuple[datetime, datetime]]:
        """The period's business hours as UTC ranges, one per business day."""
        ranges = []
        for day, begin, finish in self.days():
            if day.isoweekday() not in hours.weekdays:
                continue
            opens = datetime.combine(day, hours.start, self.zone).astimezone(UTC)
            closes = (
                _local(day + timedelta(days=1), self.zone)
                if hours.end == time.max
                else datetime.combine(day, hours.end, self.zone).astimezone(UTC)
            )
            opens, closes = max(opens, begin), min(closes, finish)
            if opens < closes:
                ranges.append((opens, closes))
        return ranges

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.zone)

    def view(self) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), "tz": self.zone.key}


def parse_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PeriodInvalid(f"unknown time zone {name!r} (an IANA name such as Europe/Moscow)") from exc


def bucket_bounds(ranges: list[tuple[datetime, datetime]]) -> list[tuple[int, int]]:
    return [(_bucket_ceil(begin), _bucket_ceil(end)) for begin, end in ranges]


def _bucket_ceil(at: datetime) -> int:
    """The first bucket starting at or after `at`: bounds of local days always fall on a bucket start."""
    return ceil_to(int(at.timestamp()), BUCKET_SECONDS)


def _local(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _moment(text: str, zone: ZoneInfo, name: str, end_of_day: bool) -> datetime:
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError as exc:
            raise PeriodInvalid(f"`{name}` is not a date (YYYY-MM-DD) or an ISO time: {text!r}") from exc
        return _local(day + timedelta(days=1) if end_of_day else day, zone)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PeriodInvalid(f"`{name}` is not a date (YYYY-MM-DD) or an ISO time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    if moment.timestamp() % BUCKET_SECONDS:
        raise PeriodInvalid(f"`{name}` must fall on a quarter hour (reports count in 15-minute steps)")
    return moment.astimezone(UTC)
