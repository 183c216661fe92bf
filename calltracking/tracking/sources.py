"""The report per traffic source (source, medium, campaign): what each brought in a period. Pure; the
figures come from `report_repository.py`.

- calls, answered, missed, target calls: the source rollups (15-minute buckets), so a month costs a few
  thousand rows, not every call;
- unique callers and first-time callers: distinct customer numbers of the period's inbound calls;
- leads: leads the service created for the period's calls, by the lead's own source;
- deals won and their amount: won deals of an entity a call of the source landed on, closed at or after
  that call. A deal counts once per source, and once in the total.

A period is [from, to) in a zone, each bound a local date (its midnight) or a local date and time; it is
taken in whole UTC quarter hours (a bound inside one counts from that quarter hour's start), the
buckets' grain, so the rollups' and the calls' figures cover the same time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from calltracking.calls.rollup import bucket_of
from calltracking.store.times import as_utc

SourceKey = tuple[str | None, str | None, str | None]  # source, medium, campaign; None: unattributed

# A calendar date that exists (leap years included) in years 1000-9999, then optionally a time of day
# and a UTC offset: exactly what `local_bound` reads, so a request the pattern allows is never refused.
_YEAR = r"[1-9][0-9]{3}"
_LEAP_YEAR = r"(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[13579][26]|[2468][048])00)"
_DAY = (
    rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    rf"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|{_LEAP_YEAR}-02-29)"
)
_TIME = r"(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9])?)?"
BOUND_PATTERN = f"^{_DAY}{_TIME}$"
_BOUND = re.compile(BOUND_PATTERN.removesuffix("$") + r"\Z")


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """[start, end) in UTC, on quarter-hour boundaries; empty when `end` is not after `start`."""

    start: datetime
    end: datetime

    @property
    def first_bucket(self) -> int:
        return bucket_of(self.start)

    @property
    def end_bucket(self) -> int:
        """The first bucket after the period."""
        return bucket_of(self.end)

    @property
    def is_empty(self) -> bool:
        return self.end <= self.start


def local_bound(text: str, zone: str) -> datetime:
    """A bound as the report takes it: `2026-11-01` (local midnight) or `2026-11-01T09:30` in `zone` (an
    explicit offset wins), in UTC, down to its quarter hour."""
    if _BOUND.match(text) is None:
        raise ValueError("expected a date (2026-11-01) or a date and time (2026-11-01T09:30)")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    at = as_utc(parsed)
    if at.year >= 9999:  # the last instants a datetime holds: no quarter hour starts after them
        return at
    return datetime.fromtimestamp(bucket_of(at), UTC)


def report_period(from_: str, to: str, zone: str) -> ReportPeriod:
    return ReportPeriod(local_bound(from_, zone), local_bound(to, zone))


@dataclass(frozen=True, slots=True)
class RollupLine:
    key: SourceKey
    calls: int
    answered: int
    missed: int
    target: int


@dataclass(frozen=True, slots=True)
class CallerRow:
    """A customer number that called through a source in the period, and whether one of those calls was
    its first ever."""

    key: SourceKey
    number: str
    first_time: bool


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
    callers: Iterable[CallerRow],
    leads: Mapping[SourceKey, int],
    deals: Iterable[WonDeal],
) -> SourceReport:
    counts: dict[SourceKey, list[int]] = {}
    for line in rollups:
        summed = counts.setdefault(line.key, [0, 0, 0, 0])
        for index, value in enumerate((line.calls, line.answered, line.missed, line.target)):
            summed[index] += value
    numbers: dict[SourceKey, set[str]] = {}
    first: dict[SourceKey, set[str]] = {}
    for caller in callers:
        numbers.setdefault(caller.key, set()).add(caller.number)
        if caller.first_time:
            first.setdefault(caller.key, set()).add(caller.number)
    won: dict[SourceKey, dict[int, int]] = {}
    for deal in deals:
        won.setdefault(deal.key, {})[deal.deal_id] = deal.amount_minor or 0
    keys = set(counts) | set(numbers) | {key for key, count in leads.items() if count} | set(won)
    lines = [
        _line(
            key,
            counts.get(key, [0, 0, 0, 0]),
            numbers.get(key, set()),
            first.get(key, set()),
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
        set().union(*numbers.values()),
        set().union(*first.values()),
        sum(leads.values()),
        every_deal,
    )
    return SourceReport(period=period, lines=tuple(lines), total=total)


def _line(
    key: SourceKey, counts: list[int], numbers: set[str], first: set[str], leads: int, deals: dict[int, int]
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
        unique_callers=len(numbers),
        first_time_callers=len(first),
        leads=leads,
        deals_won=len(deals),
        amount_won=Decimal(sum(deals.values())).scaleb(-2),
    )


def _sortable(line: SourceLine) -> tuple[str, str, str]:
    """Unattributed (None) after every named source, medium or campaign."""
    last = "\uffff"
    return (line.source or last, line.medium or last, line.campaign or last)
