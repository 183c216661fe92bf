"""Call quality's SQL: a call's score written (in the transaction that stores its transcript, and again by
a rescore), stored transcripts read back a batch at a time, and a period's scores for the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.transcript import Transcript
from calltracking.quality.checklist import ChecklistInForce, score_call
from calltracking.quality.report import ReportedScore, report_columns
from calltracking.quality.scored import ScoredCall, scored_call
from calltracking.store.tables import CallRow, QualityScoreRow, TranscriptRow
from calltracking.store.times import from_db, to_db
from calltracking.store.upserts import insert_for

SCORES = cast(Table, QualityScoreRow.__table__)
CALLS = cast(Table, CallRow.__table__)
TRANSCRIPTS = cast(Table, TranscriptRow.__table__)
REPLACED = (
    "manager",
    "started_at",
    "score",
    "passed",
    "metrics",
    "checklist",
    "checklist_sha256",
    "scored_at",
    "figures",
    "said",
)


async def score_transcript(
    session: AsyncSession, call_id: int, transcript: Transcript, checklist: ChecklistInForce, now: datetime
) -> ScoredCall | None:
    """Score the call's transcript and store it, replacing an earlier score. The talk time, manager and
    start come from the call's row; None when the call is gone."""
    call = (
        await session.execute(
            select(CALLS.c.manager, CALLS.c.started_at, CALLS.c.talk_seconds).where(CALLS.c.id == call_id)
        )
    ).first()
    if call is None:
        return None
    scored = _score(
        call_id, call.manager, from_db(call.started_at), call.talk_seconds, transcript, checklist, now
    )
    await _store(session, [scored])
    return scored


@dataclass(frozen=True, slots=True)
class RescoredBatch:
    last_call_id: int | None
    transcripts: int
    # Score or pass/fail differ from what was stored (or nothing was).
    changed: int


async def rescore_batch(
    session: AsyncSession,
    checklist: ChecklistInForce,
    now: datetime,
    *,
    after_call_id: int,
    since: datetime | None,
    limit: int,
) -> RescoredBatch:
    """Score the next `limit` stored transcripts (by call id, after `after_call_id`) again."""
    statement = (
        select(
            TRANSCRIPTS.c.call_id,
            TRANSCRIPTS.c.utterances,
            CALLS.c.manager,
            CALLS.c.started_at,
            CALLS.c.talk_seconds,
            SCORES.c.score,
            SCORES.c.passed,
        )
        .join(CALLS, CALLS.c.id == TRANSCRIPTS.c.call_id)
        .outerjoin(SCORES, SCORES.c.call_id == TRANSCRIPTS.c.call_id)
        .where(TRANSCRIPTS.c.call_id > after_call_id)
        .order_by(TRANSCRIPTS.c.call_id)
        .limit(limit)
    )
    if since is not None:
        statement = statement.where(CALLS.c.started_at >= to_db(since))
    rows = (await session.execute(statement)).all()
    scored = [
        _score(
            row.call_id,
            row.manager,
            from_db(row.started_at),
            row.talk_seconds,
            Transcript.from_view(row.utterances),
            checklist,
            now,
        )
        for row in rows
    ]
    await _store(session, scored)
    changed = sum(
        1 for row, new in zip(rows, scored, strict=True) if (row.score, row.passed) != (new.score, new.passed)
    )
    return RescoredBatch(rows[-1].call_id if rows else None, len(rows), changed)


async def reported_scores(
    session: AsyncSession, start: datetime, end: datetime, pbx: str | None = None
) -> list[ReportedScore]:
    """What the report needs of the scores of calls started in [start, end) (by the `started_at` index;
    `pbx`: one PBX's calls): their small `figures` and `said` columns, not the full metrics and checklist."""
    columns = (SCORES.c.call_id, SCORES.c.manager, SCORES.c.started_at, SCORES.c.score, SCORES.c.passed)
    statement = select(*columns, SCORES.c.figures, SCORES.c.said).where(
        SCORES.c.started_at >= to_db(start), SCORES.c.started_at < to_db(end)
    )
    if pbx is not None:
        statement = statement.join(CALLS, CALLS.c.id == SCORES.c.call_id).where(CALLS.c.pbx == pbx)
    rows = (await session.execute(statement.order_by(SCORES.c.started_at, SCORES.c.call_id))).all()
    return [
        ReportedScore(
            call_id=row.call_id,
            manager=row.manager,
            started_at=from_db(row.started_at),
            score=row.score,
            passed=row.passed,
            figures=row.figures or {},
            said=row.said or {},
        )
        for row in rows
    ]


async def score_of(session: AsyncSession, call_id: int) -> ScoredCall | None:
    row = (await session.execute(select(SCORES).where(SCORES.c.call_id == call_id))).first()
    return None if row is None else _scored(row)


def _score(
    call_id: int,
    manager: str | None,
    started_at: datetime,
    talk_seconds: float,
    transcript: Transcript,
    checklist: ChecklistInForce,
    now: datetime,
) -> ScoredCall:
    quality = score_call(transcript, talk_seconds, checklist.checklist)
    return scored_call(call_id, manager, started_at, quality, checklist.sha256, now)


async def _store(session: AsyncSession, scored: Sequence[ScoredCall]) -> None:
    if not scored:
        return
    upsert = insert_for(session, SCORES)
    values = [
        {
            "call_id": item.call_id,
            "manager": item.manager,
            "started_at": to_db(item.started_at),
            "score": item.score,
            "passed": item.passed,
            "metrics": item.metrics,
            "checklist": item.checklist,
            "checklist_sha256": item.checklist_sha256,
            "scored_at": to_db(item.scored_at),
            "figures": figures,
            "said": said,
        }
        for item in scored
        for figures, said in [report_columns(item.metrics, item.checklist)]
    ]
    await session.execute(
        upsert.values(values).on_conflict_do_update(
            index_elements=["call_id"], set_={name: upsert.excluded[name] for name in REPLACED}
        )
    )


def _scored(row: Any) -> ScoredCall:
    return ScoredCall(
        call_id=row.call_id,
        manager=row.manager,
        started_at=from_db(row.started_at),
        score=row.score,
        passed=row.passed,
        metrics=dict(row.metrics),
        checklist=dict(row.checklist),
        checklist_sha256=row.checklist_sha256,
        scored_at=from_db(row.scored_at),
    )
