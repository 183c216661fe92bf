"""The glue for one PBX: AMI connection -> call assembler -> call sink. The only place they meet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from ami.assembler import CallAssembler
from ami.connection import AmiConnection
from ami.events import AmiEvent
from ami.live_state import LiveCallCheckpoint
from calltracking.calls import CallProgress, CallRecord
from calltracking.logs import bind_call
from calltracking.settings import PbxSettings

log = structlog.get_logger(__name__)


class CallSink(Protocol):
    def submit(self, call: CallRecord) -> None: ...


class PbxListener:
    def __init__(
        self,
        pbx: PbxSettings,
        sink: CallSink,
        event_observer: Callable[[AmiEvent], None] | None = None,
        checkpoint_path: Path | None = None,
        progress_sink: Callable[[CallProgress], None] | None = None,
    ) -> None:
        self.pbx = pbx
        self._sink = sink
        self._observer = event_observer
        self._progress_sink = progress_sink
        self.assembler = CallAssembler(pbx)
        self.connection = AmiConnection(
            pbx, on_event=self._on_event, on_session=self._on_session, on_lost=self._on_lost
        )
        self._checkpoint = LiveCallCheckpoint(checkpoint_path) if checkpoint_path is not None else None
        self._checkpointing: asyncio.Task[None] | None = None
        self.calls_completed = 0

    def start(self) -> None:
        """Pick up the calls a previous process left in flight, then connect."""
        if self._checkpoint is not None:
            self._checkpoint.restore_into(self.assembler)
            self._checkpointing = asyncio.get_running_loop().create_task(
                self._checkpoint.keep_saved(self.assembler)
            )
        self.connection.start()

    async def close(self) -> None:
        await self.connection.close()
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointing
        if self._checkpoint is not None:
            await self._checkpoint.save(self.assembler)

    def finish(self) -> None:
        """No more events will come (end of a capture): close what is open from what is known."""
        self._emit(self.assembler.close_all())

    def _on_event(self, event: AmiEvent) -> None:
        if self._observer is not None:
            self._observer(event)
        self._emit(self.assembler.feed(event))
        progress = self.assembler.drain_progress()
        if progress and self._progress_sink is not None:
            for item in progress:
                self._progress_sink(item)

    async def _on_session(self) -> None:
        snapshot, taken_at = await self.connection.list_channels()
        log.info(
            "ami_channels_listed",
            pbx=self.pbx.name,
            channels=len(snapshot),
            live_calls=self.assembler.live_calls,
        )
        self._emit(self.assembler.reconcile(snapshot, taken_at))

    def _on_lost(self) -> None:
        self.assembler.mark_stale()

    def _emit(self, calls: list[CallRecord]) -> None:
        for call in calls:
            self.calls_completed += 1
            with bind_call(call.pbx, call.pbx_call_id):
                log.info(
                    "call_completed",
                    direction=call.direction.value,
                    status=call.status.value,
                    talk_seconds=call.talk_seconds,
                    reconciled=call.reconciled,
                )
            self._sink.submit(call)
