"""A two-hour call: converted and served without ever holding the file in memory. Memory is measured
with tracemalloc (this process's Python allocations; ffmpeg runs in its own process)."""

from __future__ import annotations

import hashlib
import tracemalloc
import wave
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.status import ServiceStatus
from calltracking.access.tokens import Role
from calltracking.calls.recording import RecordingState
from tests.helpers.api import make_token
from tests.helpers.audio_files import RATE, tone
from tests.helpers.factories import make_call
from tests.helpers.recording_stack import pbx_path, recording_stack

TWO_HOURS = 2 * 60 * 60
MiB = 1024 * 1024


def write_long_wav(path: Path, seconds: int) -> Path:
    """A tone WAV of `seconds`, written one second at a time."""
    second = tone(1.0, amplitude=0.3).tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        for _ in range(seconds):
            out.writeframes(second)
    return path


async def test_two_hour_recording_is_converted_and_served_in_bounded_memory(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path)
    source = write_long_wav(stack.monitor / "long.wav", TWO_HOURS)
    call_id = await stack.add_call(make_call(1, recording_file=pbx_path("long.wav")))

    tracemalloc.start()
    try:
        await stack.worker.process_due()
        _, ingest_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.duration_seconds == TWO_HOURS
    assert source.stat().st_size > 100 * MiB
    assert ingest_peak < 8 * MiB, f"converting took {ingest_peak / MiB:.1f} MiB of Python memory"

    token = await make_token(sessions, Role.SUPERVISOR)
    app = create_app(stack.settings, sessions, ServiceStatus())
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    url = f"/api/v1/calls/{call_id}/recording"
    headers = {"Authorization": f"Bearer {token}"}
    digest = hashlib.sha256()
    size = recording.files["mix"].bytes
    tracemalloc.start()
    try:
        whole = await client.get(url, headers=headers)
        async for chunk in whole.content.iter_chunked(64 * 1024):
            digest.update(chunk)
        near_the_end = await client.get(url, headers={**headers, "Range": f"bytes={size - 4096}-"})
        last_bytes = await near_the_end.read()
        _, serve_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await client.close()

    assert whole.status == 200 and near_the_end.status == 206
    assert digest.hexdigest() == recording.sha256
    assert len(last_bytes) == 4096
    assert size > 5 * MiB
    assert serve_peak < 4 * MiB, f"serving took {serve_peak / MiB:.1f} MiB of Python memory"
