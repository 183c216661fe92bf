"""Leads for unknown numbers: which calls create one (by the switches), and who gets it."""

from __future__ import annotations

import pytest

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.config import AutoLeadSettings, DidSettings
from calltracking.crm.leads import ManagerDirectory, lead_name, lead_owner, wants_lead
from calltracking.crm.mirror import Manager
from tests.helpers.factories import make_call

ANNA = Manager(id=1, external_id="m-anna", name="Anna", extensions=("101", "201"), is_active=True)
BORIS = Manager(id=2, external_id="m-boris", name="Boris", extensions=("102",), is_active=True)
GONE = Manager(id=3, external_id="m-gone", name="Left the company", extensions=("103",), is_active=False)
DIRECTORY = ManagerDirectory.of([GONE, BORIS, ANNA])

ALL_ON = AutoLeadSettings(answered_inbound=True, missed_inbound=True, outbound_unknown=True)
ALL_OFF = AutoLeadSettings(answered_inbound=False, missed_inbound=False, outbound_unknown=False)

ANSWERED_IN = make_call(1)
MISSED_IN = make_call(2, status=CallStatus.MISSED, answered_by=None, answered_at=None)
OUTBOUND = make_call(
    3,
    direction=Direction.OUTBOUND,
    caller="101",
    callee="89161234567",
    caller_number="101",
    callee_number="+79161234567",
    did=None,
)


@pytest.mark.parametrize(
    ("switch", "call"),
    [
        ("answered_inbound", ANSWERED_IN),
        ("missed_inbound", MISSED_IN),
        ("missed_inbound", make_call(4, status=CallStatus.BUSY, answered_by=None)),
        ("missed_inbound", make_call(5, status=CallStatus.NO_ANSWER, answered_by=None)),
        ("outbound_unknown", OUTBOUND),
        ("outbound_unknown", make_call(7, direction=Direction.OUTBOUND, status=CallStatus.NO_ANSWER)),
    ],
)
def test_each_kind_of_call_creates_a_lead_exactly_when_its_switch_is_on(
    switch: str, call: CallRecord
) -> None:
    only_this = ALL_OFF.model_copy(update={switch: True})
    all_but_this = ALL_ON.model_copy(update={switch: False})
    assert wants_lead(call, only_this)
    assert not wants_lead(call, all_but_this)


def test_by_default_inbound_calls_create_leads_and_outbound_ones_do_not() -> None:
    defaults = AutoLeadSettings()
    assert wants_lead(ANSWERED_IN, defaults)
    assert wants_lead(MISSED_IN, defaults)
    assert not wants_lead(OUTBOUND, defaults)


def test_an_internal_call_never_creates_a_lead() -> None:
    internal = make_call(8, direction=Direction.INTERNAL, caller_number="101", callee_number="102")
    assert not wants_lead(internal, ALL_ON)


def test_a_call_without_a_customer_number_never_creates_a_lead() -> None:
    anonymous = make_call(9, caller="anonymous", caller_number=None)
    unknown_callee = make_call(10, direction=Direction.OUTBOUND, callee_number=None)
    assert not wants_lead(anonymous, ALL_ON)
    assert not wants_lead(unknown_callee, ALL_ON)


def test_the_directory_knows_only_active_managers() -> None:
    assert DIRECTORY.at_extension("101") == "m-anna"
    assert DIRECTORY.at_extension("201") == "m-anna"
    assert DIRECTORY.at_extension("102") == "m-boris"
    assert DIRECTORY.at_extension("103") is None
    assert DIRECTORY.at_extension("999") is None
    assert DIRECTORY.at_extension(None) is None
    assert DIRECTORY.at_extension("") is None
    assert DIRECTORY.is_active("m-anna")
    assert not DIRECTORY.is_active("m-gone")
    assert not DIRECTORY.is_active(None)
    assert DIRECTORY.rotation == (ANNA, BORIS)


def test_an_extension_moved_from_an_inactive_manager_belongs_to_the_active_one() -> None:
    successor = Manager(id=4, external_id="m-new", name="Successor", extensions=("103",), is_active=True)
    directory = ManagerDirectory.of([successor, GONE])
    assert directory.at_extension("103") == "m-new"


def test_the_answering_manager_owns_an_inbound_lead() -> None:
    did = DidSettings(default_manager="m-boris")
    assert lead_owner(make_call(11, answered_by="101", manager="102"), DIRECTORY, did) == "m-anna"


def test_the_calling_manager_owns_an_outbound_lead() -> None:
    did = DidSettings(default_manager="m-anna")
    assert lead_owner(
        make_call(12, direction=Direction.OUTBOUND, manager="102", answered_by="101"), DIRECTORY, did
    ) == ("m-boris")


def test_without_a_known_manager_the_did_default_owns_the_lead() -> None:
    did = DidSettings(default_manager="m-boris")
    assert lead_owner(MISSED_IN, DIRECTORY, did) == "m-boris"
    assert lead_owner(make_call(13, answered_by="103"), DIRECTORY, did) == "m-boris"
    assert lead_owner(make_call(14, answered_by="999"), DIRECTORY, did) == "m-boris"


def test_an_inactive_did_default_leaves_the_lead_to_round_robin() -> None:
    assert lead_owner(MISSED_IN, DIRECTORY, DidSettings(default_manager="m-gone")) is None
    assert lead_owner(MISSED_IN, DIRECTORY, DidSettings(default_manager="m-unknown")) is None


def test_no_manager_and_no_did_leaves_the_lead_to_round_robin() -> None:
    assert lead_owner(MISSED_IN, DIRECTORY, None) is None
    assert lead_owner(MISSED_IN, DIRECTORY, DidSettings(source="google")) is None


def test_a_lead_is_named_after_the_number_and_the_source() -> None:
    assert lead_name("+79161234567", DidSettings(source="google")) == "Call from +79161234567 (google)"
    assert lead_name("+79161234567", DidSettings()) == "Call from +79161234567"
    assert lead_name("+79161234567", None) == "Call from +79161234567"
