"""Every way a PBX connects people gives one correct record.

The sequences follow what Asterisk sends for each pattern: the Asterisk 22 shapes of the real captures
in ../shared/ami-traces (Local click-to-call, forward to a mobile, attended transfer), and the shapes
older releases (13-18) send where they differ: a pickup announced only by the Dial() that reaches the
picker's channel, a BlindTransfer without its transferee, a forward by a phone's 302.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ami.assembler import CallAssembler
from ami.events import AmiEvent, ChannelRef, OriginateResponded, VariableSet
from calltracking.calls.record import CallRecord
from calltracking.config import PbxSettings
from tests.helpers import ami_events as ev

PBX = PbxSettings(name="office")
DOWN = 0
TRUNK = {"context": "from-trunk"}


def assemble(stream: Iterable[AmiEvent]) -> list[CallRecord]:
    assembler = CallAssembler(PBX)
    calls = [call for event in stream for call in assembler.feed(event)]
    assert assembler.live_calls == 0
    return calls


def record(call: CallRecord) -> dict[str, Any]:
    return {
        "direction": call.direction.value,
        "status": call.status.value,
        "caller": call.caller,
        "callee": call.callee,
        "answered_by": call.answered_by,
        "manager": call.manager,
        "rang": list(call.rang),
        "transferred_to": list(call.transferred_to),
        "ring": round(call.ring_seconds),
        "talk": round(call.talk_seconds),
        "hangup_by": call.hangup_by,
    }


def request_id(r: ChannelRef, at: float, value: str = "req-7") -> VariableSet:
    return VariableSet(ref=r, variable="CRM_REQUEST_ID", value=value, at=at)


def originate_response(r: ChannelRef, exten: str, at: float) -> OriginateResponded:
    return OriginateResponded(
        action_id="c2c-7",
        uniqueid=r.uniqueid,
        channel=r.channel,
        exten=exten,
        reason=4,
        is_success=True,
        at=at,
    )


def hang_up_all(at: float, *refs: ChannelRef, first_by: ChannelRef | None = None) -> list[AmiEvent]:
    events: list[AmiEvent] = []
    if first_by is not None:
        events.append(ev.hangup_request(first_by, at))
    events.extend(ev.hangup(r, at) for r in refs)
    return events


# --- click-to-call through a Local channel (FreePBX, most dialers) --------------------------------------

L1 = ev.ref("1.1", "Local/101@from-internal-00000001;1")
L2 = ev.ref("1.2", "Local/101@from-internal-00000001;2", "1.1")
DESK = ev.ref("1.3", "PJSIP/101-00000001", "1.1")
CUSTOMER = ev.ref("1.4", "PJSIP/provider-00000002", "1.1")


def local_click_to_call_until_customer_dialed() -> list[AmiEvent]:
    """Originate Channel: Local/101@from-internal, Exten: 89161234567: 101 rings and answers at 102,
    the Local ;1 half runs the dialplan for the customer and dials the carrier."""
    return [
        ev.created(L1, 100.0, exten="101", state=DOWN),
        ev.created(L2, 100.0, exten="101"),
        request_id(L1, 100.0),
        ev.dial(None, L1, 100.0, "101@from-internal"),
        ev.created(DESK, 100.01, state=DOWN),
        ev.dial(L2, DESK, 100.01, "101"),
        ev.state(DESK, ev.RINGING, 100.05),
        ev.state(L1, ev.RINGING, 100.05),
        ev.state(DESK, ev.UP, 102.0),
        ev.dial_end(L2, DESK, "ANSWER", 102.0),
        ev.state(L1, ev.UP, 102.0),
        ev.dial_end(None, L1, "ANSWER", 102.0),
        originate_response(L1, "89161234567", 102.0),
        ev.enter(DESK, "manager-side", 102.0),
        ev.enter(L2, "manager-side", 102.0),
        ev.created(CUSTOMER, 102.1, state=DOWN, **TRUNK),
        ev.dial(L1, CUSTOMER, 102.1, "89161234567@provider"),
    ]


CLICK_TO_CALL = {
    "direction": "outbound",
    "caller": "101",
    "callee": "89161234567",
    "answered_by": None,
    "manager": "101",
    "rang": ["101"],
    "transferred_to": [],
}


def test_local_click_to_call_answered_by_the_customer_is_the_managers_outbound_call() -> None:
    stream = [
        *local_click_to_call_until_customer_dialed(),
        ev.state(CUSTOMER, ev.RINGING, 102.2),
        ev.state(CUSTOMER, ev.UP, 105.0),
        ev.dial_end(L1, CUSTOMER, "ANSWER", 105.0),
        ev.enter(CUSTOMER, "customer-side", 105.0),
        ev.enter(L1, "customer-side", 105.0),
        *hang_up_all(112.0, DESK, L2, L1, CUSTOMER, first_by=DESK),
    ]

    [call] = assemble(stream)

    assert record(call) == {
        **CLICK_TO_CALL,
        "status": "answered",
        "ring": 5,
        "talk": 7,
        "hangup_by": "manager",
    }
    assert (call.origin.value, call.request_id) == ("click_to_call", "req-7")


def test_local_click_to_call_to_a_busy_customer_is_busy_with_no_talk_time() -> None:
    stream = [
        *local_click_to_call_until_customer_dialed(),
        ev.hangup_request(CUSTOMER, 102.5),
        ev.dial_end(L1, CUSTOMER, "BUSY", 102.5),
        ev.hangup(CUSTOMER, 102.5, cause=17),
        *hang_up_all(104.0, L1, L2, DESK),
    ]

    [call] = assemble(stream)

    assert record(call) == {**CLICK_TO_CALL, "status": "busy", "ring": 4, "talk": 0, "hangup_by": None}
    assert call.failure_reason == "busy"


def test_manager_talking_to_the_local_half_while_the_customer_never_answers_is_no_answer() -> None:
    stream = [
        *local_click_to_call_until_customer_dialed(),
        ev.state(CUSTOMER, ev.RINGING, 102.2),
        ev.dial_end(L1, CUSTOMER, "NOANSWER", 122.1),
        ev.hangup(CUSTOMER, 122.1, cause=19),
        *hang_up_all(123.0, L1, L2, DESK),
    ]

    [call] = assemble(stream)

    assert record(call) == {**CLICK_TO_CALL, "status": "no_answer", "ring": 23, "talk": 0, "hangup_by": None}


# --- trunk to trunk -------------------------------------------------------------------------------------

INBOUND_CUSTOMER = ev.ref("2.1", "PJSIP/provider-00000010")
PHONE_101 = ev.ref("2.2", "PJSIP/101-00000011", "2.1")
FORWARD_L1 = ev.ref("2.3", "Local/89167654321@from-internal-00000012;1", "2.1")
FORWARD_L2 = ev.ref("2.4", "Local/89167654321@from-internal-00000012;2", "2.1")
MOBILE = ev.ref("2.5", "PJSIP/provider-00000013", "2.1")


def test_phone_forwarding_to_a_mobile_names_the_mobile_and_the_extension_whose_forward_it_was() -> None:
    """101 answers the Dial with a 302: app_dial dials the forward through a Local channel (13-22)."""
    stream = [
        ev.created(INBOUND_CUSTOMER, 200.0, exten="74951110001", caller="+79160000002", **TRUNK),
        ev.created(PHONE_101, 200.01, state=DOWN),
        ev.dial(INBOUND_CUSTOMER, PHONE_101, 200.01, "101"),
        ev.hangup_request(PHONE_101, 200.05),
        ev.dial_end(INBOUND_CUSTOMER, PHONE_101, "CANCEL", 200.05, forward="89167654321"),
        ev.hangup(PHONE_101, 200.05, cause=16),
        ev.created(FORWARD_L1, 200.06, exten="89167654321", state=DOWN),
        ev.created(FORWARD_L2, 200.06, exten="89167654321"),
        ev.dial(INBOUND_CUSTOMER, FORWARD_L1, 200.06, "89167654321@from-internal"),
        ev.created(MOBILE, 200.07, state=DOWN, **TRUNK),
        ev.dial(FORWARD_L2, MOBILE, 200.07, "89167654321@provider"),
        ev.state(MOBILE, ev.RINGING, 200.1),
        ev.state(MOBILE, ev.UP, 204.0),
        ev.dial_end(FORWARD_L2, MOBILE, "ANSWER", 204.0),
        ev.enter(MOBILE, "far", 204.0),
        ev.enter(FORWARD_L2, "far", 204.0),
        ev.state(FORWARD_L1, ev.UP, 204.0),
        ev.dial_end(INBOUND_CUSTOMER, FORWARD_L1, "ANSWER", 204.0),
        ev.enter(FORWARD_L1, "near", 204.0),
        ev.enter(INBOUND_CUSTOMER, "near", 204.0),
        *hang_up_all(214.0, INBOUND_CUSTOMER, FORWARD_L1, FORWARD_L2, MOBILE, first_by=INBOUND_CUSTOMER),
    ]

    [call] = assemble(stream)

    assert record(call) == {
        "direction": "inbound",
        "status": "answered",
        "caller": "+79160000002",
        "callee": "74951110001",
        "answered_by": "89167654321",
        "manager": "101",
        "rang": [],
        "transferred_to": [],
        "ring": 4,
        "talk": 10,
        "hangup_by": "customer",
    }


FIRST = ev.ref("3.1", "PJSIP/provider-00000020")
SECOND = ev.ref("3.2", "PJSIP/provider-00000021", "3.1")


def click_to_call_between_two_numbers(second_status: str) -> list[AmiEvent]:
    """Originate Channel: PJSIP/89160000001@provider, Exten: 89160000002."""
    return [
        ev.created(FIRST, 300.0, state=DOWN, **TRUNK),
        request_id(FIRST, 300.0),
        ev.dial(None, FIRST, 300.0, "89160000001@provider"),
        ev.state(FIRST, ev.RINGING, 300.5),
        ev.state(FIRST, ev.UP, 303.0),
        ev.dial_end(None, FIRST, "ANSWER", 303.0),
        originate_response(FIRST, "89160000002", 303.0),
        ev.created(SECOND, 303.1, state=DOWN, **TRUNK),
        ev.dial(FIRST, SECOND, 303.1, "89160000002@provider"),
        ev.state(SECOND, ev.RINGING, 303.2),
        ev.state(SECOND, ev.UP, 306.0),
        ev.dial_end(FIRST, SECOND, second_status, 306.0),
    ]


def test_click_to_call_between_two_outside_numbers_is_answered_when_they_are_bridged() -> None:
    stream = [
        *click_to_call_between_two_numbers("ANSWER"),
        ev.enter(SECOND, "b", 306.0),
        ev.enter(FIRST, "b", 306.0),
        *hang_up_all(316.0, SECOND, FIRST, first_by=SECOND),
    ]

    [call] = assemble(stream)

    assert record(call) == {
        "direction": "outbound",
        "status": "answered",
        "caller": "89160000001",
        "callee": "89160000002",
        "answered_by": "89160000002",
        "manager": None,
        "rang": [],
        "transferred_to": [],
        "ring": 6,
        "talk": 10,
        "hangup_by": "manager",
    }


def test_dial_status_answer_is_never_a_failure_even_when_the_bridge_never_came() -> None:
    stream = [
        *click_to_call_between_two_numbers("ANSWER"),
        *hang_up_all(306.0, FIRST, SECOND, first_by=FIRST),
    ]

    [call] = assemble(stream)

    assert (call.status.value, call.failure_reason, call.answered_by) == ("answered", None, "89160000002")


# --- pickups --------------------------------------------------------------------------------------------

CALLER = ev.ref("4.1", "PJSIP/provider-00000030")
RINGING_101 = ev.ref("4.2", "PJSIP/101-00000031", "4.1")
PICKER = ev.ref("4.3", "PJSIP/102-00000032")
PICKER_IN_CALL = ev.ref("4.3", "PJSIP/102-00000032", "4.1")


def ringing_at_101() -> list[AmiEvent]:
    return [
        ev.created(CALLER, 400.0, exten="74951110001", caller="+79160000004", **TRUNK),
        ev.created(RINGING_101, 400.01, state=DOWN),
        ev.dial(CALLER, RINGING_101, 400.01, "101"),
        ev.state(RINGING_101, ev.RINGING, 400.1),
    ]


PICKED_UP = {
    "direction": "inbound",
    "status": "answered",
    "caller": "+79160000004",
    "callee": "74951110001",
    "answered_by": "102",
    "manager": "102",
    "rang": ["101"],
    "transferred_to": [],
    "ring": 3,
    "talk": 10,
    "hangup_by": "customer",
}


def test_directed_pickup_announced_by_a_pickup_event_is_answered_by_the_picker() -> None:
    """Asterisk 22: `**101` runs PickupChan(PJSIP/101); the picker's channel, a call of its own until
    then, is named by the Pickup event and joins the caller's bridge under the caller's linkedid."""
    stream = [
        *ringing_at_101(),
        ev.created(PICKER, 402.0, exten="**101", caller="102"),
        ev.state(PICKER, ev.UP, 403.0),
        ev.pickup(PICKER, RINGING_101, 403.0),
        ev.dial_end(CALLER, RINGING_101, "CANCEL", 403.0),
        ev.hangup(RINGING_101, 403.0, cause=26),
        ev.state(CALLER, ev.UP, 403.0),
        ev.enter(PICKER_IN_CALL, "b", 403.0),
        ev.enter(CALLER, "b", 403.0),
        *hang_up_all(413.0, CALLER, PICKER_IN_CALL, first_by=CALLER),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [PICKED_UP]


def test_group_pickup_reached_by_the_callers_dial_is_one_call_answered_by_the_picker() -> None:
    """Asterisk 13: after `*8` the caller's Dial() announces the picker's channel, still under its own
    linkedid; only later events carry the caller's."""
    picker = ev.ref("4.3", "PJSIP/102-00000032")
    stream = [
        *ringing_at_101(),
        ev.created(picker, 402.0, exten="*8", caller="102"),
        ev.state(picker, ev.UP, 403.0),
        ev.dial_end(CALLER, RINGING_101, "CANCEL", 403.0),
        ev.dial(CALLER, picker, 403.0, "101"),
        ev.dial_end(CALLER, picker, "ANSWER", 403.0),
        ev.hangup(RINGING_101, 403.0, cause=26),
        ev.enter(picker, "b", 403.0),
        ev.enter(CALLER, "b", 403.0),
        ev.leave(PICKER_IN_CALL, "b", 413.0),
        *hang_up_all(413.0, CALLER, PICKER_IN_CALL, first_by=CALLER),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [PICKED_UP]


# --- rang: phones that really rang -----------------------------------------------------------------------

GROUP_CALLER = ev.ref("5.1", "PJSIP/provider-00000040")
DND_101 = ev.ref("5.2", "PJSIP/101-00000041", "5.1")
RINGS_102 = ev.ref("5.3", "PJSIP/102-00000042", "5.1")
OFFLINE_103 = ev.ref("5.4", "PJSIP/103-00000043", "5.1")


def test_phones_dialed_but_never_ringing_are_not_in_rang() -> None:
    """Ring group 101, 102, 103: 101 refuses for DND (480), 103 never answers the INVITE, 102 rings."""
    stream = [
        ev.created(GROUP_CALLER, 500.0, exten="74951110002", caller="+79160000005", **TRUNK),
        *(ev.created(r, 500.01, state=DOWN) for r in (DND_101, RINGS_102, OFFLINE_103)),
        *(ev.dial(GROUP_CALLER, r, 500.01, r.channel[6:9]) for r in (DND_101, RINGS_102, OFFLINE_103)),
        ev.hangup_request(DND_101, 500.05),
        ev.dial_end(GROUP_CALLER, DND_101, "CHANUNAVAIL", 500.05),
        ev.hangup(DND_101, 500.05, cause=20),
        ev.state(RINGS_102, ev.RINGING, 500.1),
        ev.dial_end(GROUP_CALLER, RINGS_102, "CANCEL", 510.0),
        ev.dial_end(GROUP_CALLER, OFFLINE_103, "CANCEL", 510.0),
        ev.hangup_request(GROUP_CALLER, 510.0),
        *hang_up_all(510.0, RINGS_102, OFFLINE_103, GROUP_CALLER),
    ]

    [call] = assemble(stream)

    assert (call.status.value, list(call.rang), call.abandoned) == ("missed", ["102"], True)


# --- transfers ------------------------------------------------------------------------------------------

IN = ev.ref("6.1", "PJSIP/provider-00000050")
AGENT = ev.ref("6.2", "PJSIP/101-00000051", "6.1")
TARGET = ev.ref("6.3", "PJSIP/103-00000052", "6.1")


def answered_by_101() -> list[AmiEvent]:
    return [
        ev.created(IN, 600.0, exten="74951110007", caller="+79160000006", **TRUNK),
        ev.created(AGENT, 600.01, state=DOWN),
        ev.dial(IN, AGENT, 600.01, "101"),
        ev.state(AGENT, ev.RINGING, 600.1),
        ev.state(AGENT, ev.UP, 602.0),
        ev.dial_end(IN, AGENT, "ANSWER", 602.0),
        ev.state(IN, ev.UP, 602.0),
        ev.enter(AGENT, "first", 602.0),
        ev.enter(IN, "first", 602.0),
    ]


def blind_transfer_of_the_customer_to_103(at: float) -> list[AmiEvent]:
    """BlindTransfer by 101: 101 leaves; the customer runs the dialplan again and dials 103."""
    return [
        ev.transfer(AGENT, IN, at),
        ev.leave(AGENT, "first", at),
        ev.hangup_request(AGENT, at),
        ev.hangup(AGENT, at),
        ev.leave(IN, "first", at),
        ev.created(TARGET, at + 0.01, state=DOWN),
        ev.dial(IN, TARGET, at + 0.01, "103"),
        ev.state(TARGET, ev.RINGING, at + 0.1),
    ]


TRANSFERRED = {
    "direction": "inbound",
    "status": "answered",
    "caller": "+79160000006",
    "callee": "74951110007",
    "answered_by": "101",
    "manager": "101",
    "rang": ["101", "103"],
    "transferred_to": ["103"],
    "ring": 2,
    "hangup_by": "customer",
}


def test_blind_transfer_hands_the_customer_to_the_target_who_answers() -> None:
    stream = [
        *answered_by_101(),
        *blind_transfer_of_the_customer_to_103(610.0),
        ev.state(TARGET, ev.UP, 613.0),
        ev.dial_end(IN, TARGET, "ANSWER", 613.0),
        ev.enter(TARGET, "second", 613.0),
        ev.enter(IN, "second", 613.0),
        *hang_up_all(640.0, IN, TARGET, first_by=IN),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [{**TRANSFERRED, "talk": 38}]


def test_blind_transfer_to_a_busy_target_leaves_the_call_as_it_was() -> None:
    stream = [
        *answered_by_101(),
        *blind_transfer_of_the_customer_to_103(610.0)[:-1],
        ev.hangup_request(TARGET, 610.05),
        ev.dial_end(IN, TARGET, "BUSY", 610.05),
        ev.hangup(TARGET, 610.05, cause=17),
        *hang_up_all(612.0, IN, first_by=IN),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [{**TRANSFERRED, "transferred_to": [], "talk": 10}]


CONSULT_L1 = ev.ref("6.4", "Local/103@from-internal-00000053;1", "6.1")
CONSULT_L2 = ev.ref("6.5", "Local/103@from-internal-00000053;2", "6.1")


def consultation_ringing_103(at: float) -> list[AmiEvent]:
    """Atxfer (`*2`, or the AMI action): 101 leaves the customer on hold and calls 103 through Local."""
    return [
        ev.created(CONSULT_L1, at, exten="103", state=DOWN),
        ev.created(CONSULT_L2, at, exten="103"),
        ev.enter(CONSULT_L1, "consult", at),
        ev.leave(AGENT, "first", at),
        ev.enter(AGENT, "consult", at),
        ev.created(TARGET, at + 0.01, state=DOWN),
        ev.dial(CONSULT_L2, TARGET, at + 0.01, "103"),
        ev.state(TARGET, ev.RINGING, at + 0.1),
        ev.state(CONSULT_L1, ev.RINGING, at + 0.1),
    ]


def test_blonde_transfer_completed_before_the_target_answers_hands_the_call_to_the_target() -> None:
    stream = [
        *answered_by_101(),
        *consultation_ringing_103(610.0),
        # 101 hangs up while 103 still rings: the customer's bridge takes the ringing Local half.
        ev.hangup_request(AGENT, 612.0),
        ev.leave(CONSULT_L1, "consult", 612.0),
        ev.enter(CONSULT_L1, "first", 612.0),
        ev.leave(AGENT, "consult", 612.0),
        ev.transfer(AGENT, IN, 612.0, attended=True),
        ev.hangup(AGENT, 612.0),
        ev.state(TARGET, ev.UP, 615.0),
        ev.dial_end(CONSULT_L2, TARGET, "ANSWER", 615.0),
        ev.state(CONSULT_L1, ev.UP, 615.0),
        ev.enter(TARGET, "third", 615.0),
        ev.enter(CONSULT_L2, "third", 615.0),
        *hang_up_all(640.0, IN, CONSULT_L1, CONSULT_L2, TARGET, first_by=IN),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [{**TRANSFERRED, "talk": 38}]


def test_consultation_the_target_never_answers_leaves_the_call_with_the_first_agent() -> None:
    stream = [
        *answered_by_101(),
        *consultation_ringing_103(610.0),
        # 101 gives up on the consultation and goes back to the customer.
        ev.hangup_request(CONSULT_L1, 620.0),
        ev.dial_end(CONSULT_L2, TARGET, "CANCEL", 620.0),
        ev.leave(CONSULT_L1, "consult", 620.0),
        *hang_up_all(620.0, TARGET, CONSULT_L2, CONSULT_L1),
        ev.leave(AGENT, "consult", 620.1),
        ev.enter(AGENT, "first", 620.1),
        *hang_up_all(630.0, IN, AGENT, first_by=IN),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [{**TRANSFERRED, "transferred_to": [], "talk": 28}]


def test_consultation_answered_then_abandoned_is_its_own_internal_call() -> None:
    """101 consults 103, they talk, and 101 goes back to the customer: two conversations, two records."""
    stream = [
        *answered_by_101(),
        *consultation_ringing_103(610.0),
        ev.state(TARGET, ev.UP, 612.0),
        ev.dial_end(CONSULT_L2, TARGET, "ANSWER", 612.0),
        ev.state(CONSULT_L1, ev.UP, 612.0),
        ev.enter(TARGET, "third", 612.0),
        ev.enter(CONSULT_L2, "third", 612.0),
        ev.hangup_request(TARGET, 620.0),
        ev.leave(TARGET, "third", 620.0),
        ev.leave(CONSULT_L2, "third", 620.0),
        *hang_up_all(620.0, TARGET, CONSULT_L2),
        ev.leave(CONSULT_L1, "consult", 620.0),
        ev.hangup(CONSULT_L1, 620.0),
        ev.leave(AGENT, "consult", 620.1),
        ev.enter(AGENT, "first", 620.1),
        *hang_up_all(630.0, IN, AGENT, first_by=IN),
    ]

    calls = assemble(stream)

    assert [record(call) for call in calls] == [
        {**TRANSFERRED, "rang": ["101"], "transferred_to": [], "talk": 28},
        {
            "direction": "internal",
            "status": "answered",
            "caller": "101",
            "callee": "103",
            "answered_by": "103",
            "manager": "103",
            "rang": ["103"],
            "transferred_to": [],
            "ring": 2,
            "talk": 8,
            "hangup_by": None,
        },
    ]
    assert calls[1].pbx_call_id == CONSULT_L1.uniqueid


CALLER_101 = ev.ref("7.1", "PJSIP/101-00000060")
CALLEE_102 = ev.ref("7.2", "PJSIP/102-00000061", "7.1")
TARGET_103 = ev.ref("7.3", "PJSIP/103-00000062", "7.1")


def test_internal_call_the_caller_transfers_lands_with_the_target_in_transferred_to() -> None:
    """101 calls 102, then 101 (the caller) blind-transfers 102 to 103. Asterisk before 13.? names no
    transferee in BlindTransfer: the party 101 talked with is meant."""
    stream = [
        ev.created(CALLER_101, 700.0, exten="102", caller="101"),
        ev.created(CALLEE_102, 700.01, state=DOWN),
        ev.dial(CALLER_101, CALLEE_102, 700.01, "102"),
        ev.state(CALLEE_102, ev.RINGING, 700.1),
        ev.state(CALLEE_102, ev.UP, 702.0),
        ev.dial_end(CALLER_101, CALLEE_102, "ANSWER", 702.0),
        ev.enter(CALLEE_102, "first", 702.0),
        ev.enter(CALLER_101, "first", 702.0),
        ev.transfer(CALLER_101, None, 710.0),
        ev.leave(CALLER_101, "first", 710.0),
        ev.hangup_request(CALLER_101, 710.0),
        ev.hangup(CALLER_101, 710.0),
        ev.leave(CALLEE_102, "first", 710.0),
        ev.created(TARGET_103, 710.01, state=DOWN),
        ev.dial(CALLEE_102, TARGET_103, 710.01, "103"),
        ev.state(TARGET_103, ev.RINGING, 710.1),
        ev.state(TARGET_103, ev.UP, 712.0),
        ev.dial_end(CALLEE_102, TARGET_103, "ANSWER", 712.0),
        ev.enter(TARGET_103, "second", 712.0),
        ev.enter(CALLEE_102, "second", 712.0),
        *hang_up_all(720.0, TARGET_103, CALLEE_102, first_by=TARGET_103),
    ]

    [call] = assemble(stream)

    assert record(call) == {
        "direction": "internal",
        "status": "answered",
        "caller": "101",
        "callee": "102",
        "answered_by": "102",
        "manager": "102",
        "rang": ["102", "103"],
        "transferred_to": ["103"],
        "ring": 2,
        "talk": 18,
        "hangup_by": "callee",
    }


# --- a call that ended while the link was down --------------------------------------------------------------


def test_answered_call_closed_after_a_disconnect_keeps_its_talk_time_up_to_the_last_event_seen() -> None:
    other = ev.ref("8.9", "PJSIP/provider-00000099")
    assembler = CallAssembler(PBX)
    for event in [
        *answered_by_101(),
        # Nothing more about this call; the PBX is still heard from (another call) until 650.
        ev.created(other, 650.0, exten="74951110001", caller="+79160000009", **TRUNK),
    ]:
        assert assembler.feed(event) == []
    assembler.mark_stale()

    completed = assembler.reconcile(
        [ev.snapshot(other, 700.0, state_value=ev.RING, context="from-trunk")], 700.0
    )

    [call] = completed
    assert (call.status.value, call.answered_by, call.reconciled) == ("answered", "101", True)
    assert round(call.talk_seconds) == 48


# --- queues: how long the caller waited ---------------------------------------------------------------------

QUEUED = ev.ref("9.1", "PJSIP/provider-000000a1")
QUEUE_AGENT = ev.ref("9.2", "PJSIP/102-000000a2", "9.1")


def answered_by_the_pbx_and_queued(at: float) -> list[AmiEvent]:
    """Answer() on the carrier leg, then Queue(sales): the PBX's answer is not a person's."""
    return [
        ev.created(QUEUED, at, exten="74951110003", caller="+79160000009", **TRUNK),
        ev.state(QUEUED, ev.UP, at),
        ev.queue_join(QUEUED, "sales", at + 0.5),
    ]


def agent_answers(at: float) -> list[AmiEvent]:
    return [
        ev.created(QUEUE_AGENT, at - 2.0, state=DOWN),
        ev.dial(QUEUED, QUEUE_AGENT, at - 2.0, "PJSIP/102"),
        ev.state(QUEUE_AGENT, ev.RINGING, at - 1.9),
        ev.state(QUEUE_AGENT, ev.UP, at),
        ev.dial_end(QUEUED, QUEUE_AGENT, "ANSWER", at),
        ev.queue_leave(QUEUED, "sales", at),
        ev.enter(QUEUE_AGENT, "queue", at + 0.001),
        ev.enter(QUEUED, "queue", at + 0.002),
    ]


def test_caller_queued_twice_waits_from_the_first_join_to_the_agents_answer() -> None:
    stream = [
        *answered_by_the_pbx_and_queued(900.0),
        # The first queue times out; the dialplan puts the caller in the overflow queue.
        ev.queue_leave(QUEUED, "sales", 930.5),
        ev.queue_join(QUEUED, "overflow", 931.0),
        *agent_answers(941.0),
        *hang_up_all(960.0, QUEUED, QUEUE_AGENT, first_by=QUEUED),
    ]

    [call] = assemble(stream)

    assert (call.queue, call.status.value, call.answered_by) == ("sales", "answered", "102")
    assert call.queue_wait_seconds == 40.502  # 900.5 -> 941.002, when the caller entered the agent's bridge


def test_caller_leaving_the_queue_unanswered_waits_until_it_left_not_until_the_call_ends() -> None:
    stream = [
        *answered_by_the_pbx_and_queued(900.0),
        # The queue's timeout: the dialplan goes on (a prompt) for another 25 s, then hangs up itself.
        ev.queue_leave(QUEUED, "sales", 930.5),
        ev.hangup_request(QUEUED, 955.5, soft=True),
        ev.hangup(QUEUED, 955.5),
    ]

    [call] = assemble(stream)

    assert (call.status.value, call.abandoned, call.queue_wait_seconds) == ("missed", False, 30.0)


def test_abandon_ends_the_wait_before_the_leave_that_follows_it() -> None:
    stream = [
        *answered_by_the_pbx_and_queued(900.0),
        ev.hangup_request(QUEUED, 912.0),
        ev.queue_abandon(QUEUED, "sales", 912.25),
        ev.queue_leave(QUEUED, "sales", 912.75),
        ev.hangup(QUEUED, 913.0),
    ]

    [call] = assemble(stream)

    assert (call.abandoned, call.queue_wait_seconds) == (True, 11.75)


def test_caller_whose_leave_was_never_seen_waits_until_the_call_ends() -> None:
    stream = [*answered_by_the_pbx_and_queued(900.0), ev.hangup(QUEUED, 920.0)]

    [call] = assemble(stream)

    assert call.queue_wait_seconds == 19.5


def test_call_that_never_joined_a_queue_has_no_queue_wait() -> None:
    [call] = assemble([*answered_by_101(), *hang_up_all(620.0, IN, AGENT, first_by=IN)])

    assert (call.queue, call.queue_wait_seconds) == (None, None)
