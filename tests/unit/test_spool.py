from __future__ import annotations

from pathlib import Path

import pytest

import calltracking.spool as spool_module
from calltracking.spool import ACKED, JOURNAL, REJECTED, CallSpool
from tests.helpers.factories import make_call


def pending_ids(directory: Path) -> list[str]:
    with CallSpool(directory) as spool:
        return [entry.call.pbx_call_id for entry in spool.pending]


def test_appended_calls_survive_a_restart_until_acknowledged(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        entries = spool.append([make_call(1), make_call(2), make_call(3)])
        spool.ack(entries[0].seq)

    with CallSpool(tmp_path) as reopened:
        assert [entry.call for entry in reopened.pending] == [make_call(2), make_call(3)]
        assert [entry.seq for entry in reopened.append([make_call(4)])] == [4]


def test_torn_last_record_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        spool.append([make_call(1), make_call(2)])
    journal = tmp_path / JOURNAL
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) - 40])

    with CallSpool(tmp_path) as reopened:
        assert [entry.call for entry in reopened.pending] == [make_call(1)]
        reopened.append([make_call(3)])

    assert pending_ids(tmp_path) == ["1795349935.1", "1795349935.3"]


def test_corrupt_record_in_the_middle_is_skipped_not_the_ones_after(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        spool.append([make_call(1), make_call(2), make_call(3)])
    journal = tmp_path / JOURNAL
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"answered", b"answerex")
    journal.write_bytes(b"".join(lines))

    assert pending_ids(tmp_path) == ["1795349935.1", "1795349935.3"]


def test_ack_is_durable_and_journal_is_compacted_when_drained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1)
    with CallSpool(tmp_path) as spool:
        entries = spool.append([make_call(1), make_call(2)])
        spool.ack(entries[-1].seq)

    assert (tmp_path / JOURNAL).read_bytes() == b""
    assert (tmp_path / ACKED).read_text().strip() == "2"
    with CallSpool(tmp_path) as reopened:
        assert reopened.pending == []
        assert [entry.seq for entry in reopened.append([make_call(3)])] == [3]


def test_rejected_call_is_kept_on_disk(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        [entry] = spool.append([make_call(1)])
        spool.reject(entry, "DataError: value too long")

    rejected = (tmp_path / REJECTED).read_bytes()
    assert b"value too long" in rejected and b"1795349935.1" in rejected
