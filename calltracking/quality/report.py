"""The quality report of a period: per manager, what their scored calls add up to. Pure: stored scores
and the CRM's managers in, lines out.

A line is a CRM manager (by the extension that talked, as the per-manager stats), or `ext:<extension>`
for an extension no manager holds; the total counts every call of the lines shown. Averages skip calls
without a value (a metric of a side that never spoke). A checklist item's hit rate is the share of the
calls scored with that item in which it was said: for a required phrase higher is better, for a
forbidden one lower.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from calltracking.crm.mirror import Manager

UNASSIGNED_PREFIX = "ext:"
TOTAL = "total"
BUCKET = 10
WORST = 5
AVERAGED = (
    "manager_talk_share",
    "customer_talk_share",
    "silence_share",
    "longest_monologue_seconds",
    "overtalk_seconds",
    "manager_words_per_minute",
    "customer_words_per_minute",
    "manager_first_word_seconds",
    "manager_hesitations_per_minute",
)
DIGITS = 3


@dataclass(frozen=True, slots=True)
class ReportedScore:
    """What the report reads of one scored call: its figures (the AVERAGED metrics, None where a side
    never spoke) and, per checklist item, whether it was said (`required.greeting`: True)."""

    call_id: int
    manager: str | None
    started_at: datetime
    score: float
    passed: bool
    figures: dict[str, float | None]
    said: dict[str, bool]


def report_columns(
    metrics: dict[str, Any], checklist: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, bool]]:
    """A score's figures and said-or-not, as stored beside it for the report (`ReportedScore`)."""
    figures = {name: metrics.get(name) for name in AVERAGED}
    said = {
        f"{kind}.{item['name']}": bool(item["hits"])
        for kind in ("required", "forbidden")
        for item in checklist.get(kind, ())
    }
    return figures, said


@dataclass(frozen=True, slots=True)
class QualityLine:
    key: str
    manager_id: str | None
    name: str | None
    team: str | None
    calls_scored: int
    average_score: float | None
    passed_share: float | None
    averages: dict[str, float | None]
    # Calls per 10-point bucket: "0-10" ... "90-100" (100 in the last).
    score_histogram: dict[str, int]
    # The manager's talk share: first quartile, median, third quartile.
    talk_share_quartiles: tuple[float, float, float] | None
    # "required.greeting", "forbidden.dont_know": share of calls it was said in.
    hit_rates: dict[str, float]
    worst_calls: tuple[ReportedScore, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class QualityReport:
    managers: tuple[QualityLine, ...]
    total: QualityLine | None


def quality_report(
    scores: Sequence[ReportedScore],
    managers: Sequence[Manager],
    *,
    only: str | None = None,
    team: str | None = None,
    worst: int = WORST,
) -> QualityReport:
    """`only`: one line's key (a manager token's own), and no total; `team`: that team's managers."""
    by_extension = {ext: m for m in sorted(managers, key=lambda m: m.id) for ext in m.extensions}
    grouped: dict[str, list[ReportedScore]] = {}
    holders: dict[str, Manager | None] = {}
    for scored in scores:
        if scored.manager is None:
            continue
        manager = by_extension.get(scored.manager)
        key = manager.external_id if manager else UNASSIGNED_PREFIX + scored.manager
        grouped.setdefault(key, []).append(scored)
        holders[key] = manager
    keys = sorted(grouped, key=lambda key: (key.startswith(UNASSIGNED_PREFIX), key))
    if team is not None:
        keys = [key for key in keys if (m := holders[key]) is not None and m.team == team]
    if only is not None:
        keys = [key for key in keys if key == only]
    tallies = {key: _Tally.of(grouped[key], worst) for key in keys}
    lines = tuple(tallies[key].line(key, holders[key]) for key in keys)
    total = None
    if only is None:
        every = _Tally.merged(list(tallies.values()), worst)
        total = every.line(TOTAL if team is None else f"team:{team}", None)
    return QualityReport(managers=lines, total=total)


@dataclass(slots=True)
class _Tally:
    """A line's sums, gathered in one pass over its calls; the total merges the lines' tallies instead
    of going over every call again (a busy month has thousands)."""

    calls: int = 0
    score_sum: float = 0.0
    passed: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (100 // BUCKET))
    sums: list[float] = field(default_factory=lambda: [0.0] * len(AVERAGED))
    counts: list[int] = field(default_factory=lambda: [0] * len(AVERAGED))
    talk_shares: list[float] = field(default_factory=list)
    said: dict[str, list[int]] = field(default_factory=dict)
    worst: list[ReportedScore] = field(default_factory=list)

    @classmethod
    def of(cls, calls: Sequence[ReportedScore], worst: int) -> _Tally:
        tally = cls(calls=len(calls))
        sums, counts, histogram, said = tally.sums, tally.counts, tally.histogram, tally.said
        top = len(histogram) - 1
        for scored in calls:
            tally.score_sum += scored.score
            tally.passed += scored.passed
            histogram[min(int(scored.score // BUCKET), top)] += 1
            figures = scored.figures
            for index, name in enumerate(AVERAGED):
                value = figures.get(name)
                if value is not None:
                    sums[index] += value
                    counts[index] += 1
            share = figures.get("manager_talk_share")
            if share is not None:
                tally.talk_shares.append(float(share))
            for name, was_said in scored.said.items():
                hits = said.setdefault(name, [0, 0])
                hits[0] += was_said
                hits[1] += 1
        tally.worst = heapq.nsmallest(worst, calls, key=_badness)
        return tally

    @classmethod
    def merged(cls, tallies: Sequence[_Tally], worst: int) -> _Tally:
        total = cls()
        for tally in tallies:
            total.calls += tally.calls
            total.score_sum += tally.score_sum
            total.passed += tally.passed
            total.histogram = [a + b for a, b in zip(total.histogram, tally.histogram, strict=True)]
            total.sums = [a + b for a, b in zip(total.sums, tally.sums, strict=True)]
            total.counts = [a + b for a, b in zip(total.counts, tally.counts, strict=True)]
            total.talk_shares += tally.talk_shares
            for name, (hits, checked) in tally.said.items():
                both = total.said.setdefault(name, [0, 0])
                both[0] += hits
                both[1] += checked
        total.worst = heapq.nsmallest(
            worst, (call for tally in tallies for call in tally.worst), key=_badness
        )
        return total

    def line(self, key: str, manager: Manager | None) -> QualityLine:
        shares = sorted(self.talk_shares)
        return QualityLine(
            key=key,
            manager_id=manager.external_id if manager else None,
            name=manager.name if manager else None,
            team=manager.team if manager else None,
            calls_scored=self.calls,
            average_score=_ratio(self.score_sum, self.calls, 1),
            passed_share=_ratio(self.passed, self.calls, DIGITS),
            averages={
                name: _ratio(self.sums[index], self.counts[index], DIGITS)
                for index, name in enumerate(AVERAGED)
            },
            score_histogram={
                f"{low}-{low + BUCKET}": calls
                for low, calls in zip(range(0, 100, BUCKET), self.histogram, strict=True)
            },
            talk_share_quartiles=(
                (_quantile(shares, 0.25), _quantile(shares, 0.5), _quantile(shares, 0.75)) if shares else None
            ),
            hit_rates={name: round(hits / checked, DIGITS) for name, (hits, checked) in self.said.items()},
            worst_calls=tuple(self.worst),
        )


def _badness(scored: ReportedScore) -> tuple[float, int]:
    """Lowest score first; the earlier call first among equals."""
    return scored.score, scored.call_id


def _ratio(total: float, count: int, digits: int) -> float | None:
    return round(total / count, digits) if count else None


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear between the closest ranks (numpy's default), also for a single value."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), DIGITS)
