"""Live events under a burst (issue 16): how long a screen pop takes, AMI frame to WebSocket client.

The real `calltracking serve` process (run from --tree, so the same script measures an older checkout),
on a scratch PostgreSQL database, fed over TCP by the capture peer (ami/capture_peer.py) with every
capture copied with fresh ids and new customer numbers (bench/ami_ingest.py's `build_stream`), played at
the captures' own pace compressed so that --rate new calls start per second. A WebSocket client on
/api/v1/events, in a process of its own (so that the peer's pacing never delays a receipt), notes when
each call.ringing arrives; the latency of one is from the moment the peer wrote the AMI frame whose
Linkedid and Timestamp the event carries, to its receipt. A second client connects and never reads.

A measurement, not a test: it prints p50/p99/max and exits 0; non-zero only when the run itself broke.

    .venv/bin/python bench/live_latency.py [--tree /tmp/wt-hub-before] [--rate 50] [--calls 1000]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import socket
import statistics
import tempfile
import time
from datetime import datetime
from multiprocessing.connection import Connection

import aiohttp
from ami_ingest import DEFAULT_DATABASE, DEFAULT_TRACES, FRAME_END, build_stream  # bench/, beside this script
from harness import BenchmarkBroken  # bench/, beside this script
from scratch_database import scratch_database  # bench/, beside this script

from ami.capture_peer import CapturePeer, PeerSession, greeting_frames

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LINKEDID = re.compile(rb"^Linkedid: (\S+)\r$", re.MULTILINE)
TIMESTAMP = re.compile(rb"^Timestamp: (\d+\.\d+)\r$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def paced_frames(body: bytes, rate: float, calls: int) -> list[tuple[float, bytes]]:
    """(offset in seconds, frame): the capture's timeline compressed so `calls` calls start `rate`/s."""
    frames = [piece + FRAME_END for piece in body.split(FRAME_END)[:-1]]
    times: list[float | None] = []
    for piece in frames:
        found = TIMESTAMP.search(piece)
        times.append(float(found.group(1)) if found else None)
    known = [t for t in times if t is not None]
    start, span = min(known), max(known) - min(known)
    speed = (calls / rate) / span if span else 1.0  # seconds of playing per captured second
    paced, last = [], 0.0
    for piece, at in zip(frames, times, strict=True):
        if at is not None:
            last = max(last, (at - start) * speed)
        paced.append((last, piece))
    return paced


async def play(
    peer: CapturePeer, frames: list[tuple[float, bytes]], sent: dict[tuple[str, float], float]
) -> None:
    """Write each frame at its offset into the service's AMI connection, noting when it went out."""
    async with asyncio.timeout(60):
        while not peer._writers:  # the peer's one connection: the service logged in
            await asyncio.sleep(0.01)
    await asyncio.sleep(1.0)  # the snapshot exchange is over
    writer = next(iter(peer._writers))
    loop = asyncio.get_running_loop()
    begin = loop.time()
    for offset, piece in frames:
        delay = begin + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        writer.write(piece)
        linkedid, timestamp = LINKEDID.search(piece), TIMESTAMP.search(piece)
        if linkedid and timestamp:
            sent.setdefault((linkedid.group(1).decode(), round(float(timestamp.group(1)), 3)), time.time())
    await writer.drain()


async def reader(ws: aiohttp.ClientWebSocketResponse, received: list[tuple[str, float, float]]) -> None:
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        data = json.loads(message.data)
        if data["type"] == "call.ringing":
            at = datetime.fromisoformat(data["at"]).timestamp()
            received.append((data["linkedid"], round(at, 3), time.time()))


def reading_client(url: str, secret: str, parent: Connection) -> None:
    """The client that reads, in its own process: it says "ready" once connected, reads until the parent
    says stop, then sends back what it received, with the wall-clock time of each receipt."""

    async def read() -> None:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url, headers={"Authorization": f"Bearer {secret}"})
            received: list[tuple[str, float, float]] = []
            listening = asyncio.create_task(reader(ws, received))
            parent.send("ready")
            await loop.run_in_executor(None, parent.recv)
            listening.cancel()
            await ws.close()
        parent.send(received)

    asyncio.run(read())


async def token(env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "calltracking.app.cli", "token", "create", "--role", "integration",
        "--name", "bench", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise BenchmarkBroken("calltracking token create failed")
    return out.decode().strip().splitlines()[-1]


async def run(args: argparse.Namespace) -> int:
    stream = build_stream(args.traces, args.calls)
    frames = paced_frames(stream.body, args.rate, stream.calls)
    print(f"tree {args.tree}: {stream.calls} calls, {len(frames)} frames over {frames[-1][0]:.1f} s")
    peer = CapturePeer([PeerSession(greeting=greeting_frames(), close_at_end=False)])
    await peer.start()
    port = free_port()
    async with scratch_database(args.database) as url:
        with tempfile.TemporaryDirectory() as scratch:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")},
                "PYTHONPATH": str(args.tree),
                "CALLTRACKING_DATABASE__URL": url,
                "CALLTRACKING_DATABASE__SPOOL_DIR": f"{scratch}/spool",
                "CALLTRACKING_RECORDINGS__STORAGE_DIR": f"{scratch}/store",
                "CALLTRACKING_PBXS": json.dumps([{"name": "office", "port": peer.port}]),
                "CALLTRACKING_API__PORT": str(port),
                "CALLTRACKING_LOG__FORMAT": "json",
                "CALLTRACKING_LOG__LEVEL": "warning",
            }
            migrate = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "calltracking.app.cli", "migrate", env=env, cwd=args.tree
            )
            await migrate.wait()
            secret = await token(env)
            with open(f"{scratch}/serve.log", "wb") as log:
                service = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "calltracking.app.cli", "serve",
                    env=env, cwd=args.tree, stdout=log, stderr=log,
                )  # fmt: skip
            try:
                return await measure(args, port, secret, peer, frames, f"{scratch}/serve.log")
            finally:
                service.terminate()
                await service.wait()
                await peer.stop()


async def measure(
    args: argparse.Namespace,
    port: int,
    secret: str,
    peer: CapturePeer,
    frames: list[tuple[float, bytes]],
    log: str,
) -> int:
    headers = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(60):
            while True:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        url = f"ws://127.0.0.1:{port}/api/v1/events"
        slow = await http.ws_connect(url, headers=headers)  # never read: aiohttp stops reading at 64 KiB
        loop = asyncio.get_running_loop()
        ours, theirs = multiprocessing.Pipe()
        client = multiprocessing.get_context("spawn").Process(
            target=reading_client, args=(url, secret, theirs)
        )
        client.start()
        try:
            if await loop.run_in_executor(None, ours.recv) != "ready":
                raise BenchmarkBroken("the reading client did not connect")
            sent: dict[tuple[str, float], float] = {}
            await play(peer, frames, sent)
            await asyncio.sleep(args.settle)
            ours.send("stop")
            received: list[tuple[str, float, float]] = await loop.run_in_executor(None, ours.recv)
        finally:
            await loop.run_in_executor(None, client.join, 10)
            if client.is_alive():
                client.kill()
        slow_state = "closed" if slow.closed else "open"
    latencies = sorted(
        (got - sent[(linkedid, at)]) * 1000 for linkedid, at, got in received if (linkedid, at) in sent
    )
    if not latencies:
        raise BenchmarkBroken(f"no call.ringing matched a frame the peer sent; see {log}")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"call.ringing to the reading client: {len(latencies)} of {len(received)} matched; "
        f"p50 {statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms; "
        f"the client that never reads: {slow_state}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, default=PROJECT_ROOT, help="the checkout to run serve from")
    parser.add_argument("--rate", type=float, default=50.0, help="new calls per second")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument(
        "--settle", type=float, default=15.0, help="seconds to keep listening after the last frame"
    )
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--database", default=DEFAULT_DATABASE)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
