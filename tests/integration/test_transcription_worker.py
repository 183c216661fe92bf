"""The transcription worker end to end, on both databases: a call's MixMonitor halves (real speech from
espeak-ng on a phone line) are stored by the recording worker, which owes a transcript; the worker
transcribes each side with the real vosk model and stores the transcript. A language with no model
leaves the job `unavailable`; audio that is gone is retried, then `dead`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.recording import Recording
from calltracking.calls.transcript import Speaker, Transcript
from recordings.service import RecordingWorker
from recordings.storage import RecordingStore
from tests.helpers.factories import make_call
from tests.helpers.recording_stack import RecordingStack, pbx_path, recording_stack
from tests.helpers.speech import korean_model_dir, place, speak
from transcription.engine import Transcriber
from transcription.jobs import get_transcript, job_states, queue_transcription
from transcription.worker import TranscriptionWorker, WorkerSettings

TRUNK_CHANNEL = "PJSIP/provider-00000001"
WAV = ("-c:a", "pcm_s16le")


@pytest.fixture(scope="module")
def transcriber() -> Transcriber:
    """One model per process, as the service keeps it."""
    return Transcriber({"ko": korean_model_dir()})


def stack_for(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path, language: str
) -> RecordingStack:
    stack = recording_stack(sessions, database_url, tmp_path)

    def queue(session: AsyncSession, recording: Recording, call_id: int, now: datetime) -> Awaitable[None]:
        return queue_transcription(session, recording.id, call_id, language, now)

    stack.worker = RecordingWorker(
        sessions, stack.settings.recordings, stack.settings.pbxs, clock=stack.clock, on_ready=[queue]
    )
    return stack


async def record_a_call(
    stack: RecordingStack, tmp_path: Path
) -> tuple[int, tuple[float, float], tuple[float, float]]:
    """The customer speaks at 0.5 s, the manager answers at 4 s, in an 8 s call; returns the call id and
    each side's speech span."""
    folder = stack.monitor / "2026/11/22"
    folder.mkdir(parents=True, exist_ok=True)
    customer = place(
        speak("안녕하세요 주문하고 싶어요", tmp_path / "c.wav"), folder / "in-1-rx.wav", 0.5, 8.0, WAV
    )
    manager = place(
        speak("감사합니다 좋은 하루 되세요", tmp_path / "m.wav"), folder / "in-1-tx.wav", 4.0, 8.0, WAV
    )
    # The mix (what is played back) is not what is transcribed when the halves are there.
    place(speak("안녕하세요", tmp_path / "x.wav"), folder / "in-1.wav", 0.5, 8.0, WAV)
    call_id = await stack.add_call(
        make_call(1, recording_file=pbx_path("2026/11/22/in-1.wav"), recording_channel=TRUNK_CHANNEL)
    )
    await stack.worker.process_due()
    return call_id, (customer.start, customer.end), (manager.start, manager.end)


def worker(stack: RecordingStack, transcriber: Transcriber, **settings: object) -> TranscriptionWorker:
    return TranscriptionWorker(
        stack.sessions,
        RecordingStore(stack.settings.recordings.storage_dir),
        transcriber.transcribe,
        WorkerSettings(**settings),  # type: ignore[arg-type]
        clock=stack.clock,
    )


async def test_each_side_is_transcribed_with_its_speaker(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path, transcriber: Transcriber
) -> None:
    stack = stack_for(sessions, database_url, tmp_path, "ko")
    call_id, customer_span, manager_span = await record_a_call(stack, tmp_path)

    assert await worker(stack, transcriber).run_once() == 1

    async with stack.sessions() as session:
        transcript = await get_transcript(session, call_id)
        states = await job_states(session)
    assert transcript is not None and transcript.language == "ko"
    assert [state[:2] for state in states.values()] == [("done", 1)]
    spans = {Speaker.CUSTOMER: customer_span, Speaker.MANAGER: manager_span}
    assert {u.speaker for u in transcript.utterances} == set(spans)
    for utterance in transcript.utterances:
        start, end = spans[utterance.speaker]
        assert utterance.words
        for word in utterance.words:
            # Inside the side's speech, give or take the recognizer's frame (a few hundredths).
            assert start - 0.3 <= word.start <= word.end <= end + 0.3, (utterance.speaker, word)
    starts = [u.start for u in transcript.utterances]
    assert starts == sorted(starts)
    assert await worker(stack, transcriber).run_once() == 0  # done: not taken again


async def test_a_language_without_a_model_leaves_the_job_unavailable(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path, transcriber: Transcriber
) -> None:
    stack = stack_for(sessions, database_url, tmp_path, "ru")
    await record_a_call(stack, tmp_path)

    assert await worker(stack, transcriber).run_once() == 1

    async with stack.sessions() as session:
        [(state, attempts, error, _)] = (await job_states(session)).values()
    assert (state, attempts) == ("transcription_unavailable", 0)
    assert error is not None and "ru" in error


async def test_audio_that_is_gone_is_retried_then_dead(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path, transcriber: Transcriber
) -> None:
    stack = stack_for(sessions, database_url, tmp_path, "ko")
    await record_a_call(stack, tmp_path)
    for stored in stack.stored_files():
        stored.unlink()
    busy = worker(stack, transcriber, max_attempts=2, retry_initial_seconds=10.0)

    assert await busy.run_once() == 1
    async with stack.sessions() as session:
        [(state, attempts, _, _)] = (await job_states(session)).values()
    assert (state, attempts) == ("pending", 1)
    assert await busy.run_once() == 0  # not due for 10 s
    stack.clock.advance(11)
    assert await busy.run_once() == 1
    async with stack.sessions() as session:
        [(state, attempts, error, _)] = (await job_states(session)).values()
    assert (state, attempts) == ("dead", 2)
    assert error


async def test_a_worker_stopped_mid_job_gives_the_job_back_at_once(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path, transcriber: Transcriber
) -> None:
    stack = stack_for(sessions, database_url, tmp_path, "ko")
    await record_a_call(stack, tmp_path)
    started = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow(files: Mapping[Speaker, Path], language: str) -> Transcript:
        """The real transcriber, telling the test (from the worker's thread) that the job is in hand."""
        loop.call_soon_threadsafe(started.set)
        return transcriber.transcribe(files, language)

    taken = TranscriptionWorker(
        stack.sessions,
        RecordingStore(stack.settings.recordings.storage_dir),
        slow,
        WorkerSettings(lease_seconds=3600.0),
        clock=stack.clock,
    )
    task = asyncio.create_task(taken.run_once())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with stack.sessions() as session:
        [(state, attempts, error, due)] = (await job_states(session)).values()
    # Due now, not in an hour when the lease would have ended; no attempt counted.
    assert (state, attempts, due) == ("pending", 0, stack.clock())
    assert error == "the worker stopped before finishing"
