"""Where `calltracking serve` spends its time while it ingests: py-spy samples the real process (no
instrumentation inside it), and the samples are summed per function, inclusive of what it calls.

py-spy is a profiling tool, not a dependency of the service: `.venv/bin/pip install py-spy` to use
`ami_ingest.py --profile DIR`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

SAMPLES_PER_SECOND = 50
# py-spy's raw format: `frame;frame;...;frame count`, each frame `function (file:line)`.
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy")
    return found


@contextlib.asynccontextmanager
async def sampled(pid: int, out: Path) -> AsyncIterator[None]:
    """py-spy records `pid` (idle threads left out) until the block ends."""
    recorder = await asyncio.create_subprocess_exec(
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(SAMPLES_PER_SECOND),
        "--format",
        "raw",
        "--output",
        str(out),
        "--nonblocking",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)
        await recorder.wait()


def frame_name(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match.group("file")
    for marker in ("site-packages/", "/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    else:
        path = "/".join(path.split("/")[-2:])
    return f"{match.group('function')} ({path})"


# Where a sample's time belongs, by the first of these frames found in its stack (the order matters: the
# matcher runs inside the call writer, the writer inside the event loop). SQLAlchemy runs statements in
# greenlets whose stacks do not show who asked: they are "statements (caller not visible)".
ROOMS = (
    (
        "startup (imports, migrations, app setup: before the clock)",
        ("_serve (", "_find_and_load", "settle_heap"),
    ),
    ("CRM matching (inside the call writer)", ("CallMatcher.__call__",)),
    ("call writer: calls, legs, rollups, webhooks", ("CallLog.run", "CallLog._write")),
    ("AMI: typed events, assembler, journal", ("AmiConnection._dispatch",)),
    ("AMI: panoramisk's parse and dispatch", ("Message.from_line", "AMIProtocol.handle_message")),
    ("AMI: framing, skipping unwanted frames", ("FramedAmiProtocol",)),
    ("live-call checkpoint", ("LiveCallCheckpoint", "_keep_checkpoint", "_save_checkpoint")),
    ("event hub: screen pops, click-to-call, progress webhooks", ("CallEventHub", "screen_pop_enricher")),
    ("recording worker", ("RecordingWorker",)),
    (
        "webhook deliverer, transcription, retention",
        ("WebhookDeliverer", "InProcessTranscription", "run_retention"),
    ),
    ("statements (caller not visible)", ("greenlet", "sqlalchemy", "asyncpg")),
    ("event loop waiting", ("EpollSelector.select",)),
)


def samples(raw: Path) -> Iterator[tuple[str, int]]:
    """Each stack of py-spy's raw output and how many samples it holds."""
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            yield stack, int(count_text)


def rooms(raw: Path) -> list[tuple[str, float]]:
    """Each room's share of the samples (see ROOMS), largest first; what matches none is "other"."""
    counts: Counter[str] = Counter()
    total = 0
    for stack, count in samples(raw):
        total += count
        counts[_room_of(stack)] += count
    return [(room, count / total) for room, count in counts.most_common()] if total else []


def _room_of(stack: str) -> str:
    for room, markers in ROOMS:
        if any(marker in stack for marker in markers):
            return room
    return "other"


def summarize(raw: Path, top: int = 40) -> str:
    """The functions holding the most samples, inclusive and self, as shares of all samples."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for stack, count in samples(raw):
        frames = [frame_name(frame) for frame in stack.split(";") if frame]
        total += count
        for name in set(frames):
            inclusive[name] += count
        if frames:
            own[frames[-1]] += count
    if total == 0:
        return "no samples"
    lines = [f"{total} samples; by room:"]
    lines += [f"  {share:6.1%}  {room}" for room, share in rooms(raw)]
    lines.append("inclusive share (function and what it calls):")
    lines += [f"  {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    lines.append("self share (the function's own code):")
    lines += [f"  {count / total:6.1%}  {name}" for name, count in own.most_common(top // 2)]
    return "\n".join(lines)
