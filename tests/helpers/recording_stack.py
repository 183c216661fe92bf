"""A recording worker on a real database and real directories: a monitor directory as the PBX fills it,
a store, a clock the test moves, and calls written the way the call log writes them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallRecord
from calltracking.calls.recording import Recording
from calltracking.calls.repository import save_calls
from calltracking.config import Settings, load_settings
from calltracking.store.tables import WebhookDeliveryRow
from recordings.repository import queue_recordings, recordings_of_calls
from recordings.service import RecordingWorker
from tests.helpers.captures import TRACES

MONITOR = "/var/spool/asterisk/monitor"
SHARED_RECORDINGS = TRACES / "recordings"
# The answered inbound capture: MixMonitor on the carrier's channel, with -rx/-tx halves.
ANSWERED_BASE = "2026/11/22/in-74951110001-+79161234567-20261122-121855-1795349935.0"
HEADER_ONLY_BASE = "2026/11/22/in-74951110001-+79035550101-20261122-121905-1795349945.2"


class FakeClock:
    """Starts at the real time (files the test writes get real modification times) and moves only when
    the test says so."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class RecordingStack:
    sessions: async_sessionmaker[AsyncSession]
    settings: Settings
    monitor: Path
    clock: FakeClock
    worker: RecordingWorker

    @property
    def store_dir(self) -> Path:
        return self.settings.recordings.storage_dir

    def place(self, relative: str, source: Path) -> Path:
        """Put a file where the PBX would have written it."""
        target = self.monitor / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def place_shared(self, base: str) -> None:
        for suffix in ("", "-rx", "-tx"):
            self.place(f"{base}{suffix}.wav", SHARED_RECORDINGS / f"{base}{suffix}.wav")

    async def add_call(self, call: CallRecord) -> int:
        """Write the call and its recording job in one transaction, as the call log does."""
        async with self.sessions.begin() as session:
            [call_id] = await save_calls(session, [call])
            await queue_recordings(session, [call], [call_id], due_at=self.clock())
        return call_id

    async def recording(self, call_id: int) -> Recording:
        async with self.sessions() as session:
            return (await recordings_of_calls(session, [call_id]))[call_id]

    async def queued_events(self) -> list[str]:
        async with self.sessions() as session:
            rows = await session.execute(select(WebhookDeliveryRow.event_id))
            return [row.event_id for row in rows.all()]

    def stored_files(self) -> list[Path]:
        return sorted(p for p in self.store_dir.rglob("*.ogg") if "quarantine" not in p.parts)


def stack_settings(database_url: str, tmp_path: Path, **recordings: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "database": {"url": database_url},
            "pbxs": [{"name": "office", "recordings_dir": str(tmp_path / "monitor"), "timezone": "UTC"}],
            "recordings": {
                "storage_dir": str(tmp_path / "store"),
                "settle_seconds": 0,
                "retry_initial_seconds": 2,
                "retry_max_seconds": 8,
                "missing_after_seconds": 30,
                "complexity": 0,
                **recordings,
            },
            "api": {"token_cache_seconds": 0},
        },
    )


def recording_stack(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path, **recordings: Any
) -> RecordingStack:
    settings = stack_settings(database_url, tmp_path, **recordings)
    monitor = tmp_path / "monitor"
    monitor.mkdir(exist_ok=True)
    clock = FakeClock()
    worker = RecordingWorker(sessions, settings.recordings, settings.pbxs, clock=clock)
    return RecordingStack(sessions=sessions, settings=settings, monitor=monitor, clock=clock, worker=worker)


def pbx_path(relative: str) -> str:
    return f"{MONITOR}/{relative}"
