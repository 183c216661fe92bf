"""The two processes `ami_ingest.py` compares in its served figure, each fed over TCP by the same peer.

Both sides run in a process of their own while the peer streams from the benchmark's process, so neither
shares a core with the peer: (a) bare panoramisk in a child running this file (`--bare-child PORT`),
(c) the real `calltracking serve`, started as an admin starts it (`python -m calltracking.app.cli serve`
with a TOML file), with its defaults: info logs, the API and web interface listening, the event hub with
screen pops, webhook queuing, click-to-call, recordings and retention workers, CRM matching and lead
creation. Each clock starts when the peer accepts the connection (both processes are up and idle by
then) and stops when (a) the child has dispatched the last event, (c) the last call is in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from served_profile import sampled  # bench/, beside this script
from sqlalchemy.engine import make_url

from ami.capture_peer import CapturePeer, PeerSession, greeting_frames

BENCH_DIR = Path(__file__).resolve().parent
SERVICE_START_SECONDS = 60.0
POLL_SECONDS = 0.02


# Stock panoramisk sets up its protocol in a callback of the connection's future: a greeting that is in
# the socket the moment the connection opens reaches a protocol not yet tied to its manager (it raises).
GREETING_DELAY_SECONDS = 0.05


class TimedPeer(CapturePeer):
    """The capture peer, noting when it began to talk to its (single) client: where the clocks start."""

    connected_at: float | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(GREETING_DELAY_SECONDS)
        if self.connected_at is None:
            self.connected_at = time.perf_counter()
        await super()._serve(reader, writer)


def timed_peer(body: bytes) -> TimedPeer:
    return TimedPeer([PeerSession(greeting=greeting_frames(), body=body)])


@dataclass
class ServedRun:
    seconds: float
    rows: int
    peak_rss_kb: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def service_config(directory: Path, database_url: str, ami_port: int, api_port: int) -> Path:
    """The smallest TOML an admin writes for one PBX; everything else is the service's default."""
    data = directory / "data"
    text = f"""
[database]
url = "{database_url}"
spool_dir = "{data / "spool"}"

[api]
port = {api_port}

[recordings]
storage_dir = "{data / "recordings"}"

[[pbx]]
name = "office"
host = "127.0.0.1"
port = {ami_port}
monitor_dir = "{data / "monitor"}"
reconnect_initial_seconds = 3600
reconnect_max_seconds = 3600
"""
    path = directory / "calltracking.toml"
    path.write_text(text, encoding="utf-8")
    return path


def child_env(service_root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CALLTRACKING_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(service_root), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


@contextlib.asynccontextmanager
async def serve_process(
    service_root: Path, config: Path, log_path: Path
) -> AsyncIterator[asyncio.subprocess.Process]:
    with open(log_path, "ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "calltracking.app.cli",
            "serve",
            cwd=str(service_root),
            env=child_env(service_root, {"CALLTRACKING_CONFIG": str(config)}),
            stdout=out,
            stderr=out,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def count_calls(connection: asyncpg.Connection) -> int:
    return int(await connection.fetchval("SELECT count(*) FROM calls"))


def peak_rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def measure_served(
    body: bytes,
    calls: int,
    database_url: str,
    service_root: Path,
    timeout: float,
    profile: Path | None = None,
) -> ServedRun:
    """(c) `calltracking serve` against a scratch database that the caller made and migrated; with
    `profile`, py-spy samples the process the whole time into that file."""
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    peer = timed_peer(body)
    port = await peer.start()
    watcher = await asyncpg.connect(dsn)
    try:
        with tempfile.TemporaryDirectory(prefix="ami-bench-served-") as directory:
            config = service_config(Path(directory), database_url, port, free_port())
            log_path = Path(directory) / "serve.log"
            async with contextlib.AsyncExitStack() as stack:
                process = await stack.enter_async_context(serve_process(service_root, config, log_path))
                if profile is not None:
                    await stack.enter_async_context(sampled(process.pid, profile))
                deadline = time.perf_counter() + SERVICE_START_SECONDS + timeout
                rows = 0
                while rows < calls:
                    if process.returncode is not None:
                        raise RuntimeError(f"serve exited with {process.returncode}: {_tail(log_path)}")
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"{rows} of {calls} calls in the database: {_tail(log_path)}")
                    await asyncio.sleep(POLL_SECONDS)
                    if peer.connected_at is not None:
                        rows = await count_calls(watcher)
                finished = time.perf_counter()
                assert peer.connected_at is not None
                rss = peak_rss_kb(process.pid)
    finally:
        await watcher.close()
        await peer.stop()
    return ServedRun(finished - peer.connected_at, rows, rss)


async def measure_bare_process(body: bytes, events: int, timeout: float) -> float:
    """(a) stock panoramisk in a child process: peer accepts -> the child dispatched every event."""
    peer = timed_peer(body)
    port = await peer.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BENCH_DIR / "ami_ingest.py"),
        "--bare-child",
        str(port),
        "--bare-events",
        str(events),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), SERVICE_START_SECONDS + timeout)
        finished = time.perf_counter()
        await child.wait()
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
        await peer.stop()
    if line.strip() != b"done" or peer.connected_at is None:
        raise RuntimeError(f"the bare panoramisk child failed: {line!r}")
    return finished - peer.connected_at


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
