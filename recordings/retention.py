"""Retention: the audio of calls older than `retention_days` is deleted (the call record stays), except
for calls on legal hold; a call's transcript is deleted with its audio (and kept with it under a hold).
Each deletion is logged in the database and as a structured log line (`transcript_deleted` as well).

Rows are first marked `deleting` in a transaction (a hold set afterwards finds them so), then the files
go, then the rows become `deleted` with their log entry. A run that dies half way leaves `deleting` rows,
which the next run finishes: audio past its age is never left behind because a process stopped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.recording import Recording
from calltracking.calls.transcript_repository import delete_transcript
from calltracking.config import RecordingSettings
from calltracking.crm.call_matching import Clock, utc_now
from recordings.repository import (
    call_start_times,
    claim_expired,
    expired_recordings,
    mark_deleted,
    shared_files,
)
from recordings.storage import RecordingStore

log = structlog.get_logger(__name__)
BATCH = 200
REASON = "retention"


@dataclass(slots=True)
class RetentionReport:
    cutoff: datetime
    dry_run: bool
    recordings: int = 0
    files: int = 0
    bytes: int = 0
    call_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
            "recordings": self.recordings,
            "files": self.files,
            "bytes": self.bytes,
            "call_ids": self.call_ids[:1000],
        }


async def apply_retention(
    sessions: async_sessionmaker[AsyncSession],
    store: RecordingStore,
    days: float,
    *,
    now: datetime,
    dry_run: bool = False,
) -> RetentionReport:
    """Delete the audio of every call started more than `days` ago and not on legal hold."""
    cutoff = now - timedelta(days=days)
    report = RetentionReport(cutoff=cutoff, dry_run=dry_run)
    if dry_run:
        async with sessions() as session:
            for recording in await expired_recordings(session, started_before=cutoff):
                _count(report, recording)
        return report
    while True:
        async with sessions.begin() as session:
            batch = await claim_expired(session, started_before=cutoff, limit=BATCH)
            started = await call_start_times(session, [r.call_id for r in batch if r.call_id is not None])
        if not batch:
            return report
        for recording in batch:
            call_started_at = started.get(recording.call_id) if recording.call_id is not None else None
            if await _delete(sessions, store, recording, now, call_started_at):
                _count(report, recording)


async def _delete(
    sessions: async_sessionmaker[AsyncSession],
    store: RecordingStore,
    recording: Recording,
    now: datetime,
    call_started_at: datetime | None,
) -> bool:
    async with sessions() as session:
        keep = await shared_files(session, recording)
    for stored in recording.files.values():
        if stored.path not in keep:
            await asyncio.to_thread(store.remove, stored.path)
    async with sessions.begin() as session:
        finished = await mark_deleted(
            session,
            recording,
            reason=REASON,
            now=now,
            call_started_at=call_started_at,
        )
        # What was said goes with the audio it was heard in, in the same transaction.
        had_transcript = (
            finished and recording.call_id is not None and await delete_transcript(session, recording.call_id)
        )
    if not finished:  # another run got there first, and logged it
        return False
    if had_transcript:
        log.info("transcript_deleted", call_id=recording.call_id, reason=REASON)
    log.info(
        "recording_deleted",
        call_id=recording.call_id,
        reason=REASON,
        sha256=recording.sha256,
        files=len(recording.files),
    )
    return True


def _count(report: RetentionReport, recording: Recording) -> None:
    report.recordings += 1
    report.files += len(recording.files)
    report.bytes += sum(stored.bytes for stored in recording.files.values())
    if recording.call_id is not None:
        report.call_ids.append(recording.call_id)


async def run_retention(
    sessions: async_sessionmaker[AsyncSession], settings: RecordingSettings, clock: Clock = utc_now
) -> None:
    """`serve`'s schedule: apply the policy every `retention_interval_seconds` (first right at start)."""
    if settings.retention_days is None:
        return
    store = RecordingStore(settings.storage_dir)
    while True:
        try:
            report = await apply_retention(sessions, store, settings.retention_days, now=clock())
            if report.recordings:
                log.info("retention_applied", recordings=report.recordings, bytes=report.bytes)
        except Exception:  # a task boundary: the next run tries again
            log.exception("retention_failed")
        await asyncio.sleep(settings.retention_interval_seconds)
