"""The call assembler: AMI facts in, completed calls out. A pure state machine: no I/O, no clock.

Channels are grouped into calls by Linkedid. Asterisk propagates the oldest Linkedid when channels of
two calls are bridged (transfers, pickups), so when a known channel shows up under another Linkedid the
two groups are merged. A call is complete when none of its channels is alive.

"Answered" means a person was connected with the other side: a leg other than the customer's own came to
share a bridge with the customer's leg, directly or through Local channel pairs. A channel that is Up
because the PBX answered it (Answer() before a queue, an IVR) is not answered until then.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from ami.events import (
    CLICK_TO_CALL_VARIABLE,
    DID_VARIABLES,
    UNKNOWN,
    AmiEvent,
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
    DialplanEntered,
    HangupRequested,
    OriginateResponded,
    QueueCallerAbandoned,
    QueueCallerJoined,
    QueueCallerLeft,
    RecordingStarted,
    VariableSet,
    channel_endpoint,
    dialed_number,
)
from calltracking.calls.record import (
    CallLeg,
    CallOrigin,
    CallProgress,
    CallRecord,
    CallStatus,
    Direction,
    LegKind,
    ProgressKind,
)
from calltracking.numbers import party_number

log = structlog.get_logger(__name__)

STATE_RINGING = 5
STATE_UP = 6
# Channel technologies that are PBX machinery, not a phone or a carrier.
PSEUDO_TECHS = frozenset(
    {
        "local",
        "announcer",
        "cbann",
        "cbrec",
        "recorder",
        "message",
        "snoop",
        "multicastrtp",
        "unicastrtp",
        "audiosocket",
        "bridgemedia",
    }
)
# Extens that say nothing about what was dialed.
PLACEHOLDER_EXTENS = frozenset({"", "s", "h", "i", "t", "T", "o", "a", "e"})
MAIN_RECORDING_VARIABLE = "MIXMONITOR_FILENAME"
OUTBOUND_FAILURE_BY_DIAL_STATUS = {
    "BUSY": (CallStatus.BUSY, "busy"),
    "NOANSWER": (CallStatus.NO_ANSWER, "no_answer"),
    "CANCEL": (CallStatus.NO_ANSWER, "caller_cancelled"),
    "CONGESTION": (CallStatus.FAILED, "congestion"),
    "CHANUNAVAIL": (CallStatus.FAILED, "unavailable"),
    "INVALIDARGS": (CallStatus.FAILED, "invalid_destination"),
}
# OriginateResponse Reason: the state the first leg was left in (Asterisk's AST_CONTROL_* values).
ORIGINATE_FAILURES = {
    0: "manager_unreachable",
    1: "manager_hung_up",
    3: "manager_no_answer",
    5: "manager_busy",
    8: "congestion",
}
OUTBOUND_FAILURE_BY_CAUSE = {
    17: (CallStatus.BUSY, "busy"),
    18: (CallStatus.NO_ANSWER, "no_answer"),
    19: (CallStatus.NO_ANSWER, "no_answer"),
}


class PbxTopology(Protocol):
    """What the assembler needs to know about a PBX: which channels are trunks, and its country."""

    @property
    def name(self) -> str: ...

    @property
    def default_country(self) -> str: ...

    def is_trunk(self, endpoint: str, context: str) -> bool: ...


@dataclass(slots=True)
class _Leg:
    uniqueid: str
    channel: str
    endpoint: str
    kind: LegKind
    context: str
    caller_num: str
    created_at: float
    dialed_exten: str = ""
    # The leg whose Dial() created this one, the number that Dial() asked for, and the extension whose
    # call forward made it (a phone answering the Dial with a redirect).
    dialed_by: str | None = None
    dial_target: str = ""
    forwarded_by: str | None = None
    forward_pending: str | None = None
    # It handed its party on (blind or attended transfer): its hang-up completes that, not the call.
    has_transferred: bool = False
    # For the Local ;1 half an attended transfer (Atxfer, `*2`) consults through: the phone consulting.
    consulted_by: str | None = None
    is_originated: bool = False
    has_rung: bool = False
    # When it started ringing: `rang` lists phones in that order (callbacks go to the first).
    rang_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None
    first_hangup_request_is_soft: bool | None = None
    bridges: set[str] = field(default_factory=set)
    is_stale: bool = False

    @property
    def is_alive(self) -> bool:
        return self.ended_at is None

    @property
    def is_person(self) -> bool:
        return self.kind is not LegKind.LOCAL


@dataclass(slots=True)
class _Call:
    linkedid: str
    started_at: float
    last_event_at: float
    linkedids: set[str] = field(default_factory=set)
    legs: dict[str, _Leg] = field(default_factory=dict)
    request_id: str | None = None
    queue: str | None = None
    abandoned_in_queue: bool = False
    # When the caller first joined a queue, and when it then left the queue it was last put in (None while
    # it waits there): the queue wait runs from the one to an agent's answer or, unanswered, to the other.
    queue_joined_at: float | None = None
    queue_left_at: float | None = None
    recording_file: str | None = None
    recording_channel: str | None = None
    recording_is_main: bool = False
    did_variable: str | None = None
    originate_exten: str | None = None
    originate_failure_reason: int | None = None
    dial_results: list[tuple[str, str]] = field(default_factory=list)
    # uniqueid -> when that leg was first connected with the customer's side, in order.
    connected: dict[str, float] = field(default_factory=dict)
    first_hangup_by: str | None = None
    is_reconciled: bool = False
    # Legs that took the customer's place by a transfer the customer's own side made (on an internal
    # call, the caller handing the callee on): who talks with them later was handed the call.
    handed_over: list[str] = field(default_factory=list)

    @property
    def originator(self) -> _Leg:
        return self.legs.get(self.linkedid) or next(iter(self.legs.values()))

    @property
    def is_alive(self) -> bool:
        return any(leg.is_alive for leg in self.legs.values())

    def origin(self) -> _Leg | None:
        """The party that started the call. A call originated on a Local channel (`Local/101@ctx`,
        the FreePBX way) starts on PBX machinery: its party is the phone the Local pair dialed. None
        while that phone is not dialed yet."""
        leg = self.originator
        seen: set[str] = set()
        while leg.kind is LegKind.LOCAL:
            if leg.uniqueid in seen:
                return None
            seen.add(leg.uniqueid)
            partner = self.local_partner(leg)
            source = partner.uniqueid if partner is not None else leg.uniqueid
            dialed = next((other for other in self.legs.values() if other.dialed_by == source), None)
            if dialed is None:
                return None
            leg = dialed
        return leg

    def local_partner(self, leg: _Leg) -> _Leg | None:
        """The other half of a Local channel pair (`...;1` <-> `...;2`)."""
        name = _partner_channel(leg)
        if name is None:
            return None
        return next((other for other in self.legs.values() if other.channel == name), None)

    def customer_legs(self) -> list[_Leg]:
        """The side the record is about: the carrier leg that called in (or that a click-to-call between
        two outside numbers rang first), else the trunks an extension called, else the caller of an
        internal call; plus whoever a transfer by that side put in its place."""
        origin = self.origin()
        if origin is not None and origin.kind is LegKind.TRUNK:
            base = [origin]
        else:
            base = [leg for leg in self.legs.values() if leg.kind is LegKind.TRUNK]
            if not base and origin is not None:
                base = [origin]
        return base + [self.legs[uid] for uid in self.handed_over if uid in self.legs]


Handler = Callable[[Any], list[CallRecord]]


@dataclass(frozen=True, slots=True)
class LiveChanges:
    """What changed among the live calls since the last take: a checkpoint writes only this.

    `calls` holds the state of each call that changed (by its key, the call's first Linkedid), `dropped`
    the keys of calls that are no longer live (completed, or merged into another call); a key is never in
    both. With `is_everything`, `calls` is every live call and `dropped` is empty: a fresh base."""

    calls: dict[str, dict[str, Any]]
    dropped: list[str]
    last_event_at: float
    is_everything: bool = False


class CallAssembler:
    """Feeds on one PBX's events; returns each call once, the moment its last channel hangs up."""

    def __init__(self, pbx: PbxTopology) -> None:
        self._pbx = pbx
        self._calls_by_linkedid: dict[str, _Call] = {}
        self._calls_by_uniqueid: dict[str, _Call] = {}
        # Each live call once, by its key (its first Linkedid): counting and walking them costs no set.
        self._calls: dict[str, _Call] = {}
        # Since the last take_changes: live calls that changed, and keys of calls no longer live.
        self._changed: dict[str, _Call] = {}
        self._dropped: set[str] = set()
        # Device (a channel name up to one of its dashes: `PJSIP/103`) -> live calls with a leg on it, by key:
        # a failed Originate names only the device, and finding its call must not walk every live call.
        self._calls_on_device: dict[str, dict[str, _Call]] = {}
        self._bridges: dict[str, set[str]] = {}
        self.skipped_events = 0
        # The PBX's clock: the newest event time seen. A call alive when the link dropped was alive at
        # least until then, so a call closed from what is known keeps the talk time up to it.
        self._last_event_at = 0.0
        self._link_lost_at = 0.0
        self._version = 0
        self._progress: list[CallProgress] = []
        self._handlers: dict[type, Handler] = {
            ChannelCreated: self._on_channel_created,
            ChannelStateChanged: self._on_state_changed,
            DialplanEntered: self._on_dialplan_entered,
            VariableSet: self._on_variable_set,
            DialBegan: self._on_dial_began,
            DialEnded: self._on_dial_ended,
            BridgeEntered: self._on_bridge_entered,
            BridgeLeft: self._on_bridge_left,
            HangupRequested: self._on_hangup_requested,
            ChannelHungUp: self._on_hung_up,
            QueueCallerJoined: self._on_queue_joined,
            QueueCallerAbandoned: self._on_queue_abandoned,
            QueueCallerLeft: self._on_queue_left,
            CallPickedUp: self._on_picked_up,
            CallTransferred: self._on_transferred,
            OriginateResponded: self._on_originate_responded,
            RecordingStarted: self._on_recording_started,
        }

    @property
    def live_calls(self) -> int:
        return len(self._calls)

    def feed(self, event: AmiEvent) -> list[CallRecord]:
        handler = self._handlers.get(type(event))
        if handler is None:
            return []
        self._version += 1
        self._last_event_at = max(self._last_event_at, event.at)
        return handler(event)

    def drain_progress(self) -> list[CallProgress]:
        """What happened in live calls since the last drain (ringing, customer dialed, answered, ...)."""
        progress, self._progress = self._progress, []
        return progress

    @property
    def version(self) -> int:
        """Grows with every event that touched a live call: tells a checkpoint writer when to save."""
        return self._version

    def export_state(self) -> dict[str, Any]:
        """The live calls as plain JSON-able data, so a restarted process can pick them up."""
        return {
            "calls": [_call_state(call) for call in self._live_calls()],
            "bridges": {bridge: sorted(members) for bridge, members in self._bridges.items()},
            "last_event_at": self._last_event_at,
        }

    def take_changes(self, everything: bool = False) -> LiveChanges:
        """The live calls that changed since the last take, and the calls that are gone, as JSON-able data;
        the next take starts from here. Costs in proportion to what changed, not to what is live; with
        `everything`, every live call (a checkpoint writing a fresh base)."""
        if everything:
            calls = {key: _call_state(call) for key, call in self._calls.items()}
            dropped: list[str] = []
        else:
            calls = {key: _call_state(call) for key, call in self._changed.items()}
            dropped = sorted(self._dropped)
        self._changed = {}
        self._dropped = set()
        return LiveChanges(calls, dropped, self._last_event_at, is_everything=everything)

    def restore_state(self, state: dict[str, Any]) -> int:
        """Take over the live calls a previous process saved. Their channels count as stale: the first
        CoreShowChannels says which still exist; the others ended while nobody listened, and their calls
        are closed from what is known, marked reconciled. Returns how many calls were restored.

        Bridges are rebuilt from each leg's own `bridges` (a saved `bridges` map, from older files, says the
        same thing and is not needed)."""
        restored = 0
        for data in state.get("calls", []):
            call = _call_from_state(data)
            if call.linkedid in self._calls or any(uid in self._calls_by_uniqueid for uid in call.legs):
                continue
            for linkedid in call.linkedids:
                self._calls_by_linkedid[linkedid] = call
            for uniqueid, leg in call.legs.items():
                self._calls_by_uniqueid[uniqueid] = call
                leg.is_stale = leg.is_alive
                for bridge in leg.bridges:
                    self._bridges.setdefault(bridge, set()).add(uniqueid)
            self._track(call, call.legs.values())
            restored += 1
        self._last_event_at = max(self._last_event_at, float(state.get("last_event_at", 0.0)))
        self._link_lost_at = self._last_event_at
        self._version += 1
        return restored

    def mark_stale(self) -> None:
        """The AMI connection dropped: everything alive now may end unseen until the next snapshot."""
        self._link_lost_at = self._last_event_at
        for call in self._live_calls():
            for leg in call.legs.values():
                if leg.is_alive:
                    leg.is_stale = True

    def reconcile(self, snapshot: Iterable[ChannelSnapshot], at: float) -> list[CallRecord]:
        """Apply a CoreShowChannels listing taken after a (re)connect.

        Channels it lists are (re)built; channels we knew before the disconnect that it does not list ended
        while we were away: they are closed at the last moment we know of, and their call is marked
        reconciled rather than dropped.
        """
        listed = list(snapshot)
        for item in listed:
            self._apply_snapshot_channel(item)
        for item in listed:
            if item.bridge_id:
                self._enter_bridge(item.ref, item.bridge_id, item.at)
        self._version += 1
        completed: list[CallRecord] = []
        for call in self._live_calls():
            stale = [leg for leg in call.legs.values() if leg.is_alive and leg.is_stale]
            for leg in stale:
                leg.ended_at = max(call.last_event_at, self._link_lost_at)
                self._leave_all_bridges(leg)
            if stale:
                call.is_reconciled = True
                self._mark(call)
                log.warning("call_reconciled", pbx=self._pbx.name, call_id=call.linkedid, channels=len(stale))
            if not call.is_alive:
                completed.extend(self._complete(call))
        return completed

    def close_all(self) -> list[CallRecord]:
        """End of a capture: close what is still open from what is known, marked reconciled."""
        self.mark_stale()
        return self.reconcile((), at=0.0)

    # --- channel lifecycle ---------------------------------------------------------------------

    def _on_channel_created(self, event: ChannelCreated) -> list[CallRecord]:
        ref = event.ref
        if ref.uniqueid in self._calls_by_uniqueid:
            return []
        self._add_leg(ref, event.context, event.caller_num, event.state, event.exten, event.at)
        return []

    def _add_leg(
        self, ref: ChannelRef, context: str, caller_num: str, state: int, exten: str, at: float
    ) -> _Leg:
        call = self._calls_by_linkedid.get(ref.linkedid)
        if call is None:
            call = _Call(linkedid=ref.linkedid, started_at=at, last_event_at=at, linkedids={ref.linkedid})
            self._calls_by_linkedid[ref.linkedid] = call
            self._track(call, ())
        tech, endpoint = channel_endpoint(ref.channel)
        if tech.lower() in PSEUDO_TECHS:
            kind = LegKind.LOCAL
        elif self._pbx.is_trunk(endpoint, context):
            kind = LegKind.TRUNK
        else:
            kind = LegKind.EXTENSION
        leg = _Leg(
            uniqueid=ref.uniqueid,
            channel=ref.channel,
            endpoint=endpoint,
            kind=kind,
            context=context,
            caller_num="" if caller_num == UNKNOWN else caller_num,
            created_at=at,
            dialed_exten="" if exten in PLACEHOLDER_EXTENS else exten,
        )
        if state == STATE_UP:
            leg.answered_at = at
        elif state == STATE_RINGING:
            leg.has_rung = True
            leg.rang_at = at
        call.legs[ref.uniqueid] = leg
        call.started_at = min(call.started_at, at)
        call.last_event_at = max(call.last_event_at, at)
        self._calls_by_uniqueid[ref.uniqueid] = call
        self._index_legs(call, (leg,))
        self._mark(call)
        return leg

    def _apply_snapshot_channel(self, item: ChannelSnapshot) -> None:
        found = self._locate(item.ref, item.at)
        if found is None:
            created_at = item.at - item.duration_seconds
            leg = self._add_leg(item.ref, item.context, item.caller_num, item.state, item.exten, created_at)
            self._calls_by_uniqueid[item.ref.uniqueid].is_reconciled = True
        else:
            leg = found[1]
        leg.is_stale = False
        if item.state == STATE_UP and leg.answered_at is None:
            leg.answered_at = item.at

    def _on_state_changed(self, event: ChannelStateChanged) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is not None:
            leg = found[1]
            if event.state == STATE_UP and leg.answered_at is None:
                leg.answered_at = event.at
            elif event.state == STATE_RINGING:
                self._rings(found[0], leg, event.at)
        return []

    def _rings(self, call: _Call, leg: _Leg, at: float) -> None:
        if leg.has_rung:
            return
        leg.has_rung = True
        leg.rang_at = at
        if leg.kind is LegKind.EXTENSION:
            self._report(call, ProgressKind.RINGING, at, extension=leg.endpoint)

    def _report(
        self,
        call: _Call,
        kind: ProgressKind,
        at: float,
        extension: str | None = None,
        reason: str | None = None,
    ) -> None:
        direction = _direction(call)
        caller, callee, _ = _parties(call, direction)
        self._progress.append(
            CallProgress(
                kind=kind,
                pbx=self._pbx.name,
                pbx_call_id=call.linkedid,
                at=_utc(at),
                direction=direction,
                caller=caller,
                callee=callee,
                extension=extension,
                request_id=call.request_id,
                reason=reason,
            )
        )

    def _on_dialplan_entered(self, event: DialplanEntered) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is not None:
            leg = found[1]
            if not leg.dialed_exten and event.exten not in PLACEHOLDER_EXTENS:
                leg.dialed_exten = event.exten
        return []

    def _on_variable_set(self, event: VariableSet) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is None or not event.value:
            return []
        call = found[0]
        if event.variable == CLICK_TO_CALL_VARIABLE:
            call.request_id = call.request_id or event.value
        elif event.variable in DID_VARIABLES:
            call.did_variable = call.did_variable or event.value
        elif not call.recording_is_main:
            # MIXMONITOR_FILENAME names the file exactly; FreePBX's CDR(recordingfile) only until it comes.
            call.recording_file = event.value
            call.recording_channel = event.ref.channel
            call.recording_is_main = event.variable == MAIN_RECORDING_VARIABLE
        return []

    def _on_recording_started(self, event: RecordingStarted) -> list[CallRecord]:
        # MixMonitorStart names the recording channel; the file itself comes with MIXMONITOR_FILENAME.
        found = self._locate(event.ref, event.at)
        if found is not None and found[0].recording_channel is None:
            found[0].recording_channel = event.ref.channel
        return []

    def _on_dial_began(self, event: DialBegan) -> list[CallRecord]:
        # Being dialed is not ringing: a phone on DND, busy or unavailable is dialed and never rings.
        dialing = self._locate(event.caller, event.at) if event.caller is not None else None
        found = self._locate(event.dest, event.at)
        if found is None:
            return []
        call, leg = found
        if dialing is not None and dialing[0] is not call:
            # A pickup: the caller's Dial() now reaches the picker's channel, which began as its own call.
            call = self._merge(call, dialing[0], event.at)
        if dialing is None:
            leg.is_originated = True
        else:
            caller_leg = dialing[1]
            leg.dialed_by = caller_leg.uniqueid
            if caller_leg.forward_pending is not None:
                leg.forwarded_by, caller_leg.forward_pending = caller_leg.forward_pending, None
        leg.dial_target = leg.dial_target or dialed_number(event.dial_string)
        if leg.kind is LegKind.TRUNK and call.originator.kind is not LegKind.TRUNK:
            self._report(call, ProgressKind.DIALING_CUSTOMER, event.at)
        return []

    def _on_dial_ended(self, event: DialEnded) -> list[CallRecord]:
        found = self._locate(event.dest, event.at)
        if found is None:
            return []
        call, leg = found
        if event.dial_status:
            call.dial_results.append((event.dest.uniqueid, event.dial_status))
        if event.dial_status == "BUSY" and leg.kind is LegKind.EXTENSION and leg.answered_at is None:
            # The phone itself was offered the call and answered busy (486), often before it could report
            # ringing: it rang for the record. A phone the PBX never offered it to has no leg at all.
            leg.has_rung = True
            leg.rang_at = leg.rang_at or event.at
        if event.forward and event.caller is not None and leg.kind is LegKind.EXTENSION:
            caller = call.legs.get(event.caller.uniqueid)
            if caller is not None:
                caller.forward_pending = leg.endpoint
        return []

    def _on_picked_up(self, event: CallPickedUp) -> list[CallRecord]:
        picker = self._locate(event.picker, event.at)
        target = self._locate(event.target, event.at)
        if picker is not None and target is not None and picker[0] is not target[0]:
            self._merge(picker[0], target[0], event.at)
        return []

    def _on_transferred(self, event: CallTransferred) -> list[CallRecord]:
        found = self._locate(event.transferer, event.at)
        if found is None:
            return []
        call, transferer = found
        transferer.has_transferred = True
        if call.first_hangup_by == transferer.uniqueid:
            call.first_hangup_by = None
        if transferer not in call.customer_legs():
            # The usual case: the manager hands the customer on; who talks next is found by the bridges.
            return []
        transferee = call.legs.get(event.transferee.uniqueid) if event.transferee is not None else None
        if transferee is None:
            transferee = next((leg for leg in call.legs.values() if leg.uniqueid in call.connected), None)
        if transferee is not None and transferee.uniqueid not in call.handed_over:
            call.handed_over.append(transferee.uniqueid)
            self._update_connections(call, event.at)
        return []

    def _on_bridge_entered(self, event: BridgeEntered) -> list[CallRecord]:
        if self._locate(event.ref, event.at) is not None:
            self._enter_bridge(event.ref, event.bridge_id, event.at)
        return []

    def _enter_bridge(self, ref: ChannelRef, bridge_id: str, at: float) -> None:
        call = self._calls_by_uniqueid.get(ref.uniqueid)
        if call is None:
            return
        self._mark(call)
        members = self._bridges.setdefault(bridge_id, set())
        members.add(ref.uniqueid)
        call.legs[ref.uniqueid].bridges.add(bridge_id)
        _note_consultation(call, [call.legs[uid] for uid in members if uid in call.legs])
        self._update_connections(call, at)

    def _on_bridge_left(self, event: BridgeLeft) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is not None:
            self._leave_bridge(found[1], event.bridge_id)
        return []

    def _leave_bridge(self, leg: _Leg, bridge_id: str) -> None:
        leg.bridges.discard(bridge_id)
        members = self._bridges.get(bridge_id)
        if members is not None:
            members.discard(leg.uniqueid)
            if not members:
                del self._bridges[bridge_id]

    def _leave_all_bridges(self, leg: _Leg) -> None:
        for bridge_id in list(leg.bridges):
            self._leave_bridge(leg, bridge_id)

    def _on_hangup_requested(self, event: HangupRequested) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is not None:
            call, leg = found
            if leg.first_hangup_request_is_soft is None:
                leg.first_hangup_request_is_soft = event.is_soft
            # Who hung up: the caller leaving before anyone answered, or either side after the answer.
            # A phone rejecting a ring (busy) or a carrier refusing is not a hang-up by a person.
            is_party = (
                leg is call.originator
                or leg is call.origin()
                or leg.uniqueid in call.connected
                or (call.connected and leg in call.customer_legs())
            )
            if not event.is_soft and call.first_hangup_by is None and is_party and not leg.has_transferred:
                call.first_hangup_by = leg.uniqueid
        return []

    def _on_hung_up(self, event: ChannelHungUp) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is None:
            return []
        call, leg = found
        if not leg.is_alive:
            return []
        leg.ended_at = event.at
        leg.cause = event.cause
        self._leave_all_bridges(leg)
        if call.is_alive:
            return []
        return self._complete(call)

    def _on_queue_joined(self, event: QueueCallerJoined) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is not None:
            call = found[0]
            call.queue = call.queue or event.queue
            if call.queue_joined_at is None:
                call.queue_joined_at = event.at
            # Back in a queue (after a timeout, into another one): it waits until it leaves this one.
            call.queue_left_at = None
        return []

    def _on_queue_abandoned(self, event: QueueCallerAbandoned) -> list[CallRecord]:
        found = self._locate(event.ref, event.at)
        if found is not None:
            call = found[0]
            call.queue = call.queue or event.queue
            call.abandoned_in_queue = True
            _note_queue_left(call, event.at)
        return []

    def _on_queue_left(self, event: QueueCallerLeft) -> list[CallRecord]:
        # Asterisk sends QueueCallerAbandon, then QueueCallerLeave: the wait ends at the first of the two.
        found = self._locate(event.ref, event.at)
        if found is not None:
            _note_queue_left(found[0], event.at)
        return []

    def _on_originate_responded(self, event: OriginateResponded) -> list[CallRecord]:
        call = self._calls_by_uniqueid.get(event.uniqueid) if event.uniqueid else None
        if call is None:
            call = self._originated_call_on(event.channel)
        if call is None:
            self._skip(event.uniqueid or event.channel, "OriginateResponse")
            return []
        self._mark(call)
        call.last_event_at = max(call.last_event_at, event.at)
        if event.exten not in PLACEHOLDER_EXTENS:
            call.originate_exten = call.originate_exten or event.exten
        if not event.is_success:
            call.originate_failure_reason = event.reason
            self._report(
                call,
                ProgressKind.ORIGINATE_FAILED,
                event.at,
                extension=call.originator.endpoint,
                reason=ORIGINATE_FAILURES.get(event.reason or 0, "originate_failed"),
            )
        return []

    def _originated_call_on(self, channel: str) -> _Call | None:
        """A failed Originate names only the dialed device (`PJSIP/103`): find its unanswered first leg."""
        prefix = channel + "-"
        candidates = [
            call
            for call in self._calls_on_device.get(channel, {}).values()
            if call.originator.is_originated
            and call.originator.answered_at is None
            and call.originator.channel.startswith(prefix)
        ]
        return max(candidates, key=lambda c: c.started_at) if candidates else None

    # --- grouping ----------------------------------------------------------------------------------

    def _locate(self, ref: ChannelRef, at: float) -> tuple[_Call, _Leg] | None:
        call = self._calls_by_uniqueid.get(ref.uniqueid)
        if call is None:
            self._skip(ref.uniqueid, "unknown_channel")
            return None
        if ref.linkedid and ref.linkedid not in call.linkedids:
            other = self._calls_by_linkedid.get(ref.linkedid)
            if other is None or other is call:
                call.linkedids.add(ref.linkedid)
                self._calls_by_linkedid[ref.linkedid] = call
            else:
                call = self._merge(call, other, at)
        call.last_event_at = max(call.last_event_at, at)
        leg = call.legs[ref.uniqueid]
        leg.is_stale = False
        self._mark(call)
        return call, leg

    def _merge(self, a: _Call, b: _Call, at: float) -> _Call:
        keep, gone = (a, b) if (a.started_at, a.linkedid) <= (b.started_at, b.linkedid) else (b, a)
        self._untrack(gone)
        self._index_legs(keep, gone.legs.values())
        self._mark(keep)
        for uniqueid, leg in gone.legs.items():
            keep.legs[uniqueid] = leg
            self._calls_by_uniqueid[uniqueid] = keep
        for linkedid in gone.linkedids:
            self._calls_by_linkedid[linkedid] = keep
        keep.linkedids |= gone.linkedids
        keep.legs = dict(sorted(keep.legs.items(), key=lambda item: item[1].created_at))
        keep.last_event_at = max(keep.last_event_at, gone.last_event_at)
        keep.request_id = keep.request_id or gone.request_id
        keep.queue = keep.queue or gone.queue
        keep.abandoned_in_queue = keep.abandoned_in_queue or gone.abandoned_in_queue
        _merge_queue_times(keep, gone)
        if not keep.recording_is_main and (gone.recording_is_main or keep.recording_file is None):
            keep.recording_file = gone.recording_file
            keep.recording_channel = gone.recording_channel
            keep.recording_is_main = gone.recording_is_main
        keep.did_variable = keep.did_variable or gone.did_variable
        keep.handed_over.extend(uid for uid in gone.handed_over if uid not in keep.handed_over)
        keep.originate_exten = keep.originate_exten or gone.originate_exten
        keep.dial_results.extend(gone.dial_results)
        for uniqueid, when in gone.connected.items():
            keep.connected.setdefault(uniqueid, when)
        keep.connected = dict(sorted(keep.connected.items(), key=lambda item: item[1]))
        keep.first_hangup_by = keep.first_hangup_by or gone.first_hangup_by
        keep.is_reconciled = keep.is_reconciled or gone.is_reconciled
        log.info("calls_merged", pbx=self._pbx.name, call_id=keep.linkedid, merged_call_id=gone.linkedid)
        self._update_connections(keep, at)
        return keep

    def _update_connections(self, call: _Call, at: float) -> None:
        """Record every person leg that now shares a bridge (or a Local pair) with the customer's side."""
        customers = call.customer_legs()
        seen = {leg.uniqueid for leg in customers}
        frontier = list(seen)
        # One index per walk: this runs on every bridge entry, so no scan of the legs per leg visited.
        by_channel = {leg.channel: leg for leg in call.legs.values()}
        while frontier:
            leg = call.legs[frontier.pop()]
            neighbours: set[str] = set()
            for bridge_id in leg.bridges:
                neighbours |= self._bridges.get(bridge_id, set())
            partner = by_channel.get(_partner_channel(leg) or "")
            if partner is not None:
                neighbours.add(partner.uniqueid)
            for uniqueid in neighbours:
                if uniqueid not in seen and uniqueid in call.legs:
                    seen.add(uniqueid)
                    frontier.append(uniqueid)
        customer_ids = {leg.uniqueid for leg in customers}
        was_answered = bool(call.connected)
        for leg in call.legs.values():
            if leg.uniqueid in seen and leg.uniqueid not in customer_ids and leg.is_person:
                if leg.uniqueid not in call.connected and call.first_hangup_by not in (None, *customer_ids):
                    # The party who hung up before someone new joined the customer completed a transfer;
                    # they did not end the call.
                    call.first_hangup_by = None
                call.connected.setdefault(leg.uniqueid, at)
        if call.connected and not was_answered:
            first = call.legs[next(iter(call.connected))]
            extension = first.endpoint if first.kind is LegKind.EXTENSION else None
            origin = call.origin()
            if (
                origin is not None
                and origin.kind is LegKind.EXTENSION
                and _direction(call) is Direction.OUTBOUND
            ):
                extension = origin.endpoint
            self._report(call, ProgressKind.ANSWERED, at, extension=extension)

    def _live_calls(self) -> list[_Call]:
        return list(self._calls.values())

    def _track(self, call: _Call, legs: Iterable[_Leg]) -> None:
        """A call became live (new, or restored with its legs)."""
        self._calls[call.linkedid] = call
        self._index_legs(call, legs)
        self._mark(call)

    def _untrack(self, call: _Call) -> None:
        """A call is no longer live (completed, or merged into another): a checkpoint drops it."""
        if self._calls.get(call.linkedid) is call:
            del self._calls[call.linkedid]
        self._changed.pop(call.linkedid, None)
        self._dropped.add(call.linkedid)
        for leg in call.legs.values():
            for device in _devices(leg.channel):
                calls = self._calls_on_device.get(device)
                if calls is not None and calls.get(call.linkedid) is call:
                    del calls[call.linkedid]
                    if not calls:
                        del self._calls_on_device[device]

    def _mark(self, call: _Call) -> None:
        """The call changed (or is about to, within the event being handled): the next take saves it."""
        self._changed[call.linkedid] = call
        self._dropped.discard(call.linkedid)

    def _index_legs(self, call: _Call, legs: Iterable[_Leg]) -> None:
        for leg in legs:
            for device in _devices(leg.channel):
                self._calls_on_device.setdefault(device, {})[call.linkedid] = call

    def _skip(self, key: str, reason: str) -> None:
        self.skipped_events += 1
        log.debug("ami_event_skipped", pbx=self._pbx.name, reason=reason, channel_id=key)

    def _complete(self, call: _Call) -> list[CallRecord]:
        self._untrack(call)
        for linkedid in call.linkedids:
            if self._calls_by_linkedid.get(linkedid) is call:
                del self._calls_by_linkedid[linkedid]
        for uniqueid in call.legs:
            if self._calls_by_uniqueid.get(uniqueid) is call:
                del self._calls_by_uniqueid[uniqueid]
        consultations = _separate_consultations(call)
        if not consultations:
            return [summarize_call(call, self._pbx)]
        apart = {uid for group in consultations for uid in group}
        main = replace(
            call,
            legs={uid: leg for uid, leg in call.legs.items() if uid not in apart},
            dial_results=[(uid, status) for uid, status in call.dial_results if uid not in apart],
        )
        return [summarize_call(main, self._pbx)] + [
            _consultation_record(call, group, self._pbx) for group in consultations
        ]


def _devices(channel: str) -> list[str]:
    """Every device name a channel name can be read as: itself up to each of its dashes
    (`Local/103@from-internal-0000001a;1` -> `Local/103@from`, `Local/103@from-internal`)."""
    return [channel[:index] for index, char in enumerate(channel) if char == "-"]


def _note_queue_left(call: _Call, at: float) -> None:
    if call.queue_joined_at is not None and call.queue_left_at is None:
        call.queue_left_at = at


def _merge_queue_times(keep: _Call, gone: _Call) -> None:
    """Two parts of one call that both queued: from the first join, to the last leave (still waiting if
    either part is)."""
    queued = [part for part in (keep, gone) if part.queue_joined_at is not None]
    if len(queued) < 2:
        if queued and queued[0] is gone:
            keep.queue_joined_at, keep.queue_left_at = gone.queue_joined_at, gone.queue_left_at
        return
    keep.queue_joined_at = min(part.queue_joined_at for part in queued if part.queue_joined_at is not None)
    lefts = [part.queue_left_at for part in queued if part.queue_left_at is not None]
    keep.queue_left_at = max(lefts) if len(lefts) == len(queued) else None


def _queue_wait(call: _Call, connected: dict[str, float], ended: float) -> float | None:
    """Seconds from joining the queue to an agent's answer (the first connection since the join: a call
    answered before it was put in the queue waits for the one who answers it there), else to leaving the
    queue unanswered, else to the end of the call. None for a call never seen joining a queue."""
    joined = call.queue_joined_at
    if joined is None:
        return None
    answers = [at for at in connected.values() if at >= joined]
    if answers:
        until = min(answers)
    elif call.queue_left_at is not None:
        until = call.queue_left_at
    else:
        until = ended
    return round(max(until - joined, 0.0), 3)


# --- live state for a restart (pure) -------------------------------------------------------------


def _call_state(call: _Call) -> dict[str, Any]:
    data = {name: getattr(call, name) for name in _Call.__slots__}
    data["linkedids"] = sorted(call.linkedids)
    data["legs"] = [_leg_state(leg) for leg in call.legs.values()]
    data["dial_results"] = [list(item) for item in call.dial_results]
    data["connected"] = [[uid, at] for uid, at in call.connected.items()]
    return data


def _leg_state(leg: _Leg) -> dict[str, Any]:
    data = {name: getattr(leg, name) for name in _Leg.__slots__}
    data["kind"] = leg.kind.value
    data["bridges"] = sorted(leg.bridges)
    return data


def _call_from_state(data: dict[str, Any]) -> _Call:
    values = dict(data)
    values["linkedids"] = set(values["linkedids"])
    values["legs"] = {leg["uniqueid"]: _leg_from_state(leg) for leg in values["legs"]}
    values["dial_results"] = [(uid, status) for uid, status in values["dial_results"]]
    values["connected"] = {uid: at for uid, at in values["connected"]}
    return _Call(**values)


def _leg_from_state(data: dict[str, Any]) -> _Leg:
    values = dict(data)
    values["kind"] = LegKind(values["kind"])
    values["bridges"] = set(values["bridges"])
    return _Leg(**values)


# --- from channels to a call record (pure) ------------------------------------------------------


def _partner_channel(leg: _Leg) -> str | None:
    """The channel name of a Local half's other half, or None for anything that is not one."""
    if leg.kind is not LegKind.LOCAL or leg.channel[-2:] not in (";1", ";2"):
        return None
    return leg.channel[:-1] + ("2" if leg.channel.endswith("1") else "1")


def _note_consultation(call: _Call, members: list[_Leg]) -> None:
    """A Local ;1 half that nobody dialed, sharing a bridge with a phone, is that phone consulting
    someone (Atxfer): the consultation shares the call's linkedid from its first moment."""
    phones = [leg for leg in members if leg.kind is LegKind.EXTENSION]
    if not phones:
        return
    for leg in members:
        if (
            leg.kind is LegKind.LOCAL
            and leg.channel.endswith(";1")
            and leg.dialed_by is None
            and leg is not call.originator
            and leg.consulted_by is None
        ):
            leg.consulted_by = phones[0].uniqueid


def _separate_consultations(call: _Call) -> list[list[str]]:
    """Consultations that stayed a conversation of their own: someone answered the consulting phone,
    and nobody on that side ever talked with the customer (an aborted attended transfer)."""
    groups = []
    for leg in call.legs.values():
        if leg.consulted_by is None:
            continue
        group = _dialed_from(call, leg)
        people = [call.legs[uid] for uid in group if call.legs[uid].is_person]
        talked = any(person.answered_at is not None for person in people)
        if talked and not any(uid in call.connected for uid in group):
            groups.append(group)
    return groups


def _dialed_from(call: _Call, local: _Leg) -> list[str]:
    """A Local pair and every leg dialed from it, directly or through further Local pairs."""
    group = [local.uniqueid]
    partner = call.local_partner(local)
    if partner is not None:
        group.append(partner.uniqueid)
    index = 0
    while index < len(group):
        for other in call.legs.values():
            if other.dialed_by == group[index] and other.uniqueid not in group:
                group.append(other.uniqueid)
                other_partner = call.local_partner(other)
                if other_partner is not None and other_partner.uniqueid not in group:
                    group.append(other_partner.uniqueid)
        index += 1
    return group


def _consultation_record(call: _Call, group: list[str], pbx: PbxTopology) -> CallRecord:
    """The consulting phone's internal call to whoever it consulted, as its own record."""
    local = call.legs[group[0]]
    consulting = call.legs.get(local.consulted_by) if local.consulted_by is not None else None
    legs = [call.legs[uid] for uid in group]
    answered = [leg for leg in legs if leg.is_person and leg.answered_at is not None]
    target = answered[0] if answered else None
    caller = consulting.endpoint if consulting is not None else ""
    callee = target.endpoint if target is not None else local.dialed_exten
    answered_at = min(leg.answered_at for leg in answered if leg.answered_at is not None)
    ended = max((leg.ended_at for leg in legs if leg.ended_at is not None), default=call.last_event_at)
    country = pbx.default_country
    return CallRecord(
        pbx=pbx.name,
        pbx_call_id=local.uniqueid,
        direction=Direction.INTERNAL,
        status=CallStatus.ANSWERED,
        origin=CallOrigin.PBX,
        request_id=None,
        caller=caller,
        callee=callee,
        did=None,
        caller_number=party_number(caller, country, is_extension=True),
        callee_number=party_number(callee, country, is_extension=True),
        answered_by=target.endpoint if target is not None else None,
        manager=target.endpoint if target is not None else None,
        rang=_unique(leg.endpoint for leg in legs if leg.kind is LegKind.EXTENSION and leg.has_rung),
        queue=None,
        transferred_to=(),
        abandoned=False,
        reconciled=call.is_reconciled,
        started_at=_utc(local.created_at),
        answered_at=_utc(answered_at),
        ended_at=_utc(ended),
        ring_seconds=round(max(answered_at - local.created_at, 0.0), 3),
        talk_seconds=round(max(ended - answered_at, 0.0), 3),
        hangup_by=None,
        failure_reason=None,
        recording_file=None,
        recording_channel=None,
        legs=tuple(_leg_record(leg) for leg in legs),
    )


def summarize_call(call: _Call, pbx: PbxTopology) -> CallRecord:
    originator = call.originator
    origin = call.origin()
    customers = call.customer_legs()
    customer_ids = {leg.uniqueid for leg in customers}
    direction = _direction(call)
    extensions = {leg.endpoint for leg in call.legs.values() if leg.kind is LegKind.EXTENSION}

    connected = dict(call.connected)
    if not connected:
        # A far leg whose Dial() ended in ANSWER was picked up by a person, even if the bridge never came.
        connected = _answered_without_bridge(call, origin, customer_ids)
    connected_legs = [call.legs[uid] for uid in connected]
    answered_at = min(connected.values()) if connected else None
    own = origin.endpoint if origin is not None and origin.kind is LegKind.EXTENSION else None
    talked = _parties_talked(connected_legs, exclude=own if direction is not Direction.INBOUND else None)
    if direction is Direction.OUTBOUND and own is not None:
        # The manager placed the call: the customer answered; whoever talked after the manager was handed it.
        answered_by = None
        transferred_to = tuple(name for name, _ in talked)
        manager: str | None = own
    else:
        answered_by = talked[0][0] if talked else None
        transferred_to = tuple(name for name, _ in talked[1:])
        first = talked[0][1] if talked else None
        if first is None:
            manager = own if direction is Direction.OUTBOUND else None
        elif first.kind is LegKind.EXTENSION:
            manager = first.endpoint
        else:
            manager = _forward_owner(call, first)
    transferred_to = tuple(name for name in transferred_to if name not in (answered_by, own))

    caller, callee, did = _parties(call, direction)
    status, failure_reason = _status(call, direction, answered_at is not None)
    if failure_reason == "manager_no_answer" and call.originate_failure_reason is not None:
        failure_reason = ORIGINATE_FAILURES.get(call.originate_failure_reason, failure_reason)
    abandoned = (
        direction is Direction.INBOUND
        and status is not CallStatus.ANSWERED
        and (call.abandoned_in_queue or originator.first_hangup_request_is_soft is False)
    )
    rang = _unique(
        leg.endpoint
        for leg in sorted(call.legs.values(), key=lambda leg: leg.rang_at or leg.created_at)
        if leg.kind is LegKind.EXTENSION and leg.has_rung
    )
    ended = max(
        (leg.ended_at for leg in call.legs.values() if leg.ended_at is not None), default=call.last_event_at
    )
    started = call.started_at
    ring_seconds = (answered_at if answered_at is not None else ended) - started
    talk_seconds = ended - answered_at if answered_at is not None else 0.0
    country = pbx.default_country
    return CallRecord(
        pbx=pbx.name,
        pbx_call_id=call.linkedid,
        direction=direction,
        status=status,
        origin=CallOrigin.CLICK_TO_CALL if call.request_id else CallOrigin.PBX,
        request_id=call.request_id,
        caller=caller,
        callee=callee,
        did=did,
        caller_number=party_number(caller, country, is_extension=caller in extensions),
        callee_number=party_number(callee, country, is_extension=callee in extensions),
        answered_by=answered_by,
        manager=manager,
        rang=rang,
        queue=call.queue,
        transferred_to=transferred_to,
        abandoned=abandoned,
        reconciled=call.is_reconciled,
        started_at=_utc(started),
        answered_at=_utc(answered_at) if answered_at is not None else None,
        ended_at=_utc(ended),
        ring_seconds=round(max(ring_seconds, 0.0), 3),
        talk_seconds=round(max(talk_seconds, 0.0), 3),
        hangup_by=_hangup_by(call, direction, customer_ids),
        failure_reason=failure_reason,
        recording_file=call.recording_file,
        recording_channel=call.recording_channel,
        legs=tuple(_leg_record(leg) for leg in call.legs.values()),
        queue_wait_seconds=_queue_wait(call, connected, ended),
    )


def _answered_without_bridge(call: _Call, origin: _Leg | None, customer_ids: set[str]) -> dict[str, float]:
    for uid, status in call.dial_results:
        leg = call.legs[uid]
        if (
            status == "ANSWER"
            and leg.is_person
            and leg is not origin
            and uid not in customer_ids
            and leg.answered_at is not None
        ):
            return {uid: leg.answered_at}
    return {}


def _forward_owner(call: _Call, leg: _Leg) -> str | None:
    """The extension whose call forward put `leg` in the call, following it back through the Local pair
    Asterisk dials a forward with (`Local/<number>@<context>`); None for a forward the dialplan made."""
    seen: set[str] = set()
    current: _Leg | None = leg
    while current is not None and current.uniqueid not in seen:
        if current.forwarded_by is not None:
            return current.forwarded_by
        seen.add(current.uniqueid)
        if current.dialed_by is not None:
            current = call.legs.get(current.dialed_by)
        elif current.channel.endswith(";2"):
            current = call.local_partner(current)
        else:
            current = None
    return None


def _party_name(leg: _Leg) -> str:
    """How a record names a party: an extension by itself, an outside number as the PBX dialed it."""
    if leg.kind is LegKind.EXTENSION:
        return leg.endpoint
    return leg.dial_target or leg.dialed_exten or leg.caller_num or leg.endpoint


def _parties(call: _Call, direction: Direction) -> tuple[str, str, str | None]:
    """Caller, callee and DID as the PBX saw them: the DID is the callee of an inbound call."""
    originator = call.originator
    if direction is Direction.INBOUND:
        did = call.did_variable or originator.dialed_exten or None
        return originator.caller_num, did or "", did
    origin = call.origin()
    if origin is None:
        caller = ""
    elif origin.kind is LegKind.EXTENSION:
        caller = origin.endpoint
    else:
        caller = origin.dial_target or origin.caller_num
    if originator.kind is LegKind.LOCAL or (origin is not None and origin.kind is LegKind.TRUNK):
        # Originated: what the first leg was to be connected with once it answered.
        callee = call.originate_exten or _first_dialed(call, origin) or ""
    else:
        callee = originator.dialed_exten or call.originate_exten or _first_dialed(call, origin) or ""
    return caller, callee, None


def _direction(call: _Call) -> Direction:
    originator = call.originator
    has_trunk = any(leg.kind is LegKind.TRUNK for leg in call.legs.values())
    if originator.is_originated:
        if has_trunk:
            return Direction.OUTBOUND
        if call.originate_exten is not None or call.request_id is not None:
            # A click-to-call whose customer leg has not started (or never will): it is meant for the
            # customer unless the number asked for is one of the PBX's own phones.
            extensions = {leg.endpoint for leg in call.legs.values() if leg.kind is LegKind.EXTENSION}
            return Direction.INTERNAL if call.originate_exten in extensions else Direction.OUTBOUND
        return Direction.INTERNAL
    origin = call.origin()
    if origin is not None and origin.kind is LegKind.TRUNK:
        return Direction.INBOUND
    return Direction.OUTBOUND if has_trunk else Direction.INTERNAL


def _status(call: _Call, direction: Direction, is_answered: bool) -> tuple[CallStatus, str | None]:
    if is_answered:
        return CallStatus.ANSWERED, None
    originator = call.originator
    if originator.is_originated and originator.answered_at is None:
        return CallStatus.FAILED, "manager_no_answer"
    if direction is Direction.INBOUND:
        statuses = [status for uid, status in call.dial_results if call.legs[uid].kind is not LegKind.TRUNK]
        if statuses and all(s == "BUSY" for s in statuses):
            return CallStatus.BUSY, "busy"
        return CallStatus.MISSED, None
    targets = [
        status
        for uid, status in call.dial_results
        if (call.legs[uid].kind is LegKind.TRUNK) == (direction is Direction.OUTBOUND) and status != "ANSWER"
    ]
    if targets:
        return OUTBOUND_FAILURE_BY_DIAL_STATUS.get(targets[-1], (CallStatus.FAILED, targets[-1].lower()))
    origin = call.origin()
    far_legs = [
        leg for leg in call.legs.values() if leg is not originator and leg is not origin and leg.is_person
    ]
    for leg in reversed(far_legs):
        if leg.cause in OUTBOUND_FAILURE_BY_CAUSE:
            return OUTBOUND_FAILURE_BY_CAUSE[leg.cause]
    if far_legs:
        return CallStatus.NO_ANSWER, "no_answer"
    return CallStatus.FAILED, "not_dialed"


def _parties_talked(legs: list[_Leg], exclude: str | None) -> list[tuple[str, _Leg]]:
    """Who talked with the customer's side, in order, each once in a row (a party back from hold is not
    handed the call again)."""
    talked: list[tuple[str, _Leg]] = []
    for leg in legs:
        name = _party_name(leg)
        if name and name != exclude and (not talked or talked[-1][0] != name):
            talked.append((name, leg))
    return talked


def _first_dialed(call: _Call, origin: _Leg | None) -> str | None:
    for leg in call.legs.values():
        if leg is not origin and leg is not call.originator and leg.is_person:
            name = _party_name(leg)
            if name:
                return name
    return None


def _hangup_by(call: _Call, direction: Direction, customer_ids: set[str]) -> str | None:
    uid = call.first_hangup_by
    if uid is None or uid not in call.legs:
        return None
    if direction is Direction.INTERNAL:
        origin = call.origin()
        is_caller = uid == call.originator.uniqueid or (origin is not None and uid == origin.uniqueid)
        return "caller" if is_caller else "callee"
    return "customer" if uid in customer_ids else "manager" if call.legs[uid].is_person else None


def _leg_record(leg: _Leg) -> CallLeg:
    return CallLeg(
        channel_id=leg.uniqueid,
        channel=leg.channel,
        endpoint=leg.endpoint,
        kind=leg.kind,
        created_at=_utc(leg.created_at),
        answered_at=_utc(leg.answered_at) if leg.answered_at is not None else None,
        ended_at=_utc(leg.ended_at) if leg.ended_at is not None else None,
        hangup_cause=leg.cause,
    )


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)
