"""`calltracking serve` as an admin runs it: a token from the CLI, a PBX, the API answering over HTTP."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp

from ami.capture_peer import PeerSession
from tests.helpers.captures import TRACES, capture
from tests.helpers.listening import running_peer
from tests.helpers.process import serving
from tests.helpers.tcp_proxy import free_port


async def test_serve_logs_calls_takes_their_recordings_and_answers_the_api(
    database_url: str, tmp_path: Path
) -> None:
    session = PeerSession.from_capture(capture("inbound_group_answered"))
    session.close_at_end = False
    api_port = free_port()
    async with running_peer([session]) as peer:
        env = {
            "CALLTRACKING_DATABASE__URL": database_url,
            "CALLTRACKING_DATABASE__SPOOL_DIR": str(tmp_path / "spool"),
            "CALLTRACKING_PBXS": json.dumps(
                [{"name": "office", "port": peer.port, "recordings_dir": str(TRACES / "recordings")}]
            ),
            "CALLTRACKING_RECORDINGS__STORAGE_DIR": str(tmp_path / "store"),
            "CALLTRACKING_RECORDINGS__SETTLE_SECONDS": "0.2",
            "CALLTRACKING_API__PORT": str(api_port),
            "CALLTRACKING_LOG__FORMAT": "json",
        }
        token = await cli_token(env, "admin")
        async with serving({**_inherited(), **env}, tmp_path / "serve.log") as service:
            base = f"http://127.0.0.1:{api_port}"
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession() as http:
                calls = await eventually(
                    http,
                    f"{base}/api/v1/calls",
                    headers,
                    lambda body: [c["recording_state"] for c in body["items"]] == ["ready"],
                )
                audio = await http.get(
                    f"{base}{calls['items'][0]['recording']['url']}",
                    headers={**headers, "Range": "bytes=0-3"},
                )
                first_bytes = await audio.read()
                ready = await (await http.get(f"{base}/readyz", headers=headers)).json()
                metrics = await (await http.get(f"{base}/metrics", headers=headers)).text()
                docs = await http.get(f"{base}/api/docs")
                openapi = await (await http.get(f"{base}/api/v1/openapi.json")).json()
            service.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(service.wait(), 30) == 0

    [call] = calls["items"]
    assert (call["direction"], call["status"], call["answered_by"]) == ("inbound", "answered", "102")
    assert call["recording"]["sides"] == ["customer", "manager"]
    assert (audio.status, first_bytes) == (206, b"OggS")
    assert 'calltracking_recordings_total{pbx="office",state="ready"} 1.0' in metrics
    assert ready == {
        "ready": True,
        "database": True,
        "pbxs": [{"name": "office", "connected": True, "listening": True}],
        "spool_depth": 0,
    }
    assert 'calltracking_calls_total{pbx="office",status="answered"} 1.0' in metrics
    assert 'calltracking_pbx_connected{pbx="office"} 1.0' in metrics
    counted = re.search(r'^calltracking_ami_events_total\{pbx="office"\} (\d+)\.0$', metrics, re.MULTILINE)
    assert counted is not None and int(counted.group(1)) > 10  # the capture's events, read when scraped
    assert docs.status == 200 and "POST" in await docs.text()
    assert "/api/v1/calls/originate" in openapi["paths"]


async def cli_token(env: dict[str, str], role: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "calltracking.app.cli",
        "token",
        "create",
        "--role",
        role,
        "--name",
        "test",
        env={**_inherited(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    return out.decode().strip().splitlines()[-1]


async def eventually(http: aiohttp.ClientSession, url: str, headers: dict[str, str], done: object) -> dict:  # type: ignore[type-arg]
    async with asyncio.timeout(60):
        while True:
            try:
                response = await http.get(url, headers=headers)
                if response.status == 200:
                    body = await response.json()
                    if done(body):  # type: ignore[operator]
                        return body  # type: ignore[no-any-return]
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            await asyncio.sleep(0.1)


def _inherited() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")}


async def test_a_taken_api_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **_inherited(),
            "CALLTRACKING_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}",
            "CALLTRACKING_DATABASE__SPOOL_DIR": str(tmp_path / "spool"),
            "CALLTRACKING_API__PORT": str(port),
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "calltracking.app.cli",
            "serve",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)

    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "Traceback" not in err.decode()
