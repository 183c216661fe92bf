"""Cost per AMI event against the number of calls in progress (issue 16), through the listener's path.

Why: a PBX with thousands of calls in flight must not make each new event dearer. What grew with the open
calls was the live-call checkpoint (every 0.5 s) and lookups that walked every live call. The absolute
speed of this (shared, noisy) machine says little, so each figure is a ratio against the idle figure (no
other call open) measured in the same run; the goal is <= 1.5x at 50,000 open calls. A measurement, never
a test: it exits non-zero only when the run itself is wrong (a call of the timed stream did not complete).

One run at N open calls, in a fresh event loop:
  1. a `PbxListener` with its checkpoint on (a temp dir) and a sink that only counts; its checkpoint loop
     runs as `serve` runs it (`_keep_checkpoint`, every 0.5 s); no socket: events go to `_on_event`;
  2. N calls are opened, each by a Newchannel and a Newstate (Up) frame of a carrier channel that never
     hangs up; then the clock waits for one checkpoint save of them (not timed);
  3. timed: the captures copied with fresh ids (bench/ami_ingest.py's stream), normal complete calls,
     fed in batches of 64 events with a return to the event loop between batches (as frames arrive by
     TCP reads), so the checkpoint's saves share the loop and the GIL with the events as in `serve`.
Reported per N: microseconds of wall time per event, the ratio to N=0, and the checkpoint's saves during
the timed stream with the bytes the process wrote per save (/proc/self/io wchar; logging is off).

    .venv/bin/python bench/scale.py [--open 0,1000,10000,50000] [--calls 8000] [--repeat 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path (bench/api.py would shadow the service's
# `api` package): the project root goes in front of it, as in ami_ingest.py.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass

from ami_ingest import DEFAULT_TRACES, FRAME_END, build_stream  # bench/, beside this script
from harness import BenchmarkBroken  # bench/, beside this script
from panoramisk.message import Message

from ami.events import AmiEvent, event_time, parse_event
from ami.listener import PbxListener
from ami.live_state import LiveCallCheckpoint
from calltracking.calls.record import CallRecord
from calltracking.config import LogSettings, PbxSettings
from calltracking.logs import configure_logging

TARGET_RATIO = 1.5
BATCH = 64
OPEN_CALLS_EPOCH = 1_600_000_000  # long before any capture: open calls never collide with the stream
RUN_TIMEOUT_SECONDS = 1800.0


def parse_frames(body: bytes) -> list[AmiEvent]:
    """Raw frames to the typed events the connection hands the listener (its parse, without a socket)."""
    parsed: list[AmiEvent] = []
    for raw in body.split(FRAME_END):
        message = Message.from_line(raw.decode().strip())
        if message is None or "event" not in message:
            continue
        event = parse_event(message, event_time(message) or 0.0)
        if event is not None:
            parsed.append(event)
    return parsed


def open_call_frames(count: int) -> bytes:
    """`count` inbound calls answered by the PBX (an IVR, a queue's music) that never hang up."""
    frames = []
    for n in range(count):
        uniqueid = f"{OPEN_CALLS_EPOCH}.{n}"
        at = OPEN_CALLS_EPOCH + n * 0.001
        for event, state, desc, when in (("Newchannel", 4, "Ring", at), ("Newstate", 6, "Up", at + 0.0005)):
            frames.append(
                f"Event: {event}\r\nPrivilege: call,all\r\nTimestamp: {when:.6f}\r\n"
                f"Channel: PJSIP/provider-{n:08x}\r\nChannelState: {state}\r\nChannelStateDesc: {desc}\r\n"
                f"CallerIDNum: +7916{n:07d}\r\nCallerIDName: +7916{n:07d}\r\n"
                "ConnectedLineNum: <unknown>\r\nConnectedLineName: <unknown>\r\nLanguage: en\r\n"
                "AccountCode: \r\nContext: from-trunk\r\nExten: 74951110001\r\nPriority: 1\r\n"
                f"Uniqueid: {uniqueid}\r\nLinkedid: {uniqueid}\r\n\r\n"
            )
    return "".join(frames).encode()


class CountingSink:
    def __init__(self) -> None:
        self.calls = 0

    def submit(self, call: CallRecord) -> None:
        self.calls += 1


@dataclass
class Run:
    open_calls: int
    seconds: float
    cpu_seconds: float
    events: int
    saves: int
    bytes_written: int

    @property
    def us_per_event(self) -> float:
        return self.seconds / self.events * 1e6


def bytes_written() -> int:
    """What this process has written so far (every thread), per the kernel."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise BenchmarkBroken("no wchar in /proc/self/io")


class CountedCheckpoint(LiveCallCheckpoint):
    """The service's checkpoint, counting its save calls (every tick while the calls change saves)."""

    saves = 0

    async def save(self, *args: object, **kwargs: object) -> None:
        self.saves += 1
        await super().save(*args, **kwargs)  # type: ignore[arg-type]


async def feed(listener: PbxListener, events: list[AmiEvent]) -> None:
    for start in range(0, len(events), BATCH):
        for event in events[start : start + BATCH]:
            listener._on_event(event)
        await asyncio.sleep(0)


async def measure(open_events: list[AmiEvent], timed: list[AmiEvent], calls: int, spool: Path) -> Run:
    sink = CountingSink()
    listener = PbxListener(PbxSettings(name="bench"), sink, checkpoint_path=spool / "live-calls-bench.json")
    checkpoint = CountedCheckpoint(spool / "live-calls-bench.json")
    listener._checkpoint = checkpoint
    checkpoint.restore_into(listener.assembler)
    keeping = asyncio.get_running_loop().create_task(listener._keep_checkpoint(checkpoint))
    try:
        await feed(listener, open_events)
        # Untimed: the first save of the open calls, and the loop back at a tick's start.
        first = checkpoint.saves
        while checkpoint.saves < first + 2:
            await asyncio.sleep(0.05)
        saves, written = checkpoint.saves, bytes_written()
        cpu, started = time.process_time(), time.perf_counter()
        await feed(listener, timed)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu
        saves, written = checkpoint.saves - saves, bytes_written() - written
    finally:
        keeping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeping
    if sink.calls != calls:
        raise BenchmarkBroken(f"the timed stream has {calls} calls, the listener completed {sink.calls}")
    return Run(len(open_events) // 2, seconds, cpu_seconds, len(timed), saves, written)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", default="0,1000,10000,50000", help="open-call counts, comma-separated")
    parser.add_argument("--calls", type=int, default=8000, help="about this many calls in the timed stream")
    parser.add_argument("--repeat", type=int, default=2, help="runs at each count; the best counts")
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="directory of *.ami captures")
    args = parser.parse_args(argv)
    args.open = [int(item) for item in args.open.split(",")]
    if 0 not in args.open:
        args.open.insert(0, 0)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(LogSettings(level="error"))
    stream = build_stream(args.traces, args.calls)
    timed = parse_frames(stream.body)
    print(f"timed stream: {stream.calls} calls, {len(timed)} events; batches of {BATCH} events")
    best: dict[int, Run] = {}
    try:
        for attempt in range(1, args.repeat + 1):
            for count in args.open:
                open_events = parse_frames(open_call_frames(count))
                with tempfile.TemporaryDirectory(prefix="scale-bench-") as spool:
                    run = asyncio.run(measure(open_events, timed, stream.calls, Path(spool)))
                print(
                    f"run {attempt}: {count:6d} open: {run.us_per_event:8.1f} us/event "
                    f"(cpu {run.cpu_seconds / run.events * 1e6:8.1f}), {run.seconds:6.2f} s, "
                    f"{run.saves} saves, {run.bytes_written / max(run.saves, 1) / 1e3:10,.1f} kB/save",
                    flush=True,
                )
                if count not in best or run.seconds < best[count].seconds:
                    best[count] = run
    except BenchmarkBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    idle = best[0].us_per_event
    print(f"best of {args.repeat}; target at the largest count <= {TARGET_RATIO}x idle")
    print("open calls   us/event   x idle   saves   kB written/save")
    for count in args.open:
        run = best[count]
        per_save = run.bytes_written / max(run.saves, 1) / 1e3
        ratio = run.us_per_event / idle
        print(f"{count:10d} {run.us_per_event:10.1f} {ratio:8.2f} {run.saves:7d} {per_save:17,.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
