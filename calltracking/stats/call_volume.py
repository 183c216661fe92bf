"""How many calls a period had, per local day and per local hour of the day, by direction and outcome:
the dashboard's charts. Counted per call (a missed call that rang five phones is one missed call), from
quarter-hour buckets so that any time zone's days and hours come out whole."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from calltracking.stats.period import Period

# The charts' series, bottom up.
VOLUME_SERIES = ("inbound_answered", "inbound_missed", "outbound_answered", "outbound_unanswered", "internal")


@dataclass(frozen=True, slots=True)
class BucketCount:
    """Calls that started in one quarter hour (seconds since 1970), per series."""

    bucket: int
    calls: dict[str, int]


@dataclass(frozen=True, slots=True)
class VolumePoint:
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def call_volume(
    period: Period, buckets: Iterable[BucketCount]
) -> tuple[list[VolumePoint], list[VolumePoint]]:
    """Every local day of the period (empty days included) and every hour 00-23."""
    days: dict[date, dict[str, int]] = {day: dict.fromkeys(VOLUME_SERIES, 0) for day, _, _ in period.days()}
    hours: dict[int, dict[str, int]] = {hour: dict.fromkeys(VOLUME_SERIES, 0) for hour in range(24)}
    for count in buckets:
        local = datetime.fromtimestamp(count.bucket, UTC).astimezone(period.zone)
        day = days.setdefault(local.date(), dict.fromkeys(VOLUME_SERIES, 0))
        hour = hours[local.hour]
        for series, calls in count.calls.items():
            day[series] += calls
            hour[series] += calls
    return (
        [VolumePoint(day.isoformat(), counts) for day, counts in sorted(days.items())],
        [VolumePoint(f"{hour:02d}", counts) for hour, counts in sorted(hours.items())],
    )
