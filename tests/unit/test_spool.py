from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import calltracking.calls.spool as spool_module
from calltracking.calls.spool import ACKED, JOURNAL, REJECTED, CallSpool, SpoolEntry
from tests.helpers.factories import make_call


def pending_ids(directory: Path) -> list[str]:
    with CallSpool(directory) as spool:
        return [entry.call.pbx_call_id for entry in spool.pending]


def append(spool: CallSpool, *numbers: int) -> list[SpoolEntry]:
    return [spool.append(make_call(n)) for n in numbers]


def test_appended_calls_survive_a_restart_until_acknowledged(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        entries = append(spool, 1, 2, 3)
        spool.ack(entries[0].seq)

    with CallSpool(tmp_path) as reopened:
        assert [entry.call for entry in reopened.pending] == [make_call(2), make_call(3)]
        assert reopened.append(make_call(4)).seq == 4


def test_torn_last_record_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        append(spool, 1, 2)
    journal = tmp_path / JOURNAL
    data = journal.read_bytes()
    journal.write_bytes(data[: len(data) - 40])

    with CallSpool(tmp_path) as reopened:
        assert [entry.call for entry in reopened.pending] == [make_call(1)]
        reopened.append(make_call(3))

    assert pending_ids(tmp_path) == ["1795349935.1", "1795349935.3"]


def test_corrupt_record_in_the_middle_is_skipped_not_the_ones_after(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        append(spool, 1, 2, 3)
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
        entries = append(spool, 1, 2)
        spool.ack(entries[-1].seq)

    assert (tmp_path / JOURNAL).read_bytes() == b""
    assert (tmp_path / ACKED).read_text().strip() == "2"
    with CallSpool(tmp_path) as reopened:
        assert reopened.pending == []
        assert reopened.append(make_call(3)).seq == 3


def test_rejected_call_is_kept_on_disk(tmp_path: Path) -> None:
    with CallSpool(tmp_path) as spool:
        entry = spool.append(make_call(1))
        spool.reject(entry, "DataError: value too long")

    rejected = (tmp_path / REJECTED).read_bytes()
    assert b"value too long" in rejected and b"1795349935.1" in rejected


def test_appended_call_is_there_for_the_next_process_without_a_close_or_fsync(tmp_path: Path) -> None:
    """What a SIGKILL leaves: the journal written by `append` alone (no sync, no close)."""
    spool = CallSpool(tmp_path)
    try:
        append(spool, 1, 2)
        assert not spool.is_synced
        assert pending_ids(tmp_path) == ["1795349935.1", "1795349935.2"]
        spool.sync()
        assert spool.is_synced
    finally:
        spool.close()


def test_failed_write_leaves_no_partial_record_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    calls = 0

    def half_then_disk_full(fd: int, data: bytes) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            return real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    with CallSpool(tmp_path) as spool:
        append(spool, 1)
        monkeypatch.setattr(os, "write", half_then_disk_full)
        with pytest.raises(OSError):
            spool.append(make_call(2))
        monkeypatch.setattr(os, "write", real_write)
        append(spool, 3)

    assert pending_ids(tmp_path) == ["1795349935.1", "1795349935.3"]


def test_compaction_truncates_the_journal_only_while_appends_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's thread compacts while the event loop may append: the truncate must happen under the
    lock an append takes, or a call appended after the "all acknowledged" check would be erased by it."""
    monkeypatch.setattr(spool_module, "COMPACT_BYTES", 1)
    real_ftruncate = os.ftruncate
    appends_held_off: list[bool] = []
    with CallSpool(tmp_path) as spool:

        def probing_ftruncate(fd: int, length: int) -> None:
            appends_held_off.append(spool._lock.locked())
            real_ftruncate(fd, length)

        monkeypatch.setattr(os, "ftruncate", probing_ftruncate)
        entries = append(spool, 1, 2)
        spool.ack(entries[-1].seq)
        append(spool, 3)

    assert appends_held_off == [True]
    assert pending_ids(tmp_path) == ["1795349935.3"]
