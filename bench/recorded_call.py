"""The call a recording benchmark stores with its recording: an answered inbound call recorded on the
carrier's channel (so rx is the customer), ended a minute ago, its file named by its absolute path on the
PBX as MIXMONITOR_FILENAME gives it. Shared by `recordings.py` and `transcription.py`."""

from __future__ import annotations

from datetime import datetime, timedelta

from calltracking.calls.record import CallLeg, CallOrigin, CallRecord, CallStatus, Direction, LegKind

MONITOR_DIR = "/var/spool/asterisk/monitor"
PBX_NAME = "bench"


def recorded_call(index: int, relative: str, seconds: float, now: datetime) -> CallRecord:
    """The call of the `index`th generated recording, `<monitor>/<relative>.wav`, `seconds` long."""
    linkedid = f"1795349935.{index}"
    trunk = f"PJSIP/provider-{index + 1:08x}"
    ended = now - timedelta(minutes=1)
    answered = ended - timedelta(seconds=seconds)
    started = answered - timedelta(seconds=2)
    caller = f"+7916{1000000 + index:07d}"
    return CallRecord(
        pbx=PBX_NAME,
        pbx_call_id=linkedid,
        direction=Direction.INBOUND,
        status=CallStatus.ANSWERED,
        origin=CallOrigin.PBX,
        caller=caller,
        callee="74951110001",
        did="74951110001",
        caller_number=caller,
        callee_number="+74951110001",
        answered_by="101",
        manager="101",
        rang=("101",),
        started_at=started,
        answered_at=answered,
        ended_at=ended,
        ring_seconds=2.0,
        talk_seconds=seconds,
        recording_file=f"{MONITOR_DIR}/{relative}.wav",
        recording_channel=trunk,
        legs=(CallLeg(linkedid, trunk, "provider", LegKind.TRUNK, started, answered, ended, 16),),
    )
