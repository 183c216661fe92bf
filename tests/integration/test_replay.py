"""Every real capture, byte for byte over TCP to the real panoramisk client, into SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from calltracking.calls import StoredCall
from calltracking.replay import replay_captures
from calltracking.settings import PbxSettings
from tests.helpers.captures import capture, capture_names, truth
from tests.helpers.listening import database_settings, stored_calls

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
        "ring_s": call.ring_seconds,
        "talk_s": call.talk_seconds,
    }


def matches_truth(record: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    problems = []
    for key, want in expected.items():
        if key in ("recording", "note", "hangup_by", "reason", "scenario"):
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
