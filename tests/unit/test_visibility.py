"""The one rule of who sees which call, on its own: what every channel of the API asks."""

from __future__ import annotations

from api.visibility import Audience
from calltracking.access.tokens import Principal, Role
from calltracking.calls.record import CallProgress, CallStatus, ProgressKind
from tests.helpers.factories import T0, make_call

ANNA = Principal(token_id=1, role=Role.MANAGER, manager="101")
CRM = Principal(token_id=2, role=Role.INTEGRATION, manager=None)


def ring(extension: str, kind: ProgressKind = ProgressKind.RINGING) -> CallProgress:
    call = make_call()
    return CallProgress(
        kind, call.pbx, call.pbx_call_id, T0, call.direction, call.caller, call.callee, extension=extension
    )


def test_a_manager_sees_its_own_calls_and_no_other() -> None:
    anna = Audience.of(ANNA)
    answered_by_vera_after_ringing_anna = make_call(2, rang=("101", "103"), answered_by="103", manager="103")
    missed_at_anna = make_call(3, status=CallStatus.MISSED, answered_by=None, manager=None)

    assert anna.sees_call(make_call(1)) is True
    assert anna.sees_call(answered_by_vera_after_ringing_anna) is False
    assert anna.sees_call(missed_at_anna) is False
    assert anna.call_manager == "101"


def test_a_manager_hears_the_ring_at_its_phone_and_nothing_once_another_answers() -> None:
    anna = Audience.of(ANNA)

    assert anna.sees_progress(ring("101")) is True
    assert anna.sees_progress(ring("103")) is False
    assert anna.sees_progress(ring("103", ProgressKind.ANSWERED)) is False


def test_a_manager_token_without_an_extension_sees_nothing_rather_than_everything() -> None:
    nobody = Audience.of(Principal(token_id=3, role=Role.MANAGER, manager=None))

    assert nobody.sees_everything is False
    assert nobody.sees_call(make_call(1, manager=None)) is False
    assert nobody.sees_progress(ring("101")) is False


def test_the_crm_sees_everything_and_lists_the_callbacks_it_asks_for() -> None:
    crm = Audience.of(CRM)

    assert crm.sees_everything and crm.call_manager is None
    assert crm.sees_call(make_call(1, manager=None)) and crm.sees_progress(ring("103"))
    assert crm.callback_manager(None, "m-vera") == "m-vera"


def test_a_manager_lists_only_its_own_callbacks_whatever_it_asks() -> None:
    anna = Audience.of(ANNA)

    assert anna.callback_manager("m-anna", "m-vera") == "m-anna"
    assert anna.callback_manager(None, "m-vera") == "extension:101"
