"""Click-to-call, end to end: the CRM asks, the PBX rings the manager, then the customer.

A request is written (unique request id and idempotency key) before anything is dialled, so a retried or
concurrent duplicate finds the first one and gets its answer instead of a second call. Its status then
follows the call's progress events, and the call record once it is written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ami.connection import AmiActionFailed, AmiConnection, AmiUnavailable
from ami.originate import OriginateOrder, originate
from calltracking.calls.record import CallCompleted, CallProgress, LiveEvent, ProgressKind
from calltracking.calls.repository import get_call
from calltracking.clicktocall import repository as originates
from calltracking.clicktocall.request import (
    OriginateState,
    OriginateStatus,
    PbxUnavailable,
    RequestConflict,
    advance,
    settle,
)
from calltracking.config import PbxSettings

log = structlog.get_logger(__name__)
# Enough for every click-to-call of a busy day; older ids are read again if their calls still speak.
FINISHED_REQUESTS_KEPT = 10_000


class ClickToCallService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pbxs: Sequence[PbxSettings],
        connections: Mapping[str, AmiConnection],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessions = sessions
        self._pbxs = {pbx.name: pbx for pbx in pbxs}
        self._default_pbx = pbxs[0].name
        self._connections = connections
        self._clock = clock
        self._observers: list[Callable[[OriginateState], None]] = []
        # Request ids the call events carry that need no more reads: no such request (another system's
        # CRM_REQUEST_ID, or a request made by no instance: a request is written before it is dialled, so
        # one never appears after its call's first event), or a request already settled by its call.
        self._finished: OrderedDict[str, None] = OrderedDict()

    def add_observer(self, observer: Callable[[OriginateState], None]) -> None:
        """Told every status a request takes, in order (after it is stored)."""
        self._observers.append(observer)

    def has_pbx(self, name: str) -> bool:
        return name in self._pbxs

    async def place(
        self, order: OriginateOrder, pbx: str | None, idempotency_key: str | None, token_id: int | None
    ) -> tuple[OriginateState, bool]:
        """Record the request, then dial. Returns the state and whether this call dialled (False: an
        earlier identical request already did, and this is its answer)."""
        pbx_name = pbx or self._default_pbx
        existing = await self._existing(order.request_id, idempotency_key, token_id)
        if existing is not None:
            return self._same_request(existing, order), False
        now = self._clock()
        try:
            async with self._sessions.begin() as session:
                await originates.add_request(
                    session, order, pbx_name, idempotency_key, token_id, OriginateStatus.QUEUED.value, now
                )
                queued = await originates.get_request(session, order.request_id)
        except IntegrityError:
            # A concurrent twin got there first: its answer is ours.
            raced = await self._existing(order.request_id, idempotency_key, token_id)
            if raced is None:
                raise
            return self._same_request(raced, order), False
        if queued is not None:
            self._notify(queued)
        connection = self._connections.get(pbx_name)
        if connection is None or not connection.is_ready:
            raise PbxUnavailable(
                await self._must_set(order.request_id, OriginateStatus.FAILED, "pbx_unreachable")
            )
        try:
            await originate(connection, order, self._pbxs[pbx_name].click_to_call)
        except AmiUnavailable:
            # The link dropped before the PBX answered: it may or may not dial. Never retried; the call's
            # own events (if it happens) move the status on from here.
            log.warning("originate_unconfirmed", request_id=order.request_id, pbx=pbx_name)
            return await self._must_set(order.request_id, OriginateStatus.FAILED, "pbx_connection_lost"), True
        except AmiActionFailed as exc:
            log.warning("originate_refused", request_id=order.request_id, pbx=pbx_name, message=str(exc))
            return await self._must_set(order.request_id, OriginateStatus.FAILED, "pbx_refused"), True
        log.info("originate_sent", request_id=order.request_id, pbx=pbx_name, extension=order.extension)
        sent = await self.status(order.request_id)
        if sent is None:
            raise RuntimeError(f"originate request {order.request_id} vanished")
        return sent, True

    async def status(self, request_id: str) -> OriginateState | None:
        async with self._sessions() as session:
            state = await originates.get_request(session, request_id)
            if state is None or state.call_id is not None:
                return state
            # The call may already be written while its settlement is on its way through the hub (or
            # was lost in a crash in between): show the settled request without writing it here.
            call_id = await originates.call_id_for(session, request_id)
            stored = await get_call(session, call_id) if call_id is not None else None
        if stored is None:
            return state
        status, reason = settle(state.status, stored.call)
        return replace(state, status=status, reason=reason or state.reason, call_id=stored.id)

    async def on_event(self, event: LiveEvent) -> None:
        """Hub handler: progress moves a request on; a written call settles it. The hub delivers both in
        the order they happened, so a late progress event can never undo the settlement."""
        if isinstance(event, CallCompleted):
            await self.settle_call(event)
        elif event.request_id is not None:
            await self._advance(event)

    async def _advance(self, progress: CallProgress) -> None:
        if progress.request_id is None or progress.request_id in self._finished:
            return
        for _ in range(3):
            async with self._sessions() as session:
                state = await originates.get_request(session, progress.request_id)
            if state is None:
                self._finish(progress.request_id)
                return
            step = advance(state.status, progress)
            unconfirmed = state.status is OriginateStatus.FAILED and state.reason == "pbx_connection_lost"
            if (
                step is None
                and unconfirmed
                and state.call_id is None
                and progress.kind is not ProgressKind.ORIGINATE_FAILED
            ):
                # An Originate whose link dropped before the PBX answered, that the PBX placed after all.
                step = advance(OriginateStatus.QUEUED, progress)
            if step is None:
                return
            if await self._set(progress.request_id, *step, expected=state.status):
                return

    async def settle_call(self, completed: CallCompleted) -> None:
        request_id = completed.call.request_id
        if request_id is None or request_id in self._finished:
            return
        for _ in range(3):
            async with self._sessions() as session:
                state = await originates.get_request(session, request_id)
            if state is None or state.call_id is not None:
                self._finish(request_id)
                return
            status, reason = settle(state.status, completed.call)
            if await self._set(
                request_id, status, reason or state.reason, expected=state.status, call_id=completed.call_id
            ):
                self._finish(request_id)
                return

    def _finish(self, request_id: str) -> None:
        self._finished[request_id] = None
        self._finished.move_to_end(request_id)
        while len(self._finished) > FINISHED_REQUESTS_KEPT:
            self._finished.popitem(last=False)

    async def _existing(
        self, request_id: str, idempotency_key: str | None, token_id: int | None
    ) -> OriginateState | None:
        async with self._sessions() as session:
            return await originates.find_request(session, request_id, idempotency_key, token_id)

    @staticmethod
    def _same_request(existing: OriginateState, order: OriginateOrder) -> OriginateState:
        if (existing.extension, existing.number) != (order.extension, order.number):
            raise RequestConflict(f"request {existing.request_id} was made for another extension or number")
        return existing

    async def _set(
        self,
        request_id: str,
        status: OriginateStatus,
        reason: str | None,
        expected: OriginateStatus | None = None,
        call_id: int | None = None,
    ) -> OriginateState | None:
        async with self._sessions.begin() as session:
            changed = await originates.set_status(
                session,
                request_id,
                status.value,
                reason,
                self._clock(),
                call_id=call_id,
                expected_status=expected.value if expected is not None else None,
            )
            state = await originates.get_request(session, request_id) if changed else None
        if state is not None:
            self._notify(state)
        return state

    async def _must_set(self, request_id: str, status: OriginateStatus, reason: str) -> OriginateState:
        """Mark the request failed unless its call's own events already moved it on."""
        await self._set(request_id, status, reason, expected=OriginateStatus.QUEUED)
        state = await self.status(request_id)
        if state is None:
            raise RuntimeError(f"originate request {request_id} vanished")
        return state

    def _notify(self, state: OriginateState) -> None:
        for observer in self._observers:
            observer(state)
