"""Click-to-call requests and their status, as plain data and rules (no I/O).

Status follows the call's own events: queued -> ringing_manager -> ringing_customer -> answered, or failed
with a reason; once the call is over it settles, and carries the id of the call record it became.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from calltracking.calls.record import CallProgress, CallRecord, CallStatus, ProgressKind
from calltracking.errors import CalltrackingError


class OriginateStatus(StrEnum):
    QUEUED = "queued"
    RINGING_MANAGER = "ringing_manager"
    RINGING_CUSTOMER = "ringing_customer"
    ANSWERED = "answered"
    FAILED = "failed"


_ORDER = [OriginateStatus.QUEUED, OriginateStatus.RINGING_MANAGER, OriginateStatus.RINGING_CUSTOMER]
_FINAL = {OriginateStatus.ANSWERED, OriginateStatus.FAILED}


@dataclass(frozen=True, slots=True)
class OriginateState:
    request_id: str
    pbx: str
    extension: str
    number: str
    status: OriginateStatus
    reason: str | None
    call_id: int | None
    created_at: datetime
    updated_at: datetime


class PbxUnavailable(CalltrackingError):
    """The PBX cannot take the call now; the request is recorded as failed, nothing was dialled."""

    def __init__(self, state: OriginateState) -> None:
        super().__init__(f"PBX {state.pbx} is unreachable")
        self.state = state


class RequestConflict(CalltrackingError):
    """The request id is taken by a request for another extension or number."""


def advance(status: OriginateStatus, progress: CallProgress) -> tuple[OriginateStatus, str | None] | None:
    """The next status a live event leads to, or None when it changes nothing. Never goes backwards."""
    if status in _FINAL:
        return None
    target: OriginateStatus
    reason = None
    if progress.kind is ProgressKind.RINGING:
        target = OriginateStatus.RINGING_MANAGER
    elif progress.kind is ProgressKind.DIALING_CUSTOMER:
        target = OriginateStatus.RINGING_CUSTOMER
    elif progress.kind is ProgressKind.ANSWERED:
        return OriginateStatus.ANSWERED, None
    else:
        return OriginateStatus.FAILED, progress.reason or "originate_failed"
    if _ORDER.index(target) <= _ORDER.index(status):
        return None
    return target, reason


def settle(status: OriginateStatus, call: CallRecord) -> tuple[OriginateStatus, str | None]:
    """The final status once the call is over."""
    if call.status is CallStatus.ANSWERED:
        return OriginateStatus.ANSWERED, None
    if status is OriginateStatus.FAILED:
        return status, None
    reasons = {CallStatus.BUSY: "customer_busy", CallStatus.NO_ANSWER: "customer_no_answer"}
    return OriginateStatus.FAILED, reasons.get(call.status) or call.failure_reason or "failed"
