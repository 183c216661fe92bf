"""Retention on a real database and store: old audio goes (held calls excepted), the call stays, each
deletion is logged, a run that died half way is finished by the next, and `serve`'s schedule applies it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.recording import RecordingState
from calltracking.store.tables import RecordingDeletionRow
from recordings.repository import claim_expired, mark_deleted, set_legal_hold
from recordings.retention import apply_retention, run_retention
from recordings.storage import RecordingStore
from tests.helpers.audio_files import write_wav
from tests.helpers.factories import T0, make_call
from tests.helpers.recording_stack import RecordingStack, pbx_path, recording_stack

LATER = T0 + timedelta(days=200)


@pytest.fixture
async def stack(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> RecordingStack:
    stack = recording_stack(
        sessions, database_url, tmp_path, retention_days=180, retention_interval_seconds=0.05
    )
    for n in (1, 2, 3):
        write_wav(stack.monitor / f"call-{n}.wav", 1.0, frequency=300.0 + 100 * n)
    old = [await stack.add_call(make_call(n, recording_file=pbx_path(f"call-{n}.wav"))) for n in (1, 2)]
    await stack.add_call(
        make_call(3, recording_file=pbx_path("call-3.wav"), started_at=LATER - timedelta(days=1))
    )
    await stack.worker.process_due()
    async with sessions.begin() as session:
        await set_legal_hold(session, old[1], True)
    return stack


async def deletions(stack: RecordingStack) -> list[tuple[int | None, str]]:
    async with stack.sessions() as session:
        rows = await session.execute(select(RecordingDeletionRow.call_id, RecordingDeletionRow.reason))
        return [(row.call_id, row.reason) for row in rows.all()]


async def test_old_audio_is_deleted_except_on_hold_and_each_deletion_logged(stack: RecordingStack) -> None:
    before = {call_id: await stack.recording(call_id) for call_id in (1, 2, 3)}

    report = await apply_retention(stack.sessions, RecordingStore(stack.store_dir), 180, now=LATER)

    assert report.call_ids == [1]
    assert report.bytes == before[1].files["mix"].bytes
    assert not (stack.store_dir / before[1].files["mix"].path).exists()
    assert (stack.store_dir / before[2].files["mix"].path).exists()  # on legal hold
    assert (stack.store_dir / before[3].files["mix"].path).exists()  # younger than 180 days
    assert [(await stack.recording(n)).state for n in (1, 2, 3)] == [
        RecordingState.DELETED,
        RecordingState.READY,
        RecordingState.READY,
    ]
    assert await deletions(stack) == [(1, "retention")]


async def test_a_dry_run_deletes_nothing(stack: RecordingStack) -> None:
    report = await apply_retention(
        stack.sessions, RecordingStore(stack.store_dir), 180, now=LATER, dry_run=True
    )

    assert report.call_ids == [1]
    assert (await stack.recording(1)).state is RecordingState.READY
    assert await deletions(stack) == []


async def test_a_run_that_died_after_marking_is_finished_by_the_next(stack: RecordingStack) -> None:
    path = stack.store_dir / (await stack.recording(1)).files["mix"].path
    async with stack.sessions.begin() as session:  # marked 'deleting', then the process was killed
        await claim_expired(session, started_before=LATER - timedelta(days=180), limit=10)

    report = await apply_retention(stack.sessions, RecordingStore(stack.store_dir), 365, now=LATER)

    assert report.call_ids == [1]  # finished although 365 days would not have taken it
    assert not path.exists()
    assert (await stack.recording(1)).state is RecordingState.DELETED


async def test_serve_applies_retention_on_its_schedule(stack: RecordingStack) -> None:
    schedule = asyncio.create_task(
        run_retention(stack.sessions, stack.settings.recordings, clock=lambda: LATER)
    )
    try:
        async with asyncio.timeout(10):
            while (await stack.recording(1)).state is not RecordingState.DELETED:
                await asyncio.sleep(0.02)
    finally:
        schedule.cancel()
        await asyncio.gather(schedule, return_exceptions=True)

    assert (await stack.recording(2)).state is RecordingState.READY


async def test_two_runs_finishing_the_same_deletion_log_it_once(stack: RecordingStack) -> None:
    async with stack.sessions.begin() as session:
        [marked] = await claim_expired(session, started_before=LATER - timedelta(days=180), limit=10)

    async with stack.sessions.begin() as session:
        first = await mark_deleted(session, marked, reason="retention", now=LATER, call_started_at=None)
    async with stack.sessions.begin() as session:
        second = await mark_deleted(session, marked, reason="retention", now=LATER, call_started_at=None)

    assert (first, second) == (True, False)
    assert await deletions(stack) == [(1, "retention")]
