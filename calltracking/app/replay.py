"""Replay raw AMI captures through the live listener code, over a loopback AMI peer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from ami.capture_peer import CapturePeer, PeerSession
from ami.listener import PbxListener
from calltracking.app.runtime import call_pipeline
from calltracking.config import (
    CrmSettings,
    DatabaseSettings,
    PbxSettings,
    RecordingSettings,
    TrackingSettings,
)
from calltracking.errors import CalltrackingError
from recordings.service import ReadyHook, RecordingWorker


class ReplayIncomplete(CalltrackingError):
    """The captures were played but not every call reached the database in time."""


async def replay_captures(
    captures: Sequence[bytes],
    pbx: PbxSettings,
    database: DatabaseSettings,
    spool_dir: Path,
    timeout: float = 120.0,
    crm: CrmSettings | None = None,
    tracking: TrackingSettings | None = None,
    recordings: RecordingSettings | None = None,
    on_ready: Sequence[ReadyHook] = (),
) -> int:
    """Play each capture on its own AMI connection, in order; returns how many calls were logged.

    Between two captures the client reconnects exactly as it would to a live PBX (CoreShowChannels, then
    reconciliation), and what is still open after the last one is closed as reconciled. Then every
    recording the calls announced is taken from `pbx`'s recordings directory and converted, at once: the
    PBX is long done with the files, so there is no settle delay and a file not there is missing; each
    recording made ready runs `on_ready` (a transcription job) as `serve` would.
    """
    offline = (recordings or RecordingSettings()).model_copy(
        update={"settle_seconds": 0.0, "missing_after_seconds": 0.0}
    )
    peer = CapturePeer([PeerSession.from_capture(data) for data in captures])
    port = await peer.start()
    local = pbx.model_copy(
        update={
            "host": "127.0.0.1",
            "port": port,
            "reconnect_initial_seconds": 0.01,
            "reconnect_max_seconds": 0.1,
        }
    )
    try:
        async with call_pipeline(database, spool_dir, crm, tracking, offline) as pipeline:
            listener = PbxListener(local, pipeline.call_log)
            listener.start()
            try:
                await asyncio.wait_for(_all_played(listener, peer, len(captures)), timeout)
            finally:
                await listener.close()
            listener.finish()
            try:
                await asyncio.wait_for(pipeline.call_log.flush(), timeout)
            except TimeoutError as exc:
                raise ReplayIncomplete(
                    f"{pipeline.call_log.spool_depth} call(s) not written to the database "
                    f"within {timeout:.0f}s"
                ) from exc
            worker = RecordingWorker(pipeline.sessionmaker, offline, [local], on_ready=on_ready)
            await asyncio.wait_for(worker.drain(), timeout)
            return listener.calls_completed
    except TimeoutError as exc:
        raise ReplayIncomplete(f"the captures were not played within {timeout:.0f}s") from exc
    finally:
        await peer.stop()


async def _all_played(listener: PbxListener, peer: CapturePeer, sessions: int) -> None:
    connection = listener.connection
    while connection.disconnects < sessions:
        await connection.state_changed.wait()
