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


# The captures the story tests (matching, the seeded API) worked out their expectations for, by hand.
# Captures added to shared/ later are checked by the replay and assembler tests, not by these counts.
STORY_CAPTURES = (
    "click_to_call",
    "click_to_call_manager_no_answer",
    "inbound_customer_cancel",
    "inbound_group_answered",
    "inbound_queue_abandoned",
    "inbound_queue_answered",
    "inbound_single_answered",
    "inbound_single_busy",
    "inbound_single_missed",
    "internal_call",
    "outbound_answered",
    "outbound_busy",
)


def story_captures() -> list[str]:
    """The story captures; one missing from shared/ is an error, never a smaller story."""
    missing = set(STORY_CAPTURES) - set(capture_names())
    if missing:
        raise FileNotFoundError(f"story captures missing from {TRACES}: {sorted(missing)}")
    return list(STORY_CAPTURES)


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
