"""The source report's arithmetic and its periods, pure."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from calltracking.tracking.sources import (
    CallerCounts,
    Callers,
    ReportPeriod,
    RollupLine,
    WonDeal,
    source_report,
)

GOOGLE = ("google", "cpc", "winter")
NONE = (None, None, None)
PERIOD = ReportPeriod(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))


def test_a_period_is_its_quarter_hour_buckets() -> None:
    assert PERIOD.end_bucket - PERIOD.first_bucket == 30 * 24 * 3600
    assert PERIOD.first_bucket == int(PERIOD.start.timestamp())


def test_lines_count_callers_leads_and_deals_once() -> None:
    report = source_report(
        PERIOD,
        rollups=[
            RollupLine(GOOGLE, calls=3, answered=2, missed=1, target=1),
            RollupLine(GOOGLE, calls=1, answered=0, missed=1, target=0),
            RollupLine(NONE, calls=2, answered=2, missed=0, target=2),
        ],
        # +1 (its first call ever) and +2 through google, +2 again unattributed: two callers in total.
        callers=CallerCounts(
            by_source={GOOGLE: Callers(unique=2, first_time=1), NONE: Callers(unique=1, first_time=0)},
            total=Callers(unique=2, first_time=1),
        ),
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
