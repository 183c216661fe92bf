"""`calltracking worker`: transcription workers in processes of their own, beside `serve` or on other
machines (they share the queue through the database: PostgreSQL's `FOR UPDATE SKIP LOCKED`).

Each process loads its models once (`Transcriber.check`) and takes one job at a time until SIGTERM or
SIGINT, finishing the job in hand; a process killed mid-job leaves it leased, and the lease's end gives it
back. With `--processes N` this process starts N children (this command with `--processes 1`), the first
alone: a missing or broken model stops the start with the first child's one error line and exit code 2.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import structlog

from calltracking.config import Settings
from calltracking.errors import TranscriptionUnavailable
from calltracking.quality.checklist import checklist_in_force
from calltracking.store.engine import create_sessionmaker, engine_for, migrate_database
from recordings.storage import RecordingStore
from transcription.engine import Transcriber
from transcription.service import worker_settings
from transcription.worker import TranscriptionWorker

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_UNAVAILABLE = 2
# A child prints this line on stdout once its models are loaded (its logs go to stderr).
READY_LINE = b"ready\n"


async def run_worker(settings: Settings, *, once: bool, announce_ready: bool = False) -> int:
    """One worker in this process: until SIGTERM/SIGINT, or until nothing is due with `once`."""
    transcriber = Transcriber.from_settings(settings.transcription)
    try:
        await asyncio.to_thread(transcriber.check)
    except TranscriptionUnavailable as exc:
        print(f"calltracking: transcription unavailable: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    # A bad checklist, like a missing model, is one message at start (QualityConfigInvalid: exit 2).
    checklist = checklist_in_force(settings.quality.checklist)
    if announce_ready:
        sys.stdout.buffer.write(READY_LINE)
        sys.stdout.flush()
    await migrate_database(settings.database)
    engine = engine_for(settings.database)
    try:
        worker = TranscriptionWorker(
            create_sessionmaker(engine, settings.database.transaction_timeout_seconds),
            RecordingStore(settings.recordings.storage_dir),
            transcriber.transcribe,
            worker_settings(settings),
            checklist=checklist,
        )
        if once:
            done = await worker.drain()
            log.info("transcription_worker_drained", jobs=done)
            return EXIT_OK
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stop)
        log.info("transcription_worker_started", languages=sorted(transcriber.languages))
        await worker.run()
        log.info("transcription_worker_stopped")
        return EXIT_OK
    finally:
        await engine.dispose()


async def run_workers(child_argv: Sequence[str], processes: int) -> int:
    """`processes` children running `child_argv` (this command, one worker each), started the first
    alone so that a model that cannot load is reported once; SIGTERM/SIGINT are passed on to them.
    The exit code is the worst of theirs."""
    children: list[asyncio.subprocess.Process] = []
    loop = asyncio.get_running_loop()

    def stop_children() -> None:
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_children)
    try:
        first = await _start(child_argv)
        children.append(first)
        if not await _ready(first):
            return await first.wait() or EXIT_UNAVAILABLE
        rest = [await _start(child_argv) for _ in range(processes - 1)]
        children += rest
        await asyncio.gather(*(_ready(child) for child in rest))
        log.info("transcription_workers_started", processes=len(children))
        codes = await asyncio.gather(*(child.wait() for child in children))
        return max(codes)
    finally:
        stop_children()
        await asyncio.gather(*(child.wait() for child in children))


async def _start(argv: Sequence[str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calltracking.app.cli", *argv, stdout=asyncio.subprocess.PIPE
    )


async def _ready(child: asyncio.subprocess.Process) -> bool:
    """Whether the child loaded its models (said so before its output ended)."""
    if child.stdout is None:
        return False
    return await child.stdout.readline() == READY_LINE


def child_arguments(config: Path | None, database: str | None, once: bool) -> list[str]:
    """This command's arguments for one of its children."""
    argv = ["--config", str(config)] if config else []
    argv += ["worker", "--child"]
    argv += ["--database", database] if database else []
    return argv + (["--once"] if once else [])
