"""Checkpoints of the calls in flight, so a restart (even after SIGKILL) does not forget them.

The assembler's live state is written atomically (write, fsync, rename) at most every `interval` seconds
while it changes, and once more on a clean stop (the listener drives it: it holds a save back while a
call the assembler let go of is not yet journaled). A new process restores it before it connects; the
first CoreShowChannels then tells which of those calls still exist and closes the others as
reconciled. Blocking file I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import structlog

from ami.assembler import CallAssembler

log = structlog.get_logger(__name__)


class LiveCallCheckpoint:
    def __init__(self, path: Path, interval: float = 0.5) -> None:
        self.path = path
        self.interval = interval
        self._saved_version = -1

    def restore_into(self, assembler: CallAssembler) -> int:
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
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
        if version == self._saved_version:
            return
        state = assembler.export_state()
        try:
            await asyncio.to_thread(_write_atomically, self.path, state)
        except OSError as exc:
            log.error("live_calls_checkpoint_failed", path=str(self.path), error=str(exc))
            return
        self._saved_version = version


def _write_atomically(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, separators=(",", ":"))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
