"""AMI messages in, typed facts out.

Only the events the call assembler needs become dataclasses; everything else (RTCP reports, device
states, most VarSets) returns None here, cheaply, because a busy PBX sends dozens of those per call.
A known event with a missing or malformed field raises `MalformedEvent`: the dispatcher logs and skips it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from calltracking.errors import CalltrackingError

UNKNOWN = "<unknown>"

# Variables worth a typed event; every other VarSet is dropped on the spot.
CLICK_TO_CALL_VARIABLE = "CRM_REQUEST_ID"
RECORDING_VARIABLES = frozenset({"MIXMONITOR_FILENAME", "CDR(recordingfile)", "CALLFILENAME"})
DID_VARIABLES = frozenset({"FROM_DID", "__FROM_DID", "TRACKING_DID", "__TRACKING_DID"})
TRACKED_VARIABLES = frozenset({CLICK_TO_CALL_VARIABLE, *RECORDING_VARIABLES, *DID_VARIABLES})


class MalformedEvent(CalltrackingError):
    """A known AMI event lacks a field it always carries; the frame is skipped, never half-applied."""


@dataclass(frozen=True, slots=True)
class ChannelRef:
    """The identity fields every channel event carries."""

    uniqueid: str
    linkedid: str
    channel: str


@dataclass(frozen=True, slots=True)
class ChannelCreated:
    ref: ChannelRef
    context: str
    exten: str
    caller_num: str
    state: int
    at: float


@dataclass(frozen=True, slots=True)
class ChannelStateChanged:
    ref: ChannelRef
    state: int
    at: float


@dataclass(frozen=True, slots=True)
class DialplanEntered:
    """Newexten: the channel runs a dialplan step; the exten it is on tells what was dialed."""

    ref: ChannelRef
    context: str
    exten: str
    application: str
    app_data: str
    at: float


@dataclass(frozen=True, slots=True)
class VariableSet:
    ref: ChannelRef
    variable: str
    value: str
    at: float


@dataclass(frozen=True, slots=True)
class DialBegan:
    caller: ChannelRef | None
    dest: ChannelRef
    dial_string: str
    at: float


@dataclass(frozen=True, slots=True)
class DialEnded:
    """`forward` is set when the dialed phone redirected the call (SIP 302, call forward): the caller then
    dials that target next on the phone's behalf."""

    caller: ChannelRef | None
    dest: ChannelRef
    dial_status: str
    at: float
    forward: str = ""


@dataclass(frozen=True, slots=True)
class BridgeEntered:
    ref: ChannelRef
    bridge_id: str
    at: float


@dataclass(frozen=True, slots=True)
class BridgeLeft:
    ref: ChannelRef
    bridge_id: str
    at: float


@dataclass(frozen=True, slots=True)
class HangupRequested:
    """HangupRequest (the far end or a phone asked) or SoftHangupRequest (the PBX decided)."""

    ref: ChannelRef
    cause: int | None
    is_soft: bool
    at: float


@dataclass(frozen=True, slots=True)
class ChannelHungUp:
    ref: ChannelRef
    cause: int | None
    at: float


@dataclass(frozen=True, slots=True)
class QueueCallerJoined:
    ref: ChannelRef
    queue: str
    at: float


@dataclass(frozen=True, slots=True)
class QueueCallerAbandoned:
    ref: ChannelRef
    queue: str
    at: float


@dataclass(frozen=True, slots=True)
class QueueCallerLeft:
    """QueueCallerLeave: the caller is out of the queue, connected to an agent, abandoned or timed out."""

    ref: ChannelRef
    queue: str
    at: float


@dataclass(frozen=True, slots=True)
class CallPickedUp:
    """Pickup: `picker` took the call ringing on `target` (directed `**ext`, group `*8`, SIP pickup).

    The picker's channel starts as a call of its own; from here it belongs to the target's call."""

    picker: ChannelRef
    target: ChannelRef
    at: float


@dataclass(frozen=True, slots=True)
class CallTransferred:
    """BlindTransfer or AttendedTransfer that succeeded: `transferer` handed `transferee` on and left.

    `transferee` is None where the PBX does not name it (Asterisk before 13.?): the transferer's bridge
    partner is meant then."""

    transferer: ChannelRef
    transferee: ChannelRef | None
    is_attended: bool
    at: float


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    ref: ChannelRef
    at: float


@dataclass(frozen=True, slots=True)
class OriginateResponded:
    """The outcome of an Async Originate. Uniqueid is `<unknown>` when the first leg never answered."""

    action_id: str
    uniqueid: str | None
    channel: str
    exten: str
    reason: int | None
    is_success: bool
    at: float


@dataclass(frozen=True, slots=True)
class ChannelSnapshot:
    """One line of a CoreShowChannels listing, used to rebuild calls after a reconnect."""

    ref: ChannelRef
    context: str
    exten: str
    caller_num: str
    state: int
    bridge_id: str
    duration_seconds: float
    at: float


@dataclass(frozen=True, slots=True)
class FullyBooted:
    at: float


AmiEvent = (
    ChannelCreated
    | ChannelStateChanged
    | DialplanEntered
    | VariableSet
    | DialBegan
    | DialEnded
    | BridgeEntered
    | BridgeLeft
    | HangupRequested
    | ChannelHungUp
    | QueueCallerJoined
    | QueueCallerAbandoned
    | QueueCallerLeft
    | CallPickedUp
    | CallTransferred
    | RecordingStarted
    | OriginateResponded
    | ChannelSnapshot
    | FullyBooted
)

Fields = Mapping[str, object]


def parse_event(fields: Fields, at: float) -> AmiEvent | None:
    """Turn one AMI event (case-insensitive mapping, as panoramisk gives it) into a typed fact.

    `at` is the event's own Timestamp, already read by the caller (see `event_time`).
    """
    name = _text(fields, "Event")
    parser = _PARSERS.get(name)
    if parser is None:
        return None
    return parser(fields, at)


def event_time(fields: Fields) -> float | None:
    """The event's Timestamp (epoch seconds, UTC), or None when the PBX does not send one."""
    raw = fields.get("Timestamp")
    if not isinstance(raw, str):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value == value and 0 < value < 1e11 else None


def channel_endpoint(channel: str) -> tuple[str, str]:
    """Technology and endpoint of a channel name: `PJSIP/101-0000001a` -> ("PJSIP", "101");
    `Local/102@from-queue-00000001;2` -> ("Local", "102@from-queue")."""
    tech, _, rest = channel.partition("/")
    if not rest:
        return tech, ""
    if tech.lower() == "local":
        rest = rest.split(";", 1)[0]
    resource, dash, suffix = rest.rpartition("-")
    if dash and suffix and all(c in "0123456789abcdefABCDEF" for c in suffix):
        return tech, resource
    return tech, rest


def _text(fields: Fields, key: str) -> str:
    value = fields.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return ""


def _required(fields: Fields, key: str) -> str:
    value = _text(fields, key)
    if not value:
        raise MalformedEvent(f"{_text(fields, 'Event') or 'event'} without {key}")
    return value


def _int_or_none(fields: Fields, key: str) -> int | None:
    value = _text(fields, key).strip()
    if value.lstrip("-").isdigit() and len(value) < 12:
        return int(value)
    return None


def _ref(fields: Fields, prefix: str = "") -> ChannelRef:
    uniqueid = _required(fields, prefix + "Uniqueid")
    linkedid = _text(fields, prefix + "Linkedid") or uniqueid
    return ChannelRef(uniqueid=uniqueid, linkedid=linkedid, channel=_text(fields, prefix + "Channel"))


def _optional_ref(fields: Fields) -> ChannelRef | None:
    return _ref(fields) if _text(fields, "Uniqueid") else None


def _state(fields: Fields) -> int:
    state = _int_or_none(fields, "ChannelState")
    if state is None:
        raise MalformedEvent(f"{_text(fields, 'Event')} without a numeric ChannelState")
    return state


def _channel_created(fields: Fields, at: float) -> ChannelCreated:
    return ChannelCreated(
        ref=_ref(fields),
        context=_text(fields, "Context"),
        exten=_text(fields, "Exten"),
        caller_num=_text(fields, "CallerIDNum"),
        state=_state(fields),
        at=at,
    )


def _state_changed(fields: Fields, at: float) -> ChannelStateChanged:
    return ChannelStateChanged(ref=_ref(fields), state=_state(fields), at=at)


def _dialplan_entered(fields: Fields, at: float) -> DialplanEntered:
    return DialplanEntered(
        ref=_ref(fields),
        context=_text(fields, "Context"),
        exten=_text(fields, "Exten"),
        application=_text(fields, "Application"),
        app_data=_text(fields, "AppData"),
        at=at,
    )


def _variable_set(fields: Fields, at: float) -> VariableSet | None:
    variable = _text(fields, "Variable")
    if variable not in TRACKED_VARIABLES:
        return None
    return VariableSet(ref=_ref(fields), variable=variable, value=_text(fields, "Value"), at=at)


def _dial_began(fields: Fields, at: float) -> DialBegan:
    return DialBegan(
        caller=_optional_ref(fields),
        dest=_ref(fields, "Dest"),
        dial_string=_text(fields, "DialString"),
        at=at,
    )


def _dial_ended(fields: Fields, at: float) -> DialEnded:
    return DialEnded(
        caller=_optional_ref(fields),
        dest=_ref(fields, "Dest"),
        dial_status=_text(fields, "DialStatus").upper(),
        at=at,
        forward=_text(fields, "Forward"),
    )


def _bridge_entered(fields: Fields, at: float) -> BridgeEntered:
    return BridgeEntered(ref=_ref(fields), bridge_id=_required(fields, "BridgeUniqueid"), at=at)


def _bridge_left(fields: Fields, at: float) -> BridgeLeft:
    return BridgeLeft(ref=_ref(fields), bridge_id=_required(fields, "BridgeUniqueid"), at=at)


def _hangup_requested(fields: Fields, at: float) -> HangupRequested:
    return HangupRequested(
        ref=_ref(fields),
        cause=_int_or_none(fields, "Cause"),
        is_soft=_text(fields, "Event").lower() == "softhanguprequest",
        at=at,
    )


def _hung_up(fields: Fields, at: float) -> ChannelHungUp:
    return ChannelHungUp(ref=_ref(fields), cause=_int_or_none(fields, "Cause"), at=at)


def _queue_joined(fields: Fields, at: float) -> QueueCallerJoined:
    return QueueCallerJoined(ref=_ref(fields), queue=_required(fields, "Queue"), at=at)


def _queue_abandoned(fields: Fields, at: float) -> QueueCallerAbandoned:
    return QueueCallerAbandoned(ref=_ref(fields), queue=_required(fields, "Queue"), at=at)


def _queue_left(fields: Fields, at: float) -> QueueCallerLeft:
    return QueueCallerLeft(ref=_ref(fields), queue=_required(fields, "Queue"), at=at)


def _picked_up(fields: Fields, at: float) -> CallPickedUp:
    return CallPickedUp(picker=_ref(fields), target=_ref(fields, "Target"), at=at)


def _transferred(fields: Fields, at: float) -> CallTransferred | None:
    if _text(fields, "Result").lower() != "success":
        # A failed transfer leaves the call as it was.
        return None
    is_attended = _text(fields, "Event").lower() == "attendedtransfer"
    transferer = _ref(fields, "OrigTransferer" if is_attended else "Transferer")
    transferee = _ref(fields, "Transferee") if _text(fields, "TransfereeUniqueid") else None
    return CallTransferred(transferer=transferer, transferee=transferee, is_attended=is_attended, at=at)


def dialed_number(dial_string: str) -> str:
    """The number a Dial() asked for, without technology, trunk or options.

    `89161234567@provider` (PJSIP), `provider/89161234567` (chan_sip, DAHDI groups),
    `provider/sip:89161234567@host`, `101` -> the digits part; anything else is kept as written."""
    target = dial_string.split(",", 1)[0].strip()
    target = target.rsplit("/", 1)[-1]
    for scheme in ("sip:", "sips:", "tel:"):
        if target.lower().startswith(scheme):
            target = target[len(scheme) :]
    return target.split("@", 1)[0].split(";", 1)[0]


def _recording_started(fields: Fields, at: float) -> RecordingStarted:
    return RecordingStarted(ref=_ref(fields), at=at)


def _originate_responded(fields: Fields, at: float) -> OriginateResponded:
    uniqueid = _text(fields, "Uniqueid")
    return OriginateResponded(
        action_id=_text(fields, "ActionID"),
        uniqueid=uniqueid if uniqueid and uniqueid != UNKNOWN else None,
        channel=_text(fields, "Channel"),
        exten=_text(fields, "Exten"),
        reason=_int_or_none(fields, "Reason"),
        is_success=_text(fields, "Response").lower() == "success",
        at=at,
    )


def _channel_snapshot(fields: Fields, at: float) -> ChannelSnapshot:
    duration = _text(fields, "Duration")
    return ChannelSnapshot(
        ref=_ref(fields),
        context=_text(fields, "Context"),
        exten=_text(fields, "Exten"),
        caller_num=_text(fields, "CallerIDNum"),
        state=_state(fields),
        bridge_id=_text(fields, "BridgeId"),
        duration_seconds=_duration_seconds(duration),
        at=at,
    )


def _duration_seconds(text: str) -> float:
    """CoreShowChannel's Duration is `HH:MM:SS`."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return 0.0
    hours, minutes, seconds = (int(p) for p in parts)
    return float(hours * 3600 + minutes * 60 + seconds)


def _fully_booted(fields: Fields, at: float) -> FullyBooted:
    return FullyBooted(at=at)


_PARSERS: dict[str, Callable[[Fields, float], AmiEvent | None]] = {
    "Newchannel": _channel_created,
    "Newstate": _state_changed,
    "Newexten": _dialplan_entered,
    "VarSet": _variable_set,
    "DialBegin": _dial_began,
    "DialEnd": _dial_ended,
    "BridgeEnter": _bridge_entered,
    "BridgeLeave": _bridge_left,
    "HangupRequest": _hangup_requested,
    "SoftHangupRequest": _hangup_requested,
    "Hangup": _hung_up,
    "QueueCallerJoin": _queue_joined,
    "QueueCallerAbandon": _queue_abandoned,
    "QueueCallerLeave": _queue_left,
    "Pickup": _picked_up,
    "BlindTransfer": _transferred,
    "AttendedTransfer": _transferred,
    "MixMonitorStart": _recording_started,
    "OriginateResponse": _originate_responded,
    "CoreShowChannel": _channel_snapshot,
    "FullyBooted": _fully_booted,
}


_WANTED_FIRST_LINES = frozenset(b"Event: " + name.encode() for name in _PARSERS) | {b"Event: Shutdown"}
_TRACKED_VARIABLE_LINES = frozenset(b"Variable: " + name.encode() for name in TRACKED_VARIABLES)


def is_worth_parsing(frame: bytes) -> bool:
    """A cheap look at a raw frame: False only for an event no parser here wants (most of the traffic:
    RTCP reports, device states, dialplan variables nobody tracks), so it is dropped before decoding.

    Anything unusual (responses, a different header order, events answering an action) says True and
    takes the full, logged path.
    """
    if not frame.startswith(b"Event: "):
        return True
    line_end = frame.find(b"\r\n")
    first_line = frame if line_end < 0 else frame[:line_end]
    if first_line not in _WANTED_FIRST_LINES:
        return b"\r\nActionID: " in frame
    if first_line == b"Event: VarSet":
        start = frame.find(b"\r\nVariable: ")
        if start < 0:
            return True
        end = frame.find(b"\r\n", start + 2)
        return frame[start + 2 : end if end >= 0 else len(frame)] in _TRACKED_VARIABLE_LINES
    return True
