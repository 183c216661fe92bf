"""Truncated captures and malformed frames reach the real client over TCP: logged, skipped, never a crash."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ami.capture_peer import PeerSession
from tests.helpers.captures import capture, capture_names, frame_ends, truth
from tests.helpers.listening import CollectingSink, listening, running_peer, sessions_played

FAILURE_EVENTS = {
    "ami_event_handler_failed",
    "ami_frame_handling_failed",
    "ami_session_start_failed",
    "ami_lost_handler_failed",
}


def prefix_cuts(data: bytes) -> list[int]:
    """Every frame boundary, and the middle of every frame."""
    ends = frame_ends(data)
    starts = [0, *ends[:-1]]
    middles = [(start + end) // 2 for start, end in zip(starts, ends, strict=True)]
    return sorted({*ends, *middles, len(data)})


@pytest.mark.parametrize("name", capture_names())
async def test_every_prefix_of_a_capture_is_survived(name: str) -> None:
    data = capture(name)
    cuts = prefix_cuts(data)
    sink = CollectingSink()

    with capture_logs() as logs:
        async with (
            running_peer([PeerSession.from_capture(data[:cut]) for cut in cuts]) as peer,
            listening(peer, sink) as listener,
        ):
            await sessions_played(listener, len(cuts), timeout=120)
            listener.finish()

    assert [entry for entry in logs if entry["event"] in FAILURE_EVENTS] == []
    assert peer.connections == len(cuts)
    # Each prefix yields at most its one call: whole (the right status) or closed as reconciled. Every
    # session replays the call from its start with the same Uniqueids after an empty snapshot, so the
    # last, whole capture may continue a call an earlier prefix left open: its status must still be right.
    assert len(sink.calls) <= len(cuts)
    [expected] = truth(name)
    assert all(call.reconciled or call.status.value == expected["status"] for call in sink.calls)
    assert sink.calls[-1].status.value == expected["status"]


JUNK_FRAMES = [
    b"\x00\xff\xfe\x80binary junk\x01\x02\r\n\r\n",
    b"NoColonHere\r\nAnother line without one\r\n\r\n",
    b"Event: TotallyUnknownEvent\r\nFoo: bar\r\n\r\n",
    b"Event: Hangup\r\nChannel: PJSIP/x-1\r\n\r\n",
    b"Event: Newstate\r\nUniqueid: 99.9\r\nChannelState: Up-ish\r\n\r\n",
    b"Event: Newchannel\r\nX-Padding: " + b"A" * 1_000_000 + b"\r\n\r\n",
    b"Response: Success\r\nActionID: nobody-asked\r\nMessage: stray\r\n\r\n",
    b"Event: Hangup\r\nUniqueid: 1795349935.1\r\nUniqueid: 1795349935.1\r\nCause: 16\r\nCause: x\r\n\r\n",
    "Event: Newchannel\r\nCallerIDName: Jos\u00e9 \u041f\u0435\u0442\u0440\u043e\u0432\r\n\r\n".encode(),
]


async def test_malformed_frames_between_real_ones_are_logged_and_skipped() -> None:
    data = capture("inbound_single_answered")
    ends = frame_ends(data)
    cut = ends[len(ends) // 2]
    body = data[:cut] + b"".join(JUNK_FRAMES) + data[cut:]
    sink = CollectingSink()

    with capture_logs() as logs:
        async with running_peer([PeerSession.from_capture(body)]) as peer, listening(peer, sink) as listener:
            await sessions_played(listener, 1)

    assert [entry for entry in logs if entry["event"] in FAILURE_EVENTS] == []
    skipped = {entry.get("reason") for entry in logs if entry["event"] == "ami_frame_skipped"}
    assert skipped == {"frame_unparsable", "frame_too_large"}
    assert sum(entry["event"] == "ami_event_malformed" for entry in logs) >= 2
    [call] = sink.calls
    assert (call.status.value, call.answered_by, call.reconciled) == ("answered", "101", False)


async def test_a_pbx_without_timestampevents_is_reported_and_its_calls_still_logged() -> None:
    data = capture("inbound_single_answered")
    without = b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"Timestamp: "))
    sink = CollectingSink()

    with capture_logs() as logs:
        async with (
            running_peer([PeerSession.from_capture(without)]) as peer,
            listening(peer, sink) as listener,
        ):
            await sessions_played(listener, 1)

    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "ami_events_without_timestamp"
    ]
    [call] = sink.calls
    assert (call.status.value, call.answered_by) == ("answered", "101")
