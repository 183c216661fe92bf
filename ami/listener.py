"""The glue for one PBX: AMI connection -> call assembler -> call sink. The only place they meet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import structlog

from ami.assembler import CallAssembler
from ami.connection import AmiConnection
from ami.events import AmiEvent
from calltracking.calls import CallRecord
from calltracking.logs import bind_call
from calltracking.settings import PbxSettings

log = structlog.get_logger(__name__)


class CallSink(Protocol):
    def submit(self, call: CallRecord) -> None: ...


class PbxListener:
    def __init__(
        self, pbx: PbxSettings, sink: CallSink, event_observer: Callable[[AmiEvent], None] | None = None
    ) -> None:
        self.pbx = pbx
        self._sink = sink
        self._observer = event_observer
        self.assembler = CallAssembler(pbx)
        self.connection = AmiConnection(
            pbx, on_event=self._on_event, on_session=self._on_session, on_lost=self._on_lost
        )
        self.calls_completed = 0

    def start(self) -> None:
        self.connection.start()

    async def close(self) -> None:
        await self.connection.close()

    def finish(self) -> None:
        """No more events will come (end of a capture): close what is open from what is known."""
        self._emit(self.assembler.close_all())

    def _on_event(self, event: AmiEvent) -> None:
        if self._observer is not None:
            self._observer(event)
        self._emit(self.assembler.feed(event))

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
