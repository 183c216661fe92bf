"""AMI ingest benchmark: the full call path against bare panoramisk, on the same stream, in the same run.

Why: a busy PBX sends hundreds of AMI frames per call, and the service must keep up with them while it
assembles calls and stores them. The absolute speed of this (shared, noisy) machine says little, so the
goal is a ratio against a baseline measured in the same run: the full path must ingest at least half as
many frames per second as panoramisk alone needs to parse and dispatch them (ratio >= 0.5). This is a
measurement, never a test: it exits 0 whatever the ratio, and non-zero only when the run itself is wrong
(e.g. a call did not reach the database).

The stream: every capture in the traces directory, cut after its `FullyBooted`, copied N times; each copy
gets its own Uniqueids/Linkedids, channel-name suffixes and bridge ids, and its Timestamps are shifted so
the copies follow each other in time. All other bytes stay as captured.

  (a) bare:  stock `panoramisk.Manager` (stock `AMIProtocol`) over TCP from a loopback `CapturePeer`, a
             no-op '*' callback that counts events; connect -> last event frame dispatched.
  (b) full:  `PbxListener` + `call_pipeline` (framing, typed events, assembler, spool with fsync,
             PostgreSQL upserts) from the same kind of peer; listener start -> `call_log.flush()` returned.

Each run of (b) gets a scratch PostgreSQL database (created on the server named by --database, migrated
before the clock starts, dropped afterwards), so no existing table is touched.

    .venv/bin/python bench/ami_ingest.py [--calls 3000] [--repeat 3] [--database URL]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where bench/api.py would shadow the
# service's `api` package (which the call log imports): the project root goes in front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import logging
import math
import re
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from harness import BenchmarkBroken  # bench/, beside this script
from panoramisk import Manager
from panoramisk.message import Message
from scratch_database import scratch_database  # bench/, beside this script
from served_ingest import ServedRun, measure_bare_process, measure_served  # bench/, beside this script
from served_profile import summarize  # bench/, beside this script
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ami.capture_peer import CapturePeer, PeerSession, greeting_frames
from ami.connection import AmiConnection
from ami.listener import PbxListener
from calltracking.app.runtime import call_pipeline
from calltracking.config import DatabaseSettings, LogSettings, PbxSettings
from calltracking.logs import configure_logging
from calltracking.store.engine import create_engine, migrate
from calltracking.store.tables import CallRow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = Path(__file__).resolve().parents[2] / "shared" / "ami-traces"
DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
FRAME_END = b"\r\n\r\n"
TARGET_RATIO = 0.5
RUN_TIMEOUT_SECONDS = 900.0
T = TypeVar("T")

# `Key: value` lines whose value is (or contains) an identity that must differ between copies.
IDENTITY_LINE = re.compile(
    rb"^(Uniqueid|Linkedid|DestUniqueid|DestLinkedid|Channel|DestChannel|Value|BridgeUniqueid|Timestamp): "
    rb"([^\r\n]*)(?=\r\n)",
    re.MULTILINE,
)
UNIQUEID_KEYS = frozenset({b"Uniqueid", b"Linkedid", b"DestUniqueid", b"DestLinkedid"})
CHANNEL_KEYS = frozenset({b"Channel", b"DestChannel", b"Value"})  # Value: VarSets like BRIDGEPEER
EPOCH_DOT_NUMBER = re.compile(rb"^\d+\.\d+$")  # a Uniqueid or Timestamp; `<unknown>` is left as it is
# A whole value, or one item of a comma-separated list (BRIDGEPEER in a multi-party bridge), that names a
# channel: PJSIP/101-00000001, Local/102@from-queue-00000001;2. Not PJSIP/103, not a recording's path.
CHANNEL_ITEM = re.compile(rb"(?:^|(?<=,))([A-Za-z][A-Za-z0-9]*/[^\s/,;]+-[0-9a-f]{8})(?=;\d+(?:,|$)|,|$)")
# panoramisk logs the peer's hang-up after the stream as an error; expected here, so kept quiet. (Its
# per-frame debug call costs the same on any logger that has debug off.)
BARE_PANORAMISK_LOG = logging.getLogger("bench.bare_panoramisk")
BARE_PANORAMISK_LOG.setLevel(logging.CRITICAL)
# A customer's mobile number in any of the forms the captures carry it (+79161234567, 79161234567,
# 89161234567): its last ten digits are what a copy renumbers, so each copy's customers are new to the CRM.
CUSTOMER_NUMBER = re.compile(rb"(?<![0-9])(\+7|7|8)?(9[0-9]{9})(?![0-9])")
BRIDGE_NAMESPACE = uuid.UUID("6f1c1f43-5b4e-4d0e-9f5e-0a1b2c3d4e5f")


# --- building the stream -------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A value in the captured bytes that each copy rewrites: kind is uniqueid, channel, bridge or time."""

    kind: str
    value: bytes


Template = list[bytes | Token]


@dataclass
class Stream:
    body: bytes
    calls: int
    copies: int
    frames: int  # greeting + body, pieces ending in \r\n\r\n
    events: int  # of those, the frames panoramisk dispatches as events


@dataclass
class IdentityCounters:
    """Shared by all copies, like Asterisk's own counters, so no two copies ever mint the same id."""

    uniqueid_seq: int = 0
    channel_seq: int = 0
    number_seq: int = 0


@dataclass
class Renumbering:
    """The rewrite of one copy: fresh ids, consistent within the copy, and a time shift in seconds."""

    shift: int
    counters: IdentityCounters
    copy: int
    _seen: dict[tuple[str, bytes], bytes] = field(default_factory=dict)

    def apply(self, token: Token) -> bytes:
        if token.kind == "time":
            whole, _, fraction = token.value.partition(b".")
            return b"%d.%s" % (int(whole) + self.shift, fraction)
        key = (token.kind, token.value)
        new = self._seen.get(key)
        if new is None:
            new = self._seen[key] = self._mint(token)
        return new

    def _mint(self, token: Token) -> bytes:
        if token.kind == "uniqueid":
            epoch = int(token.value.partition(b".")[0])
            self.counters.uniqueid_seq += 1
            return b"%d.%d" % (epoch + self.shift, self.counters.uniqueid_seq)
        if token.kind == "channel":
            self.counters.channel_seq += 1
            return token.value.rpartition(b"-")[0] + b"-%08x" % self.counters.channel_seq
        if token.kind == "bridge":
            return str(uuid.uuid5(BRIDGE_NAMESPACE, f"{self.copy}:{token.value.decode()}")).encode()
        raise ValueError(f"unknown token kind {token.kind}")


def compile_template(body: bytes) -> Template:
    """Split captured bytes into literal runs and the identity values a copy must rewrite."""
    template: Template = []
    position = 0
    for line in IDENTITY_LINE.finditer(body):
        key, value = line.group(1), line.group(2)
        start = line.start(2)
        pieces = _identity_pieces(key, value)
        if not pieces:
            continue
        for offset, end, kind in pieces:
            template.append(body[position : start + offset])
            template.append(Token(kind, value[offset:end]))
            position = start + end
    template.append(body[position:])
    return template


def _identity_pieces(key: bytes, value: bytes) -> list[tuple[int, int, str]]:
    if key in UNIQUEID_KEYS:
        return [(0, len(value), "uniqueid")] if EPOCH_DOT_NUMBER.match(value) else []
    if key == b"BridgeUniqueid":
        return [(0, len(value), "bridge")] if value else []
    if key == b"Timestamp":
        return [(0, len(value), "time")] if EPOCH_DOT_NUMBER.match(value) else []
    if key in CHANNEL_KEYS:
        return [(m.start(1), m.end(1), "channel") for m in CHANNEL_ITEM.finditer(value)]
    return []


def render(template: Template, renumbering: Renumbering) -> bytes:
    return b"".join(piece if isinstance(piece, bytes) else renumbering.apply(piece) for piece in template)


def with_new_customers(body: bytes, counters: IdentityCounters) -> bytes:
    """The copy with every customer number replaced by one no other copy has, consistently within it."""
    minted: dict[bytes, bytes] = {}

    def renumber(match: re.Match[bytes]) -> bytes:
        digits = match.group(2)
        new = minted.get(digits)
        if new is None:
            counters.number_seq += 1
            new = minted[digits] = b"9%09d" % counters.number_seq
        return (match.group(1) or b"") + new

    return CUSTOMER_NUMBER.sub(renumber, body)


def capture_times(body: bytes) -> list[float]:
    return [float(m.group(1)) for m in re.finditer(rb"^Timestamp: (\d+\.\d+)\r$", body, re.MULTILINE)]


def load_round(traces: Path) -> tuple[bytes, int]:
    """All captures' call events (after FullyBooted), in the order they happened, and their call count."""
    captures = []
    for path in sorted(traces.glob("*.ami")):
        body = PeerSession.from_capture(path.read_bytes()).body
        truth = json.loads(path.with_suffix(".truth.json").read_text())
        captures.append((min(capture_times(body)), body, len(truth["calls"])))
    if not captures:
        raise BenchmarkBroken(f"no *.ami captures in {traces}")
    captures.sort(key=lambda item: item[0])
    return b"".join(body for _, body, _ in captures), sum(calls for _, _, calls in captures)


def build_stream(traces: Path, wanted_calls: int, unique_customers: bool = True) -> Stream:
    round_body, round_calls = load_round(traces)
    copies = max(1, math.ceil(wanted_calls / round_calls))
    times = capture_times(round_body)
    period = math.ceil(max(times) - min(times)) + 1  # each copy starts after the previous one ended
    template = compile_template(round_body)
    counters = IdentityCounters()
    rendered = (render(template, Renumbering(k * period, counters, k)) for k in range(copies))
    if unique_customers:
        rendered = (with_new_customers(copy, counters) for copy in rendered)
    body = b"".join(rendered)
    everything = greeting_frames() + body
    frames = everything.split(FRAME_END)[:-1]  # a cut-off tail is not a frame
    events = sum(1 for piece in frames if piece.lstrip(b"\r\n").startswith(b"Event:"))
    return Stream(body=body, calls=round_calls * copies, copies=copies, frames=len(frames), events=events)


# --- measuring -----------------------------------------------------------------------------------


async def within(seconds: float, awaitable: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError as exc:
        raise BenchmarkBroken(f"timed out after {seconds:.0f}s waiting for {what}") from exc


def peer_for(stream: Stream) -> CapturePeer:
    # The peer hangs up after the body, like at the end of a replay. TCP delivers every byte before that
    # EOF, so a client that has noticed the hang-up has handled every frame: both clocks stop there.
    return CapturePeer([PeerSession(greeting=greeting_frames(), body=stream.body)])


async def measure_bare(stream: Stream) -> float:
    """(a) stock panoramisk: connect -> every event frame dispatched to a counting no-op callback."""
    peer = peer_for(stream)
    port = await peer.start()
    try:
        started = time.perf_counter()
        dispatched = await read_with_panoramisk(port)
        seconds = time.perf_counter() - started
    finally:
        await peer.stop()
    if dispatched != stream.events:
        raise BenchmarkBroken(
            f"bare panoramisk dispatched {dispatched} events, the stream has {stream.events}"
        )
    return seconds


async def read_with_panoramisk(port: int) -> int:
    """Stock panoramisk reads a peer's stream to its end; returns how many events it dispatched."""
    hung_up = asyncio.Event()
    dispatched = 0

    def count(_manager: Manager, _message: Message) -> None:
        nonlocal dispatched
        dispatched += 1

    def ask_snapshot(manager: Manager, _message: Message) -> None:
        # The listener asks for CoreShowChannels after FullyBooted; the peer holds the body back until then.
        manager.send_action({"Action": "CoreShowChannels"}, as_list=True)

    manager = Manager(
        host="127.0.0.1",
        port=port,
        username="bench",
        secret="bench",
        events="on",
        loop=asyncio.get_running_loop(),
        reconnect_timeout=3600,
        log=BARE_PANORAMISK_LOG,
        on_disconnect=lambda _manager, _exc: hung_up.set(),
    )
    manager.register_event("*", count)
    manager.register_event("FullyBooted", ask_snapshot)
    try:
        manager.connect()
        await within(RUN_TIMEOUT_SECONDS, hung_up.wait(), "bare panoramisk to read the stream")
    finally:
        manager.close()
    return dispatched


def bare_child(port: int, events: int) -> int:
    """The bare side of the served figure, in a process of its own: prints `done` once every event of
    the stream was dispatched."""
    dispatched = asyncio.run(read_with_panoramisk(port))
    print("done" if dispatched == events else f"dispatched {dispatched} of {events}", flush=True)
    return 0


@dataclass
class FullRun:
    seconds: float
    calls_completed: int
    rows: int
    migrate_check_seconds: float


async def measure_full(stream: Stream, server_url: str) -> FullRun:
    """(b) the service's own path: listener start -> every call completed, spooled and in PostgreSQL."""
    async with scratch_database(server_url) as url:
        migrate_check = await premigrate(url)
        peer = peer_for(stream)
        port = await peer.start()
        pbx = PbxSettings(
            host="127.0.0.1", port=port, reconnect_initial_seconds=3600, reconnect_max_seconds=3600
        )
        with tempfile.TemporaryDirectory(prefix="ami-bench-spool-") as spool_dir:
            database = DatabaseSettings(url=url, spool_dir=Path(spool_dir))
            try:
                async with call_pipeline(database, Path(spool_dir)) as pipeline:
                    listener = PbxListener(pbx, pipeline.call_log)
                    started = time.perf_counter()
                    listener.start()
                    try:
                        await within(
                            RUN_TIMEOUT_SECONDS,
                            hung_up(listener.connection),
                            "the listener to read the stream",
                        )
                        await within(
                            RUN_TIMEOUT_SECONDS, pipeline.call_log.flush(), "the calls to reach the database"
                        )
                        seconds = time.perf_counter() - started
                    finally:
                        await listener.close()
                    rows = await count_rows(pipeline.sessionmaker)
            finally:
                await peer.stop()
    return FullRun(seconds, listener.calls_completed, rows, migrate_check)


async def hung_up(connection: AmiConnection) -> None:
    """Until the connection has seen the peer hang up (the listener logs it as ami_connection_lost)."""
    while connection.disconnects < 1:
        await connection.state_changed.wait()


async def count_rows(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        return int((await session.execute(select(func.count()).select_from(CallRow))).scalar_one())


async def premigrate(url: str) -> float:
    """Migrate outside the clock; returns what the pipeline's own migrate-before-first-write then costs
    inside it (an up-to-date check), so the reader can see it is negligible."""
    engine = create_engine(url)
    try:
        await migrate(engine)
        started = time.perf_counter()
        await migrate(engine)
        return time.perf_counter() - started
    finally:
        await engine.dispose()


# --- reporting -----------------------------------------------------------------------------------


def check(stream: Stream, run: FullRun) -> None:
    if run.calls_completed != stream.calls or run.rows != stream.calls:
        raise BenchmarkBroken(
            f"calls in the stream: {stream.calls}, completed by the assembler: {run.calls_completed}, "
            f"rows in calls: {run.rows}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="about this many calls in the stream")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved pairs of each measurement")
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help="PostgreSQL server (SQLAlchemy asyncpg URL); each run uses a scratch database on it",
    )
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="directory of *.ami captures")
    parser.add_argument(
        "--service-root",
        type=Path,
        default=PROJECT_ROOT,
        help="the checkout whose `calltracking serve` is measured (another commit's worktree, to compare)",
    )
    parser.add_argument(
        "--pipeline", action="store_true", help="also measure the pipeline alone in this process (b)"
    )
    parser.add_argument(
        "--same-customers",
        action="store_true",
        help="keep the captures' customer numbers in every copy (no new leads after the first copy)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="after the pairs, one more served run sampled by py-spy: DIR/serve.raw and DIR/summary.txt",
    )
    parser.add_argument("--bare-child", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--bare-events", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.repeat < 1:
        parser.error("--calls and --repeat must be positive")
    return args


async def served_pair_run(
    stream: Stream, server_url: str, service_root: Path, profile: Path | None = None
) -> ServedRun:
    async with scratch_database(server_url) as url:
        await premigrate(url)
        return await measure_served(
            stream.body, stream.calls, url, service_root, RUN_TIMEOUT_SECONDS, profile
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_child is not None:
        return bare_child(args.bare_child, args.bare_events)
    configure_logging(LogSettings(level="warning"))
    stream = build_stream(args.traces, args.calls, unique_customers=not args.same_customers)
    print(
        f"stream: {stream.calls} calls ({stream.copies} copies of the captures, "
        f"{'the same' if args.same_customers else 'new'} customers in each), {stream.frames} frames, "
        f"{stream.events} events, {len(stream.body) / 1e6:.1f} MB; service from {args.service_root}"
    )
    served_ratios: list[float] = []
    pipeline_ratios: list[float] = []
    try:
        for attempt in range(1, args.repeat + 1):
            # Interleaved pairs, each side in a fresh process: a noisy moment on the machine hits both.
            bare = asyncio.run(measure_bare_process(stream.body, stream.events, RUN_TIMEOUT_SECONDS))
            served = asyncio.run(served_pair_run(stream, args.database, args.service_root))
            if served.rows != stream.calls:
                raise BenchmarkBroken(f"calls in the stream: {stream.calls}, rows in calls: {served.rows}")
            served_ratios.append(bare / served.seconds)
            print(
                f"pair {attempt}: bare panoramisk {bare:.2f} s ({stream.frames / bare:,.0f} frames/s), "
                f"calltracking serve {served.seconds:.2f} s ({stream.frames / served.seconds:,.0f} frames/s, "
                f"peak RSS {served.peak_rss_kb / 1024:.0f} MB), ratio {served_ratios[-1]:.2f}",
                flush=True,
            )
            if args.pipeline:
                bare_here = asyncio.run(measure_bare(stream))
                run = asyncio.run(measure_full(stream, args.database))
                check(stream, run)
                pipeline_ratios.append(bare_here / run.seconds)
                print(
                    f"        pipeline alone: bare {bare_here:.2f} s, pipeline {run.seconds:.2f} s, "
                    f"ratio {pipeline_ratios[-1]:.2f}",
                    flush=True,
                )
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            raw = args.profile / "serve.raw"
            asyncio.run(served_pair_run(stream, args.database, args.service_root, raw))
            summary = summarize(raw)
            (args.profile / "summary.txt").write_text(summary + "\n", encoding="utf-8")
            print(f"profile of one more served run: {raw}, {args.profile / 'summary.txt'}")
    except (BenchmarkBroken, RuntimeError, TimeoutError) as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    print(f"calls: {stream.calls}  frames: {stream.frames}  pairs: {args.repeat}")
    print(
        f"served ratio (serve/bare panoramisk, median of pairs): {statistics.median(served_ratios):.2f} "
        f"(target >= {TARGET_RATIO}; pairs {', '.join(f'{r:.2f}' for r in served_ratios)})"
    )
    if pipeline_ratios:
        print(f"pipeline-only ratio (median of pairs): {statistics.median(pipeline_ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
