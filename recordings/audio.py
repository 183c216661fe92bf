"""Audio I/O: check that files are audio, measure them and convert them, with ffmpeg.

One ffmpeg process per recording decodes every part once and writes all outputs (the mono mix, each
side), and measures the mix on the way (ffmpeg's `volumedetect`: how many samples, the loudest one).
No audio passes through Python: a two-hour call costs this process what a one-minute call does.

pydub finds the ffmpeg/ffprobe binaries (honouring `AudioSegment.converter`, which users may point
elsewhere) and probes a file's streams; its `AudioSegment` is not used because it decodes the whole file
into memory.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calltracking.calls.recording import OGG_OPUS, AudioFormat, Part, Side
from calltracking.errors import CalltrackingError

with warnings.catch_warnings():
    # pydub imports audioop, deprecated since Python 3.11 (pydub installs audioop-lts where it is gone).
    warnings.filterwarnings("ignore", message="'audioop' is deprecated", category=DeprecationWarning)
    from pydub import AudioSegment
    from pydub.utils import get_prober_name, mediainfo_json

ANALYSIS_RATE = 8000
CHUNK_BYTES = 1 << 16
HASH_CHUNK_BYTES = 1 << 20
STDERR_KEEP = 32_000
DIGITAL_SILENCE_DBFS = -91.0


class AudioCorrupt(CalltrackingError):
    """The file is not audio ffmpeg can decode (garbage, a cut header, an unknown format)."""


class ConverterMissing(CalltrackingError):
    """ffmpeg is not installed (or not where the settings say)."""


@dataclass(frozen=True, slots=True)
class AudioInputs:
    """The parts found for one recording. `raw_rate` is set when `mix` is option D's stereo stream."""

    mix: Path | None = None
    rx: Path | None = None
    tx: Path | None = None
    raw_rate: int | None = None

    @property
    def is_stereo_raw(self) -> bool:
        return self.raw_rate is not None and self.mix is not None

    @property
    def has_sides(self) -> bool:
        return self.is_stereo_raw or (self.rx is not None and self.tx is not None)

    def paths(self) -> dict[Part, Path]:
        found = {Part.MIX: self.mix, Part.RX: self.rx, Part.TX: self.tx}
        return {part: path for part, path in found.items() if path is not None}


@dataclass(frozen=True, slots=True)
class EncodeOptions:
    bitrate: int
    complexity: int
    audio_format: AudioFormat = OGG_OPUS


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """What one ffmpeg run produced: output files by name ("mix", "customer", "manager") in the work
    directory, the mix's length and its loudest sample (volumedetect rounds to 0.1 dB; digital silence
    reads -91 dB)."""

    outputs: dict[str, Path]
    duration_seconds: float
    peak_dbfs: float


def ffmpeg_binary() -> str:
    return str(AudioSegment.converter)


def encode_command(
    inputs: AudioInputs, sides: dict[Side, Part], out_dir: Path, options: EncodeOptions
) -> tuple[list[str], dict[str, Path]]:
    """The ffmpeg command line for `inputs`, and the outputs it writes. The last output is always the
    mix, measured and thrown away (`-f null`)."""
    args = [ffmpeg_binary(), "-nostdin", "-hide_banner", "-nostats", "-v", "info", "-fflags", "+bitexact"]
    # The graph always names the mix `[mix]` and its copy to measure `[probe]`; these are the halves.
    halves: dict[Part, str] = {}
    if inputs.is_stereo_raw:
        args += ["-f", "s16le", "-ar", str(inputs.raw_rate), "-ac", "2", "-i", str(inputs.mix)]
        graph = "[0:a]asplit=3[mix][probe][both];[both]channelsplit=channel_layout=stereo[rx][tx]"
        halves = {Part.RX: "[rx]", Part.TX: "[tx]"}
    else:
        parts = inputs.paths()
        for path in parts.values():
            args += ["-i", str(path)]
        index = {part: str(i) for i, part in enumerate(parts)}
        if Part.MIX in parts:
            graph = f"[{index[Part.MIX]}:a]asplit=2[mix][probe]"
        elif Part.RX in parts and Part.TX in parts:
            graph = (
                f"[{index[Part.RX]}:a][{index[Part.TX]}:a]amix=inputs=2:duration=longest:normalize=0,"
                "asplit=2[mix][probe]"
            )
        else:
            raise AudioCorrupt("a recording needs its mix or both of its halves")
        if inputs.has_sides:
            halves = {Part.RX: f"{index[Part.RX]}:a", Part.TX: f"{index[Part.TX]}:a"}
    graph += f";[probe]aresample={ANALYSIS_RATE},aformat=sample_fmts=s16:channel_layouts=mono"
    graph += ",volumedetect[measured]"
    args += ["-filter_complex", graph]
    audio_format = options.audio_format
    encode = [*audio_format.codec, "-b:a", str(options.bitrate)]
    if audio_format.effort_option:
        encode += [audio_format.effort_option, str(options.complexity)]
    encode += ["-ac", "1", "-map_metadata", "-1", "-flags:a", "+bitexact", "-f", audio_format.muxer, "-y"]
    outputs: dict[str, Path] = {"mix": out_dir / f"mix{audio_format.suffix}"}
    args += ["-map", "[mix]", *encode, str(outputs["mix"])]
    if halves:
        for side, part in sides.items():
            outputs[side.value] = out_dir / f"{side.value}{audio_format.suffix}"
            args += ["-map", halves[part], *encode, str(outputs[side.value])]
    args += ["-map", "[measured]", "-f", "null", "-"]
    return args, outputs


async def encode(
    inputs: AudioInputs, sides: dict[Side, Part], out_dir: Path, options: EncodeOptions
) -> EncodedAudio:
    """Convert and measure in one ffmpeg run. `AudioCorrupt` when ffmpeg cannot decode an input."""
    args, outputs = encode_command(inputs, sides, out_dir, options)
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise ConverterMissing(f"ffmpeg not found ({args[0]}): install ffmpeg") from exc
    if process.stderr is None:
        raise ConverterMissing("ffmpeg's error pipe did not open")
    try:
        stderr = await _tail(process.stderr)
        code = await process.wait()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    log_text = stderr.decode("utf-8", "replace")
    if code != 0:
        errors = [line for line in log_text.strip().splitlines() if _is_error_line(line)]
        raise AudioCorrupt("; ".join(errors[-3:])[:500] or f"ffmpeg exited {code}")
    samples, peak_dbfs = measurement(log_text)
    return EncodedAudio(outputs=outputs, duration_seconds=samples / ANALYSIS_RATE, peak_dbfs=peak_dbfs)


def _is_error_line(line: str) -> bool:
    """Not one of the stream descriptions `-v info` prints (indented, or naming inputs and outputs)."""
    return (
        bool(line)
        and not line[0].isspace()
        and not line.startswith(_DESCRIPTIONS)
        and "volumedetect" not in line
    )


_DESCRIPTIONS = ("Input #", "Output #", "Stream mapping", "Press [q]")


def measurement(log_text: str) -> tuple[int, float]:
    """Samples and loudest sample (dBFS) of the mix, from `volumedetect`'s report (its last one: ffmpeg
    may configure the graph twice). No samples: -inf."""
    counts = _SAMPLES.findall(log_text)
    peaks = _PEAK.findall(log_text)
    samples = int(counts[-1]) if counts else 0
    peak = float(peaks[-1]) if samples and peaks else -math.inf
    # One step of 16-bit audio is -90.3 dBFS; volumedetect reports all-zero audio as -91.
    return samples, peak if peak > DIGITAL_SILENCE_DBFS else -math.inf


_SAMPLES = re.compile(r"\] n_samples: (\d+)")
_PEAK = re.compile(r"\] max_volume: (-?\d+(?:\.\d+)?|-inf) dB")


async def _tail(stream: asyncio.StreamReader) -> bytes:
    kept = b""
    while chunk := await stream.read(CHUNK_BYTES):
        kept = (kept + chunk)[-STDERR_KEEP:]
    return kept


def probe(path: Path) -> dict[str, Any]:
    """The file's first audio stream as ffprobe describes it. `AudioCorrupt` if it has none. Blocking."""
    try:
        info = mediainfo_json(str(path))
    except FileNotFoundError as exc:
        raise ConverterMissing(f"ffprobe not found ({get_prober_name()}): install ffmpeg") from exc
    except ValueError as exc:  # ffprobe printed no JSON
        raise AudioCorrupt(f"ffprobe could not read {path.name}") from exc
    streams = [s for s in (info or {}).get("streams", []) if s.get("codec_type") == "audio"]
    if not streams:
        raise AudioCorrupt(f"{path.name} has no audio stream")
    stream: dict[str, Any] = streams[0]
    return stream


def wav_is_truncated(path: Path) -> bool:
    """A WAV whose data chunk claims more (or, never finalised, no) bytes than the file holds: the
    PBX stopped writing it early. Its audio is still kept. Blocking."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(4096)
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return False
    offset = 12
    while offset + 8 <= len(header):
        chunk_id, chunk_size = struct.unpack_from("<4sI", header, offset)
        if chunk_id == b"data":
            available = size - offset - 8
            return chunk_size > available or (chunk_size == 0 and available > 0)
        offset += 8 + chunk_size + (chunk_size & 1)
    return False


def sha256_of(path: Path) -> str:
    """Blocking; reads the file in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
