"""A call's quality as stored: the score, whether it passed the checklist, its figures and checklist hits
as plain JSON, and the checklist's sha256. Pure: the repository writes and reads these, the report
aggregates them.

`passed` is the checklist's pass/fail: every required phrase said and no forbidden phrase said. The
metric bounds only weigh in the score: a call a little too long in monologue is a worse call, not a
failed one, while a missing greeting or a forbidden word is what a supervisor calls failing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from calltracking.quality.checklist import CallQuality, PhraseCheck, metric_values


@dataclass(frozen=True, slots=True)
class ScoredCall:
    call_id: int
    # The extension that talked (the call's `manager`).
    manager: str | None
    started_at: datetime
    score: float
    passed: bool
    # `metric_values` by name, plus the counts behind them (see `metrics_view`).
    metrics: dict[str, Any]
    # {"required": [...], "forbidden": [...], "bounds": [...]}: each check, passed or not, with its hits.
    checklist: dict[str, Any]
    checklist_sha256: str
    scored_at: datetime


def is_passing(quality: CallQuality) -> bool:
    return all(check.passed for check in quality.required) and all(
        check.passed for check in quality.forbidden
    )


def scored_call(
    call_id: int,
    manager: str | None,
    started_at: datetime,
    quality: CallQuality,
    checklist_sha256: str,
    now: datetime,
) -> ScoredCall:
    return ScoredCall(
        call_id=call_id,
        manager=manager,
        started_at=started_at,
        score=quality.score,
        passed=is_passing(quality),
        metrics=metrics_view(quality),
        checklist=checklist_view(quality),
        checklist_sha256=checklist_sha256,
        scored_at=now,
    )


def metrics_view(quality: CallQuality) -> dict[str, Any]:
    metrics = quality.metrics
    monologue = metrics.longest_monologue
    return metric_values(metrics) | {
        "talk_seconds": metrics.talk_seconds,
        "silence_seconds": metrics.silence_seconds,
        "longest_monologue_speaker": monologue.speaker.value if monologue else None,
        "manager_words": metrics.manager.words,
        "customer_words": metrics.customer.words,
        "manager_fillers": metrics.hesitations.fillers,
        "manager_repeats": metrics.hesitations.repeats,
    }


def checklist_view(quality: CallQuality) -> dict[str, Any]:
    return {
        "required": [_phrase_view(check) for check in quality.required],
        "forbidden": [_phrase_view(check) for check in quality.forbidden],
        "bounds": [
            {"metric": bound.metric, "value": bound.value, "weight": bound.weight, "passed": bound.passed}
            for bound in quality.bounds
        ],
    }


def _phrase_view(check: PhraseCheck) -> dict[str, Any]:
    return {
        "name": check.name,
        "side": check.side.value,
        "weight": check.weight,
        "passed": check.passed,
        "hits": [
            {"phrase": hit.phrase, "said_at": hit.said_at, "text": hit.text, "similarity": hit.similarity}
            for hit in check.hits
        ],
    }
