"""Who a call counts for in the rollups, and a rewrite counting once."""

from __future__ import annotations

from dataclasses import replace

from calltracking.calls.record import CallStatus, Direction
from calltracking.calls.rollup import (
    BUCKET_SECONDS,
    DAY_SECONDS,
    TOTAL,
    ManagerCounts,
    RollupDelta,
    bucket_of,
    manager_contribution,
    period_cover,
)
from tests.helpers.factories import make_call


def by_extension(call: object) -> dict[str, ManagerCounts]:
    return {key[3]: counts for key, counts in manager_contribution(call).items()}  # type: ignore[arg-type]


def test_an_answered_inbound_call_counts_for_who_answered_only() -> None:
    call = make_call(
        rang=("101", "102"), answered_by="102", manager="102", ring_seconds=4.0, talk_seconds=30.0
    )
    parts = by_extension(call)
    assert set(parts) == {"102", TOTAL}
    assert parts["102"] == ManagerCounts(
        inbound_received=1, inbound_answered=1, talk_seconds=30.0, ring_seconds_answered=4.0
    )


def test_a_missed_call_is_missed_by_every_phone_that_rang_and_once_in_the_total() -> None:
    call = make_call(
        status=CallStatus.MISSED, answered_by=None, manager=None, rang=("101", "102", "101"), talk_seconds=0.0
    )
    parts = by_extension(call)
    assert parts["101"] == parts["102"] == parts[TOTAL] == ManagerCounts(inbound_received=1, inbound_missed=1)


def test_outbound_and_internal_calls() -> None:
    outbound = make_call(
        direction=Direction.OUTBOUND, manager="103", status=CallStatus.BUSY, talk_seconds=0.0
    )
    assert by_extension(outbound)["103"] == ManagerCounts(outbound_made=1)
    internal = make_call(direction=Direction.INTERNAL, caller="101", manager="102")
    assert by_extension(internal) == {
        "101": ManagerCounts(internal_calls=1),
        "102": ManagerCounts(internal_calls=1),
        TOTAL: ManagerCounts(internal_calls=1),
    }


def test_a_rewritten_call_changes_the_rollups_by_the_difference() -> None:
    first = make_call(talk_seconds=10.0, manager="101")
    second = replace(first, talk_seconds=25.0, manager="102", answered_by="102")
    delta = RollupDelta.empty()
    delta.replace(None, first)
    delta.replace(first, second)
    managers, _ = delta.changes()
    bucket = bucket_of(first.started_at)
    day = bucket - bucket % DAY_SECONDS
    counts = ManagerCounts(
        inbound_received=1, inbound_answered=1, talk_seconds=25.0, ring_seconds_answered=2.0
    )
    assert managers == {
        ("office", BUCKET_SECONDS, bucket, "102"): counts,
        ("office", BUCKET_SECONDS, bucket, TOTAL): counts,
        ("office", DAY_SECONDS, day, "102"): counts,
        ("office", DAY_SECONDS, day, TOTAL): counts,
    }
    same = RollupDelta.empty()
    same.replace(second, second)
    assert same.changes() == ({}, {})


def test_a_period_reads_whole_utc_days_from_the_daily_rows_and_its_edges_from_quarter_hours() -> None:
    moscow_october = (1790802000, 1793480400)  # 2026-09-30T21:00Z to 2026-10-31T21:00Z
    first_day, last_day = 1790812800, 1793404800  # 2026-10-01T00:00Z, 2026-10-31T00:00Z
    assert period_cover(*moscow_october) == [
        (BUCKET_SECONDS, moscow_october[0], first_day),
        (DAY_SECONDS, first_day, last_day),
        (BUCKET_SECONDS, last_day, moscow_october[1]),
    ]
    assert period_cover(first_day, last_day) == [(DAY_SECONDS, first_day, last_day)]
    an_afternoon = (first_day + 12 * 3600, first_day + 18 * 3600)
    assert period_cover(*an_afternoon) == [(BUCKET_SECONDS, *an_afternoon)]
    assert period_cover(first_day, first_day) == []
