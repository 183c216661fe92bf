"""A durable local spool for completed calls: the point after which a call survives anything.

Every completed call is appended to `journal.log` and fsync'd before the database is tried. Once the
database has committed a prefix of the journal, its last sequence number is written to `acked`
(write, fsync, rename). On start the records after `acked` are the calls still owed to the database.
A crash mid-append leaves a torn last line; its checksum fails and it is dropped: it was never
acknowledged, so nothing that was promised is lost.

Blocking file I/O: call these methods from a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from calltracking.call_json import decode_call, encode_call
from calltracking.calls import CallRecord
from calltracking.durable import move_durably

log = structlog.get_logger(__name__)

JOURNAL = "journal.log"
ACKED = "acked"
REJECTED = "rejected.jsonl"
# Rewrite the journal once this much of it is acknowledged, so it does not grow without bound.
COMPACT_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    seq: int
    call: CallRecord


class CallSpool:
    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._journal_path = directory / JOURNAL
        self._acked_path = directory / ACKED
        self._acked = self._read_acked()
        self._pending: list[SpoolEntry] = []
        self._next_seq = self._acked + 1
        self._load_journal()
        self._journal = open(self._journal_path, "ab")  # noqa: SIM115 - held open for appends

    @property
    def pending(self) -> list[SpoolEntry]:
        """Entries written to disk and not yet acknowledged by the database, oldest first."""
        return list(self._pending)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def oldest(self, limit: int) -> list[SpoolEntry]:
        """The next entries owed to the database, oldest first."""
        return self._pending[:limit]

    def append(self, calls: Sequence[CallRecord]) -> list[SpoolEntry]:
        entries = []
        lines = []
        for call in calls:
            entry = SpoolEntry(self._next_seq, call)
            self._next_seq += 1
            payload = json.dumps(encode_call(call), separators=(",", ":"), ensure_ascii=True).encode()
            lines.append(b"%d\t%08x\t%s\n" % (entry.seq, zlib.crc32(payload), payload))
            entries.append(entry)
        self._journal.write(b"".join(lines))
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._pending.extend(entries)
        return entries

    def ack(self, seq: int) -> None:
        """The database holds every entry up to `seq`."""
        if seq <= self._acked:
            return
        _write_atomically(self._acked_path, b"%d\n" % seq)
        self._acked = seq
        self._pending = [entry for entry in self._pending if entry.seq > seq]
        if not self._pending and self._journal.tell() >= COMPACT_BYTES:
            self._journal.truncate(0)
            self._journal.seek(0)
            os.fsync(self._journal.fileno())

    def reject(self, entry: SpoolEntry, reason: str) -> None:
        """Set aside a call the database refuses for good, so it cannot stall the calls behind it."""
        record = {"seq": entry.seq, "reason": reason, "call": encode_call(entry.call)}
        with open(self._dir / REJECTED, "ab") as rejected:
            rejected.write(json.dumps(record).encode() + b"\n")
            rejected.flush()
            os.fsync(rejected.fileno())
        log.error("call_rejected_by_database", seq=entry.seq, call_id=entry.call.pbx_call_id, reason=reason)

    def close(self) -> None:
        self._journal.close()

    def __enter__(self) -> CallSpool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _read_acked(self) -> int:
        try:
            return int(self._acked_path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.error("spool_ack_unreadable", path=str(self._acked_path))
            return 0

    def _load_journal(self) -> None:
        try:
            data = self._journal_path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.splitlines(keepends=True)
        offset = 0
        for index, line in enumerate(lines):
            entry = _parse_line(line)
            if entry is None:
                if index == len(lines) - 1:
                    # The write a crash interrupted: never fsync'd as a whole, never acknowledged.
                    log.warning("spool_torn_record_dropped", offset=offset, bytes=len(line))
                    with open(self._journal_path, "r+b") as journal:
                        journal.truncate(offset)
                        os.fsync(journal.fileno())
                else:
                    log.error("spool_record_unreadable", offset=offset, bytes=len(line))
                offset += len(line)
                continue
            offset += len(line)
            self._next_seq = max(self._next_seq, entry.seq + 1)
            if entry.seq > self._acked:
                self._pending.append(entry)
        if self._pending:
            log.info("spool_recovered", calls=len(self._pending))


def _parse_line(line: bytes) -> SpoolEntry | None:
    if not line.endswith(b"\n"):
        return None
    parts = line[:-1].split(b"\t", 2)
    if len(parts) != 3:
        return None
    seq_text, crc_text, payload = parts
    try:
        if int(crc_text, 16) != zlib.crc32(payload):
            return None
        return SpoolEntry(int(seq_text), decode_call(json.loads(payload)))
    except (ValueError, KeyError, TypeError):
        return None


def _write_atomically(path: Path, content: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(content)
    move_durably(tmp, path)
