"""The recording worker: takes each call's recording from the PBX once it is complete, verifies and
converts it, stores it, and says so (state, webhook). Policy lives here; files in `storage.py`, audio in
`audio.py`, SQL in `repository.py`.

Jobs live in the database (a row per call, written with the call), so a restart, a crash mid-conversion
or a database outage loses none: a job is leased while it runs and falls due again if the worker dies.
One bad file never stops the worker: every job ends in a state (ready, empty, missing, quarantined,
refused) or is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import shutil
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.log import StoredHook
from calltracking.calls.record import CallRecord
from calltracking.calls.recording import (
    FORMATS,
    Outcome,
    Part,
    Recording,
    RecordingState,
    StoredFile,
    recording_view,
)
from calltracking.calls.repository import get_call
from calltracking.config import PbxSettings, RecordingSettings
from calltracking.crm.call_matching import Clock, utc_now
from calltracking.crm.call_webhooks import event_id
from calltracking.webhooks.delivery import enqueue
from calltracking.webhooks.subscription import WebhookEvent
from recordings.audio import (
    AudioCorrupt,
    AudioInputs,
    EncodedAudio,
    EncodeOptions,
    encode,
    ffmpeg_binary,
    probe,
    sha256_of,
    wav_is_truncated,
)
from recordings.repository import (
    claim_due_recordings,
    finish_recording,
    next_due_at,
    queue_recordings,
    recordings_of_calls,
    retry_recording,
)
from recordings.sources import RAW_RATES, PathRefused, side_parts, source_candidates
from recordings.storage import FileIdentity, RecordingStore, file_identities, find_first

log = structlog.get_logger(__name__)

Observer = Callable[[str, RecordingState], None]
LEASE = timedelta(minutes=30)
IDLE_POLL_SECONDS = 30.0


# Run in the transaction that marks a recording ready, with the stored recording and its call's id: what
# is owed to new audio is written with it or not at all (a transcription job).
ReadyHook = Callable[[AsyncSession, Recording, int, datetime], Awaitable[None]]


class RecordingWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: RecordingSettings,
        pbxs: Sequence[PbxSettings],
        *,
        clock: Clock = utc_now,
        observe: Observer | None = None,
        on_ready: Sequence[ReadyHook] = (),
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._pbxs = {pbx.name: pbx for pbx in pbxs}
        self._store = RecordingStore(settings.storage_dir)
        self._clock = clock
        self._observe = observe
        self._on_ready = tuple(on_ready)
        self._slots = asyncio.Semaphore(settings.workers)
        self._wake = asyncio.Event()
        self._options = EncodeOptions(settings.bitrate, settings.complexity, FORMATS[settings.format])

    @property
    def store(self) -> RecordingStore:
        return self._store

    def wake(self) -> None:
        """New work may be due (a call with a recording was written, a file was pushed)."""
        self._wake.set()

    async def run(self) -> None:
        """Take a due job whenever a conversion slot is free (a long call never holds the others back);
        when none is due, sleep until the next falls due or `wake()`."""
        if shutil.which(ffmpeg_binary()) is None:
            log.error("ffmpeg_missing", binary=ffmpeg_binary(), hint="install ffmpeg; recordings wait for it")
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._slots.acquire()
                try:
                    jobs = await self._claim(1)
                except Exception:  # the database is a remote boundary; the jobs wait in it
                    log.exception("recording_worker_failed")
                    jobs = []
                if not jobs:
                    self._slots.release()
                    await self._idle()
                    continue
                task = asyncio.create_task(self._run_in_slot(jobs[0]))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def process_due(self) -> int:
        """One pass: take every due job and run them, `workers` at a time. Returns how many ran."""
        jobs = await self._claim(self._settings.workers * 4)

        async def in_slot(job: Recording) -> None:
            await self._slots.acquire()
            await self._run_in_slot(job)

        await asyncio.gather(*(in_slot(job) for job in jobs))
        return len(jobs)

    async def drain(self) -> None:
        """Run jobs until none is due (for `replay`, with no settle delay and no retries)."""
        while await self.process_due():
            pass

    async def _claim(self, limit: int) -> list[Recording]:
        now = self._clock()
        async with self._sessions.begin() as session:
            return await claim_due_recordings(session, now=now, lease_until=now + LEASE, limit=limit)

    async def _idle(self) -> None:
        try:
            async with self._sessions() as session:
                due = await next_due_at(session)
        except Exception:
            log.exception("recording_worker_failed")
            due = None
        wait = IDLE_POLL_SECONDS
        if due is not None:
            wait = min(max((due - self._clock()).total_seconds(), 0.05), IDLE_POLL_SECONDS)
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    async def _run_in_slot(self, job: Recording) -> None:
        """Run one job in the slot the caller acquired; a task boundary: nothing escapes but
        cancellation."""
        try:
            with structlog.contextvars.bound_contextvars(call_id=job.call_id, pbx=job.pbx):
                try:
                    await self._process(job)
                except Exception as exc:  # one job's fault is logged and retried
                    log.exception("recording_failed", attempt=job.attempts + 1)
                    await self._retry(job, f"{type(exc).__name__}: {exc}", count_as_missing=False)
        except Exception as exc:  # not even the retry could be written: the lease brings the job back
            log.error("recording_job_left_leased", call_id=job.call_id, error=str(exc)[:300])
        finally:
            self._slots.release()

    async def _process(self, job: Recording) -> None:
        async with self._sessions() as session:
            stored = await get_call(session, job.call_id) if job.call_id is not None else None
        if stored is None:  # the call was deleted (its row cascades away with it)
            return
        call = stored.call
        pbx = self._pbxs.get(call.pbx, PbxSettings(name=call.pbx))
        try:
            inputs, from_pbx = await asyncio.to_thread(self._locate, job, call, pbx)
        except PathRefused as exc:
            log.warning("recording_path_refused", source=(job.source or "")[:200], reason=str(exc))
            await self._finish(job, Outcome(RecordingState.REFUSED, error=str(exc)))
            return
        if inputs is None:
            await self._retry(job, f"no file for {job.source}", count_as_missing=True)
            return
        settle = timedelta(seconds=self._settings.settle_seconds)
        if settle:
            settled_at = await asyncio.to_thread(_last_change, inputs) + settle
            if self._clock() < settled_at:  # still being written (or just pushed): look again later
                await self._reschedule(job, settled_at)
                return
        # Pushed files are taken as they are now: a part pushed again during the conversion is new.
        taken = {} if from_pbx else await asyncio.to_thread(file_identities, inputs.paths().values())
        if await self._convert(job, call, inputs):
            await asyncio.to_thread(self._clean_up, job, inputs, from_pbx, taken)

    def _locate(self, job: Recording, call: CallRecord, pbx: PbxSettings) -> tuple[AudioInputs | None, bool]:
        """The files of this recording: pushed ones first, else the PBX's monitor directory. Blocking."""
        pushed = self._store.pushed_parts(call.pbx, call.pbx_call_id)
        if pushed:
            raw_rate = RAW_RATES[".raw"] if Part.STEREO in pushed else None
            return AudioInputs(
                mix=pushed.get(Part.STEREO, pushed.get(Part.MIX)),
                rx=pushed.get(Part.RX),
                tx=pushed.get(Part.TX),
                raw_rate=raw_rate,
            ), False
        if not call.recording_file:
            return None, False
        times = tuple(at for at in (call.started_at, call.answered_at, call.ended_at) if at is not None)
        candidates = source_candidates(
            call.recording_file, pbx.monitor_dir, times, pbx.timezone, pbx.raw_is_stereo
        )
        root = pbx.local_recordings_dir
        mix = find_first(root, candidates.mix)
        rx = find_first(root, candidates.rx)
        tx = find_first(root, candidates.tx)
        if mix is None and (rx is None or tx is None):
            return None, True
        raw_rate = candidates.raw_rate if mix is not None else None
        return AudioInputs(mix=mix, rx=rx, tx=tx, raw_rate=raw_rate), True

    async def _convert(self, job: Recording, call: CallRecord, inputs: AudioInputs) -> bool:
        """Whether the outcome was written (not if a push re-opened the job meanwhile)."""
        with self._store.work_dir() as work:
            try:
                encoded = await encode(inputs, side_parts(call), work, self._options)
            except AudioCorrupt as exc:
                return await self._quarantine(job, inputs, await asyncio.to_thread(_explain, inputs, exc))
            main = inputs.mix or inputs.rx
            source_sha256 = await asyncio.to_thread(sha256_of, main) if main else None
            if encoded.duration_seconds <= 0 or encoded.peak_dbfs < self._settings.silence_dbfs:
                log.info(
                    "recording_empty",
                    duration_seconds=encoded.duration_seconds,
                    peak_dbfs=None if math.isinf(encoded.peak_dbfs) else round(encoded.peak_dbfs, 1),
                )
                empty = Outcome(
                    RecordingState.EMPTY,
                    duration_seconds=encoded.duration_seconds,
                    source_sha256=source_sha256,
                )
                return await self._finish(job, empty)
            files = await asyncio.to_thread(self._keep, encoded)
        truncated = not inputs.is_stereo_raw and await asyncio.to_thread(_any_truncated, inputs)
        if truncated:
            log.warning("recording_truncated", duration_seconds=encoded.duration_seconds)
        ready = Outcome(
            RecordingState.READY,
            duration_seconds=round(encoded.duration_seconds, 3),
            format=self._options.audio_format.name,
            source_sha256=source_sha256,
            files=files,
            is_truncated=truncated,
        )
        written = await self._finish(job, ready)
        if written:
            log.info(
                "recording_ready",
                duration_seconds=round(encoded.duration_seconds, 3),
                sides=[name for name in files if name != "mix"],
                sha256=files["mix"].sha256,
                truncated=truncated,
            )
        return written

    def _keep(self, encoded: EncodedAudio) -> dict[str, StoredFile]:
        suffix = self._options.audio_format.suffix
        return {name: self._store.put(path, suffix) for name, path in encoded.outputs.items()}

    async def _quarantine(self, job: Recording, inputs: AudioInputs, reason: str) -> bool:
        kept = {
            f"original-{part.value}": await asyncio.to_thread(self._store.quarantine, path, job.pbx_call_id)
            for part, path in inputs.paths().items()
        }
        log.warning("recording_quarantined", reason=reason[:300], files=[f.path for f in kept.values()])
        return await self._finish(job, Outcome(RecordingState.QUARANTINED, files=kept, error=reason))

    def _clean_up(
        self, job: Recording, inputs: AudioInputs, from_pbx: bool, pushed: dict[Path, FileIdentity]
    ) -> None:
        """After the outcome is committed: the pushed files converted always go; the PBX's only if
        configured."""
        if not from_pbx:
            self._store.clear_inbox(job.pbx, job.pbx_call_id, pushed)
        elif self._settings.delete_originals:
            for path in inputs.paths().values():
                path.unlink(missing_ok=True)
            log.info("recording_original_removed", files=[p.name for p in inputs.paths().values()])

    async def _finish(self, job: Recording, outcome: Outcome) -> bool:
        """Write the outcome, with recording.ready in the same transaction when there is audio. False if
        a push re-opened the job meanwhile: it runs again with the new files."""
        now = self._clock()
        async with self._sessions.begin() as session:
            if not await finish_recording(session, job, outcome, now=now):
                log.info("recording_reopened", outcome=outcome.state.value)
                return False
            if outcome.state is RecordingState.READY and job.call_id is not None:
                done = (await recordings_of_calls(session, [job.call_id]))[job.call_id]
                await enqueue(session, ready_event(done, job.call_id, now), now=now)
                for hook in self._on_ready:
                    await hook(session, done, job.call_id, now)
        if self._observe is not None:
            self._observe(job.pbx, outcome.state)
        return True

    async def _retry(self, job: Recording, reason: str, *, count_as_missing: bool) -> None:
        now = self._clock()
        attempts = job.attempts + 1
        waited = (now - job.due_since).total_seconds()
        if count_as_missing and waited >= self._settings.missing_after_seconds:
            log.warning("recording_missing", source=(job.source or "")[:200], attempts=attempts)
            await self._finish(job, Outcome(RecordingState.MISSING, error=reason))
            return
        delay = min(
            self._settings.retry_initial_seconds * 2 ** (attempts - 1), self._settings.retry_max_seconds
        )
        async with self._sessions.begin() as session:
            await retry_recording(
                session,
                job.id,
                attempts=attempts,
                next_attempt_at=now + timedelta(seconds=delay),
                error=reason,
                now=now,
            )
        log.info("recording_retry", reason=reason[:200], attempt=attempts, retry_in_seconds=delay)

    async def _reschedule(self, job: Recording, at: datetime) -> None:
        async with self._sessions.begin() as session:
            await retry_recording(
                session, job.id, attempts=job.attempts, next_attempt_at=at, error=None, now=self._clock()
            )


def recording_queuer(settings: RecordingSettings, clock: Clock = utc_now) -> StoredHook:
    """A call-log stored hook: every call that announced a recording gets its job in the transaction that
    writes it, due after the settle delay."""

    async def queue(session: AsyncSession, calls: Sequence[CallRecord], ids: Sequence[int]) -> None:
        due_at = clock() + timedelta(seconds=settings.settle_seconds)
        await queue_recordings(session, calls, ids, due_at=due_at)

    return queue


def ready_event(recording: Recording, call_id: int, at: datetime) -> WebhookEvent:
    return WebhookEvent(
        event_id=event_id("recording.ready", recording.pbx, recording.pbx_call_id),
        type="recording.ready",
        occurred_at=at,
        data={
            "call_id": call_id,
            "pbx": recording.pbx,
            "linkedid": recording.pbx_call_id,
            "recording": recording_view(call_id, recording),
        },
    )


def _last_change(inputs: AudioInputs) -> datetime:
    """When any part of the recording last changed: a file still being written is not taken yet."""
    newest = max(path.stat().st_mtime for path in inputs.paths().values())
    return datetime.fromtimestamp(newest, UTC)


def _any_truncated(inputs: AudioInputs) -> bool:
    return any(wav_is_truncated(path) for path in inputs.paths().values())


def _explain(inputs: AudioInputs, failure: AudioCorrupt) -> str:
    """Which part is not audio, and why, for the quarantine's record (ffprobe is only asked after a
    conversion failed: a process start per part is most of the cost of a short call)."""
    if not inputs.is_stereo_raw:
        for part, path in inputs.paths().items():
            try:
                probe(path)
            except AudioCorrupt as exc:
                return f"{part.value}: {exc}"
    return str(failure)
