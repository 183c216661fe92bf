"""Every real capture, byte for byte over TCP to the real panoramisk client, into SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from calltracking.app.replay import replay_captures
from calltracking.calls.record import StoredCall
from calltracking.calls.recording import Recording
from calltracking.config import PbxSettings, RecordingSettings
from tests.helpers.captures import TRACES, capture, capture_names, truth
from tests.helpers.listening import database_settings, stored_calls, stored_recordings

PBX = PbxSettings(name="office")


def as_truth(stored: StoredCall) -> dict[str, Any]:
    """The record in the vocabulary of the capture's truth file."""
    call = stored.call
    return {
        "direction": call.direction.value,
        "caller": call.caller,
        "callee": call.callee,
        "did": call.did,
        "status": call.status.value,
        "answered_by": call.answered_by,
        "manager": call.manager,
        "rang": sorted(call.rang),
        "queue": call.queue,
        "origin": call.origin.value,
        "request_id": call.request_id,
        "abandoned": call.abandoned,
        "transferred_to": list(call.transferred_to),
        "hangup_by": call.hangup_by,
        "ring_s": call.ring_seconds,
        "talk_s": call.talk_seconds,
    }


def matches_truth(record: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    problems = []
    for key, want in expected.items():
        if key in ("recording", "note", "reason", "scenario"):
            continue
        got = record.get(key)
        if key == "did" and record["direction"] != "inbound":
            continue
        if key in ("ring_s", "talk_s"):
            ok = abs(got - want) <= 1.0
        elif key == "rang":
            ok = got == sorted(want)
        else:
            ok = got == want
        if not ok:
            problems.append(f"{key}: want {want!r}, got {got!r}")
    if not expected.get("abandoned") and record["abandoned"]:
        problems.append("abandoned: want False")
    return problems


@pytest.mark.parametrize("name", capture_names())
async def test_capture_replayed_over_tcp_logs_the_calls_that_happened(
    name: str, database_url: str, tmp_path: Path
) -> None:
    settings = database_settings(database_url, tmp_path)

    await replay_captures([capture(name)], PBX, settings, tmp_path / "spool")

    records = [as_truth(stored) for stored in await stored_calls(database_url)]
    expected = truth(name)
    assert len(records) == len(expected)
    assert [matches_truth(r, t) for r, t in zip(records, expected, strict=True)] == [[] for _ in expected]


# Worked out by hand from the event timestamps: QueueCallerJoin to the caller's BridgeEnter with the agent,
# or to QueueCallerAbandon.
QUEUE_WAITS = {
    "inbound_queue_answered": 3.01,  # 1795349980.856335 -> 1795349983.866472
    "inbound_queue_abandoned": 7.993,  # 1795349992.492278 -> 1795350000.484922
}


@pytest.mark.parametrize("name", sorted(QUEUE_WAITS))
async def test_queue_capture_replayed_stores_how_long_the_caller_waited(
    name: str, database_url: str, tmp_path: Path
) -> None:
    settings = database_settings(database_url, tmp_path)

    await replay_captures([capture(name)], PBX, settings, tmp_path / "spool")

    [stored] = await stored_calls(database_url)
    assert (stored.call.queue, stored.call.queue_wait_seconds) == ("sales", QUEUE_WAITS[name])


async def test_replaying_the_same_captures_twice_gives_the_same_rows(
    database_url: str, tmp_path: Path
) -> None:
    captures = [capture(name) for name in capture_names()]
    settings = database_settings(database_url, tmp_path)

    await replay_captures(captures, PBX, settings, tmp_path / "spool")
    first = await stored_calls(database_url)
    await replay_captures(captures, PBX, settings, tmp_path / "spool")
    second = await stored_calls(database_url)

    assert len(first) == len(capture_names())
    assert second == first


async def test_replayed_captures_take_their_recordings_from_the_monitor_directory(
    database_url: str, tmp_path: Path
) -> None:
    pbx = PBX.model_copy(update={"recordings_dir": TRACES / "recordings"})
    store = RecordingSettings(storage_dir=tmp_path / "store")
    names = capture_names()

    await replay_captures(
        [capture(name) for name in names],
        pbx,
        database_settings(database_url, tmp_path),
        tmp_path / "spool",
        recordings=store,
    )

    stored = await stored_calls(database_url)
    recordings = await stored_recordings(database_url, [call.id for call in stored])
    expected = sorted(
        (t["direction"], t["caller"], t.get("did") or t["callee"], bool(t.get("recording")))
        for name in names
        for t in truth(name)
    )
    got = sorted(
        (c.call.direction.value, c.call.caller, c.call.did or c.call.callee, _has_audio(recordings.get(c.id)))
        for c in stored
    )
    assert got == expected
    states = {recordings[call.id].state.value for call in stored if call.id in recordings}
    assert states == {"ready", "empty"}  # the unanswered calls left header-only files
    for call in stored:
        recording = recordings.get(call.id)
        if recording is not None and recording.is_ready:
            assert recording.duration_seconds == pytest.approx(call.call.talk_seconds, abs=1.0)
            assert set(recording.files) == {"mix", "customer", "manager"}


def _has_audio(recording: Recording | None) -> bool:
    return recording is not None and recording.is_ready and (recording.duration_seconds or 0) > 0
