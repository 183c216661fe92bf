"""What the service knows about a call's recording: pure values, shared by the worker, the database
layer, the API and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class RecordingState(StrEnum):
    PENDING = "pending"  # waiting for the file (settle delay, retries) or for a worker
    READY = "ready"  # converted and stored
    EMPTY = "empty"  # header-only or silent: nobody spoke (MixMonitor `b` still creates a file)
    MISSING = "missing"  # never appeared within `missing_after_seconds`: the call is `recording_missing`
    QUARANTINED = "quarantined"  # not readable audio; the original is kept in the quarantine directory
    REFUSED = "refused"  # the PBX named a path outside its monitor directory
    DELETING = "deleting"  # retention is removing the audio
    DELETED = "deleted"  # the audio was removed by retention; the call record stays


class Side(StrEnum):
    """Who is heard on one side of a split recording."""

    CUSTOMER = "customer"
    MANAGER = "manager"


class Part(StrEnum):
    """The files MixMonitor can leave for one call: the mix, the r()/t() halves, or a stereo D stream."""

    MIX = "mix"
    RX = "rx"  # heard from the channel that ran MixMonitor
    TX = "tx"  # sent to that channel
    STEREO = "stereo"  # option D: rx left, tx right, interleaved raw signed linear


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """A format recordings are stored in: how ffmpeg writes it and how HTTP names it."""

    name: str
    suffix: str
    mime_type: str
    muxer: str
    codec: tuple[str, ...]
    # ffmpeg's effort option for this encoder, if it takes the settings' `complexity` (0-10).
    effort_option: str | None = None


OGG_OPUS = AudioFormat(
    name="ogg/opus",
    suffix=".ogg",
    mime_type="audio/ogg; codecs=opus",
    muxer="ogg",
    codec=("-c:a", "libopus", "-vbr", "on", "-application", "voip"),
    effort_option="-compression_level",
)
# For players without Opus (older Safari, some CRM widgets): larger for the same quality.
MP3 = AudioFormat(
    name="mp3", suffix=".mp3", mime_type="audio/mpeg", muxer="mp3", codec=("-c:a", "libmp3lame")
)
FORMATS = {audio_format.name: audio_format for audio_format in (OGG_OPUS, MP3)}


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One stored audio file, relative to the storage directory."""

    path: str
    sha256: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a recording job ended (a state it stays in until a push or retention moves it)."""

    state: RecordingState
    duration_seconds: float | None = None
    format: str | None = None
    source_sha256: str | None = None
    files: dict[str, StoredFile] = field(default_factory=dict)
    is_truncated: bool = False
    error: str | None = None

    @property
    def sha256(self) -> str | None:
        """The stored mix's hash: what `url` serves."""
        mix = self.files.get("mix") if self.state is RecordingState.READY else None
        return mix.sha256 if mix else None


@dataclass(frozen=True, slots=True)
class Recording:
    """A call's recording as the database holds it."""

    id: int
    pbx: str
    pbx_call_id: str
    call_id: int | None
    state: RecordingState
    source: str | None
    attempts: int
    due_since: datetime
    duration_seconds: float | None = None
    format: str | None = None
    sha256: str | None = None
    source_sha256: str | None = None
    files: dict[str, StoredFile] = field(default_factory=dict)
    is_truncated: bool = False
    error: str | None = None

    @property
    def sides(self) -> tuple[Side, ...]:
        return tuple(side for side in Side if side.value in self.files)

    @property
    def is_ready(self) -> bool:
        return self.state is RecordingState.READY and "mix" in self.files


def recording_url(call_id: int) -> str:
    return f"/api/v1/calls/{call_id}/recording"


def recording_view(call_id: int, recording: Recording | None) -> dict[str, object] | None:
    """The `recording` object of a call in `calls --json` and the API: null unless there is audio."""
    if recording is None or not recording.is_ready:
        return None
    return {
        "duration_seconds": recording.duration_seconds,
        "format": recording.format,
        "sides": [side.value for side in recording.sides],
        "sha256": recording.sha256,
        "source_sha256": recording.source_sha256,
        "bytes": recording.files["mix"].bytes,
        "is_truncated": recording.is_truncated,
        "url": recording_url(call_id),
    }


def recording_state_of(recording: Recording | None, has_recording_file: bool) -> str:
    """`none` for a call that was never recorded; else the worker's state."""
    if recording is not None:
        return recording.state.value
    return RecordingState.PENDING.value if has_recording_file else "none"
