"""The glue for one PBX: AMI connection -> call assembler -> call sink. The only place they meet."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import structlog

from ami.assembler import CallAssembler
from ami.connection import AmiConnection
from ami.events import AmiEvent
from ami.live_state import LiveCallCheckpoint
from calltracking.calls.record import CallProgress, CallRecord
from calltracking.config import PbxSettings
from calltracking.errors import CallNotJournaled
from calltracking.logs import bind_call

log = structlog.get_logger(__name__)


class CallSink(Protocol):
    def submit(self, call: CallRecord) -> None:
        """Take a completed call; when this returns the call must survive a kill of the process. Raises
        CallNotJournaled when it cannot take it now (the listener keeps the call and tries again)."""


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
        # Completed calls the sink could not take yet (their journal write failed), oldest first.
        self._owed: deque[CallRecord] = deque()
        self.calls_completed = 0

    def start(self) -> None:
        """Pick up the calls a previous process left in flight, then connect."""
        if self._checkpoint is not None:
            self._checkpoint.restore_into(self.assembler)
            self._checkpointing = asyncio.get_running_loop().create_task(
                self._keep_checkpoint(self._checkpoint)
            )
        self.connection.start()

    async def close(self) -> None:
        await self.connection.close()
        if self._checkpointing is not None:
            self._checkpointing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpointing
        if self._checkpoint is not None:
            await self._save_checkpoint(self._checkpoint)

    def finish(self) -> None:
        """No more events will come (end of a capture): close what is open from what is known."""
        self._emit(self.assembler.close_all())
        self._pay_owed()

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
        """Hand completed calls to the sink, which journals them, before the next event is handled (and
        first any the sink refused before); only then log them, so that, unless `call_not_journaled` was
        logged, a `call_completed` line means the call survives a kill."""
        if not calls:
            return
        self._owed.extend(calls)
        self._pay_owed()
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

    def _pay_owed(self) -> None:
        """Submit the owed calls, oldest first, until the sink refuses one. Tried again with each completed
        call and each checkpoint tick."""
        while self._owed:
            call = self._owed[0]
            try:
                self._sink.submit(call)
            except CallNotJournaled as exc:
                log.error("call_not_journaled", pbx=self.pbx.name, owed_calls=len(self._owed), error=str(exc))
                return
            self._owed.popleft()

    async def _keep_checkpoint(self, checkpoint: LiveCallCheckpoint) -> None:
        """Run for the life of the listener: save the live calls whenever they changed."""
        while True:
            await asyncio.sleep(checkpoint.interval)
            await self._save_checkpoint(checkpoint)

    async def _save_checkpoint(self, checkpoint: LiveCallCheckpoint) -> None:
        """Save the live calls, unless a completed call is not journaled yet: the assembler has let it go,
        so a new checkpoint would hold it nowhere; the previous one is kept until the journal takes it."""
        self._pay_owed()
        if self._owed:
            log.error("live_calls_checkpoint_held", pbx=self.pbx.name, owed_calls=len(self._owed))
            return
        await checkpoint.save(self.assembler)
