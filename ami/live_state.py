"""Checkpoints of the calls in flight, so a restart (even after SIGKILL) does not forget them.

The file is an append-only journal, so that a save costs in proportion to what changed, not to every call
in flight. It starts with a base (a header line, then one `S` line per live call), written atomically
(write, fsync, rename); each save then appends what changed since the previous one, as one write and one
fsync: `S` lines for calls that changed (the line holds the call's whole state), `D` lines for calls no
longer live (completed and journaled, or merged into another call), and a `T` line with the PBX's clock.
Once the appended records outgrow the base (and a floor), the file is compacted into a new base from its
own lines (the last `S` per call, none for a dropped call), without serializing a call again.

    LIVECALLS 2
    S\t"1795349935.0"\t{...the call's state as JSON...}
    D\t"1795349936.4"
    T\t1795349940.123

A kill in the middle of an append leaves a last line without its newline: restoring ignores it, and keeps
every record before it. A file in the earlier format (one JSON document `{"calls": [...], ...}`) still
restores; the first save after it writes a base in this format.

Saves happen at most every `interval` seconds while the calls change, and once more on a clean stop (the
listener drives them: it holds a save back while a call the assembler let go of is not yet journaled, and
the held changes, that call's drop included, stay with the assembler until a later save takes them). A new
process restores the file before it connects; the first CoreShowChannels then tells which of those calls
still exist and closes the others as reconciled. Blocking file I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import structlog

from ami.assembler import CallAssembler, LiveChanges

log = structlog.get_logger(__name__)

HEADER = b"LIVECALLS 2\n"
SET = b"S"
DROP = b"D"
CLOCK = b"T"
SEPARATOR = b"\t"
# Appended records may grow to the base's size, and at least this, before the file is compacted.
COMPACT_FLOOR_BYTES = 1_000_000


class LiveCallCheckpoint:
    def __init__(self, path: Path, interval: float = 0.5, compact_floor: int = COMPACT_FLOOR_BYTES) -> None:
        self.path = path
        self.interval = interval
        self.compact_floor = compact_floor
        self._saved_version = -1
        # Records taken from the assembler and not yet on disk (a failed write keeps them for the next
        # save): the key (JSON) -> its `S` line, or None for a drop.
        self._pending: dict[bytes, bytes | None] = {}
        self._last_event_at = 0.0
        # Whether the file is a base this process wrote (then saves append to it), its size then, and now.
        self._has_base = False
        self._base_bytes = 0
        self._file_bytes = 0
        self._writing: asyncio.Task[None] | None = None
        self.bytes_written = 0

    def restore_into(self, assembler: CallAssembler) -> int:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            log.error("live_calls_checkpoint_unreadable", path=str(self.path), error=str(exc))
            return 0
        try:
            state = read_state(data)
        except ValueError as exc:
            log.error("live_calls_checkpoint_unreadable", path=str(self.path), error=str(exc))
            return 0
        try:
            restored = assembler.restore_state(state)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("live_calls_checkpoint_invalid", path=str(self.path), error=str(exc))
            return 0
        self._saved_version = assembler.version
        if restored:
            log.info("live_calls_restored", calls=restored, path=str(self.path))
        return restored

    async def save(self, assembler: CallAssembler) -> None:
        version = assembler.version
        if version == self._saved_version and not self._pending and self._writing is None:
            return
        # Taken first, before any await: the listener checked just now that every completed call is
        # journaled, so the drops in this take may be written.
        changes = assembler.take_changes(everything=not self._has_base)
        if self._writing is not None:
            # A save cancelled mid-write (a stop) left its write running: it must land before this one.
            await asyncio.shield(self._writing)
            if not self._has_base and not changes.is_everything:
                changes = assembler.take_changes(everything=True)
        self._take(changes)
        self._writing = asyncio.get_running_loop().create_task(asyncio.to_thread(self._write_pending))
        await asyncio.shield(self._writing)
        self._writing = None
        if not self._pending:
            self._saved_version = version

    def _take(self, changes: LiveChanges) -> None:
        if changes.is_everything:
            self._pending = {}
        for key in changes.dropped:
            self._pending[_key(key)] = None
        for key, state in changes.calls.items():
            encoded = _key(key)
            self._pending[encoded] = SET + SEPARATOR + encoded + SEPARATOR + orjson.dumps(state) + b"\n"
        self._last_event_at = changes.last_event_at

    def _write_pending(self) -> None:
        """In a worker thread, one at a time: append the pending records, or write a new base."""
        records = b"".join(
            line if line is not None else DROP + SEPARATOR + key + b"\n"
            for key, line in self._pending.items()
        )
        records += CLOCK + SEPARATOR + repr(self._last_event_at).encode() + b"\n"
        try:
            if not self._has_base:
                self._write_base(self._pending, fold_file=False)
            elif self._file_bytes - self._base_bytes + len(records) > max(
                self._base_bytes, self.compact_floor
            ):
                self._compact()
            else:
                self._append(records)
        except OSError as exc:
            log.error("live_calls_checkpoint_failed", path=str(self.path), error=str(exc))
            return
        self._pending = {}

    def _compact(self) -> None:
        try:
            self._write_base(self._pending, fold_file=True)
        except (OSError, ValueError) as exc:
            # The file may not be what this process wrote: the next save writes every live call afresh.
            self._has_base = False
            raise OSError(f"compacting {self.path}: {exc}") from exc

    def _append(self, records: bytes) -> None:
        try:
            with open(self.path, "ab") as handle:
                handle.write(records)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            # A partial line would run into the next record: cut the file back to its last whole record,
            # or, when even that fails, write the next save as a whole new base.
            try:
                os.truncate(self.path, self._file_bytes)
            except OSError:
                self._has_base = False
            raise
        self._file_bytes += len(records)
        self.bytes_written += len(records)

    def _write_base(self, pending: dict[bytes, bytes | None], fold_file: bool) -> None:
        """A new base, atomically: the file's own records folded (last line per call, none for a dropped
        call) with the pending ones, or the pending ones alone when they are every live call."""
        calls: dict[bytes, bytes] = {}
        if fold_file:
            calls = _fold(self.path)[0]
        for key, line in pending.items():
            if line is None:
                calls.pop(key, None)
            else:
                calls[key] = line
        clock = CLOCK + SEPARATOR + repr(self._last_event_at).encode() + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        size = len(HEADER) + len(clock)
        with open(tmp, "wb") as handle:
            handle.write(HEADER)
            for line in calls.values():
                handle.write(line)
                size += len(line)
            handle.write(clock)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        with contextlib.suppress(OSError):
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        self._has_base = True
        self._base_bytes = self._file_bytes = size
        self.bytes_written += size


def read_state(data: bytes) -> dict[str, Any]:
    """The live state a checkpoint file holds, in `CallAssembler.restore_state`'s shape. Raises ValueError
    for a file that is neither format."""
    if not data.startswith(HEADER):
        state = orjson.loads(data)  # the earlier format: one JSON document
        if not isinstance(state, dict):
            raise ValueError("live calls checkpoint is not a JSON object")
        return state
    calls, last_event_at = _fold_lines(data.splitlines(keepends=True)[1:])
    return {
        "calls": [orjson.loads(line.split(SEPARATOR, 2)[2]) for line in calls.values()],
        "last_event_at": last_event_at,
    }


def _fold(path: Path) -> tuple[dict[bytes, bytes], float]:
    with open(path, "rb") as handle:
        if handle.readline() != HEADER:
            raise OSError(f"{path} lost its header")
        return _fold_lines(handle)


def _fold_lines(lines: Iterable[bytes]) -> tuple[dict[bytes, bytes], float]:
    """The last `S` line of each call still live, and the last clock, from journal lines. A line without
    its newline (a torn append, the last one) is ignored."""
    calls: dict[bytes, bytes] = {}
    last_event_at = 0.0
    for line in lines:
        if not line.endswith(b"\n"):
            break
        kind, _, rest = line.partition(SEPARATOR)
        if kind == SET:
            calls[rest.partition(SEPARATOR)[0]] = line
        elif kind == DROP:
            calls.pop(rest[:-1], None)
        elif kind == CLOCK:
            last_event_at = float(rest)
    return calls, last_event_at


def _key(key: str) -> bytes:
    return orjson.dumps(key)
