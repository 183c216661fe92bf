"""The real Asterisk captures in ../shared/ami-traces, as bytes, frames and typed events."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from panoramisk.message import Message

from ami.events import AmiEvent, event_time, parse_event

TRACES = Path(__file__).resolve().parents[2].parent / "shared" / "ami-traces"
FRAME_END = b"\r\n\r\n"


def capture_names() -> list[str]:
    """Every capture; missing captures are an error, never an empty (silently skipped) parametrization."""
    names = sorted(path.stem for path in TRACES.glob("*.ami"))
    if not names:
        raise FileNotFoundError(f"no AMI captures in {TRACES}: shared/ must sit beside the repository")
    return names


@cache
def capture(name: str) -> bytes:
    return (TRACES / f"{name}.ami").read_bytes()


def truth(name: str) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = json.loads((TRACES / f"{name}.truth.json").read_text())["calls"]
    return calls


def frame_ends(data: bytes) -> list[int]:
    """Offsets just past each frame terminator: the places a capture can be cut between frames."""
    ends = []
    start = 0
    while (found := data.find(FRAME_END, start)) >= 0:
        start = found + len(FRAME_END)
        ends.append(start)
    return ends


def events(name: str) -> list[AmiEvent]:
    """The capture's events as the listener would see them, without a socket in between."""
    parsed: list[AmiEvent] = []
    for raw in capture(name).split(FRAME_END):
        message = Message.from_line(raw.decode().strip())
        if message is None or "event" not in message:
            continue
        event = parse_event(message, event_time(message) or 0.0)
        if event is not None:
            parsed.append(event)
    return parsed
