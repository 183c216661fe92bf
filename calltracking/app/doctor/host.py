"""What the service needs on this machine: each PBX's recordings directory, ffmpeg, the speech models."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

from calltracking.app.doctor.result import CheckResult, fail, ok
from calltracking.config import PbxSettings, RecordingSettings, TranscriptionSettings
from calltracking.errors import TranscriptionUnavailable

FFMPEG_SECONDS = 20.0
# The encoder each `[recordings] format` is written with (recordings/audio.py).
ENCODERS = {"ogg/opus": "libopus", "mp3": "libmp3lame"}


def check_recordings_dir(pbx: PbxSettings) -> CheckResult:
    name = f"pbx {pbx.name} recordings"
    directory = pbx.local_recordings_dir
    where = (
        "set [[pbx]] recordings_dir to where the PBX's monitor directory is mounted"
        if pbx.recordings_dir is not None
        else f"mount the PBX's {pbx.monitor_dir} here, or set [[pbx]] recordings_dir to its mount"
    )
    if not directory.exists():
        return fail(name, f"{directory} does not exist", where)
    if not directory.is_dir():
        return fail(name, f"{directory} is not a directory", where)
    try:
        with os.scandir(directory) as entries:
            next(entries, None)
    except PermissionError:
        return fail(
            name,
            f"{directory} is not readable by this user",
            "let the service's user read it (e.g. add it to the asterisk group; NFS: export it to this host)",
        )
    if not os.access(directory, os.R_OK | os.X_OK):
        return fail(name, f"{directory} is not readable by this user", "let the service's user read it")
    return ok(name, f"{directory} readable")


async def check_ffmpeg(recordings: RecordingSettings, search_path: str | None = None) -> CheckResult:
    """ffmpeg and ffprobe on the PATH (`search_path` stands for it), running, with the encoder the
    recordings are stored in."""
    name = "ffmpeg"
    install = "install ffmpeg (Debian/Ubuntu: apt install ffmpeg), on the PATH of the service's user"
    ffmpeg = shutil.which("ffmpeg", path=search_path)
    if ffmpeg is None:
        return fail(name, "ffmpeg not found on the PATH", install)
    if shutil.which("ffprobe", path=search_path) is None:
        return fail(name, f"{ffmpeg} found, but not ffprobe beside it", install)
    try:
        version = await asyncio.to_thread(_run, [ffmpeg, "-hide_banner", "-version"])
        encoders = await asyncio.to_thread(_run, [ffmpeg, "-hide_banner", "-encoders"])
    except (OSError, subprocess.SubprocessError) as exc:
        return fail(name, f"{ffmpeg} does not run: {exc}", install)
    encoder = ENCODERS[recordings.format]
    if f" {encoder} " not in encoders:
        return fail(
            name,
            f"{ffmpeg} cannot encode {recordings.format} (no {encoder})",
            "install an ffmpeg built with it (Debian's is), or set [recordings] format",
        )
    first = version.splitlines()[0] if version else ffmpeg
    return ok(name, f"{first.split(' Copyright')[0]} ({ffmpeg}), encodes {recordings.format}")


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=FFMPEG_SECONDS, check=True)
    return done.stdout


async def check_models(transcription: TranscriptionSettings) -> list[CheckResult]:
    """Load each configured vosk model (slow for a big one: that is the check). None configured: one
    line saying transcription is off."""
    from transcription.engine import load_model

    if not transcription.models:
        return [ok("transcription", "no models configured: calls are not transcribed")]
    results = []
    for language, path in sorted(transcription.models.items()):
        name = f"transcription model {language}"
        try:
            loaded = await asyncio.to_thread(load_model, language, Path(path))
        except TranscriptionUnavailable as exc:
            results.append(
                fail(
                    name,
                    str(exc),
                    f"unpack a vosk model (https://alphacephei.com/vosk/models) into {path}, or fix "
                    f"[transcription] models.{language}",
                )
            )
            continue
        results.append(ok(name, f"{path} loads ({loaded.sample_rate} Hz)"))
    return results
