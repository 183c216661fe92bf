"""The report per traffic source (source, medium, campaign): what each brought in a period. Pure; the
figures come from `report_repository.py`.

- calls, answered, missed, target calls: the source rollups (15-minute buckets), so a month costs a few
  thousand rows, not every call;
- unique callers and first-time callers: distinct customer numbers of the period's inbound calls, counted
  in the database (a month holds hundreds of thousands), per source and in total: a number calling
  through two sources is one caller of the total;
- leads: leads the service created for the period's calls, by the lead's own source;
- deals won and their amount: won deals of an entity a call of the source landed on, closed at or after
  that call. A deal counts once per source, and once in the total.

A period is [start, end) in UTC on quarter hours, the buckets' grain, so the rollups' and the calls'
figures cover the same time: the API reads it like every report's (`api/report_period.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from calltracking.calls.rollup import bucket_of

SourceKey = tuple[str | None, str | None, str | None]  # source, medium, campaign; None: unattributed


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """[start, end) in UTC, on quarter-hour boundaries."""

    start: datetime
    end: datetime

    @property
    def first_bucket(self) -> int:
        return bucket_of(self.start)

    @property
    def end_bucket(self) -> int:
        """The first bucket after the period."""
        return bucket_of(self.end)


@dataclass(frozen=True, slots=True)
class RollupLine:
    key: SourceKey
    calls: int
    answered: int
    missed: int
    target: int


@dataclass(frozen=True, slots=True)
class Callers:
    """Distinct customer numbers that called in the period, and how many of them made their first call
    ever in it."""

    unique: int = 0
    first_time: int = 0


@dataclass(frozen=True, slots=True)
class CallerCounts:
    by_source: Mapping[SourceKey, Callers]
    total: Callers


@dataclass(frozen=True, slots=True)
class WonDeal:
    key: SourceKey
    deal_id: int
    amount_minor: int | None


@dataclass(frozen=True, slots=True)
class SourceLine:
    source: str | None
    medium: str | None
    campaign: str | None
    calls: int
    answered: int
    missed: int
    target_calls: int
    unique_callers: int
    first_time_callers: int
    leads: int
    deals_won: int
    amount_won: Decimal

    @property
    def missed_share(self) -> float | None:
        return round(self.missed / self.calls, 4) if self.calls else None


@dataclass(frozen=True, slots=True)
class SourceReport:
    period: ReportPeriod
    lines: tuple[SourceLine, ...]
    total: SourceLine


def source_report(
    period: ReportPeriod,
    rollups: Iterable[RollupLine],
    callers: CallerCounts,
    leads: Mapping[SourceKey, int],
    deals: Iterable[WonDeal],
) -> SourceReport:
    counts: dict[SourceKey, list[int]] = {}
    for line in rollups:
        summed = counts.setdefault(line.key, [0, 0, 0, 0])
        for index, value in enumerate((line.calls, line.answered, line.missed, line.target)):
            summed[index] += value
    won: dict[SourceKey, dict[int, int]] = {}
    for deal in deals:
        won.setdefault(deal.key, {})[deal.deal_id] = deal.amount_minor or 0
    keys = set(counts) | set(callers.by_source) | {key for key, count in leads.items() if count} | set(won)
    lines = [
        _line(
            key,
            counts.get(key, [0, 0, 0, 0]),
            callers.by_source.get(key, Callers()),
            leads.get(key, 0),
            won.get(key, {}),
        )
        for key in keys
    ]
    lines.sort(key=lambda line: (-line.calls, _sortable(line)))
    every_deal = {deal_id: amount for deals_of in won.values() for deal_id, amount in deals_of.items()}
    total = _line(
        (None, None, None),
        [
            sum(line.calls for line in lines),
            sum(line.answered for line in lines),
            sum(line.missed for line in lines),
            sum(line.target_calls for line in lines),
        ],
        callers.total,
        sum(leads.values()),
        every_deal,
    )
    return SourceReport(period=period, lines=tuple(lines), total=total)


def _line(
    key: SourceKey, counts: list[int], callers: Callers, leads: int, deals: dict[int, int]
) -> SourceLine:
    calls, answered, missed, target = counts
    return SourceLine(
        source=key[0],
        medium=key[1],
        campaign=key[2],
        calls=calls,
        answered=answered,
        missed=missed,
        target_calls=target,
        unique_callers=callers.unique,
        first_time_callers=callers.first_time,
        leads=leads,
        deals_won=len(deals),
        amount_won=Decimal(sum(deals.values())).scaleb(-2),
    )


def _sortable(line: SourceLine) -> tuple[str, str, str]:
    """Unattributed (None) after every named source, medium or campaign."""
    last = "\uffff"
    return (line.source or last, line.medium or last, line.campaign or last)
