from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from calltracking.calls.record import CallProgress, CallStatus, Direction, ProgressKind
from calltracking.clicktocall.request import OriginateStatus, advance, settle
from tests.helpers.factories import make_call

S = OriginateStatus


def progress(kind: ProgressKind, reason: str | None = None) -> CallProgress:
    return CallProgress(
        kind=kind,
        pbx="office",
        pbx_call_id="1.1",
        at=datetime(2026, 1, 1, tzinfo=UTC),
        direction=Direction.OUTBOUND,
        caller="101",
        callee="8916",
        request_id="r",
        reason=reason,
    )


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (S.QUEUED, ProgressKind.RINGING, (S.RINGING_MANAGER, None)),
        (S.QUEUED, ProgressKind.DIALING_CUSTOMER, (S.RINGING_CUSTOMER, None)),
        (S.RINGING_MANAGER, ProgressKind.DIALING_CUSTOMER, (S.RINGING_CUSTOMER, None)),
        (S.RINGING_CUSTOMER, ProgressKind.RINGING, None),
        (S.RINGING_CUSTOMER, ProgressKind.ANSWERED, (S.ANSWERED, None)),
        (S.RINGING_MANAGER, ProgressKind.ORIGINATE_FAILED, (S.FAILED, "manager_no_answer")),
        (S.ANSWERED, ProgressKind.RINGING, None),
        (S.FAILED, ProgressKind.ANSWERED, None),
    ],
)
def test_status_only_moves_forward(
    status: OriginateStatus, kind: ProgressKind, expected: tuple[OriginateStatus, str | None] | None
) -> None:
    assert advance(status, progress(kind, reason="manager_no_answer")) == expected


@pytest.mark.parametrize(
    ("call_status", "failure", "expected"),
    [
        (CallStatus.ANSWERED, None, (S.ANSWERED, None)),
        (CallStatus.BUSY, "busy", (S.FAILED, "customer_busy")),
        (CallStatus.NO_ANSWER, "no_answer", (S.FAILED, "customer_no_answer")),
        (CallStatus.FAILED, "congestion", (S.FAILED, "congestion")),
    ],
)
def test_the_call_record_settles_the_request(
    call_status: CallStatus, failure: str | None, expected: tuple[OriginateStatus, str | None]
) -> None:
    call = replace(make_call(1), status=call_status, failure_reason=failure)
    assert settle(S.RINGING_CUSTOMER, call) == expected
