"""The transcription worker: takes due jobs, transcribes each recording's sides off the event loop, and
writes the transcript, its quality score and the job's end in one transaction.

Several workers (processes, machines) share the queue: a job is leased while it runs and falls due again
if its worker dies. A failure is retried with growing delays, then the job is `dead`; a language no model
serves leaves the job `unavailable` and looks again later, so a missing model is one state, not a crash
loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.recording import Recording, Side
from calltracking.calls.transcript import Speaker, Transcript
from calltracking.errors import TranscriptionUnavailable
from calltracking.quality.checklist import ChecklistInForce, checklist_in_force
from calltracking.quality.repository import score_transcript
from recordings.repository import recordings_of_calls
from recordings.storage import RecordingStore
from transcription.jobs import JobState, TranscriptionJob, job_failed, save_transcript, take_jobs

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]
# Blocking (vosk is CPU-bound): run in a worker thread.
Transcribe = Callable[[Mapping[Speaker, Path], str], Transcript]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Outcome(StrEnum):
    """How one attempt at a job ended, as the metrics count it."""

    DONE = "done"
    RETRY = "retry"
    DEAD = "dead"
    UNAVAILABLE = "transcription_unavailable"


# Told each attempt's outcome and the seconds of audio it transcribed (the recording's length when done).
Observer = Callable[[Outcome, float], None]
_OUTCOMES = {
    JobState.PENDING: Outcome.RETRY,
    JobState.DEAD: Outcome.DEAD,
    JobState.UNAVAILABLE: Outcome.UNAVAILABLE,
}


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    default_language: str | None = None
    max_attempts: int = 5
    retry_initial_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    # A model found missing is looked for again after this long.
    unavailable_retry_seconds: float = 600.0
    lease_seconds: float = 3600.0
    idle_poll_seconds: float = 5.0


def speaker_files(recording: Recording, store: RecordingStore) -> dict[Speaker, Path]:
    """The customer's and the manager's sides when the recording was split, else the mix (`unknown`)."""
    sides = {Side.CUSTOMER: Speaker.CUSTOMER, Side.MANAGER: Speaker.MANAGER}
    split = {
        speaker: recording.files[side.value]
        for side, speaker in sides.items()
        if side.value in recording.files
    }
    if len(split) == len(sides):
        return {speaker: store.path_of(stored) for speaker, stored in split.items()}
    return {Speaker.UNKNOWN: store.path_of(recording.files["mix"])}


class TranscriptionWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        store: RecordingStore,
        transcribe: Transcribe,
        settings: WorkerSettings = WorkerSettings(),
        *,
        clock: Clock = utc_now,
        checklist: ChecklistInForce | None = None,
        observe: Observer | None = None,
    ) -> None:
        self._sessions = sessions
        self._store = store
        self._transcribe = transcribe
        self._settings = settings
        self._clock = clock
        self._observe = observe
        # Each stored transcript is scored against it (unset: the shipped example).
        self._checklist = checklist or checklist_in_force(None)
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Take no further job: `run` returns once the job in hand is finished."""
        self._stopping = True
        self._wake.set()

    async def run(self) -> None:
        """Take jobs until cancelled or `stop()`ped."""
        while not self._stopping:
            try:
                done = await self.run_once()
            except Exception:  # a database outage must not end the worker
                log.exception("transcription_worker_failed")
                done = 0
            if not done and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settings.idle_poll_seconds)

    async def drain(self) -> int:
        """Run every due job, one after the other, until none is due; returns how many ran."""
        total = 0
        while done := await self.run_once():
            total += done
        return total

    async def run_once(self) -> int:
        """Take one due job and finish it; 0 when none is due."""
        now = self._clock()
        async with self._sessions.begin() as session:
            jobs = await take_jobs(session, now, now + timedelta(seconds=self._settings.lease_seconds), 1)
        for job in jobs:
            await self._run(job)
        return len(jobs)

    async def _run(self, job: TranscriptionJob) -> None:
        bound = log.bind(call_id=job.call_id, recording_id=job.recording_id, attempt=job.attempts + 1)
        language = job.language or self._settings.default_language
        try:
            async with self._sessions() as session:
                recording = (await recordings_of_calls(session, [job.call_id])).get(job.call_id)
            if recording is None or not recording.is_ready:
                raise FileNotFoundError("the recording's audio is no longer stored")
            if language is None:
                raise TranscriptionUnavailable(
                    "no language for this call: set [transcription] default_language"
                )
            seconds = recording.duration_seconds or 0.0
            files = speaker_files(recording, self._store)
            transcript = await asyncio.to_thread(self._transcribe, files, language)
        except asyncio.CancelledError:
            # The service is stopping: the job is due again at once, not when its lease ends.
            bound.info("transcription_given_back")
            await asyncio.shield(self._give_back(job))
            raise
        except TranscriptionUnavailable as exc:
            bound.warning("transcription_unavailable", error=str(exc))
            await self._fail(job, JobState.UNAVAILABLE, str(exc), self._settings.unavailable_retry_seconds)
            return
        except Exception as exc:
            attempts = job.attempts + 1
            if attempts >= self._settings.max_attempts:
                bound.exception("transcription_dead")
                await self._fail(job, JobState.DEAD, _describe(exc), 0.0, attempts)
                return
            delay = min(
                self._settings.retry_initial_seconds * 2**job.attempts, self._settings.retry_max_seconds
            )
            bound.warning("transcription_retry", error=_describe(exc), retry_in_seconds=delay)
            await self._fail(job, JobState.PENDING, _describe(exc), delay, attempts)
            return
        now = self._clock()
        async with self._sessions.begin() as session:
            await save_transcript(session, job, transcript, now)
            await score_transcript(session, job.call_id, transcript, self._checklist, now)
        bound.info("transcription_done", utterances=len(transcript.utterances), language=language)
        if self._observe is not None:
            self._observe(Outcome.DONE, seconds)

    async def _give_back(self, job: TranscriptionJob) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            await job_failed(
                session, job, JobState.PENDING, "the worker stopped before finishing", now, now, job.attempts
            )

    async def _fail(
        self, job: TranscriptionJob, state: JobState, error: str, retry_in: float, attempts: int | None = None
    ) -> None:
        now = self._clock()
        async with self._sessions.begin() as session:
            await job_failed(
                session,
                job,
                state,
                error,
                now,
                now + timedelta(seconds=retry_in),
                job.attempts if attempts is None else attempts,
            )
        if self._observe is not None:
            self._observe(_OUTCOMES[state], 0.0)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
