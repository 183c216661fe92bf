"""Transcription in the running service: a job owed to every recording that becomes ready (in the
transaction that marks it so), the in-process workers `serve` runs, and the backlog gauge.

`calltracking worker` runs the same `TranscriptionWorker` in processes of its own (`calltracking.app`);
what is here is what `serve` and those processes share.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.recording import Recording
from calltracking.config import Settings
from calltracking.errors import ConfigError, TranscriptionUnavailable
from calltracking.metrics import ApiMetrics
from calltracking.quality.checklist import checklist_in_force
from calltracking.store.tables import CallRow
from recordings.service import ReadyHook
from recordings.storage import RecordingStore
from transcription.engine import Transcriber
from transcription.jobs import JobState, backlog, queue_transcription
from transcription.worker import Observer, Outcome, TranscriptionWorker, WorkerSettings

log = structlog.get_logger(__name__)
BACKLOG_INTERVAL_SECONDS = 15.0


def call_language(settings: Settings, pbx: str, did: str | None = None) -> str | None:
    """The language a call is transcribed in: its DID's, else its PBX's; a PBX no longer configured takes
    the default one. None when no language applies (no model for it): such calls are not transcribed."""
    try:
        return settings.transcription_language(pbx, did)
    except ConfigError:
        return settings.transcription.default_language


def transcription_queuer(settings: Settings) -> ReadyHook:
    """A recording worker's ready hook: the recording is owed a transcript in its call's language, in the
    transaction that marks it ready; nothing is queued when no language applies."""

    async def queue(session: AsyncSession, recording: Recording, call_id: int, now: datetime) -> None:
        did = (await session.execute(select(CallRow.did).where(CallRow.id == call_id))).scalar_one_or_none()
        language = call_language(settings, recording.pbx, did)
        if language is not None:
            await queue_transcription(session, recording.id, call_id, language, now)

    return queue


def worker_settings(settings: Settings) -> WorkerSettings:
    return WorkerSettings(default_language=settings.transcription.default_language)


def counting(metrics: ApiMetrics) -> Observer:
    """An observer that counts each attempt's outcome and the audio transcribed."""

    def observe(outcome: Outcome, audio_seconds: float) -> None:
        metrics.transcriptions.labels(outcome=outcome.value).inc()
        if audio_seconds > 0:
            metrics.transcription_audio_seconds.inc(audio_seconds)

    return observe


async def report_backlog(
    sessions: async_sessionmaker[AsyncSession],
    metrics: ApiMetrics,
    interval: float = BACKLOG_INTERVAL_SECONDS,
) -> None:
    """Set the backlog gauge from the database every `interval` seconds, for every worker anywhere."""
    while True:
        try:
            async with sessions() as session:
                counts = await backlog(session)
        except Exception:  # the database is a remote boundary: the gauge keeps its last figures
            log.exception("transcription_backlog_failed")
        else:
            for state in JobState:
                metrics.transcription_jobs.labels(state=state.value).set(counts.get(state.value, 0))
        await asyncio.sleep(interval)


class InProcessTranscription:
    """`serve`'s `[transcription] workers`: asyncio tasks sharing one `Transcriber` (vosk runs in threads),
    started after the models are checked; broken models are logged once and the jobs wait."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        metrics: ApiMetrics,
        transcriber: Transcriber | None = None,
    ) -> None:
        self._sessions = sessions
        self._metrics = metrics
        self._transcriber = transcriber or Transcriber.from_settings(settings.transcription)
        store = RecordingStore(settings.recordings.storage_dir)
        # The supervisor's checklist: every transcript stored is scored against it.
        checklist = checklist_in_force(settings.quality.checklist)
        self.workers: Sequence[TranscriptionWorker] = [
            TranscriptionWorker(
                sessions,
                store,
                self._transcriber.transcribe,
                worker_settings(settings),
                observe=counting(metrics),
                checklist=checklist,
            )
            for _ in range(settings.transcription.workers)
        ]

    def wake(self) -> None:
        """A recording became ready: a job may be due."""
        for worker in self.workers:
            worker.wake()

    async def run(self) -> None:
        """The backlog gauge, and the workers if the models load; until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(report_backlog(self._sessions, self._metrics))
            if not self.workers:
                return
            try:
                await asyncio.to_thread(self._transcriber.check)
            except TranscriptionUnavailable as exc:
                log.error("transcription_unavailable", error=str(exc), workers=len(self.workers))
                return
            for worker in self.workers:
                tasks.create_task(worker.run())
            log.info("transcription_workers_started", workers=len(self.workers))
