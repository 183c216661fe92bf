"""Memory against calls handled (issue 16): does `calltracking serve` hold on to anything per call?

Why: the service runs for months beside a PBX. Measured before issue 16, its RSS grew about 3 KB per call
and stayed up at rest; after a million calls it must be within 10 % of what it was after ten thousand,
and tracemalloc must show no line whose allocations grow with the calls.

The process: the service's own wiring (`calltracking.app.serve.run_service`), run in this process so that
tracemalloc sees it, on the embedded SQLite database in a temporary directory (what a user gets by
default), or on a scratch PostgreSQL database with `--database URL`. It listens over TCP to a loopback AMI
peer that greets like Asterisk 22, answers the CoreShowChannels snapshot with no channels, and then
streams calls: made lazily, a chunk at a time, and never more than `WINDOW_CALLS` ahead of what the
database holds (the spool is the queue, and an unbounded queue would be measured as growth).

The calls: the two captures below, alternating (an inbound call answered by an extension, a missed
one), kept to the frames the service turns into events (the Asterisk 22 wording as captured; RTCP,
DeviceStateChange and untracked VarSets dropped: ~30 frames a call instead of ~90). Each call gets its own
Uniqueids, Linkedids, channel suffixes and bridge ids, its timestamps follow the previous call's, and
its customer number is new, so the CRM creates a lead per call, as traffic from new customers does.

At each checkpoint (1-2-5 steps from `--calls`/100 up to `--calls`), once the database holds every call
streamed so far and the spool is empty, it samples VmRSS and, with `--trace`, a tracemalloc snapshot;
then, after `--idle` seconds with no traffic, once more. It prints RSS per checkpoint, RSS(end)/RSS(first)
and the growth per call between the first checkpoint and the end (RSS, and with `--trace` the traced
heap with its top growing lines). tracemalloc slows Python several times over: run it shorter.

    .venv/bin/python bench/memory.py [--calls 1000000] [--trace] [--database URL] [--idle 5]

A measurement, not a test: it exits 0 whatever the figures, 1 when the run itself is wrong (a call that
never reached the database, a stalled stream).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where bench/api.py would shadow the
# service's `api` package: the project root goes in front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import ctypes
import gc
import os
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from ami_ingest import (  # bench/, beside this script
    IdentityCounters,
    Renumbering,
    Template,
    capture_times,
    compile_template,
    render,
    with_new_customers,
)
from harness import BenchmarkBroken  # bench/, beside this script
from scratch_database import scratch_database  # bench/, beside this script
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from ami.capture_peer import CapturePeer, PeerSession, _parse_fields
from ami.events import parse_event
from calltracking.app.memory import heap_trimmer
from calltracking.app.serve import run_service
from calltracking.config import (
    ApiSettings,
    DatabaseSettings,
    LogSettings,
    PbxSettings,
    RecordingSettings,
    Settings,
)
from calltracking.logs import configure_logging
from calltracking.store.tables import CallRow

DEFAULT_TRACES = Path(__file__).resolve().parents[2] / "shared" / "ami-traces"
CAPTURES = ("inbound_single_answered", "inbound_single_missed")
FRAME_END = b"\r\n\r\n"
CHUNK_CALLS = 100  # calls written to the socket at a time
WINDOW_CALLS = 2_000  # the most calls streamed ahead of the database
STALL_SECONDS = 120.0  # no call reached the database for this long: the run is broken
TOP_LINES = 12
NATIVE_NAMES = ("malloc used", "malloc free", "sqlite", "sqlite peak")


# --- the calls -----------------------------------------------------------------------------------


@dataclass
class CallStream:
    """Calls made on demand: call k is capture k % 2, renumbered; nothing is kept per call."""

    greeting: bytes
    templates: list[Template]
    period: int  # seconds between the starts of two consecutive calls
    counters: IdentityCounters = field(default_factory=IdentityCounters)
    made: int = 0

    def chunk(self, calls: int) -> bytes:
        pieces = []
        for _ in range(calls):
            template = self.templates[self.made % len(self.templates)]
            renumbering = Renumbering(self.made * self.period, self.counters, self.made)
            pieces.append(with_new_customers(render(template, renumbering), self.counters))
            self.made += 1
        return b"".join(pieces)


def compact_call(capture: bytes) -> tuple[bytes, bytes]:
    """The capture's greeting, and its call cut down to the frames the service turns into events."""
    session = PeerSession.from_capture(capture)
    kept = []
    for piece in session.body.split(FRAME_END)[:-1]:
        fields = dict(_case_kept_fields(piece))
        if parse_event(fields, 0.0) is not None:
            kept.append(piece.lstrip(b"\r\n") + FRAME_END)
    return session.greeting, b"".join(kept)


def _case_kept_fields(piece: bytes) -> Iterator[tuple[str, str]]:
    for line in piece.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            yield key.strip(), value.strip()


def load_stream(traces: Path) -> CallStream:
    greeting = b""
    bodies = []
    for name in CAPTURES:
        greeting, body = compact_call((traces / f"{name}.ami").read_bytes())
        bodies.append(body)
    spans = [max(capture_times(body)) - min(capture_times(body)) for body in bodies]
    return CallStream(
        greeting=greeting,
        templates=[compile_template(body) for body in bodies],
        period=int(max(spans)) + 1,
    )


# --- the peer ------------------------------------------------------------------------------------


class StreamingPeer(CapturePeer):
    """A capture peer whose body is made while it is sent: after the snapshot exchange it asks `next_chunk`
    for bytes until it returns none, answering the service's actions (Ping) between chunks."""

    def __init__(self, greeting: bytes, next_chunk: Callable[[], Awaitable[bytes]]) -> None:
        super().__init__([PeerSession(greeting=greeting, close_at_end=False)])
        self._next_chunk = next_chunk

    async def _play(
        self, session: PeerSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        snapshot_answered = asyncio.Event()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        async def read_actions() -> None:
            buffer = b""
            while chunk := await reader.read(65536):
                buffer += chunk
                while FRAME_END in buffer:
                    raw, buffer = buffer.split(FRAME_END, 1)
                    action = _parse_fields(raw)
                    name = action.get("action", "").lower()
                    for reply in self._reply(session, name, action):
                        replies.put_nowait(reply)
                    if name == "coreshowchannels":
                        snapshot_answered.set()

        reading = asyncio.create_task(read_actions())
        try:
            writer.write(session.greeting)
            await writer.drain()
            await asyncio.wait_for(snapshot_answered.wait(), 30)
            while True:
                while not replies.empty():
                    writer.write(replies.get_nowait())
                making = asyncio.ensure_future(self._next_chunk())
                # Made while the service is waited on: its Pings are answered meanwhile.
                await self._answer_until([making, reading], replies, writer)
                if not making.done():
                    making.cancel()
                    return
                body = making.result()
                if not body:
                    break
                writer.write(body)
                await writer.drain()
            await self._answer_until([reading], replies, writer)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading


# --- measuring -----------------------------------------------------------------------------------


@dataclass
class Sample:
    label: str
    calls: int
    rss_kb: int
    traced_bytes: int | None
    native: tuple[int, int, int, int] | None
    seconds: float
    snapshot: tracemalloc.Snapshot | None = None


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        ("arena", ctypes.c_size_t),
        ("ordblks", ctypes.c_size_t),
        ("smblks", ctypes.c_size_t),
        ("hblks", ctypes.c_size_t),
        ("hblkhd", ctypes.c_size_t),
        ("usmblks", ctypes.c_size_t),
        ("fsmblks", ctypes.c_size_t),
        ("uordblks", ctypes.c_size_t),
        ("fordblks", ctypes.c_size_t),
        ("keepcost", ctypes.c_size_t),
    ]


def _native_counters() -> Callable[[], tuple[int, int, int, int] | None]:
    """glibc's malloc (bytes in use, bytes free but kept) and SQLite's own allocator (bytes in use, and the
    most it held since the last read), from the libraries this process already has loaded; None where
    they are not glibc's and the system's."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        sqlite = ctypes.CDLL("libsqlite3.so.0")
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
        sqlite.sqlite3_memory_highwater.restype = ctypes.c_int64
        sqlite.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
    except (OSError, AttributeError):
        return lambda: None

    def read() -> tuple[int, int, int, int]:
        info = libc.mallinfo2()
        used = int(sqlite.sqlite3_memory_used())
        return info.uordblks + info.hblkhd, info.fordblks, used, int(sqlite.sqlite3_memory_highwater(1))

    return read


native_counters = _native_counters()


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchmarkBroken("no VmRSS in /proc/self/status")


GLIBC_HEAP_ALIGNMENT = 64 * 1024 * 1024  # a thread arena's heap starts on a 64 MiB boundary (64-bit glibc)


def resident_by_kind() -> dict[str, int]:
    """Resident KB by what holds it, from /proc/self/smaps: glibc's main arena (`[heap]`), its thread
    arenas (anonymous maps on a 64 MiB boundary), other anonymous memory (Python's own arenas, large
    blocks malloc mapped on their own, thread stacks) and files (libraries, SQLite's WAL index)."""
    kinds = {"main arena": 0, "thread arenas": 0, "other anon": 0, "files": 0}
    kind = "files"
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
            start = int(fields[0].split("-")[0], 16)
            path = fields[5] if len(fields) > 5 else ""
            if path == "[heap]":
                kind = "main arena"
            elif fields[4] != "0" and path.startswith("/"):
                kind = "files"
            elif start % GLIBC_HEAP_ALIGNMENT == 0:
                kind = "thread arenas"
            else:
                kind = "other anon"
        elif fields[0] == "Rss:":
            kinds[kind] += int(fields[1])
    return kinds


def _resident_text() -> str:
    return "  ".join(f"{kind} {kb / 1024:6.1f}" for kind, kb in resident_by_kind().items())


def checkpoints(calls: int, first: int | None = None) -> list[int]:
    """1-2-5 steps from `first` (default calls/100, at least 10) up to calls: 10k, 20k, 50k, ... 1M for a
    million."""
    first = first or max(10, calls // 100)
    points = []
    decade = first
    while decade < calls:
        points += [step for step in (decade, decade * 2, decade * 5) if step < calls]
        decade *= 10
    return [*points, calls]


def settings_for(directory: Path, database_url: str | None, ami_port: int) -> Settings:
    return Settings(
        database=DatabaseSettings(
            url=database_url or f"sqlite+aiosqlite:///{directory}/calltracking.db",
            spool_dir=directory / "spool",
        ),
        pbxs=(
            PbxSettings(
                name="office",
                port=ami_port,
                # A sample stops the whole process (tracemalloc's snapshot most of all), its AMI link too.
                ping_timeout_seconds=600,
                monitor_dir="/var/spool/asterisk/monitor",
                recordings_dir=directory / "monitor",
            ),
        ),
        api=ApiSettings(port=0),
        # No recording file ever appears here: each call's is looked for once and marked missing, rather
        # than retried for 15 minutes (a backlog of retries that real traffic, whose files arrive, has not).
        recordings=RecordingSettings(storage_dir=directory / "recordings", missing_after_seconds=0),
    )


class Run:
    """Streams `calls` calls to the service and samples its memory at the checkpoints."""

    def __init__(
        self,
        stream: CallStream,
        calls: int,
        database_url: str,
        trace: bool,
        first: int | None = None,
        trim_probe: Callable[[], int] | None = None,
    ) -> None:
        self.stream = stream
        self.trim_probe = trim_probe
        self.calls = calls
        self.points = checkpoints(calls, first)
        self.trace = trace
        self.samples: list[Sample] = []
        self._engine = create_async_engine(database_url, poolclass=NullPool)
        self._started = time.perf_counter()
        self._stored = 0

    async def next_chunk(self) -> bytes:
        sent = self.stream.made
        if not sent:
            await self._migrated()
        if sent and sent == self.points[0]:
            await self._stored_at_least(sent)
            self.sample(f"{sent:,} calls", sent)
            self.points.pop(0)
        if sent >= self.calls:
            return b""
        await self._stored_at_least(sent - WINDOW_CALLS)
        wanted = min(CHUNK_CALLS, self.points[0] - sent)
        return self.stream.chunk(wanted)

    def sample(self, label: str, calls: int) -> None:
        gc.collect()  # what is garbage now is not held: count what the service keeps
        snapshot = tracemalloc.take_snapshot() if self.trace else None
        traced = tracemalloc.get_traced_memory()[0] if self.trace else None
        native = native_counters()
        sample = Sample(label, calls, rss_kb(), traced, native, time.perf_counter() - self._started, snapshot)
        self.samples.append(sample)
        text = f"  {label:>18}  RSS {sample.rss_kb / 1024:7.1f} MB"
        if native is not None:
            used, free, sqlite, sqlite_peak = (_mb(size) for size in native)
            text += f"  malloc used {used} free {free}  sqlite {sqlite} peak {sqlite_peak}"
        if traced is not None:
            text += f"  traced {_mb(traced)}"
        print(f"{text}  at {sample.seconds:6.0f} s")
        print(f"  {'':>18}  resident MB: {_resident_text()}")
        if self.trim_probe is not None:
            self.trim_probe()
            print(f"  {'':>18}  trimmed: RSS {rss_kb() / 1024:7.1f} MB  {_resident_text()}")
        sys.stdout.flush()

    async def _stored_at_least(self, calls: int) -> None:
        if self._stored >= calls:
            return
        last_progress = time.perf_counter()
        while True:
            stored = await self._count(exact=calls == self.stream.made)
            if stored > self._stored:
                last_progress = time.perf_counter()
            self._stored = stored
            if stored >= calls:
                return
            if time.perf_counter() - last_progress > STALL_SECONDS:
                raise BenchmarkBroken(f"{stored} of {calls} calls in the database after {STALL_SECONDS:.0f}s")
            await asyncio.sleep(0.05)

    async def _migrated(self) -> None:
        """Until the service has made its tables (calls that come before are fine, but not measured)."""
        deadline = time.perf_counter() + STALL_SECONDS
        while True:
            try:
                await self._count(exact=False)
                return
            except DBAPIError:
                if time.perf_counter() > deadline:
                    raise BenchmarkBroken("the service did not make its tables") from None
                await asyncio.sleep(0.1)

    async def _count(self, exact: bool) -> int:
        # max(id) is an index lookup; count(*) walks the table, so only where it must be exact.
        column = func.count() if exact else func.max(CallRow.id)
        async with self._engine.connect() as connection:
            return int((await connection.execute(select(column).select_from(CallRow))).scalar() or 0)

    async def close(self) -> None:
        await self._engine.dispose()


async def measure(args: argparse.Namespace) -> list[Sample]:
    stream = load_stream(args.traces)
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as scratch:
        directory = Path(scratch)
        async with _database(args.database, directory) as database_url:
            log_file = open(args.log or os.devnull, "w", encoding="utf-8")  # noqa: SIM115
            configure_logging(LogSettings(level="info", format="json"), stream=log_file)
            trim_probe = heap_trimmer() if args.trim_probe else None
            run = Run(stream, args.calls, database_url, args.trace, args.baseline, trim_probe)
            peer = StreamingPeer(stream.greeting, run.next_chunk)
            port = await peer.start()
            stop = asyncio.Event()
            if args.trace:
                tracemalloc.start()
            service = asyncio.create_task(run_service(settings_for(directory, database_url, port), stop))
            try:
                streaming = asyncio.create_task(_until_streamed(run, peer))
                done, _ = await asyncio.wait([service, streaming], return_when=asyncio.FIRST_COMPLETED)
                if service in done:
                    streaming.cancel()
                    service.result()
                    raise BenchmarkBroken("the service stopped before the calls were streamed")
                streaming.result()
                await asyncio.sleep(args.idle)
                run.sample(f"idle {args.idle:g} s", args.calls)
            finally:
                stop.set()
                await asyncio.wait_for(service, 60)
                await peer.stop()
                await run.close()
                tracemalloc.stop()
                log_file.close()
            return run.samples


async def _until_streamed(run: Run, peer: StreamingPeer) -> None:
    while run.points:
        if peer.finished.is_set():
            raise BenchmarkBroken(f"the AMI connection ended after {run.stream.made:,} calls")
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def _database(server_url: str | None, directory: Path) -> AsyncIterator[str]:
    if server_url is None:
        yield f"sqlite+aiosqlite:///{directory}/calltracking.db"
        return
    async with scratch_database(server_url) as url:
        yield url


def report(samples: list[Sample]) -> None:
    first, end, idle = samples[0], samples[-2], samples[-1]
    calls = end.calls - first.calls
    span = f"{first.calls:,} -> {end.calls:,} calls"
    print(f"RSS end/first ({span}): {end.rss_kb / first.rss_kb:.3f}")
    print(f"RSS idle/first: {idle.rss_kb / first.rss_kb:.3f}")
    print(f"growth per call ({span}):")
    print(f"  RSS {(end.rss_kb - first.rss_kb) * 1024 / calls:8.1f} B")
    if first.native is not None and end.native is not None:
        for name, before, after in zip(NATIVE_NAMES, first.native, end.native, strict=True):
            print(f"  {name} {(after - before) / calls:8.1f} B")
    if first.traced_bytes is None or end.traced_bytes is None:
        return
    print(f"  traced {(end.traced_bytes - first.traced_bytes) / calls:8.1f} B")
    if first.snapshot is None or end.snapshot is None:
        return
    print(f"top lines by traced growth ({span}):")
    own = [tracemalloc.Filter(False, tracemalloc.__file__)]
    stats = end.snapshot.filter_traces(own).compare_to(first.snapshot.filter_traces(own), "lineno")
    for stat in stats[:TOP_LINES]:
        where = stat.traceback[0]
        print(
            f"  {stat.size_diff / 1024:+9.1f} KB  {stat.count_diff:+7d} blocks  "
            f"{_short(where.filename)}:{where.lineno}"
        )


def _mb(size: int) -> str:
    return f"{size / 2**20:6.1f} MB"


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--trace", action="store_true", help="tracemalloc snapshots at the checkpoints")
    parser.add_argument("--database", help="a PostgreSQL server URL (a scratch database is made on it)")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds of rest before the last sample")
    parser.add_argument("--baseline", type=int, help="the first checkpoint (default: --calls / 100)")
    parser.add_argument(
        "--trim-probe",
        action="store_true",
        help="after each sample, trim the heap and sample again: free memory the next trim would give back",
    )
    parser.add_argument("--log", help="where the service's JSON log goes (default: nowhere)")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    args = parser.parse_args()
    if args.calls < 10:
        parser.error("--calls must be 10 or more")
    print(
        f"memory.py: {args.calls:,} calls ({' / '.join(CAPTURES)}), "
        f"{'PostgreSQL' if args.database else 'embedded SQLite'}{', tracemalloc' if args.trace else ''}"
    )
    try:
        samples = asyncio.run(measure(args))
    except BenchmarkBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    report(samples)
    return 0


if __name__ == "__main__":
    sys.exit(main())
