"""A durable local journal of completed calls: the point after which a call survives anything.

A completed call is appended to `journal.log` the moment it completes, by the thread that completed it
(the event loop), with one `write()` to the journal it holds open: from then on the call is in the
kernel's hands and survives a kill of the process. `sync` (fsync) makes what was appended survive a power
loss too; the call log runs it from a worker thread as a group commit, once for everything appended since
the last one, before the database is tried. Once the database has committed a prefix of the journal, its
last sequence number is written to `acked` (write, fsync, rename). On start the records after `acked` are
the calls still owed to the database. A kill mid-append leaves a torn last line; its checksum fails and
it is dropped: the append never returned, so nothing that was promised is lost.

`append` may run in the event loop while `sync`, `ack` and `reject` run in a worker thread: the journal's
tail (sequence numbers, size, the entries not yet acknowledged) is guarded by one lock, held for no file
I/O but the append's own `write()`, the compaction's truncate and the close, so that a truncate never
drops a record appended after the check that everything was acknowledged.
"""

from __future__ import annotations

import json
import os
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import orjson
import structlog

from calltracking.calls.encoding import decode_call, encode_call
from calltracking.calls.record import CallRecord
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
        self._lock = threading.Lock()
        self._acked = self._read_acked()
        self._pending: deque[SpoolEntry] = deque()
        self._next_seq = self._acked + 1
        self._load_journal()
        self._synced_seq = self._next_seq - 1
        self._fd = os.open(self._journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._size = os.fstat(self._fd).st_size

    @property
    def pending(self) -> list[SpoolEntry]:
        """Entries in the journal and not yet acknowledged by the database, oldest first."""
        with self._lock:
            return list(self._pending)

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def is_synced(self) -> bool:
        """Everything appended is also fsync'd (survives a power loss, not only a kill)."""
        return self._synced_seq == self._next_seq - 1

    def oldest(self, limit: int) -> list[SpoolEntry]:
        """The next entries owed to the database, oldest first."""
        with self._lock:
            return list(islice(self._pending, limit))

    def append(self, call: CallRecord) -> SpoolEntry:
        """Journal one completed call now, with one unbuffered `write()`: when this returns, a kill of the
        process cannot lose it. Raises OSError if it could not be written (nothing of it is left behind)."""
        # orjson: this runs in the event loop for every completed call, and it is several times faster.
        payload = orjson.dumps(encode_call(call))
        checksum = zlib.crc32(payload)
        with self._lock:
            entry = SpoolEntry(self._next_seq, call)
            line = b"%d\t%08x\t%s\n" % (entry.seq, checksum, payload)
            self._write_line(line)
            self._next_seq += 1
            self._size += len(line)
            self._pending.append(entry)
        return entry

    def sync(self) -> None:
        """fsync what was appended so far (a group commit: one flush for every call since the last)."""
        with self._lock:
            appended = self._next_seq - 1
        os.fsync(self._fd)
        with self._lock:
            self._synced_seq = max(self._synced_seq, appended)

    def ack(self, seq: int) -> None:
        """The database holds every entry up to `seq`."""
        if seq <= self._acked:
            return
        _write_atomically(self._acked_path, b"%d\n" % seq)
        with self._lock:
            self._acked = seq
            while self._pending and self._pending[0].seq <= seq:
                self._pending.popleft()
            # Under the lock, so no append can fall between "all acknowledged" and the truncate.
            compact = not self._pending and self._size >= COMPACT_BYTES
            if compact:
                os.ftruncate(self._fd, 0)
                self._size = 0
        if compact:
            os.fsync(self._fd)

    def reject(self, entry: SpoolEntry, reason: str) -> None:
        """Set aside a call the database refuses for good, so it cannot stall the calls behind it."""
        record = {"seq": entry.seq, "reason": reason, "call": encode_call(entry.call)}
        with open(self._dir / REJECTED, "ab") as rejected:
            rejected.write(json.dumps(record).encode() + b"\n")
            rejected.flush()
            os.fsync(rejected.fileno())
        log.error("call_rejected_by_database", seq=entry.seq, call_id=entry.call.pbx_call_id, reason=reason)

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> CallSpool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _write_line(self, line: bytes) -> None:
        """All of `line` after the journal's end, or none of it: a half-written line would swallow the next
        record's line when the journal is read back."""
        written = 0
        try:
            while written < len(line):
                written += os.write(self._fd, line[written:])
        except OSError:
            if written:
                os.ftruncate(self._fd, self._size)
            raise

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
                    # The append a kill interrupted: it never returned, so its call was never promised.
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
