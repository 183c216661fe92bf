"""Run the real listener (panoramisk over TCP) against a CapturePeer, into a real database or a list."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ami.capture_peer import CapturePeer, PeerSession
from ami.listener import PbxListener
from calltracking.app.runtime import CallPipeline, call_pipeline
from calltracking.calls.record import CallRecord, StoredCall
from calltracking.calls.recording import Recording
from calltracking.calls.repository import list_calls
from calltracking.config import DatabaseSettings, PbxSettings
from calltracking.store.engine import create_engine, create_sessionmaker
from recordings.repository import recordings_of_calls

FAST_RECONNECT = {"reconnect_initial_seconds": 0.005, "reconnect_max_seconds": 0.02}


@dataclass
class CollectingSink:
    calls: list[CallRecord] = field(default_factory=list)

    def submit(self, call: CallRecord) -> None:
        self.calls.append(call)


def pbx_for(peer: CapturePeer, **changes: Any) -> PbxSettings:
    return PbxSettings(name="office", host="127.0.0.1", port=peer.port, **{**FAST_RECONNECT, **changes})


@asynccontextmanager
async def running_peer(sessions: Sequence[PeerSession]) -> AsyncIterator[CapturePeer]:
    peer = CapturePeer(sessions)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()


@asynccontextmanager
async def listening(
    peer: CapturePeer, sink: Any, pbx: PbxSettings | None = None
) -> AsyncIterator[PbxListener]:
    listener = PbxListener(pbx or pbx_for(peer), sink)
    listener.start()
    try:
        yield listener
    finally:
        await listener.close()


async def until(predicate: Any, timeout: float = 10.0, interval: float = 0.005) -> None:
    """Wait for a condition the system under test reaches by itself (no fixed sleeps)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(interval)


async def sessions_played(listener: PbxListener, count: int, timeout: float = 30.0) -> None:
    await until(lambda: listener.connection.disconnects >= count, timeout)


def database_settings(url: str, tmp_path: Path, **changes: Any) -> DatabaseSettings:
    return DatabaseSettings(url=url, spool_dir=tmp_path / "spool", **changes)


@asynccontextmanager
async def pipeline_for(settings: DatabaseSettings) -> AsyncIterator[CallPipeline]:
    async with call_pipeline(settings) as pipeline:
        yield pipeline


async def stored_recordings(url: str, call_ids: Sequence[int]) -> dict[int, Recording]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return await recordings_of_calls(session, call_ids)
    finally:
        await engine.dispose()


async def stored_calls(url: str) -> list[StoredCall]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            return await list_calls(session)
    finally:
        await engine.dispose()
