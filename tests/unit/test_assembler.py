"""The call assembler, fed the typed events of real captures and of scripted scenarios."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest

from ami.assembler import CallAssembler
from ami.events import AmiEvent, BridgeEntered, VariableSet
from calltracking.calls.record import CallRecord
from calltracking.config import PbxSettings
from tests.helpers import ami_events as ev
from tests.helpers.captures import events

PBX = PbxSettings(name="office")


def assemble(stream: Iterable[AmiEvent], pbx: PbxSettings = PBX) -> tuple[CallAssembler, list[CallRecord]]:
    assembler = CallAssembler(pbx)
    calls = [call for event in stream for call in assembler.feed(event)]
    return assembler, calls


def summary(call: CallRecord) -> dict[str, Any]:
    return {
        "direction": call.direction.value,
        "status": call.status.value,
        "caller": call.caller,
        "callee": call.callee,
        "did": call.did,
        "answered_by": call.answered_by,
        "manager": call.manager,
        "rang": list(call.rang),
        "queue": call.queue,
        "queue_wait": call.queue_wait_seconds,
        "origin": call.origin.value,
        "request_id": call.request_id,
        "abandoned": call.abandoned,
        "transferred_to": list(call.transferred_to),
        "ring": round(call.ring_seconds),
        "talk": round(call.talk_seconds),
        "hangup_by": call.hangup_by,
        "failure_reason": call.failure_reason,
        "reconciled": call.reconciled,
    }


INBOUND = {
    "direction": "inbound",
    "origin": "pbx",
    "request_id": None,
    "queue": None,
    "queue_wait": None,
    "transferred_to": [],
    "reconciled": False,
    "abandoned": False,
    "failure_reason": None,
}
OUTBOUND = {
    "direction": "outbound",
    "did": None,
    "answered_by": None,
    "queue": None,
    "queue_wait": None,
    "transferred_to": [],
    "reconciled": False,
    "abandoned": False,
}

STORIES: dict[str, dict[str, Any]] = {
    "click_to_call_local": {
        **OUTBOUND,
        "status": "answered",
        "caller": "101",
        "callee": "89162223344",
        "manager": "101",
        "rang": ["101"],
        "origin": "click_to_call",
        "request_id": "95c16137-45e4-4992-8e05-7513979d9121",
        "ring": 4,
        "talk": 5,
        "hangup_by": "manager",
        "failure_reason": None,
    },
    "forward_to_mobile": {
        **INBOUND,
        "status": "answered",
        "caller": "+79167001122",
        "callee": "74951110006",
        "did": "74951110006",
        "answered_by": "89167654321",
        "manager": None,
        "rang": ["101"],
        "ring": 6,
        "talk": 6,
        "hangup_by": "customer",
    },
    "attended_transfer": {
        **INBOUND,
        "status": "answered",
        "caller": "+79167770022",
        "callee": "74951110007",
        "did": "74951110007",
        "answered_by": "101",
        "manager": "101",
        "rang": ["101", "103"],
        "transferred_to": ["103"],
        "ring": 2,
        "talk": 20,
        "hangup_by": "customer",
    },
    "ivr_hangup": {
        **INBOUND,
        "status": "missed",
        "caller": "+79035557788",
        "callee": "74951110008",
        "did": "74951110008",
        "answered_by": None,
        "manager": None,
        "rang": [],
        "abandoned": True,
        "ring": 3,
        "talk": 0,
        "hangup_by": "customer",
    },
    "inbound_single_answered": {
        **INBOUND,
        "status": "answered",
        "caller": "+79161234567",
        "callee": "74951110001",
        "did": "74951110001",
        "answered_by": "101",
        "manager": "101",
        "rang": ["101"],
        "ring": 2,
        "talk": 6,
        "hangup_by": "customer",
    },
    "inbound_single_missed": {
        **INBOUND,
        "status": "missed",
        "caller": "+79035550101",
        "callee": "74951110001",
        "did": "74951110001",
        "answered_by": None,
        "manager": None,
        "rang": ["101"],
        "ring": 12,
        "talk": 0,
        "hangup_by": None,
    },
    "inbound_single_busy": {
        **INBOUND,
        "status": "busy",
        "caller": "+79035550102",
        "callee": "74951110001",
        "did": "74951110001",
        "answered_by": None,
        "manager": None,
        "rang": ["101"],
        "ring": 0,
        "talk": 0,
        "hangup_by": None,
        "failure_reason": "busy",
    },
    "inbound_customer_cancel": {
        **INBOUND,
        "status": "missed",
        "caller": "+79035550103",
        "callee": "74951110001",
        "did": "74951110001",
        "answered_by": None,
        "manager": None,
        "rang": ["101"],
        "ring": 3,
        "talk": 0,
        "hangup_by": "customer",
        "abandoned": True,
    },
    "inbound_group_answered": {
        **INBOUND,
        "status": "answered",
        "caller": "+79161234567",
        "callee": "74951110002",
        "did": "74951110002",
        "answered_by": "102",
        "manager": "102",
        "rang": ["102", "101"],  # in the order the phones reported ringing
        "ring": 3,
        "talk": 6,
        "hangup_by": "customer",
    },
    "inbound_queue_answered": {
        **INBOUND,
        "status": "answered",
        "caller": "+79261112233",
        "callee": "74951110003",
        "did": "74951110003",
        "answered_by": "103",
        "manager": "103",
        "rang": ["102", "103"],
        "queue": "sales",
        # QueueCallerJoin at 1795349980.856335, the caller bridged with 103 at 1795349983.866472.
        "queue_wait": 3.01,
        "ring": 3,
        "talk": 6,
        "hangup_by": "customer",
    },
    "inbound_queue_abandoned": {
        **INBOUND,
        "status": "missed",
        "caller": "+79261112244",
        "callee": "74951110003",
        "did": "74951110003",
        "answered_by": None,
        "manager": None,
        "rang": ["102", "103"],
        "queue": "sales",
        # QueueCallerJoin at 1795349992.492278, QueueCallerAbandon at 1795350000.484922 (Leave 0.1 ms later).
        "queue_wait": 7.993,
        "ring": 8,
        "talk": 0,
        "hangup_by": "customer",
        "abandoned": True,
    },
    "outbound_answered": {
        **OUTBOUND,
        "status": "answered",
        "caller": "101",
        "callee": "89161234567",
        "manager": "101",
        "rang": [],
        "origin": "pbx",
        "request_id": None,
        "ring": 2,
        "talk": 6,
        "hangup_by": "manager",
        "failure_reason": None,
    },
    "outbound_busy": {
        **OUTBOUND,
        "status": "busy",
        "caller": "102",
        "callee": "89169990000",
        "manager": "102",
        "rang": [],
        "origin": "pbx",
        "request_id": None,
        "ring": 0,
        "talk": 0,
        "hangup_by": None,
        "failure_reason": "busy",
    },
    "internal_call": {
        "direction": "internal",
        "status": "answered",
        "caller": "101",
        "callee": "102",
        "did": None,
        "answered_by": "102",
        "manager": "102",
        "rang": ["102"],
        "queue": None,
        "queue_wait": None,
        "origin": "pbx",
        "request_id": None,
        "abandoned": False,
        "transferred_to": [],
        "ring": 2,
        "talk": 4,
        "hangup_by": "caller",
        "failure_reason": None,
        "reconciled": False,
    },
    "click_to_call": {
        **OUTBOUND,
        "status": "answered",
        "caller": "101",
        "callee": "89161234567",
        "manager": "101",
        "rang": ["101"],
        "origin": "click_to_call",
        "request_id": "req-42",
        "ring": 4,
        "talk": 5,
        "hangup_by": "manager",
        "failure_reason": None,
    },
    "click_to_call_manager_no_answer": {
        **OUTBOUND,
        "status": "failed",
        "caller": "103",
        "callee": "89165550000",
        "manager": "103",
        "rang": ["103"],
        "origin": "click_to_call",
        "request_id": "req-43",
        "ring": 8,
        "talk": 0,
        "hangup_by": None,
        "failure_reason": "manager_no_answer",
    },
}


@pytest.mark.parametrize("name", sorted(STORIES))
def test_capture_assembles_into_the_call_that_happened(name: str) -> None:
    assembler, calls = assemble(events(name))

    assert [summary(call) for call in calls] == [STORIES[name]]
    assert assembler.live_calls == 0


def test_inbound_call_keeps_numbers_in_e164_and_extensions_as_extensions() -> None:
    _, [inbound] = assemble(events("inbound_single_answered"))
    _, [outbound] = assemble(events("outbound_answered"))

    assert (inbound.caller_number, inbound.callee_number) == ("+79161234567", "+74951110001")
    assert (outbound.caller_number, outbound.callee_number) == ("101", "+79161234567")


def test_recording_is_kept_with_the_channel_that_ran_mixmonitor() -> None:
    _, [call] = assemble(events("inbound_single_answered"))

    assert call.recording_file == (
        "/var/spool/asterisk/monitor/2026/11/22/in-74951110001-+79161234567-20261122-121855-1795349935.0.wav"
    )
    assert call.recording_channel == "PJSIP/provider-00000000"


def test_queue_call_answered_by_the_pbx_counts_talk_from_the_agent() -> None:
    _, [call] = assemble(events("inbound_queue_answered"))

    carrier_leg = call.legs[0]
    assert carrier_leg.answered_at is not None and call.answered_at is not None
    assert (call.answered_at - carrier_leg.answered_at).total_seconds() > 2.5


def test_direction_comes_from_configured_trunks_not_number_length() -> None:
    # The same capture, on a PBX where the carrier's context is not a trunk context but the endpoint is.
    pbx = PbxSettings(name="office", trunk_contexts=(), trunk_endpoints=("provider",))
    _, [call] = assemble(events("outbound_answered"), pbx)
    assert call.direction.value == "outbound"

    nothing_is_a_trunk = PbxSettings(name="office", trunk_contexts=())
    _, [call] = assemble(events("outbound_answered"), nothing_is_a_trunk)
    assert call.direction.value == "internal"


def test_attended_transfer_merges_linkedids_and_lists_who_the_caller_was_handed_to() -> None:
    caller = ev.ref("10.1", "PJSIP/provider-00000001")
    agent = ev.ref("10.2", "PJSIP/101-00000002", linkedid="10.1")
    consult = ev.ref("20.1", "PJSIP/101-00000003")
    target = ev.ref("20.2", "PJSIP/102-00000004", linkedid="20.1")
    target_after = ev.ref("20.2", "PJSIP/102-00000004", linkedid="10.1")
    stream: list[AmiEvent] = [
        ev.created(caller, 100.0, context="from-trunk", exten="74950000000", caller="+79160000001"),
        ev.created(agent, 100.1, state=ev.RING),
        ev.dial(caller, agent, 100.1),
        ev.state(agent, ev.RINGING, 100.2),
        ev.state(agent, ev.UP, 103.0),
        ev.dial_end(caller, agent, "ANSWER", 103.0),
        ev.enter(agent, "b1", 103.0),
        ev.enter(caller, "b1", 103.0),
        # The agent puts the caller on hold and calls 102 from a second line (a new call, new linkedid).
        ev.created(consult, 110.0, exten="102"),
        ev.created(target, 110.1),
        ev.dial(consult, target, 110.1),
        ev.state(target, ev.RINGING, 110.2),
        ev.state(target, ev.UP, 112.0),
        ev.enter(target, "b2", 112.0),
        ev.enter(consult, "b2", 112.0),
        # Transfer completes: the caller's bridge takes 102; the agent's legs go away.
        ev.leave(agent, "b1", 120.0),
        ev.hangup(agent, 120.0),
        ev.leave(target, "b2", 120.0),
        ev.enter(target_after, "b1", 120.0),
        ev.hangup(consult, 120.1),
        ev.hangup_request(caller, 150.0),
        ev.hangup(caller, 150.0),
        ev.hangup(target_after, 150.1),
    ]

    assembler, calls = assemble(stream)

    assert [summary(call) for call in calls] == [
        {
            **INBOUND,
            "status": "answered",
            "caller": "+79160000001",
            "callee": "74950000000",
            "did": "74950000000",
            "answered_by": "101",
            "manager": "101",
            "rang": ["101", "102"],
            "transferred_to": ["102"],
            "ring": 3,
            "talk": 47,
            "hangup_by": "customer",
        }
    ]
    assert calls[0].pbx_call_id == "10.1"
    assert assembler.live_calls == 0


def test_call_that_ended_while_disconnected_is_closed_from_what_is_known() -> None:
    caller = ev.ref("30.1", "PJSIP/provider-00000010")
    agent = ev.ref("30.2", "PJSIP/101-00000011", linkedid="30.1")
    assembler, calls = assemble(
        [
            ev.created(caller, 200.0, context="from-trunk", exten="74950000000", caller="+79160000002"),
            ev.created(agent, 200.1),
            ev.dial(caller, agent, 200.1),
            ev.state(agent, ev.UP, 202.0),
            ev.enter(agent, "b9", 202.0),
            ev.enter(caller, "b9", 202.0),
        ]
    )
    assert calls == []

    assembler.mark_stale()
    [call] = assembler.reconcile([], at=400.0)

    assert call.reconciled is True
    assert (call.status.value, call.answered_by, call.talk_seconds) == ("answered", "101", 0.0)
    assert assembler.live_calls == 0


def test_call_still_alive_after_reconnect_goes_on_and_is_logged_once() -> None:
    caller = ev.ref("40.1", "PJSIP/provider-00000020")
    agent = ev.ref("40.2", "PJSIP/101-00000021", linkedid="40.1")
    assembler, _ = assemble(
        [
            ev.created(caller, 300.0, context="from-trunk", exten="74950000000", caller="+79160000003"),
            ev.created(agent, 300.1),
            ev.dial(caller, agent, 300.1),
            ev.state(agent, ev.UP, 301.0),
            ev.enter(agent, "b7", 301.0),
            ev.enter(caller, "b7", 301.0),
        ]
    )
    assembler.mark_stale()
    listed = [
        ev.snapshot(caller, 310.0, bridge="b7", context="from-trunk"),
        ev.snapshot(agent, 310.0, bridge="b7"),
    ]

    assert assembler.reconcile(listed, at=310.0) == []
    calls = [c for e in [ev.hangup(caller, 320.0), ev.hangup(agent, 320.1)] for c in assembler.feed(e)]

    assert [(c.status.value, c.reconciled, round(c.talk_seconds)) for c in calls] == [("answered", False, 19)]


def test_service_started_mid_call_rebuilds_the_call_from_the_snapshot() -> None:
    caller = ev.ref("50.1", "PJSIP/provider-00000030")
    agent = ev.ref("50.2", "PJSIP/102-00000031", linkedid="50.1")
    assembler = CallAssembler(PBX)
    listed = [
        ev.snapshot(
            caller,
            1000.0,
            bridge="b5",
            duration=65,
            context="from-trunk",
            exten="74950000000",
            caller="+79160000004",
        ),
        ev.snapshot(agent, 1000.0, bridge="b5", duration=60),
    ]
    assert assembler.reconcile(listed, at=1000.0) == []

    calls = [c for e in [ev.hangup(agent, 1010.0), ev.hangup(caller, 1010.1)] for c in assembler.feed(e)]

    [call] = calls
    assert (call.direction.value, call.status.value, call.answered_by, call.reconciled) == (
        "inbound",
        "answered",
        "102",
        True,
    )
    assert call.started_at.timestamp() == pytest.approx(935.0)


def test_events_for_channels_never_seen_are_skipped() -> None:
    stranger = ev.ref("60.1", "PJSIP/101-00000040")
    assembler, calls = assemble(
        [
            ev.state(stranger, ev.UP, 1.0),
            ev.enter(stranger, "bx", 1.0),
            ev.hangup(stranger, 2.0),
        ]
    )

    assert calls == []
    assert assembler.skipped_events == 3


def test_outbound_call_the_carrier_rejects_with_congestion_fails() -> None:
    manager = ev.ref("70.1", "PJSIP/101-00000050")
    carrier = ev.ref("70.2", "PJSIP/provider-00000051", linkedid="70.1")
    _, [call] = assemble(
        [
            ev.created(manager, 10.0, exten="84950000000", caller="101"),
            ev.created(carrier, 10.1, context="from-trunk"),
            ev.dial(manager, carrier, 10.1),
            ev.dial_end(manager, carrier, "CONGESTION", 10.5),
            ev.hangup(carrier, 10.5, cause=34),
            ev.hangup(manager, 10.6),
        ]
    )

    assert (call.direction.value, call.status.value, call.failure_reason) == (
        "outbound",
        "failed",
        "congestion",
    )


def test_duplicate_hangup_does_not_complete_a_call_twice() -> None:
    caller = ev.ref("80.1", "PJSIP/101-00000060")
    assembler, calls = assemble(
        [
            ev.created(caller, 1.0, exten="*43"),
            ev.hangup(caller, 2.0),
            ev.hangup(caller, 2.0),
        ]
    )

    assert len(calls) == 1
    assert assembler.skipped_events == 1


def test_live_calls_survive_a_restart_through_exported_state() -> None:
    stream = events("inbound_queue_answered")
    half = len(stream) // 2
    before, _ = assemble(stream[:half])
    saved = json.loads(json.dumps(before.export_state()))

    after = CallAssembler(PBX)
    assert after.restore_state(saved) == 1
    calls = [call for event in stream[half:] for call in after.feed(event)]

    assert [summary(call) for call in calls] == [STORIES["inbound_queue_answered"]]


def test_restored_call_that_ended_during_the_restart_is_closed_reconciled() -> None:
    stream = events("inbound_single_answered")
    talking = max(i for i, event in enumerate(stream) if isinstance(event, BridgeEntered)) + 1
    before, _ = assemble(stream[:talking])
    after = CallAssembler(PBX)
    after.restore_state(json.loads(json.dumps(before.export_state())))

    [call] = after.reconcile([], at=0.0)

    assert (call.status.value, call.answered_by, call.reconciled) == ("answered", "101", True)
    assert after.live_calls == 0


def test_mixmonitor_start_alone_names_the_recording_channel() -> None:
    stream = [e for e in events("outbound_answered") if not isinstance(e, VariableSet)]
    _, [call] = assemble(stream)

    assert (call.recording_file, call.recording_channel) == (None, "PJSIP/101-00000011")


def progress_of(name: str) -> list[tuple[str, str | None, str | None]]:
    assembler = CallAssembler(PBX)
    progress = []
    for event in events(name):
        assembler.feed(event)
        progress.extend(assembler.drain_progress())
    return [(p.kind.value, p.extension, p.request_id or p.reason) for p in progress]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "inbound_group_answered",
            # 102 reported ringing a few milliseconds before 101: screen pops follow the phones.
            [("ringing", "102", None), ("ringing", "101", None), ("answered", "102", None)],
        ),
        ("inbound_queue_abandoned", [("ringing", "102", None), ("ringing", "103", None)]),
        ("outbound_answered", [("dialing_customer", None, None), ("answered", "101", None)]),
        (
            "click_to_call",
            [
                ("ringing", "101", "req-42"),
                ("dialing_customer", None, "req-42"),
                ("answered", "101", "req-42"),
            ],
        ),
        (
            "click_to_call_manager_no_answer",
            [("ringing", "103", "req-43"), ("originate_failed", "103", "req-43")],
        ),
    ],
)
def test_live_progress_of_a_call(name: str, expected: list[tuple[str, str | None, str | None]]) -> None:
    assert progress_of(name) == expected
