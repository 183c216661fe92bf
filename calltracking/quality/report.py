"""The quality report of a period: per manager, what their scored calls add up to. Pure: stored scores
and the CRM's managers in, lines out.

A line is a CRM manager (by the extension that talked, as the per-manager stats), or `ext:<extension>`
for an extension no manager holds; the total counts every call of the lines shown. Averages skip calls
without a value (a metric of a side that never spoke). A checklist item's hit rate is the share of the
calls scored with that item in which it was said: for a required phrase higher is better, for a
forbidden one lower.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from calltracking.crm.mirror import Manager
from calltracking.quality.scored import ScoredCall

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
    worst_calls: tuple[ScoredCall, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class QualityReport:
    managers: tuple[QualityLine, ...]
    total: QualityLine | None


def quality_report(
    scores: Sequence[ScoredCall],
    managers: Sequence[Manager],
    *,
    only: str | None = None,
    team: str | None = None,
    worst: int = WORST,
) -> QualityReport:
    """`only`: one line's key (a manager token's own), and no total; `team`: that team's managers."""
    by_extension = {ext: m for m in sorted(managers, key=lambda m: m.id) for ext in m.extensions}
    grouped: dict[str, list[ScoredCall]] = {}
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
    lines = tuple(_line(key, holders[key], grouped[key], worst) for key in keys)
    total = None
    if only is None:
        every = [scored for key in keys for scored in grouped[key]]
        total = _line(TOTAL if team is None else f"team:{team}", None, every, worst)
    return QualityReport(managers=lines, total=total)


def _line(key: str, manager: Manager | None, calls: Sequence[ScoredCall], worst: int) -> QualityLine:
    histogram = {f"{low}-{low + BUCKET}": 0 for low in range(0, 100, BUCKET)}
    for scored in calls:
        low = min(int(scored.score // BUCKET) * BUCKET, 100 - BUCKET)
        histogram[f"{low}-{low + BUCKET}"] += 1
    talk_shares = sorted(
        float(value) for scored in calls if (value := scored.metrics.get("manager_talk_share")) is not None
    )
    return QualityLine(
        key=key,
        manager_id=manager.external_id if manager else None,
        name=manager.name if manager else None,
        team=manager.team if manager else None,
        calls_scored=len(calls),
        average_score=_mean([scored.score for scored in calls], 1),
        passed_share=_mean([1.0 if scored.passed else 0.0 for scored in calls], DIGITS),
        averages={
            name: _mean([float(v) for scored in calls if (v := scored.metrics.get(name)) is not None], DIGITS)
            for name in AVERAGED
        },
        score_histogram=histogram,
        talk_share_quartiles=(
            (_quantile(talk_shares, 0.25), _quantile(talk_shares, 0.5), _quantile(talk_shares, 0.75))
            if talk_shares
            else None
        ),
        hit_rates=_hit_rates(calls),
        worst_calls=tuple(sorted(calls, key=lambda scored: (scored.score, scored.call_id))[:worst]),
    )


def _hit_rates(calls: Sequence[ScoredCall]) -> dict[str, float]:
    said: dict[str, list[bool]] = {}
    for scored in calls:
        for kind in ("required", "forbidden"):
            for item in scored.checklist.get(kind, ()):
                said.setdefault(f"{kind}.{item['name']}", []).append(bool(item["hits"]))
    return {name: round(sum(hits) / len(hits), DIGITS) for name, hits in said.items()}


def _mean(values: Sequence[float], digits: int) -> float | None:
    return round(sum(values) / len(values), digits) if values else None


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear between the closest ranks (numpy's default), also for a single value."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (position - low), DIGITS)
