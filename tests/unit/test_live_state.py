"""The live-call checkpoint: what the assembler says changed, and the journal file a restart reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ami.assembler import CallAssembler
from ami.events import AmiEvent
from ami.live_state import HEADER, LiveCallCheckpoint
from calltracking.config import PbxSettings
from tests.helpers import ami_events as ev
from tests.helpers.captures import capture_names, events

PBX = PbxSettings(name="office")


def live(assembler: CallAssembler) -> dict[str, Any]:
    """The assembler's live state as a restart sees it: calls by key, legs alive count as stale."""
    state = assembler.export_state()
    calls = sorted(state["calls"], key=lambda call: call["linkedid"])
    for call in calls:
        for leg in call["legs"]:
            leg["is_stale"] = leg["ended_at"] is None
    return {"calls": calls, "bridges": state["bridges"], "last_event_at": state["last_event_at"]}


def restored(path: Path) -> dict[str, Any]:
    assembler = CallAssembler(PBX)
    LiveCallCheckpoint(path).restore_into(assembler)
    return live(assembler)


def cuts(stream: list[AmiEvent], parts: int) -> list[list[AmiEvent]]:
    size = max(1, len(stream) // parts)
    return [stream[start : start + size] for start in range(0, len(stream), size)]


@pytest.mark.parametrize("name", capture_names())
def test_changes_taken_after_every_event_rebuild_the_live_calls(name: str) -> None:
    """Merges (pickups, transfers), completions, originate responses: every change reaches a take."""
    assembler = CallAssembler(PBX)
    mirror: dict[str, dict[str, Any]] = {}
    for event in events(name):
        assembler.feed(event)
        changes = assembler.take_changes()
        assert not set(changes.calls) & set(changes.dropped)
        for key in changes.dropped:
            mirror.pop(key, None)
        mirror.update(changes.calls)

        assert sorted(mirror.values(), key=lambda call: call["linkedid"]) == sorted(
            assembler.export_state()["calls"], key=lambda call: call["linkedid"]
        )


@pytest.mark.parametrize("name", capture_names())
async def test_restore_after_a_base_and_deltas_equals_the_live_calls(name: str, tmp_path: Path) -> None:
    path = tmp_path / "live-calls.json"
    assembler = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path)
    for part in cuts(events(name), 6):
        for event in part:
            assembler.feed(event)
        await checkpoint.save(assembler)

        assert restored(path) == live(assembler)
    lines = path.read_bytes().splitlines()
    assert lines[0] + b"\n" == HEADER
    assert sum(line.startswith(b"T\t") for line in lines) > 1  # deltas were appended to the base


async def test_calls_that_end_and_merge_are_dropped_from_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "live-calls.json"
    stream = events("attended_transfer")
    assembler = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path)
    for event in stream:
        assembler.feed(event)
        await checkpoint.save(assembler)

    assert assembler.live_calls == 0
    assert restored(path)["calls"] == []
    assert b"\nD\t" in path.read_bytes()


async def test_torn_last_line_is_ignored_and_the_records_before_it_restored(tmp_path: Path) -> None:
    path = tmp_path / "live-calls.json"
    stream = events("inbound_queue_answered")
    assembler = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path)
    for part in cuts(stream[: len(stream) // 2], 3):
        for event in part:
            assembler.feed(event)
        await checkpoint.save(assembler)
    whole = path.read_bytes()
    # Killed in the middle of the next append.
    path.write_bytes(whole + b'S\t"1795349999.0"\t{"linkedid":"1795349999.0","started_at":17953')

    assert restored(path) == live(assembler)
    assert len(restored(path)["calls"]) == 1


async def test_restore_then_save_after_a_torn_line_keeps_every_call(tmp_path: Path) -> None:
    """The torn tail is not appended to: the restarted process writes a fresh base first."""
    path = tmp_path / "live-calls.json"
    stream = events("inbound_single_answered")
    half = len(stream) // 2
    before = CallAssembler(PBX)
    for event in stream[:half]:
        before.feed(event)
    await LiveCallCheckpoint(path).save(before)
    path.write_bytes(path.read_bytes() + b'S\t"17953')

    after = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path)
    assert checkpoint.restore_into(after) == 1
    after.feed(stream[half])
    await checkpoint.save(after)

    assert restored(path) == live(after)


async def test_compaction_keeps_the_same_live_calls(tmp_path: Path) -> None:
    path = tmp_path / "live-calls.json"
    assembler = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path, compact_floor=0)
    bases = 0
    for name in ("inbound_queue_answered", "attended_transfer", "click_to_call"):
        stream = events(name)
        for event in stream[: len(stream) * 2 // 3]:
            assembler.feed(event)
            await checkpoint.save(assembler)
            bases += path.read_bytes().count(b"\nT\t") == 1

            assert restored(path) == live(assembler)
    assert bases > 3  # compacted into a new base again and again, the appended records folded in
    assert assembler.live_calls == 3


async def test_checkpoint_in_the_earlier_single_document_format_restores(tmp_path: Path) -> None:
    """An upgrade with calls in flight: the file the previous version wrote is read, then rewritten."""
    path = tmp_path / "live-calls.json"
    stream = events("attended_transfer")
    talking = len(stream) * 2 // 3
    before = CallAssembler(PBX)
    for event in stream[:talking]:
        before.feed(event)
    path.write_text(json.dumps(before.export_state(), separators=(",", ":")), encoding="utf-8")

    after = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path)
    assert checkpoint.restore_into(after) == before.live_calls > 0
    assert live(after) == live(before)
    after.feed(stream[talking])
    before.feed(stream[talking])
    await checkpoint.save(after)

    assert path.read_bytes().startswith(HEADER)
    assert restored(path) == live(after)


async def test_held_back_changes_are_written_by_a_later_save(tmp_path: Path) -> None:
    """Nothing taken while a save is held back is lost: the drop of the completed call comes with the
    next save that runs."""
    path = tmp_path / "live-calls.json"
    caller = ev.ref("90.1", "PJSIP/101-00000090")
    other = ev.ref("91.1", "PJSIP/102-00000091")
    assembler = CallAssembler(PBX)
    checkpoint = LiveCallCheckpoint(path)
    assembler.feed(ev.created(caller, 1.0, exten="*43"))
    assembler.feed(ev.created(other, 1.5, exten="*43"))
    await checkpoint.save(assembler)
    assembler.feed(ev.hangup(caller, 2.0))  # completed; its save is held back (not called) here
    assert len(restored(path)["calls"]) == 2

    await checkpoint.save(assembler)

    assert [call["linkedid"] for call in restored(path)["calls"]] == ["91.1"]


def test_failed_originate_finds_its_call_by_the_device_it_names() -> None:
    """The OriginateResponse of a click-to-call the manager did not answer says `Uniqueid: <unknown>`."""
    assembler = CallAssembler(PBX)
    failures = []
    for event in events("click_to_call_manager_no_answer"):
        assembler.feed(event)
        failures += [p.reason for p in assembler.drain_progress() if p.kind.value == "originate_failed"]

    assert failures == ["manager_no_answer"]
    assert assembler._calls_on_device == {}  # nothing left indexed once the calls are gone
