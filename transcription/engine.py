"""Speech to text with vosk, offline: one model per language per process, a recognizer per recording.

ffmpeg decodes any audio it reads to 16-bit mono PCM at the model's sample rate and writes it to a
pipe; the recognizer takes it `chunk_seconds` at a time, so a two-hour call costs this process what a
one-minute call does (the transcript aside). Each side of a split recording is recognised on its own
and keeps its speaker; a mono mix is speaker `unknown`.

Everything here blocks and is CPU-bound (vosk is C++ under a thin binding): callers run `transcribe`
in a thread or a process of their own.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import structlog
import vosk

from calltracking.calls.transcript import Speaker, Transcript, Utterance
from calltracking.config import TranscriptionSettings
from calltracking.errors import CalltrackingError, TranscriptionUnavailable
from transcription.assembly import merge_sides, shifted, utterance_of

log = structlog.get_logger(__name__)

SAMPLE_BYTES = 2  # 16-bit PCM
# Kaldi's default `--sample-frequency`, which a model's conf/mfcc.conf sets when it was trained otherwise.
DEFAULT_SAMPLE_RATE = 16_000
STDERR_KEEP = 2000
_SAMPLE_FREQUENCY = re.compile(r"^\s*--sample-frequency\s*=\s*(\d+(?:\.\d+)?)\s*$", re.MULTILINE)

ChunkObserver = Callable[[Speaker, int], None]


class AudioUndecodable(CalltrackingError):
    """ffmpeg could not decode a recording's file (gone, not audio, cut short)."""


@dataclass(frozen=True, slots=True)
class LoadedModel:
    language: str
    path: Path
    sample_rate: int
    model: Any  # vosk.Model (vosk has no types)


_models: dict[Path, LoadedModel] = {}
_models_lock = threading.Lock()


def load_model(language: str, path: Path) -> LoadedModel:
    """The model in `path`, loaded once per process (vosk models are read-only and shared by threads).
    `TranscriptionUnavailable` naming the language and the directory when it is missing or broken."""
    key = path.resolve()
    with _models_lock:
        if key in _models:
            return _models[key]
        if not key.is_dir():
            raise TranscriptionUnavailable(f"the {language!r} model directory {path} does not exist")
        vosk.SetLogLevel(-1)  # Kaldi's progress lines; its errors still reach stderr
        try:
            model = vosk.Model(str(key))
        # vosk raises a bare Exception ("Failed to create a model") for any directory it cannot load.
        except Exception as exc:
            raise TranscriptionUnavailable(
                f"the {language!r} model in {path} cannot be loaded (not a vosk model, or damaged)"
            ) from exc
        loaded = LoadedModel(language=language, path=key, sample_rate=model_sample_rate(key), model=model)
        _models[key] = loaded
        log.info("transcription_model_loaded", language=language, path=str(key), rate=loaded.sample_rate)
        return loaded


def model_sample_rate(path: Path) -> int:
    """The rate a model's features are computed at: `--sample-frequency` in its mfcc.conf (`conf/` in
    current models, the top directory in old ones), else Kaldi's default of 16 kHz."""
    for config in (path / "conf" / "mfcc.conf", path / "mfcc.conf"):
        if config.is_file():
            found = _SAMPLE_FREQUENCY.search(config.read_text(encoding="utf-8", errors="replace"))
            if found:
                return round(float(found.group(1)))
    return DEFAULT_SAMPLE_RATE


def decode_command(ffmpeg: str, path: Path, rate: int) -> list[str]:
    """ffmpeg writing `path`'s first audio stream to stdout as 16-bit mono PCM at `rate`."""
    return [
        ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-v", "error",
        "-i", str(path), "-map", "0:a:0", "-ac", "1", "-ar", str(rate),
        "-acodec", "pcm_s16le", "-f", "s16le", "-",
    ]  # fmt: skip


def decode_pcm(path: Path, rate: int, chunk_bytes: int, ffmpeg: str = "ffmpeg") -> Iterator[bytes]:
    """`path` decoded by ffmpeg, `chunk_bytes` at a time (the last chunk may be shorter); nothing more
    is held. `AudioUndecodable` when ffmpeg fails; closing the iterator early stops ffmpeg."""
    # ffmpeg's complaints go to a file, not a pipe: a damaged file can print more than a pipe holds,
    # and ffmpeg would block on it while this side waits for audio.
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(
                decode_command(ffmpeg, path, rate),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        except FileNotFoundError as exc:
            raise TranscriptionUnavailable(f"ffmpeg not found ({ffmpeg}): install ffmpeg") from exc
        try:
            stdout: IO[bytes] | None = process.stdout
            if stdout is None:
                raise AudioUndecodable("ffmpeg's output pipe did not open")
            # A buffered pipe: read(n) returns n bytes until the end of the audio.
            while chunk := stdout.read(chunk_bytes):
                yield chunk
            code = process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if code != 0:
            stderr.seek(0)
            lines = stderr.read()[-STDERR_KEEP:].decode("utf-8", "replace").strip().splitlines()
            raise AudioUndecodable(f"ffmpeg could not decode {path.name}: {'; '.join(lines[-3:])[:500]}")


class Transcriber:
    """Transcribes recordings in the languages it has models for. One per process; its models load on
    first use, or all at once with `check` (at start-up, to fail there rather than on the first job)."""

    def __init__(
        self,
        models: Mapping[str, Path],
        chunk_seconds: float = 0.25,
        recognizer_seconds: float = 120.0,
        *,
        ffmpeg: str = "ffmpeg",
        on_chunk: ChunkObserver | None = None,
    ) -> None:
        self._paths = dict(models)
        self._chunk_seconds = chunk_seconds
        self._recognizer_seconds = recognizer_seconds
        self._ffmpeg = ffmpeg
        # Told the size of every chunk of audio fed to a recognizer (for tests and throughput figures).
        self._on_chunk = on_chunk

    @classmethod
    def from_settings(cls, settings: TranscriptionSettings, *, ffmpeg: str = "ffmpeg") -> Transcriber:
        return cls(
            settings.models,
            settings.chunk_seconds,
            recognizer_seconds=settings.recognizer_seconds,
            ffmpeg=ffmpeg,
        )

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._paths)

    def model(self, language: str) -> LoadedModel:
        path = self._paths.get(language)
        if path is None:
            raise TranscriptionUnavailable(f"no model for language {language!r} in [transcription] models")
        return load_model(language, path)

    def check(self) -> None:
        """Load every configured model now: `TranscriptionUnavailable` for the first that cannot be."""
        for language in sorted(self._paths):
            self.model(language)

    def chunk_bytes(self, rate: int) -> int:
        return max(1, round(self._chunk_seconds * rate)) * SAMPLE_BYTES

    def transcribe(self, files: Mapping[Speaker, Path], language: str) -> Transcript:
        """The transcript of one recording: its sides (`customer`, `manager`), or its mix as `unknown`.
        Times are seconds from the start of the files (every side starts with the call)."""
        if Speaker.UNKNOWN in files and len(files) > 1:
            raise ValueError("a recording is transcribed from its sides or from its mix, not both")
        loaded = self.model(language)
        sides = {speaker: self._recognize(loaded, speaker, path) for speaker, path in files.items()}
        return merge_sides(language, sides)

    def _recognize(self, loaded: LoadedModel, speaker: Speaker, path: Path) -> list[Utterance]:
        """A recognizer's memory grows with the audio it has heard (about 110 MiB over an hour,
        bench/README.md): a new one takes over every `recognizer_seconds`, at the end of an utterance
        (so no word is cut), and its times are shifted by where it started."""
        recognizer = _recognizer(loaded)
        started, heard = 0.0, 0.0
        bytes_per_second = loaded.sample_rate * SAMPLE_BYTES
        utterances: list[Utterance] = []
        for chunk in decode_pcm(path, loaded.sample_rate, self.chunk_bytes(loaded.sample_rate), self._ffmpeg):
            if self._on_chunk is not None:
                self._on_chunk(speaker, len(chunk))
            heard += len(chunk) / bytes_per_second
            if recognizer.AcceptWaveform(chunk):
                utterances += _some(utterance_of(speaker, recognizer.Result()), started)
                if heard - started >= self._recognizer_seconds:
                    utterances += _some(utterance_of(speaker, recognizer.FinalResult()), started)
                    recognizer, started = _recognizer(loaded), heard
        utterances += _some(utterance_of(speaker, recognizer.FinalResult()), started)
        return utterances


def _recognizer(loaded: LoadedModel) -> Any:
    recognizer = vosk.KaldiRecognizer(loaded.model, loaded.sample_rate)
    recognizer.SetWords(True)
    return recognizer


def _some(utterance: Utterance | None, offset: float = 0.0) -> list[Utterance]:
    return [] if utterance is None else [shifted(utterance, offset)]
