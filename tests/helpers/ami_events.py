"""A tiny script language for assembler scenarios the captures do not cover (transfers, reconnects)."""

from __future__ import annotations

from ami.events import (
    BridgeEntered,
    BridgeLeft,
    CallPickedUp,
    CallTransferred,
    ChannelCreated,
    ChannelHungUp,
    ChannelRef,
    ChannelSnapshot,
    ChannelStateChanged,
    DialBegan,
    DialEnded,
    HangupRequested,
    QueueCallerAbandoned,
    QueueCallerJoined,
    QueueCallerLeft,
)

RING = 4
RINGING = 5
UP = 6


def ref(uniqueid: str, channel: str, linkedid: str | None = None) -> ChannelRef:
    return ChannelRef(uniqueid=uniqueid, linkedid=linkedid or uniqueid, channel=channel)


def created(
    r: ChannelRef,
    at: float,
    context: str = "from-internal",
    exten: str = "s",
    caller: str = "",
    state: int = RING,
) -> ChannelCreated:
    return ChannelCreated(ref=r, context=context, exten=exten, caller_num=caller, state=state, at=at)


def state(r: ChannelRef, value: int, at: float) -> ChannelStateChanged:
    return ChannelStateChanged(ref=r, state=value, at=at)


def dial(caller: ChannelRef | None, dest: ChannelRef, at: float, dial_string: str = "") -> DialBegan:
    """DialBegin; a None caller is an Originate ringing its first leg."""
    return DialBegan(caller=caller, dest=dest, dial_string=dial_string, at=at)


def dial_end(
    caller: ChannelRef | None, dest: ChannelRef, status: str, at: float, forward: str = ""
) -> DialEnded:
    return DialEnded(caller=caller, dest=dest, dial_status=status, at=at, forward=forward)


def pickup(picker: ChannelRef, target: ChannelRef, at: float) -> CallPickedUp:
    return CallPickedUp(picker=picker, target=target, at=at)


def transfer(
    transferer: ChannelRef, transferee: ChannelRef | None, at: float, attended: bool = False
) -> CallTransferred:
    return CallTransferred(transferer=transferer, transferee=transferee, is_attended=attended, at=at)


def enter(r: ChannelRef, bridge: str, at: float) -> BridgeEntered:
    return BridgeEntered(ref=r, bridge_id=bridge, at=at)


def leave(r: ChannelRef, bridge: str, at: float) -> BridgeLeft:
    return BridgeLeft(ref=r, bridge_id=bridge, at=at)


def hangup_request(r: ChannelRef, at: float, soft: bool = False) -> HangupRequested:
    return HangupRequested(ref=r, cause=16, is_soft=soft, at=at)


def hangup(r: ChannelRef, at: float, cause: int = 16) -> ChannelHungUp:
    return ChannelHungUp(ref=r, cause=cause, at=at)


def queue_join(r: ChannelRef, queue: str, at: float) -> QueueCallerJoined:
    return QueueCallerJoined(ref=r, queue=queue, at=at)


def queue_leave(r: ChannelRef, queue: str, at: float) -> QueueCallerLeft:
    return QueueCallerLeft(ref=r, queue=queue, at=at)


def queue_abandon(r: ChannelRef, queue: str, at: float) -> QueueCallerAbandoned:
    return QueueCallerAbandoned(ref=r, queue=queue, at=at)


def snapshot(
    r: ChannelRef,
    at: float,
    state_value: int = UP,
    bridge: str = "",
    duration: float = 0.0,
    context: str = "from-internal",
    exten: str = "s",
    caller: str = "",
) -> ChannelSnapshot:
    return ChannelSnapshot(
        ref=r,
        context=context,
        exten=exten,
        caller_num=caller,
        state=state_value,
        bridge_id=bridge,
        duration_seconds=duration,
        at=at,
    )
