"""Where a call's recording files are, from what the PBX announced: pure path rules, no file system.

MixMonitor names its file in `MIXMONITOR_FILENAME` (an absolute path on the PBX); FreePBX also sets
`CDR(recordingfile)` to the bare file name, which it writes under `YYYY/MM/DD/` of the PBX's local date.
The r()/t() halves sit beside the mix as `<base>-rx.<ext>` / `<base>-tx.<ext>` (or Monitor's `-in` /
`-out`); option D writes one interleaved stereo stream (`.raw`, `.sln`).

A path from the PBX is untrusted input: it is normalised, and anything outside the monitor directory is
refused before the file system is touched (the I/O layer checks the resolved path again, for symlinks).
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

from calltracking.calls.record import CallRecord, Direction, LegKind
from calltracking.calls.recording import Part, Side
from calltracking.errors import CalltrackingError

MAX_PATH_LENGTH = 1024
# Signed-linear raw formats Asterisk writes, and their sample rates.
RAW_RATES = {
    ".raw": 8000,
    ".sln": 8000,
    ".sln12": 12000,
    ".sln16": 16000,
    ".sln24": 24000,
    ".sln32": 32000,
    ".sln44": 44100,
    ".sln48": 48000,
    ".sln96": 96000,
    ".sln192": 192000,
}
EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}")
SIDE_SUFFIXES = {Part.RX: ("-rx", "-in"), Part.TX: ("-tx", "-out")}


class PathRefused(CalltrackingError):
    """The PBX named a file outside its monitor directory (or something that is not a path at all)."""


@dataclass(frozen=True, slots=True)
class SourceCandidates:
    """Relative paths (inside the monitor directory) to look for, in order, per part of a recording."""

    mix: tuple[PurePosixPath, ...]
    rx: tuple[PurePosixPath, ...]
    tx: tuple[PurePosixPath, ...]
    raw_rate: int | None  # set when the mix is a raw signed-linear stream (option D: stereo)


def relative_pbx_path(pbx_path: str, monitor_dir: str) -> PurePosixPath:
    """The path inside the monitor directory that the PBX's `pbx_path` names; `PathRefused` if it names
    anything outside it. A relative name is taken as relative to the monitor directory."""
    if (
        not pbx_path
        or len(pbx_path) > MAX_PATH_LENGTH
        or any(unicodedata.category(c) == "Cc" for c in pbx_path)
    ):
        raise PathRefused(f"not a recording path: {pbx_path[:200]!r}")
    root = posixpath.normpath(monitor_dir)
    full = posixpath.normpath(pbx_path if pbx_path.startswith("/") else posixpath.join(root, pbx_path))
    if full == root or not full.startswith(root.rstrip("/") + "/"):
        raise PathRefused(f"{pbx_path[:200]!r} is outside the monitor directory {monitor_dir}")
    return PurePosixPath(posixpath.relpath(full, root))


def source_candidates(
    recording_file: str,
    monitor_dir: str,
    times: tuple[datetime, ...],
    timezone: str,
    raw_is_stereo: bool = True,
) -> SourceCandidates:
    """Every place the recording may be. A bare name (FreePBX's CDR(recordingfile)) is looked for in
    the monitor directory itself and under `YYYY/MM/DD/` of each of `times` (the call's start, answer
    and end) in the PBX's time zone."""
    relative = relative_pbx_path(recording_file, monitor_dir)
    mixes = [relative]
    if len(relative.parts) == 1:
        zone = ZoneInfo(timezone)
        for at in times:
            dated = PurePosixPath(at.astimezone(zone).strftime("%Y/%m/%d")) / relative
            if dated not in mixes:
                mixes.append(dated)
    if not has_extension(relative):  # CALLFILENAME: a base name (that ends in a Uniqueid, "....1795349935.0")
        mixes += [path.with_name(path.name + ".wav") for path in list(mixes)]
    raw_rate = RAW_RATES.get(relative.suffix.lower()) if raw_is_stereo else None
    return SourceCandidates(
        mix=tuple(mixes),
        rx=tuple(_siblings(mixes, Part.RX)),
        tx=tuple(_siblings(mixes, Part.TX)),
        raw_rate=raw_rate,
    )


def has_extension(path: PurePosixPath) -> bool:
    """An audio file extension, not the dot inside an Asterisk Uniqueid."""
    return EXTENSION.fullmatch(path.suffix) is not None


def _siblings(mixes: list[PurePosixPath], part: Part) -> list[PurePosixPath]:
    found = []
    for mix in mixes:
        if not has_extension(mix):
            continue
        suffix = mix.suffix if mix.suffix.lower() not in RAW_RATES else ".wav"
        for marker in SIDE_SUFFIXES[part]:
            found.append(mix.with_name(mix.stem + marker + suffix))
    return found


def rx_side(call: CallRecord) -> Side:
    """Who is heard in the `rx` half (audio received from the channel that ran MixMonitor): the
    customer when MixMonitor ran on the carrier's channel, the manager when it ran on a desk phone.
    Without a known channel: inbound calls are recorded on the channel that entered the dialplan (the
    carrier's), outbound and internal ones on the manager's."""
    kind = next((leg.kind for leg in call.legs if leg.channel == call.recording_channel), None)
    if kind is LegKind.TRUNK:
        return Side.CUSTOMER
    if kind is LegKind.EXTENSION:
        return Side.MANAGER
    return Side.CUSTOMER if call.direction is Direction.INBOUND else Side.MANAGER


def side_parts(call: CallRecord) -> dict[Side, Part]:
    """Which recorded half holds which side of the conversation."""
    rx = rx_side(call)
    tx = Side.MANAGER if rx is Side.CUSTOMER else Side.CUSTOMER
    return {rx: Part.RX, tx: Part.TX}
