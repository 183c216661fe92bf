"""Recording conversion benchmark: the service's recording worker against bare ffmpeg, on the same files,
in the same run.

Why: every answered call leaves a MixMonitor recording (the mix and its two halves) that the service
converts to Opus, measures, hashes and stores. The absolute speed of this (shared, noisy) machine says
little, so the goal is a ratio against a baseline measured in the same run: the service must convert at
least 0.8 times as many seconds of audio per second as bare ffmpeg doing the same encoding
(ratio >= 0.8). This is a measurement, never a test: it exits 0 whatever the ratio, and non-zero only
when the run itself is wrong (an output missing, a wrong duration, a job not ready).

The input: N generated recordings of M minutes, each as MixMonitor leaves them (`<base>.wav`,
`<base>-rx.wav`, `<base>-tx.wav`; 8 kHz, 16-bit, mono; the mix is the clipped sum of the halves), with a
speech-like signal: syllables of a few harmonics and formant tones under an envelope, in turns, over
low noise. Generated once, before any clock, from a fixed seed.

  (a) bare:     one ffmpeg per recording encoding the mix and both halves to Opus in Ogg (the service's
                bitrate and compression level), `RecordingSettings().workers` processes at a time;
                first spawn -> last exit.
  (b) service:  the real `RecordingWorker` on a scratch SQLite database whose calls were written through
                `call_pipeline` (the stored hook queues their jobs): `worker.drain()`, i.e. per recording
                locate, probe every part, one ffmpeg run (the outputs, and the mix measured for its
                duration and loudest sample), sha256 of the source, the truncation check,
                `RecordingStore.put` of each output (sha256, fsync, rename), the row and the webhook
                event. Clock: `drain()` only.

    .venv/bin/python bench/recordings.py [--recordings 8] [--minutes 5] [--repeat 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where this file (recordings.py) would
# shadow the service's `recordings` package and bench/api.py its `api` package: the project root goes in
# front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import math
import random
import shutil
import tempfile
import time
import wave
from array import array
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from harness import BenchmarkBroken  # bench/, beside this script
from pydub.utils import get_prober_name
from recorded_call import MONITOR_DIR, PBX_NAME, recorded_call  # bench/, beside this script

from calltracking.app.runtime import call_pipeline
from calltracking.calls.record import CallRecord
from calltracking.calls.recording import RecordingState
from calltracking.calls.repository import list_calls
from calltracking.config import DatabaseSettings, LogSettings, PbxSettings, RecordingSettings
from calltracking.logs import configure_logging
from recordings.audio import ffmpeg_binary
from recordings.repository import recordings_of_calls
from recordings.service import RecordingWorker
from recordings.storage import RecordingStore

TARGET_RATIO = 0.8
RATE = 8000
SLOT = RATE // 4  # a syllable or a pause: 0.25 s
SYLLABLES_PER_SIDE = 32
PAUSES_PER_SIDE = 4
DURATION_TOLERANCE = 0.1  # seconds
RUN_TIMEOUT_SECONDS = 3600.0
SEED = 20261122
T = TypeVar("T")


# --- the recordings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One generated recording: `<monitor>/<relative>.wav` and its `-rx`/`-tx` halves."""

    index: int
    relative: str  # inside the monitor directory, without `.wav`
    seconds: float

    def paths(self, monitor: Path) -> tuple[Path, Path, Path]:
        base = monitor / self.relative
        return (
            base.with_name(base.name + ".wav"),
            base.with_name(base.name + "-rx.wav"),
            base.with_name(base.name + "-tx.wav"),
        )


@dataclass(frozen=True)
class Voice:
    level: float  # peak amplitude of a syllable
    f0: float  # pitch, Hz
    formants: tuple[float, float]  # Hz


def syllable(rng: random.Random, voice: Voice) -> array[int]:
    """0.25 s of voiced sound: four harmonics of a jittered pitch and two formant tones, under a
    rise-and-fall envelope with a tremolo, plus noise. Starts and ends at (near) zero: no clicks."""
    f0 = voice.f0 * rng.uniform(0.85, 1.2)
    formants = [f * rng.uniform(0.9, 1.1) for f in voice.formants]
    tones = [(f0 * k, 1.0 / k, rng.uniform(0, 2 * math.pi)) for k in range(1, 5)]
    tones += [(f, 0.35, rng.uniform(0, 2 * math.pi)) for f in formants]
    norm = sum(weight for _, weight, _ in tones)
    tremolo = rng.uniform(3.0, 7.0)
    level = voice.level * rng.uniform(0.4, 1.0) / norm
    step = 2 * math.pi / RATE
    samples = array("h")
    for n in range(SLOT):
        envelope = math.sin(math.pi * n / SLOT) ** 2 * (0.75 + 0.25 * math.sin(step * tremolo * n))
        value = sum(weight * math.sin(step * freq * n + phase) for freq, weight, phase in tones)
        samples.append(round(level * envelope * value + rng.gauss(0.0, 60.0)))
    return samples


def pause(rng: random.Random) -> array[int]:
    """0.25 s of line noise: nobody speaks on this side."""
    return array("h", (round(rng.gauss(0.0, 40.0)) for _ in range(SLOT)))


def clipped_sum(a: array[int], b: array[int]) -> array[int]:
    return array("h", [min(32767, max(-32768, x + y)) for x, y in zip(a, b, strict=True)])


def write_wav(path: Path, chunks: list[bytes]) -> None:
    """Samples in the machine's byte order; `wave` writes them little-endian."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(b"".join(chunks))


def generate(monitor: Path, index: int, minutes: float) -> Source:
    """A conversation in turns (1-6 s each): the speaker's side is syllables with short pauses, the
    listener's mostly pauses with an occasional backchannel. The halves use different voices; the mix is
    their clipped sum, as MixMonitor writes it."""
    rng = random.Random(SEED * 1000 + index)
    voices = (
        Voice(
            level=11000, f0=rng.uniform(95, 140), formants=(rng.uniform(500, 800), rng.uniform(1100, 1800))
        ),
        Voice(
            level=9000, f0=rng.uniform(170, 240), formants=(rng.uniform(600, 900), rng.uniform(1500, 2400))
        ),
    )
    banks = [
        [syllable(rng, voice) for _ in range(SYLLABLES_PER_SIDE)]
        + [pause(rng) for _ in range(PAUSES_PER_SIDE)]
        for voice in voices
    ]
    total = round(minutes * 60 * RATE)
    slots = math.ceil(total / SLOT)
    picks: list[list[int]] = [[], []]
    speaker = 0
    while len(picks[0]) < slots:
        for _ in range(rng.randint(4, 24)):
            for side in (0, 1):
                talking = rng.random() < (0.8 if side == speaker else 0.05)
                choice = (
                    rng.randrange(SYLLABLES_PER_SIDE)
                    if talking
                    else SYLLABLES_PER_SIDE + rng.randrange(PAUSES_PER_SIDE)
                )
                picks[side].append(choice)
        speaker = 1 - speaker
    mixes: dict[tuple[int, int], bytes] = {}
    rx: list[bytes] = []
    tx: list[bytes] = []
    mix: list[bytes] = []
    for slot in range(slots):
        a, b = picks[0][slot], picks[1][slot]
        if (a, b) not in mixes:
            mixes[a, b] = clipped_sum(banks[0][a], banks[1][b]).tobytes()
        rx.append(banks[0][a].tobytes())
        tx.append(banks[1][b].tobytes())
        mix.append(mixes[a, b])
    cut = total % SLOT
    if cut:
        for chunks in (rx, tx, mix):
            chunks[-1] = chunks[-1][: cut * 2]
    source = Source(
        index=index, relative=f"2026/11/22/in-74951110001-bench-{index:04d}", seconds=total / RATE
    )
    mix_path, rx_path, tx_path = source.paths(monitor)
    write_wav(mix_path, mix)
    write_wav(rx_path, rx)
    write_wav(tx_path, tx)
    return source


# --- (a) bare ffmpeg -----------------------------------------------------------------------------


def bare_command(source: Source, monitor: Path, out_dir: Path, settings: RecordingSettings) -> list[str]:
    """One ffmpeg: each of the three WAVs to mono Opus in Ogg, with the service's encoder settings."""
    encode = ["-c:a", "libopus", "-b:a", str(settings.bitrate), "-vbr", "on", "-application", "voip"]
    encode += ["-compression_level", str(settings.complexity), "-ac", "1", "-f", "ogg", "-y"]
    command = [ffmpeg_binary(), "-v", "error", "-nostdin"]
    for path in source.paths(monitor):
        command += ["-i", str(path)]
    for index, name in enumerate(("mix", "rx", "tx")):
        command += ["-map", f"{index}:a", *encode, str(out_dir / f"{name}.ogg")]
    return command


async def measure_bare(
    sources: list[Source], monitor: Path, run_dir: Path, settings: RecordingSettings
) -> tuple[float, dict[int, dict[str, Path]]]:
    """(a) first spawn -> last exit, `settings.workers` ffmpeg processes at a time."""
    commands = []
    outputs: dict[int, dict[str, Path]] = {}
    for source in sources:
        out_dir = run_dir / f"{source.index:04d}"
        out_dir.mkdir(parents=True)
        commands.append((source, bare_command(source, monitor, out_dir, settings)))
        outputs[source.index] = {name: out_dir / f"{name}.ogg" for name in ("mix", "rx", "tx")}
    slots = asyncio.Semaphore(settings.workers)
    failures: list[str] = []

    async def convert(source: Source, command: list[str]) -> None:
        async with slots:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            _, stderr = await process.communicate()
        if process.returncode != 0:
            failures.append(
                f"{source.relative}: ffmpeg exited {process.returncode}: {stderr.decode()[-300:]}"
            )

    started = time.perf_counter()
    await within(asyncio.gather(*(convert(source, command) for source, command in commands)), "bare ffmpeg")
    seconds = time.perf_counter() - started
    if failures:
        raise BenchmarkBroken("; ".join(failures))
    return seconds, outputs


# --- (b) the service -----------------------------------------------------------------------------


def bench_call(source: Source, now: datetime) -> CallRecord:
    return recorded_call(source.index, source.relative, source.seconds, now)


@dataclass
class ServiceRun:
    seconds: float
    outputs: dict[int, dict[str, Path]]  # by source index: "mix", "customer", "manager"
    durations: dict[int, float]  # the worker's measured mix duration, from the recordings rows


async def measure_service(
    sources: list[Source], monitor: Path, run_dir: Path, settings: RecordingSettings
) -> ServiceRun:
    """(b) the worker draining every job; the calls (and so the jobs) are written before the clock."""
    recording_settings = settings.model_copy(
        update={"storage_dir": run_dir / "store", "settle_seconds": 0.0, "missing_after_seconds": 0.0}
    )
    pbx = PbxSettings(name=PBX_NAME, monitor_dir=MONITOR_DIR, recordings_dir=monitor)
    database = DatabaseSettings(
        url=f"sqlite+aiosqlite:///{run_dir / 'calltracking.db'}", spool_dir=run_dir / "spool"
    )
    by_linkedid = {f"1795349935.{source.index}": source for source in sources}
    now = datetime.now(UTC)
    async with call_pipeline(database, database.spool_dir, recordings=recording_settings) as pipeline:
        for source in sources:
            pipeline.call_log.submit(bench_call(source, now))
        await within(pipeline.call_log.flush(), "the calls to reach the database")
        worker = RecordingWorker(pipeline.sessionmaker, recording_settings, [pbx])
        started = time.perf_counter()
        await within(worker.drain(), "the recording worker")
        seconds = time.perf_counter() - started
        async with pipeline.sessionmaker() as session:
            calls = await list_calls(session)
            recordings = await recordings_of_calls(session, [stored.id for stored in calls])
    store = RecordingStore(recording_settings.storage_dir)
    outputs: dict[int, dict[str, Path]] = {}
    durations: dict[int, float] = {}
    problems = []
    for stored in calls:
        source = by_linkedid[stored.call.pbx_call_id]
        recording = recordings.get(stored.id)
        if recording is None or recording.state is not RecordingState.READY:
            state = recording.state.value if recording else "no row"
            problems.append(f"{source.relative}: {state} ({recording.error if recording else ''})")
            continue
        outputs[source.index] = {
            name: store.path_of(stored_file) for name, stored_file in recording.files.items()
        }
        durations[source.index] = recording.duration_seconds or 0.0
    if len(calls) != len(sources):
        problems.append(f"{len(calls)} calls in the database, {len(sources)} recordings")
    if problems:
        raise BenchmarkBroken("jobs not ready: " + "; ".join(problems))
    return ServiceRun(seconds, outputs, durations)


# --- checking ------------------------------------------------------------------------------------


async def within(awaitable: Awaitable[T], what: str) -> T:
    try:
        return await asyncio.wait_for(awaitable, RUN_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise BenchmarkBroken(f"timed out after {RUN_TIMEOUT_SECONDS:.0f}s waiting for {what}") from exc


async def probe_duration(path: Path) -> float:
    """The container's duration as ffprobe reads it (for Ogg: the last granule position less pre-skip)."""
    process = await asyncio.create_subprocess_exec(
        get_prober_name(),
        "-v",
        "error",
        "-show_entries",
        "format=duration",
        "-of",
        "default=noprint_wrappers=1:nokey=1",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    try:
        return float(stdout.decode().strip())
    except ValueError as exc:
        raise BenchmarkBroken(f"ffprobe could not read {path}: {stderr.decode()[-300:]}") from exc


async def check_outputs(
    what: str, sources: list[Source], outputs: dict[int, dict[str, Path]], names: tuple[str, ...]
) -> int:
    """Every expected output exists, is not empty, and lasts as long as its input (within 0.1 s).
    Returns their total size in bytes."""
    total = 0
    for source in sources:
        found = outputs.get(source.index, {})
        for name in names:
            path = found.get(name)
            if path is None or not path.is_file() or path.stat().st_size == 0:
                raise BenchmarkBroken(f"{what}: {name} of {source.relative} missing or empty ({path})")
            total += path.stat().st_size
            duration = await probe_duration(path)
            if abs(duration - source.seconds) > DURATION_TOLERANCE:
                raise BenchmarkBroken(
                    f"{what}: {name} of {source.relative} lasts {duration:.3f} s, "
                    f"the input {source.seconds:.3f} s"
                )
    return total


def check_measured(sources: list[Source], durations: dict[int, float]) -> None:
    for source in sources:
        measured = durations[source.index]
        if abs(measured - source.seconds) > DURATION_TOLERANCE:
            raise BenchmarkBroken(
                f"service: the worker measured {source.relative} at {measured:.3f} s, "
                f"the input lasts {source.seconds:.3f} s"
            )


# --- running -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=8, help="recordings (each a mix and two halves)")
    parser.add_argument("--minutes", type=float, default=5.0, help="length of each recording")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best counts")
    args = parser.parse_args(argv)
    if args.recordings < 1 or args.repeat < 1 or args.minutes <= 0:
        parser.error("--recordings, --minutes and --repeat must be positive")
    return args


def run(args: argparse.Namespace, root: Path) -> int:
    settings = RecordingSettings()
    monitor = root / "monitor"
    started = time.perf_counter()
    sources = [generate(monitor, index, args.minutes) for index in range(args.recordings)]
    generated = time.perf_counter() - started
    audio = sum(source.seconds for source in sources)
    input_bytes = sum(path.stat().st_size for source in sources for path in source.paths(monitor))
    print(
        f"input: {len(sources)} recordings x {sources[0].seconds:.0f} s = {audio:.0f} s of audio, "
        f"3 WAVs each ({input_bytes / 1e6:.0f} MB), generated in {generated:.1f} s (outside the clock)"
    )
    print(
        f"encoder: libopus {settings.bitrate} bit/s, compression_level {settings.complexity}, "
        f"{settings.workers} conversions at a time; {ffmpeg_binary()}"
    )
    example = bare_command(sources[0], monitor, root / "bare-N" / "0000", settings)
    print("(a) per recording:", " ".join(example).replace(str(root), "$TMP"))
    bare: list[float] = []
    service: list[float] = []
    for attempt in range(1, args.repeat + 1):
        # Interleaved, each in a fresh event loop, so a noisy moment on the machine hits both alike.
        bare_dir = root / f"bare-{attempt}"
        bare_seconds, bare_outputs = asyncio.run(measure_bare(sources, monitor, bare_dir, settings))
        bare_bytes = asyncio.run(check_outputs("bare ffmpeg", sources, bare_outputs, ("mix", "rx", "tx")))
        shutil.rmtree(bare_dir)
        service_dir = root / f"service-{attempt}"
        service_dir.mkdir()
        result = asyncio.run(measure_service(sources, monitor, service_dir, settings))
        check_measured(sources, result.durations)
        service_bytes = asyncio.run(
            check_outputs("service", sources, result.outputs, ("mix", "customer", "manager"))
        )
        shutil.rmtree(service_dir)
        bare.append(bare_seconds)
        service.append(result.seconds)
        print(
            f"run {attempt}: bare {bare_seconds:.2f} s ({audio / bare_seconds:,.0f} audio-s/s, "
            f"{bare_bytes / 1e6:.2f} MB out), service {result.seconds:.2f} s "
            f"({audio / result.seconds:,.0f} audio-s/s, {service_bytes / 1e6:.2f} MB out), "
            f"ratio {bare_seconds / result.seconds:.2f}"
        )
    best_bare, best_service = min(bare), min(service)
    bare_rate, service_rate = audio / best_bare, audio / best_service
    print(
        f"recordings: {len(sources)} x {args.minutes:g} min, {audio:.0f} s of audio  (best of {args.repeat})"
    )
    print(f"(a) bare ffmpeg: {best_bare:7.2f} s  {bare_rate:8,.1f} audio-s/s")
    print(f"(b) service:     {best_service:7.2f} s  {service_rate:8,.1f} audio-s/s")
    print(
        f"throughput: service {service_rate:,.1f} audio-s/s, bare ffmpeg {bare_rate:,.1f} audio-s/s, "
        f"ratio {service_rate / bare_rate:.2f} (target >= {TARGET_RATIO})"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging(LogSettings(level="warning"))
    try:
        with tempfile.TemporaryDirectory(prefix="recordings-bench-") as root:
            return run(args, Path(root))
    except BenchmarkBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
