"""The source report's arithmetic and its periods, pure."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from calltracking.tracking.sources import (
    CallerRow,
    ReportPeriod,
    RollupLine,
    WonDeal,
    local_bound,
    report_period,
    source_report,
)

GOOGLE = ("google", "cpc", "winter")
NONE = (None, None, None)
PERIOD = ReportPeriod(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_local_dates_are_midnights_in_the_zone() -> None:
    period = report_period("2026-11-01", "2026-11-02", "Europe/Moscow")
    assert (period.start, period.end) == (
        datetime(2026, 10, 31, 21, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 21, 0, tzinfo=UTC),
    )
    assert period.end_bucket - period.first_bucket == 24 * 3600
    assert local_bound("2026-11-01T09:40", "UTC") == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert local_bound("2026-11-01T09:40+03:00", "Asia/Tokyo") == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert report_period("2026-11-02", "2026-11-01", "UTC").is_empty


@pytest.mark.parametrize("text", ["2026-02-29", "2026-13-01", "2026-11-01T24:00", "1.5", "2026-11-01 09:00"])
def test_a_bound_that_is_not_a_date_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a date"):
        local_bound(text, "UTC")


def test_the_year_9999_in_a_zone_behind_utc_is_the_last_instant() -> None:
    assert local_bound("9999-12-31T23:59", "America/New_York").year == 9999
    assert local_bound("2024-02-29", "UTC") == datetime(2024, 2, 29, tzinfo=UTC)


def test_lines_count_callers_leads_and_deals_once() -> None:
    report = source_report(
        PERIOD,
        rollups=[
            RollupLine(GOOGLE, calls=3, answered=2, missed=1, target=1),
            RollupLine(GOOGLE, calls=1, answered=0, missed=1, target=0),
            RollupLine(NONE, calls=2, answered=2, missed=0, target=2),
        ],
        callers=[
            CallerRow(GOOGLE, "+1", first_time=True),
            CallerRow(GOOGLE, "+1", first_time=False),
            CallerRow(GOOGLE, "+2", first_time=False),
            CallerRow(NONE, "+2", first_time=False),
        ],
        leads={GOOGLE: 1, ("yandex", None, None): 1},
        deals=[
            WonDeal(GOOGLE, 10, 150_050),
            WonDeal(NONE, 10, 150_050),
            WonDeal(NONE, 11, None),
        ],
    )
    google, unattributed, yandex = report.lines
    assert (google.source, google.calls, google.missed, google.missed_share, google.target_calls) == (
        "google",
        4,
        2,
        0.5,
        1,
    )
    assert (google.unique_callers, google.first_time_callers, google.leads) == (2, 1, 1)
    assert (google.deals_won, google.amount_won) == (1, Decimal("1500.50"))
    assert (unattributed.source, unattributed.calls, unattributed.deals_won) == (None, 2, 2)
    assert (yandex.source, yandex.calls, yandex.leads, yandex.missed_share) == ("yandex", 0, 1, None)
    total = report.total
    assert (total.calls, total.answered, total.missed, total.target_calls) == (6, 4, 2, 3)
    assert (total.unique_callers, total.first_time_callers, total.leads) == (2, 1, 2)
    assert (total.deals_won, total.amount_won) == (2, Decimal("1500.50"))
