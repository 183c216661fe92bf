"""The transcription queue's SQL: a job per stored recording, taken by one worker at a time (a lease:
`FOR UPDATE SKIP LOCKED` on PostgreSQL, the repeated condition on SQLite), and the transcripts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.transcript import Transcript
from calltracking.calls.transcript_repository import search_vector
from calltracking.store.leases import lease_due_rows
from calltracking.store.tables import TranscriptionJobRow, TranscriptRow
from calltracking.store.times import from_db
from calltracking.store.upserts import insert_for
from calltracking.webhooks.delivery import enqueue
from transcription.events import transcript_ready_event

JOBS = cast(Table, TranscriptionJobRow.__table__)
TRANSCRIPTS = cast(Table, TranscriptRow.__table__)
ERROR_LENGTH = 512


class JobState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (a worker holding it has pushed that to its lease's end)
    DONE = "done"
    DEAD = "dead"  # failed every attempt
    UNAVAILABLE = "transcription_unavailable"  # no model for its language; tried again later


@dataclass(frozen=True, slots=True)
class TranscriptionJob:
    id: int
    recording_id: int
    call_id: int
    language: str | None
    attempts: int


async def queue_transcription(
    session: AsyncSession, recording_id: int, call_id: int, language: str | None, now: datetime
) -> None:
    """A job for a recording that just became ready; a recording ready again (a pushed file replaced it)
    is transcribed again."""
    upsert = insert_for(session, JOBS)
    row = {
        "recording_id": recording_id,
        "call_id": call_id,
        "language": language,
        "state": JobState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "error": None,
        "created_at": now,
        "updated_at": now,
    }
    again = {name: upsert.excluded[name] for name in ("language", "state", "attempts", "next_attempt_at")}
    await session.execute(
        upsert.values(row).on_conflict_do_update(
            index_elements=["recording_id"], set_=again | {"error": None, "updated_at": now}
        )
    )


async def take_jobs(
    session: AsyncSession, now: datetime, lease_until: datetime, limit: int
) -> list[TranscriptionJob]:
    """Due jobs, oldest first, held until `lease_until`: a worker that dies gives them back then."""
    due = [
        JOBS.c.state.in_([JobState.PENDING.value, JobState.UNAVAILABLE.value]),
        JOBS.c.next_attempt_at <= now,
    ]
    rows = await lease_due_rows(
        session,
        JOBS,
        select(JOBS.c.id).where(*due).order_by(JOBS.c.next_attempt_at, JOBS.c.id).limit(limit),
        due,
        {"next_attempt_at": lease_until, "updated_at": now},
    )
    return [
        TranscriptionJob(row.id, row.recording_id, row.call_id, row.language, row.attempts) for row in rows
    ]


async def save_transcript(
    session: AsyncSession, job: TranscriptionJob, transcript: Transcript, now: datetime
) -> None:
    """Store the transcript (and its search index), finish the job and queue `transcript.ready`: all in
    the caller's transaction."""
    upsert = insert_for(session, TRANSCRIPTS)
    values = {
        "call_id": job.call_id,
        "recording_id": job.recording_id,
        "language": transcript.language,
        "utterances": transcript.view(),
        "text": transcript.text,
        "search_vector": search_vector(session.get_bind().dialect.name, transcript.language, transcript.text),
        "created_at": now,
    }
    replaced = {
        name: upsert.excluded[name]
        for name in ("recording_id", "language", "utterances", "text", "search_vector")
    }
    await session.execute(
        upsert.values(values).on_conflict_do_update(index_elements=["call_id"], set_=replaced)
    )
    await _set(session, job, JobState.DONE, job.attempts + 1, now, now, None)
    await enqueue(session, transcript_ready_event(job.call_id, job.recording_id, transcript, now), now=now)


async def job_failed(
    session: AsyncSession,
    job: TranscriptionJob,
    state: JobState,
    error: str,
    now: datetime,
    next_attempt_at: datetime,
    attempts: int,
) -> None:
    await _set(session, job, state, attempts, next_attempt_at, now, error[:ERROR_LENGTH])


async def _set(
    session: AsyncSession,
    job: TranscriptionJob,
    state: JobState,
    attempts: int,
    next_attempt_at: datetime,
    now: datetime,
    error: str | None,
) -> None:
    await session.execute(
        update(JOBS)
        .where(JOBS.c.id == job.id)
        .values(
            state=state.value, attempts=attempts, next_attempt_at=next_attempt_at, error=error, updated_at=now
        )
    )


async def get_transcript(session: AsyncSession, call_id: int) -> Transcript | None:
    row = (
        await session.execute(select(TRANSCRIPTS.c.utterances).where(TRANSCRIPTS.c.call_id == call_id))
    ).first()
    return None if row is None else Transcript.from_view(row.utterances)


async def backlog(session: AsyncSession) -> dict[str, int]:
    """Jobs per state, for the backlog metric."""
    rows = await session.execute(select(JOBS.c.state, func.count()).group_by(JOBS.c.state))
    return {state: int(count) for state, count in rows.all()}


async def job_states(session: AsyncSession) -> dict[int, tuple[str, int, str | None, datetime]]:
    """Every job's state, attempts, error and next attempt by recording id (for tests and the CLI)."""
    rows = await session.execute(
        select(JOBS.c.recording_id, JOBS.c.state, JOBS.c.attempts, JOBS.c.error, JOBS.c.next_attempt_at)
    )
    return {
        row.recording_id: (row.state, row.attempts, row.error, from_db(row.next_attempt_at))
        for row in rows.all()
    }
