"""The transcription queue on both databases: a job is written with the recording it transcribes, one
worker at a time takes it, a worker that dies gives it back when its lease ends."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.recording import Recording
from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from recordings.service import RecordingWorker
from tests.helpers.audio_files import write_silence, write_wav
from tests.helpers.factories import make_call
from tests.helpers.recording_stack import RecordingStack, pbx_path, recording_stack
from transcription.jobs import (
    JobState,
    get_transcript,
    job_failed,
    job_states,
    queue_transcription,
    save_transcript,
    take_jobs,
)

TRUNK_CHANNEL = "PJSIP/provider-00000001"


@pytest.fixture
def stack(sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path) -> RecordingStack:
    stack = recording_stack(sessions, database_url, tmp_path)

    def queue(session: AsyncSession, recording: Recording, call_id: int, now: datetime) -> Awaitable[None]:
        return queue_transcription(session, recording.id, call_id, "ru", now)

    stack.worker = RecordingWorker(
        sessions, stack.settings.recordings, stack.settings.pbxs, clock=stack.clock, on_ready=[queue]
    )
    return stack


async def ready_recording(stack: RecordingStack, n: int) -> tuple[int, int]:
    base = f"2026/11/22/in-{n}"
    folder = stack.monitor / "2026/11/22"
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / f"in-{n}-rx.wav", 2.0, frequency=440.0, amplitude=0.5)
    write_silence(folder / f"in-{n}-tx.wav", 2.0)
    write_wav(folder / f"in-{n}.wav", 2.0, frequency=440.0, amplitude=0.5)
    call_id = await stack.add_call(
        make_call(n, recording_file=pbx_path(f"{base}.wav"), recording_channel=TRUNK_CHANNEL)
    )
    await stack.worker.process_due()
    recording = await stack.recording(call_id)
    return call_id, recording.id


async def test_a_ready_recording_is_owed_a_transcript_in_the_same_transaction(stack: RecordingStack) -> None:
    _, recording_id = await ready_recording(stack, 1)
    async with stack.sessions() as session:
        states = await job_states(session)
    assert {rid: state[:3] for rid, state in states.items()} == {recording_id: ("pending", 0, None)}


async def test_one_worker_at_a_time_and_a_dead_workers_job_comes_back(stack: RecordingStack) -> None:
    await ready_recording(stack, 1)
    await ready_recording(stack, 2)
    now = stack.clock()
    lease = now + timedelta(hours=1)
    async with stack.sessions.begin() as first:
        mine = await take_jobs(first, now, lease, 1)
    # A second worker, while the first holds its job, gets only the other one.
    async with stack.sessions.begin() as second:
        theirs = await take_jobs(second, now, lease, 5)
    assert len(mine) == 1 and len(theirs) == 1
    assert mine[0].id != theirs[0].id
    async with stack.sessions.begin() as session:
        assert await take_jobs(session, now + timedelta(minutes=59), lease, 5) == []
    # Neither worker finished: after the lease both jobs are due again.
    async with stack.sessions.begin() as session:
        again = await take_jobs(session, lease, lease + timedelta(hours=1), 5)
    assert sorted(job.id for job in again) == sorted([mine[0].id, theirs[0].id])


async def test_a_finished_job_keeps_its_transcript_and_is_not_taken_again(stack: RecordingStack) -> None:
    call_id, _ = await ready_recording(stack, 1)
    now = stack.clock()
    transcript = Transcript(
        "ru",
        (
            Utterance(Speaker.MANAGER, 0.5, 1.2, "добрый день", (Word("добрый", 0.5, 0.8, 0.9),)),
            Utterance(Speaker.CUSTOMER, 1.5, 2.0, "здравствуйте"),
        ),
    )
    async with stack.sessions.begin() as session:
        [job] = await take_jobs(session, now, now + timedelta(hours=1), 1)
        await save_transcript(session, job, transcript, now)
    async with stack.sessions.begin() as session:
        assert await take_jobs(session, now + timedelta(days=1), now + timedelta(days=2), 5) == []
        assert await get_transcript(session, call_id) == transcript
        states = await job_states(session)
    assert [state[:2] for state in states.values()] == [("done", 1)]


@pytest.mark.parametrize(("state", "due"), [(JobState.DEAD, False), (JobState.UNAVAILABLE, True)])
async def test_dead_jobs_stay_dead_and_unavailable_ones_are_tried_again(
    stack: RecordingStack, state: JobState, due: bool
) -> None:
    await ready_recording(stack, 1)
    now = stack.clock()
    async with stack.sessions.begin() as session:
        [job] = await take_jobs(session, now, now + timedelta(hours=1), 1)
        await job_failed(session, job, state, "no model for ru", now, now + timedelta(minutes=10), 1)
    async with stack.sessions.begin() as session:
        later = await take_jobs(session, now + timedelta(minutes=11), now + timedelta(hours=2), 5)
    assert bool(later) is due


async def test_a_recording_ready_again_is_transcribed_again(stack: RecordingStack) -> None:
    call_id, recording_id = await ready_recording(stack, 1)
    now = stack.clock()
    async with stack.sessions.begin() as session:
        [job] = await take_jobs(session, now, now + timedelta(hours=1), 1)
        await job_failed(session, job, JobState.DEAD, "broken", now, now, 5)
        await queue_transcription(session, recording_id, call_id, "ru", now + timedelta(minutes=1))
    async with stack.sessions() as session:
        states = await job_states(session)
    assert states[recording_id][:3] == ("pending", 0, None)
