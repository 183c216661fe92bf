"""Queue figures from what the database counted: shares, averages, totals, and the 90th percentile."""

from __future__ import annotations

import pytest

from calltracking.stats.queues import (
    AgentFigures,
    AgentTally,
    QueuedWait,
    QueueTally,
    WaitPercentiles,
    percentile_cont,
    queue_report,
    wait_percentiles,
)


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        # What PostgreSQL's percentile_cont answers for the same values.
        ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 0.9, 9.1),
        ([40.0, 5.0, 25.0, 15.0], 0.9, 35.5),  # position 2.7 between 25 and 40, in any input order
        ([4.0, 30.0], 0.9, 27.4),
        ([7.5], 0.9, 7.5),
        ([1.0, 2.0, 3.0], 0.5, 2.0),
        ([1.0, 2.0, 3.0], 1.0, 3.0),
        ([1.0, 2.0, 3.0], 0.0, 1.0),
    ],
)
def test_percentile_interpolates_between_the_closest_ranks_like_percentile_cont(
    values: list[float], fraction: float, expected: float
) -> None:
    assert percentile_cont(values, fraction) == pytest.approx(expected)


def test_percentile_of_nothing_is_none() -> None:
    assert percentile_cont([], 0.9) is None


def test_wait_percentiles_per_queue_and_over_all_queues_leave_other_unanswered_calls_out() -> None:
    waits = [
        QueuedWait("sales", is_answered=True, is_abandoned=False, wait_seconds=5.0),
        QueuedWait("sales", is_answered=True, is_abandoned=False, wait_seconds=25.0),
        QueuedWait("sales", is_answered=False, is_abandoned=True, wait_seconds=4.0),
        QueuedWait("sales", is_answered=False, is_abandoned=False, wait_seconds=600.0),  # timed out
        QueuedWait("support", is_answered=True, is_abandoned=False, wait_seconds=2.0),
    ]

    assert wait_percentiles(waits) == {
        "sales": WaitPercentiles(answered=pytest.approx(23.0), abandoned=4.0),
        "support": WaitPercentiles(answered=2.0, abandoned=None),
        None: WaitPercentiles(answered=pytest.approx(21.0), abandoned=4.0),
    }


SALES = QueueTally(
    queue="sales",
    offered=7,
    answered=4,
    abandoned=2,
    short_abandoned=1,
    answered_within_service_level=2,
    answered_waits=4,
    answered_wait_seconds=85.0,
    abandoned_waits=2,
    abandoned_wait_seconds=34.0,
)
SUPPORT = QueueTally(
    queue="support",
    offered=2,
    answered=1,
    abandoned=1,
    short_abandoned=0,
    answered_within_service_level=1,
    answered_waits=1,
    answered_wait_seconds=2.0,
    abandoned_waits=1,
    abandoned_wait_seconds=12.0,
)
AGENTS = [
    AgentTally("sales", "103", 2, 120.0),
    AgentTally("sales", "102", 2, 180.0),
    AgentTally("support", "101", 1, 10.0),
    AgentTally("support", "102", 1, 30.0),
]


def test_report_gives_shares_averages_and_a_total_over_the_queues() -> None:
    percentiles = {
        "sales": WaitPercentiles(answered=35.5, abandoned=27.4),
        "support": WaitPercentiles(answered=2.0, abandoned=12.0),
        None: WaitPercentiles(answered=34.0, abandoned=26.4),
    }

    report = queue_report([SUPPORT, SALES], AGENTS, percentiles, 20.0)

    assert [line.queue for line in report.queues] == ["sales", "support"]
    sales = report.queues[0]
    assert (sales.other_unanswered, sales.service_level) == (1, 0.2857)
    assert (sales.answered_average_wait_seconds, sales.answered_p90_wait_seconds) == (21.25, 35.5)
    assert (sales.abandoned_average_wait_seconds, sales.abandoned_p90_wait_seconds) == (17.0, 27.4)
    assert sales.agents == (AgentFigures("102", 2, 180.0, 90.0), AgentFigures("103", 2, 120.0, 60.0))
    total = report.total
    assert (total.queue, total.offered, total.answered, total.abandoned, total.other_unanswered) == (
        None,
        9,
        5,
        3,
        1,
    )
    assert (total.short_abandoned, total.answered_within_service_level, total.service_level) == (1, 3, 0.3333)
    assert (total.answered_average_wait_seconds, total.abandoned_average_wait_seconds) == (17.4, 15.333)
    assert (total.answered_p90_wait_seconds, total.abandoned_p90_wait_seconds) == (34.0, 26.4)
    # An agent of two queues counts once in the total, with both queues' calls.
    assert total.agents == (
        AgentFigures("101", 1, 10.0, 10.0),
        AgentFigures("102", 3, 210.0, 70.0),
        AgentFigures("103", 2, 120.0, 60.0),
    )


def test_report_of_no_calls_has_no_queues_and_empty_figures() -> None:
    report = queue_report([], [], {}, 20.0)

    assert report.queues == ()
    assert (report.total.offered, report.total.service_level, report.total.answered_p90_wait_seconds) == (
        0,
        None,
        None,
    )
