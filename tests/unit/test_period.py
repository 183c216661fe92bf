"""Report periods: local dates to UTC bounds, days, business hours, and what is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from calltracking.stats.period import BusinessHours, Period, PeriodInvalid, bucket_bounds

TODAY = date(2026, 11, 30)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_month_of_dates_is_local_midnight_to_local_midnight() -> None:
    moscow = Period.parse("2026-10-01", "2026-10-31", "Europe/Moscow", TODAY)
    vladivostok = Period.parse("2026-10-01", "2026-10-31", "Asia/Vladivostok", TODAY)
    assert (moscow.start, moscow.end) == (utc("2026-09-30T21:00"), utc("2026-10-31T21:00"))
    assert (vladivostok.start, vladivostok.end) == (utc("2026-09-30T14:00"), utc("2026-10-31T14:00"))
    late_evening_in_moscow = utc("2026-10-31T20:30")
    assert moscow.start <= late_evening_in_moscow < moscow.end
    assert not vladivostok.start <= late_evening_in_moscow < vladivostok.end


def test_defaults_are_this_month_so_far() -> None:
    period = Period.parse(None, None, "UTC", TODAY)
    assert (period.start, period.end) == (utc("2026-11-01T00:00"), utc("2026-12-01T00:00"))


def test_a_day_across_a_dst_change_is_25_hours() -> None:
    period = Period.parse("2026-10-25", "2026-10-25", "Europe/Berlin", TODAY)
    [(day, start, end)] = list(period.days())
    assert day == date(2026, 10, 25)
    assert (end - start).total_seconds() == 25 * 3600


def test_business_hours_are_one_utc_range_per_weekday() -> None:
    # 5-11 October 2026: Monday to Sunday.
    period = Period.parse("2026-10-05", "2026-10-11", "Asia/Kolkata", TODAY)
    ranges = period.business_ranges(BusinessHours.of("09:30", "18:00", (1, 2, 3, 4, 5)))
    assert len(ranges) == 5
    assert ranges[0] == (utc("2026-10-05T04:00"), utc("2026-10-05T12:30"))
    # Kolkata is UTC+5:30: its business hours still start and end on rollup buckets.
    assert bucket_bounds(ranges)[0] == (int(ranges[0][0].timestamp()), int(ranges[0][1].timestamp()))


def test_times_with_and_without_a_zone() -> None:
    period = Period.parse("2026-10-01T09:00", "2026-10-01T18:00+03:00", "Europe/Moscow", TODAY)
    assert (period.start, period.end) == (utc("2026-10-01T06:00"), utc("2026-10-01T15:00"))


@pytest.mark.parametrize(
    ("start", "end", "zone", "message"),
    [
        ("2026-10-31", "2026-10-01", "UTC", "after"),
        ("2026-10-01T09:10", None, "UTC", "quarter hour"),
        ("October", None, "UTC", "not a date"),
        ("2026-02-30", None, "UTC", "not a date"),
        ("2024-01-01", "2026-01-01", "UTC", "at most"),
        (None, None, "Mars/Olympus", "unknown time zone"),
    ],
)
def test_what_cannot_be_read_says_why(start: str | None, end: str | None, zone: str, message: str) -> None:
    with pytest.raises(PeriodInvalid, match=message):
        Period.parse(start, end, zone, TODAY)
