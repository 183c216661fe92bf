"""All SQL about recordings: the worker's queue (one row per call, keyed by the PBX's call id), the stored
audio, the legal hold, and the deletion log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, and_, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import CallRecord
from calltracking.calls.recording import Outcome, Recording, RecordingState, StoredFile
from calltracking.store.leases import lease_due_rows
from calltracking.store.tables import CallRow, RecordingDeletionRow, RecordingRow
from calltracking.store.times import from_db, to_db
from calltracking.store.upserts import insert_for

RECORDINGS = cast(Table, RecordingRow.__table__)
CALLS = cast(Table, CallRow.__table__)
DELETIONS = cast(Table, RecordingDeletionRow.__table__)
ERROR_LENGTH = 512
# A recording these states have no audio or no file to take any more: a push or a replay leaves it.
SETTLED = (RecordingState.DELETING.value, RecordingState.DELETED.value)


async def queue_recordings(
    session: AsyncSession, calls: Sequence[CallRecord], ids: Sequence[int], *, due_at: datetime
) -> None:
    """In the transaction that writes the calls: a pending row for every call that announced a file, and
    the call id for any row a pushed file created before its call was written. A call written again
    (a replay, a retried batch) keeps the row and the state it has."""
    rows = [
        _new_row(call.pbx, call.pbx_call_id, call_id, call.recording_file, due_at)
        for call, call_id in zip(calls, ids, strict=True)
        if call.recording_file
    ]
    if rows:
        upsert = insert_for(session, RECORDINGS)
        await session.execute(
            upsert.on_conflict_do_update(
                index_elements=["pbx", "pbx_call_id"],
                set_={"call_id": upsert.excluded.call_id, "source": upsert.excluded.source},
            ),
            list({(row["pbx"], row["pbx_call_id"]): row for row in rows}.values()),
        )
    keys = [(call.pbx, call.pbx_call_id) for call in calls if not call.recording_file]
    if keys:
        call_id = (
            select(CALLS.c.id)
            .where(CALLS.c.pbx == RECORDINGS.c.pbx, CALLS.c.pbx_call_id == RECORDINGS.c.pbx_call_id)
            .scalar_subquery()
        )
        await session.execute(
            update(RECORDINGS)
            .where(
                RECORDINGS.c.call_id.is_(None), tuple_(RECORDINGS.c.pbx, RECORDINGS.c.pbx_call_id).in_(keys)
            )
            .values(call_id=call_id)
        )


async def register_push(session: AsyncSession, pbx: str, pbx_call_id: str, *, due_at: datetime) -> None:
    """A pushed file (re)opens the call's recording: it is converted again with every part pushed so
    far, once no part has arrived for the settle delay."""
    call_id = (
        await session.execute(
            select(CALLS.c.id).where(CALLS.c.pbx == pbx, CALLS.c.pbx_call_id == pbx_call_id)
        )
    ).scalar_one_or_none()
    upsert = insert_for(session, RECORDINGS)
    await session.execute(
        upsert.on_conflict_do_update(
            index_elements=["pbx", "pbx_call_id"],
            set_={
                "state": RecordingState.PENDING.value,
                "call_id": upsert.excluded.call_id,
                "attempts": 0,
                "due_since": upsert.excluded.due_since,
                "next_attempt_at": upsert.excluded.next_attempt_at,
                "updated_at": upsert.excluded.updated_at,
            },
            where=RECORDINGS.c.state.not_in(SETTLED),
        ),
        [_new_row(pbx, pbx_call_id, call_id, "push", due_at)],
    )


def _new_row(
    pbx: str, pbx_call_id: str, call_id: int | None, source: str | None, due_at: datetime
) -> dict[str, Any]:
    at = to_db(due_at)
    return {
        "pbx": pbx,
        "pbx_call_id": pbx_call_id,
        "call_id": call_id,
        "state": RecordingState.PENDING.value,
        "source": (source or "")[:1024] or None,
        "attempts": 0,
        "due_since": at,
        "next_attempt_at": at,
        "files": {},
        "is_truncated": False,
        "created_at": at,
        "updated_at": at,
    }


async def claim_due_recordings(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[Recording]:
    """Take up to `limit` due pending recordings of calls in the database, leased until `lease_until`."""
    still_due = [
        RECORDINGS.c.state == RecordingState.PENDING.value,
        RECORDINGS.c.next_attempt_at <= to_db(now),
    ]
    due = (
        select(RECORDINGS.c.id)
        .where(*still_due, RECORDINGS.c.call_id.is_not(None))
        .order_by(RECORDINGS.c.next_attempt_at, RECORDINGS.c.id)
        .limit(limit)
    )
    taken = await lease_due_rows(session, RECORDINGS, due, still_due, {"next_attempt_at": to_db(lease_until)})
    return sorted((_recording(row) for row in taken), key=lambda r: r.id)


async def next_due_at(session: AsyncSession) -> datetime | None:
    """When the earliest pending recording of a stored call falls due."""
    found = await session.execute(
        select(RECORDINGS.c.next_attempt_at)
        .where(RECORDINGS.c.state == RecordingState.PENDING.value, RECORDINGS.c.call_id.is_not(None))
        .order_by(RECORDINGS.c.next_attempt_at)
        .limit(1)
    )
    value = found.scalar_one_or_none()
    return from_db(value) if value is not None else None


async def finish_recording(session: AsyncSession, job: Recording, outcome: Outcome, *, now: datetime) -> bool:
    """Whether the outcome was written: not if a push re-opened the recording while it was converted
    (it moved `due_since`), so the newer files are converted next instead of being overwritten."""
    mix = outcome.files.get("mix")
    written = await session.execute(
        update(RECORDINGS)
        .where(
            RECORDINGS.c.id == job.id,
            RECORDINGS.c.state == RecordingState.PENDING.value,
            RECORDINGS.c.due_since == to_db(job.due_since),
        )
        .values(
            state=outcome.state.value,
            attempts=job.attempts + 1,
            duration_seconds=outcome.duration_seconds,
            format=outcome.format,
            sha256=outcome.sha256,
            source_sha256=outcome.source_sha256,
            bytes=mix.bytes if mix else None,
            files={name: _file_json(stored) for name, stored in outcome.files.items()},
            is_truncated=outcome.is_truncated,
            error=(outcome.error or "")[:ERROR_LENGTH] or None,
            updated_at=to_db(now),
        )
        .returning(RECORDINGS.c.id)
    )
    return written.first() is not None


async def retry_recording(
    session: AsyncSession,
    recording_id: int,
    *,
    attempts: int,
    next_attempt_at: datetime,
    error: str | None,
    now: datetime,
) -> None:
    await session.execute(
        update(RECORDINGS)
        .where(RECORDINGS.c.id == recording_id, RECORDINGS.c.state == RecordingState.PENDING.value)
        .values(
            attempts=attempts,
            next_attempt_at=to_db(next_attempt_at),
            error=(error or "")[:ERROR_LENGTH] or None,
            updated_at=to_db(now),
        )
    )


async def recordings_of_calls(session: AsyncSession, call_ids: Sequence[int]) -> dict[int, Recording]:
    if not call_ids:
        return {}
    rows = await session.execute(select(RECORDINGS).where(RECORDINGS.c.call_id.in_(list(call_ids))))
    return {row.call_id: _recording(row) for row in rows.all()}


async def set_legal_hold(session: AsyncSession, call_id: int, hold: bool) -> bool:
    """Whether the call exists."""
    result = await session.execute(
        update(CALLS).where(CALLS.c.id == call_id).values(legal_hold=hold).returning(CALLS.c.id)
    )
    return result.first() is not None


async def legal_holds(session: AsyncSession, call_ids: Sequence[int]) -> set[int]:
    if not call_ids:
        return set()
    rows = await session.execute(
        select(CALLS.c.id).where(CALLS.c.id.in_(list(call_ids)), CALLS.c.legal_hold.is_(True))
    )
    return {row.id for row in rows.all()}


def _expired(started_before: datetime) -> Any:
    """Recordings whose audio retention takes: of calls started before the cut-off and not on legal hold,
    and any a previous run marked `deleting` and did not finish."""
    old_unheld = select(CALLS.c.id).where(
        CALLS.c.id == RECORDINGS.c.call_id,
        and_(CALLS.c.started_at < to_db(started_before), CALLS.c.legal_hold.is_(False)),
    )
    return or_(
        RECORDINGS.c.state == RecordingState.DELETING.value,
        and_(
            RECORDINGS.c.state.in_([RecordingState.READY.value, RecordingState.QUARANTINED.value]),
            old_unheld.exists(),
        ),
    )


async def expired_recordings(session: AsyncSession, *, started_before: datetime) -> list[Recording]:
    """What `claim_expired` would take, without taking it (a dry run)."""
    rows = await session.execute(select(RECORDINGS).where(_expired(started_before)).order_by(RECORDINGS.c.id))
    return [_recording(row) for row in rows.all()]


async def claim_expired(session: AsyncSession, *, started_before: datetime, limit: int) -> list[Recording]:
    """Mark up to `limit` expired recordings as being deleted (in this transaction, so a hold set
    afterwards sees `deleting`)."""
    expired = select(RECORDINGS.c.id).where(_expired(started_before)).order_by(RECORDINGS.c.id).limit(limit)
    ids = [row.id for row in (await session.execute(expired)).all()]
    if not ids:
        return []
    rows = await session.execute(
        update(RECORDINGS)
        .where(RECORDINGS.c.id.in_(ids))
        .values(state=RecordingState.DELETING.value)
        .returning(*RECORDINGS.c)
    )
    return sorted((_recording(row) for row in rows.all()), key=lambda r: r.id)


async def shared_files(session: AsyncSession, recording: Recording) -> set[str]:
    """Files of this recording that another live recording also uses (the store keeps one copy of the
    same audio)."""
    if recording.sha256 is None:
        return set()
    others = await session.execute(
        select(RECORDINGS.c.files).where(
            RECORDINGS.c.sha256 == recording.sha256,
            RECORDINGS.c.id != recording.id,
            RECORDINGS.c.state.not_in(SETTLED),
        )
    )
    used = {str(entry.get("path")) for row in others.all() for entry in (row.files or {}).values()}
    return {stored.path for stored in recording.files.values()} & used


async def mark_deleted(
    session: AsyncSession,
    recording: Recording,
    *,
    reason: str,
    now: datetime,
    call_started_at: datetime | None,
) -> bool:
    """Whether this run finished the deletion (and logged it): two runs resuming the same `deleting` row
    log it once."""
    finished = await session.execute(
        update(RECORDINGS)
        .where(RECORDINGS.c.id == recording.id, RECORDINGS.c.state == RecordingState.DELETING.value)
        .values(state=RecordingState.DELETED.value, files={}, deleted_at=to_db(now), updated_at=to_db(now))
        .returning(RECORDINGS.c.id)
    )
    if finished.first() is None:
        return False
    await session.execute(
        DELETIONS.insert(),
        [
            {
                "at": to_db(now),
                "recording_id": recording.id,
                "call_id": recording.call_id,
                "reason": reason,
                "call_started_at": to_db(call_started_at) if call_started_at else None,
                "sha256": recording.sha256,
                "bytes": sum(stored.bytes for stored in recording.files.values()) or None,
            }
        ],
    )
    return True


async def call_start_times(session: AsyncSession, call_ids: Sequence[int]) -> dict[int, datetime]:
    if not call_ids:
        return {}
    rows = await session.execute(select(CALLS.c.id, CALLS.c.started_at).where(CALLS.c.id.in_(list(call_ids))))
    return {row.id: from_db(row.started_at) for row in rows.all()}


def _file_json(stored: StoredFile) -> dict[str, object]:
    return {"path": stored.path, "sha256": stored.sha256, "bytes": stored.bytes}


def _recording(row: Row[Any]) -> Recording:
    files = {
        name: StoredFile(path=str(entry["path"]), sha256=str(entry["sha256"]), bytes=int(entry["bytes"]))
        for name, entry in (row.files or {}).items()
    }
    return Recording(
        id=row.id,
        pbx=row.pbx,
        pbx_call_id=row.pbx_call_id,
        call_id=row.call_id,
        state=RecordingState(row.state),
        source=row.source,
        attempts=row.attempts,
        due_since=from_db(row.due_since),
        duration_seconds=row.duration_seconds,
        format=row.format,
        sha256=row.sha256,
        source_sha256=row.source_sha256,
        files=files,
        is_truncated=row.is_truncated,
        error=row.error,
    )
