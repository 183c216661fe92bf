"""Factories for domain objects in tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from calltracking.calls.record import CallLeg, CallOrigin, CallRecord, CallStatus, Direction, LegKind

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def make_call(n: int = 1, **changes: Any) -> CallRecord:
    started = T0 + timedelta(minutes=n)
    call = CallRecord(
        pbx="office",
        pbx_call_id=f"1795349935.{n}",
        direction=Direction.INBOUND,
        status=CallStatus.ANSWERED,
        origin=CallOrigin.PBX,
        caller="+79161234567",
        callee="74951110001",
        did="74951110001",
        caller_number="+79161234567",
        callee_number="+74951110001",
        answered_by="101",
        manager="101",
        rang=("101",),
        started_at=started,
        answered_at=started + timedelta(seconds=2),
        ended_at=started + timedelta(seconds=8),
        ring_seconds=2.0,
        talk_seconds=6.0,
        legs=(
            CallLeg(
                f"1795349935.{n}",
                "PJSIP/provider-00000001",
                "provider",
                LegKind.TRUNK,
                started,
                started,
                None,
                16,
            ),
        ),
    )
    return replace(call, **changes)
