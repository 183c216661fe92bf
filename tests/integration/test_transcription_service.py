"""Transcription as an admin runs it: `calltracking worker --once` takes a ready recording's job and stores
its transcript; a model that is not there is one error line and exit code 2; `serve` with
`[transcription] workers = 1` transcribes the recording it made ready, in its own process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ami.capture_peer import PeerSession
from calltracking.access.tokens import Role
from calltracking.calls.transcript import Speaker
from calltracking.config import Settings, load_settings
from recordings.service import RecordingWorker
from tests.helpers.api import make_token
from tests.helpers.captures import capture
from tests.helpers.factories import make_call
from tests.helpers.listening import running_peer
from tests.helpers.process import serving
from tests.helpers.recording_stack import RecordingStack, pbx_path, recording_stack
from tests.helpers.speech import korean_model_dir, place, speak
from tests.helpers.tcp_proxy import free_port
from tests.integration.test_serve import _inherited
from transcription.jobs import get_transcript, job_states
from transcription.service import transcription_queuer

WAV = ("-c:a", "pcm_s16le")
TRUNK_CHANNEL = "PJSIP/provider-00000001"
# The recording inbound_group_answered announces, under the monitor directory.
GROUP_ANSWERED_BASE = "2026/11/22/in-74951110002-+79161234567-20261122-121929-1795349969.8"


def speech_call(folder: Path, base: str, tmp_path: Path) -> None:
    """A call's MixMonitor files with Korean speech: the customer at 0.5 s, the manager at 3.5 s."""
    (folder / base).parent.mkdir(parents=True, exist_ok=True)
    place(speak("안녕하세요 주문하고 싶어요", tmp_path / "c.wav"), folder / f"{base}-rx.wav", 0.5, 6.0, WAV)
    place(speak("감사합니다", tmp_path / "m.wav"), folder / f"{base}-tx.wav", 3.5, 6.0, WAV)
    place(speak("안녕하세요", tmp_path / "x.wav"), folder / f"{base}.wav", 0.5, 6.0, WAV)


def korean_settings(stack: RecordingStack) -> Settings:
    return load_settings(
        environ={},
        overrides=stack.settings.model_dump(mode="json")
        | {"transcription": {"models": {"ko": str(korean_model_dir())}, "default_language": "ko"}},
    )


def worker_env(database_url: str, tmp_path: Path, models: dict[str, str]) -> dict[str, str]:
    return {
        **_inherited(),
        "CALLTRACKING_DATABASE__URL": database_url,
        "CALLTRACKING_RECORDINGS__STORAGE_DIR": str(tmp_path / "store"),
        "CALLTRACKING_TRANSCRIPTION__MODELS": json.dumps(models),
        "CALLTRACKING_LOG__FORMAT": "json",
    }


async def run_cli(env: dict[str, str], *argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calltracking.app.cli",
        *argv,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_worker_once_stores_the_transcript_of_a_ready_recording(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path)
    settings = korean_settings(stack)
    recordings = RecordingWorker(
        sessions, settings.recordings, settings.pbxs, on_ready=[transcription_queuer(settings)]
    )
    speech_call(stack.monitor, "2026/11/22/in-1", tmp_path)
    call_id = await stack.add_call(
        make_call(1, recording_file=pbx_path("2026/11/22/in-1.wav"), recording_channel=TRUNK_CHANNEL)
    )
    await recordings.process_due()

    code, err = await run_cli(
        worker_env(database_url, tmp_path, {"ko": str(korean_model_dir())}), "worker", "--once"
    )

    assert code == 0, err
    async with sessions() as session:
        transcript = await get_transcript(session, call_id)
        states = await job_states(session)
    assert [state[:2] for state in states.values()] == [("done", 1)]
    assert transcript is not None and transcript.language == "ko"
    assert {u.speaker for u in transcript.utterances} == {Speaker.CUSTOMER, Speaker.MANAGER}
    assert '"event": "transcription_done"' in err and f'"call_id": {call_id}' in err


async def test_worker_with_a_missing_model_is_one_error_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "vosk-ru"
    env = worker_env(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", tmp_path, {"ru": str(missing)})

    code, err = await run_cli(env, "worker", "--processes", "2")

    assert code == 2
    assert err.strip().splitlines() == [
        f"calltracking: database sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
        f"calltracking: transcription unavailable: the 'ru' model directory {missing} does not exist",
    ]


async def test_serve_with_a_worker_transcribes_the_recording_it_made_ready(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    session = PeerSession.from_capture(capture("inbound_group_answered"))
    session.close_at_end = False
    speech_call(tmp_path / "monitor", GROUP_ANSWERED_BASE, tmp_path)
    api_port = free_port()
    token = await make_token(sessions, Role.ADMIN)
    async with running_peer([session]) as peer:
        env = {
            **worker_env(database_url, tmp_path, {"ko": str(korean_model_dir())}),
            "CALLTRACKING_DATABASE__SPOOL_DIR": str(tmp_path / "spool"),
            "CALLTRACKING_PBXS": json.dumps(
                [{"name": "office", "port": peer.port, "recordings_dir": str(tmp_path / "monitor")}]
            ),
            "CALLTRACKING_RECORDINGS__SETTLE_SECONDS": "0.2",
            "CALLTRACKING_TRANSCRIPTION__DEFAULT_LANGUAGE": "ko",
            "CALLTRACKING_TRANSCRIPTION__WORKERS": "1",
            "CALLTRACKING_API__PORT": str(api_port),
        }
        async with serving(env, tmp_path / "serve.log") as service:
            async with asyncio.timeout(60):
                while not await transcribed(sessions):
                    await asyncio.sleep(0.2)
            async with aiohttp.ClientSession() as http:
                response = await http.get(
                    f"http://127.0.0.1:{api_port}/metrics", headers={"Authorization": f"Bearer {token}"}
                )
                metrics = await response.text()
            service.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(service.wait(), 30) == 0

    async with sessions() as db:
        [state] = (await job_states(db)).values()
    assert state[:2] == ("done", 1)
    assert 'calltracking_transcriptions_total{outcome="done"} 1.0' in metrics
    seconds = next(
        line
        for line in metrics.splitlines()
        if line.startswith("calltracking_transcription_audio_seconds_total")
    )
    assert float(seconds.split()[-1]) > 5.0  # the 6 s recording
    assert "calltracking_transcription_jobs" in metrics


async def transcribed(sessions: async_sessionmaker[AsyncSession]) -> bool:
    try:
        async with sessions() as db:
            states = await job_states(db)
    except Exception:  # serve has not migrated yet
        return False
    return any(state[0] == "done" for state in states.values())
