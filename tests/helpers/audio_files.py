"""Small audio files for tests, written with the stdlib: tones, silence, the damaged WAVs a PBX can leave
behind (truncated, never finalised, header only, cut inside the header), option D's stereo raw stream,
and a way to hear what an encoded file holds (its loudest sample, decoded with ffmpeg)."""

from __future__ import annotations

import math
import subprocess
import sys
import wave
from array import array
from collections.abc import Sequence
from pathlib import Path

RATE = 8000
SAMPLE_BYTES = 2
WAV_HEADER_BYTES = 44  # RIFF + fmt (16) + data chunk header, as the `wave` module writes PCM
DATA_SIZE_OFFSET = 40  # where that header keeps the data chunk's size
FULL_SCALE = 32768


def tone(seconds: float, rate: int = RATE, frequency: float = 440.0, amplitude: float = 0.5) -> array[int]:
    """A sine as signed 16-bit samples; `amplitude` is a fraction of full scale."""
    count = round(seconds * rate)
    scale = amplitude * (FULL_SCALE - 1)
    return array("h", (round(scale * math.sin(2 * math.pi * frequency * i / rate)) for i in range(count)))


def silence(seconds: float, rate: int = RATE) -> array[int]:
    return array("h", bytes(round(seconds * rate) * SAMPLE_BYTES))


def peak_dbfs_of(amplitude: float) -> float:
    """The level of the loudest sample of `tone(..., amplitude=amplitude)`."""
    return 20 * math.log10(round(amplitude * (FULL_SCALE - 1)) / FULL_SCALE)


def _little_endian(samples: array[int]) -> bytes:
    if sys.byteorder == "little":
        return samples.tobytes()
    swapped = array("h", samples)
    swapped.byteswap()
    return swapped.tobytes()


def write_samples(path: Path, samples: array[int], rate: int = RATE) -> Path:
    """A complete mono 16-bit PCM WAV holding `samples`."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(SAMPLE_BYTES)
        out.setframerate(rate)
        out.writeframes(_little_endian(samples))
    return path


def write_wav(
    path: Path, seconds: float, rate: int = RATE, frequency: float = 440.0, amplitude: float = 0.5
) -> Path:
    """A complete WAV of a sine tone."""
    return write_samples(path, tone(seconds, rate, frequency, amplitude), rate)


def write_silence(path: Path, seconds: float, rate: int = RATE) -> Path:
    """A complete WAV of digital silence (all zeros)."""
    return write_samples(path, silence(seconds, rate), rate)


def write_header_only(path: Path, rate: int = RATE) -> Path:
    """A WAV with no frames: what MixMonitor leaves when nobody spoke."""
    return write_samples(path, array("h"), rate)


def write_truncated(path: Path, seconds: float, kept_seconds: float, rate: int = RATE) -> Path:
    """A tone WAV whose header claims `seconds` of audio but whose file ends after `kept_seconds`."""
    write_wav(path, seconds, rate)
    kept = WAV_HEADER_BYTES + round(kept_seconds * rate) * SAMPLE_BYTES
    path.write_bytes(path.read_bytes()[:kept])
    return path


def write_unfinalised(path: Path, seconds: float, rate: int = RATE) -> Path:
    """A tone WAV whose data chunk size was never written (still 0) although the audio follows it."""
    write_wav(path, seconds, rate)
    data = bytearray(path.read_bytes())
    data[DATA_SIZE_OFFSET : DATA_SIZE_OFFSET + 4] = bytes(4)
    path.write_bytes(bytes(data))
    return path


def write_cut_header(path: Path, kept_bytes: int = 20) -> Path:
    """The first `kept_bytes` of a WAV: the file ends inside its header."""
    write_wav(path, 0.1)
    path.write_bytes(path.read_bytes()[:kept_bytes])
    return path


def write_garbage(path: Path, size: int = 4096) -> Path:
    """Bytes that are no audio format at all."""
    path.write_bytes((b"this is not audio \x01\x02\x03" * size)[:size])
    return path


def write_stereo_raw(path: Path, left: Sequence[int], right: Sequence[int]) -> Path:
    """Option D's stream: interleaved signed 16-bit little-endian, `left` (rx) then `right` (tx)."""
    if len(left) != len(right):
        raise ValueError("both channels need the same number of samples")
    interleaved = array("h", (sample for pair in zip(left, right, strict=True) for sample in pair))
    path.write_bytes(_little_endian(interleaved))
    return path


def decoded_peak_dbfs(path: Path) -> float:
    """The loudest sample of `path` decoded by ffmpeg to mono 8 kHz signed linear; -inf when silent."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path)]
    command += ["-ac", "1", "-ar", str(RATE), "-f", "s16le", "pipe:1"]
    decoded = subprocess.run(command, capture_output=True, check=True).stdout
    samples = array("h", decoded[: len(decoded) - len(decoded) % SAMPLE_BYTES])
    if sys.byteorder != "little":
        samples.byteswap()
    peak = max((abs(sample) for sample in samples), default=0)
    return 20 * math.log10(peak / FULL_SCALE) if peak else -math.inf
