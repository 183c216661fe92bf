"""Missed calls owed a return: which calls open and close a task, who owns it, and the SLA report."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.config import DidSettings
from calltracking.crm.callbacks import (
    CallbackState,
    CallbackTask,
    SlaLine,
    callback_manager,
    due_time,
    is_missed,
    is_return,
    returned_at,
    returned_by,
    sla_report,
)
from calltracking.crm.leads import ManagerDirectory
from calltracking.crm.mirror import Manager
from tests.helpers.factories import make_call

ANNA = Manager(id=1, external_id="m-anna", name="Anna", extensions=("101",), is_active=True)
BORIS = Manager(id=2, external_id="m-boris", name="Boris", extensions=("102",), is_active=True)
GONE = Manager(id=3, external_id="m-gone", name="Left the company", extensions=("103",), is_active=False)
DIRECTORY = ManagerDirectory.of([ANNA, BORIS, GONE])
DID = DidSettings(source="google", default_manager="m-did")


def missed(n: int = 1, **changes: Any) -> CallRecord:
    values: dict[str, Any] = {
        "status": CallStatus.NO_ANSWER,
        "answered_by": None,
        "answered_at": None,
        "talk_seconds": 0.0,
    }
    values.update(changes)
    return make_call(n, **values)


def outbound(n: int = 1, **changes: Any) -> CallRecord:
    values: dict[str, Any] = {
        "direction": Direction.OUTBOUND,
        "caller": "102",
        "callee": "89161234567",
        "caller_number": "102",
        "callee_number": "+79161234567",
        "manager": "102",
        "answered_by": None,
        "did": None,
    }
    values.update(changes)
    return make_call(n, **values)


@pytest.mark.parametrize("status", [CallStatus.MISSED, CallStatus.BUSY, CallStatus.NO_ANSWER])
def test_an_inbound_call_nobody_took_is_missed(status: CallStatus) -> None:
    assert is_missed(missed(status=status))


@pytest.mark.parametrize(
    "call",
    [
        make_call(1),
        missed(status=CallStatus.FAILED),
        missed(direction=Direction.OUTBOUND, callee_number="+79161234567"),
        missed(direction=Direction.INTERNAL),
        missed(caller="anonymous", caller_number=None),
    ],
    ids=["answered", "failed", "outbound", "internal", "no_number"],
)
def test_other_calls_are_not_missed(call: CallRecord) -> None:
    assert not is_missed(call)


@pytest.mark.parametrize(
    "call", [make_call(1), outbound(status=CallStatus.ANSWERED)], ids=["inbound", "outbound"]
)
def test_an_answered_call_with_the_customer_is_a_return(call: CallRecord) -> None:
    assert is_return(call)


@pytest.mark.parametrize(
    "call",
    [
        missed(),
        outbound(status=CallStatus.NO_ANSWER, answered_at=None),
        make_call(1, direction=Direction.INTERNAL),
        make_call(1, caller_number=None),
    ],
    ids=["missed", "outbound_unanswered", "internal", "no_number"],
)
def test_other_calls_are_not_returns(call: CallRecord) -> None:
    assert not is_return(call)


def test_the_active_owner_of_the_matched_entity_gets_the_callback() -> None:
    assert callback_manager(missed(rang=("101",)), "m-boris", DIRECTORY, DID) == "m-boris"


def test_without_an_active_owner_the_first_manager_whose_phone_rang_gets_it() -> None:
    call = missed(rang=("999", "103", "102", "101"))
    assert callback_manager(call, "m-gone", DIRECTORY, DID) == "m-boris"
    assert callback_manager(call, None, DIRECTORY, DID) == "m-boris"
    assert callback_manager(call, "m-unknown", DIRECTORY, DID) == "m-boris"


def test_when_no_known_phone_rang_the_did_default_gets_it() -> None:
    assert callback_manager(missed(rang=("999", "103")), None, DIRECTORY, DID) == "m-did"
    assert callback_manager(missed(rang=()), "m-gone", DIRECTORY, DID) == "m-did"


def test_without_owner_phones_or_did_default_nobody_gets_it() -> None:
    assert callback_manager(missed(rang=()), None, DIRECTORY, None) is None
    assert callback_manager(missed(rang=()), None, DIRECTORY, DidSettings(source="google")) is None


def test_the_manager_who_returned_the_call_is_named_by_crm_id_else_extension() -> None:
    assert returned_by(make_call(1, answered_by="101", manager="102"), DIRECTORY) == "m-anna"
    assert (
        returned_by(outbound(status=CallStatus.ANSWERED, manager="102", answered_by="101"), DIRECTORY)
        == "m-boris"
    )
    assert returned_by(make_call(1, answered_by="555"), DIRECTORY) == "555"
    assert returned_by(make_call(1, answered_by="103"), DIRECTORY) == "103"


def test_a_call_is_returned_when_answered_and_due_after_the_configured_minutes() -> None:
    call = make_call(1)
    assert returned_at(call) == call.answered_at
    assert returned_at(replace(call, answered_at=None)) == call.started_at
    assert due_time(call.ended_at, 15) == call.ended_at + timedelta(minutes=15)
    assert due_time(call.ended_at, 0.5) == call.ended_at + timedelta(seconds=30)


# The SLA report. Every task is missed at T0 + its id minutes and due 15 minutes later.
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)


def task(
    task_id: int, manager: str | None, returned_after_minutes: float | None = None, **fields: Any
) -> CallbackTask:
    missed_at = T0 + timedelta(minutes=task_id)
    values: dict[str, Any] = {
        "id": task_id,
        "number": f"+7916000{task_id:04d}",
        "state": CallbackState.OPEN,
        "manager": manager,
        "missed_call_id": task_id,
        "missed_calls": 1,
        "entity_id": None,
        "missed_at": missed_at,
        "last_missed_at": missed_at,
        "due_at": missed_at + timedelta(minutes=15),
    }
    if returned_after_minutes is not None:
        closed_at = missed_at + timedelta(minutes=returned_after_minutes)
        values.update(
            state=CallbackState.DONE,
            closed_at=closed_at,
            closed_by_call_id=1000 + task_id,
            returned_by=manager,
            seconds_to_return=returned_after_minutes * 60,
        )
    values.update(fields)
    return CallbackTask(**values)


def test_a_task_closed_exactly_at_its_due_time_was_returned_in_time() -> None:
    assert task(1, "m-anna", returned_after_minutes=15).is_returned_in_time
    assert not task(1, "m-anna", returned_after_minutes=15.01).is_returned_in_time
    assert not task(1, "m-anna").is_returned_in_time


def test_an_open_task_is_overdue_only_after_its_due_time() -> None:
    open_task = task(1, "m-anna")
    assert not open_task.is_overdue(open_task.due_at)
    assert open_task.is_overdue(open_task.due_at + timedelta(microseconds=1))
    assert not task(1, "m-anna", returned_after_minutes=60).is_overdue(NOW)


def test_the_sla_report_counts_each_manager_and_everyone() -> None:
    tasks = [
        task(1, "m-anna", returned_after_minutes=5, missed_calls=3),  # in time
        task(2, "m-anna", returned_after_minutes=40),  # late
        task(3, "m-anna"),  # open, overdue
        task(4, "m-boris", returned_after_minutes=15),  # in time, at the limit
        task(5, "m-boris", due_at=NOW + timedelta(minutes=5), missed_calls=2),  # open, not yet due
        task(6, None),  # nobody's, overdue
    ]
    report = sla_report(tasks, NOW)
    assert report.managers == (
        SlaLine(manager="m-anna", tasks=3, missed_calls=5, returned=2, returned_in_time=1, open=1, overdue=1),
        SlaLine(
            manager="m-boris", tasks=2, missed_calls=3, returned=1, returned_in_time=1, open=1, overdue=0
        ),
        SlaLine(manager=None, tasks=1, missed_calls=1, returned=0, returned_in_time=0, open=1, overdue=1),
    )
    assert report.total == SlaLine(
        manager=None, tasks=6, missed_calls=9, returned=3, returned_in_time=2, open=3, overdue=2
    )
    anna, boris, nobody = report.managers
    assert anna.share_returned_in_time == pytest.approx(1 / 3)
    assert boris.share_returned_in_time == 1.0
    assert nobody.share_returned_in_time == 0.0
    assert report.total.share_returned_in_time == pytest.approx(2 / 5)


def test_a_task_not_yet_due_counts_neither_for_nor_against_the_share() -> None:
    report = sla_report([task(1, "m-anna", due_at=NOW + timedelta(minutes=1))], NOW)
    assert report.total.open == 1
    assert report.total.overdue == 0
    assert report.total.share_returned_in_time is None


def test_an_empty_period_has_an_empty_report() -> None:
    report = sla_report([], NOW)
    assert report.total == SlaLine(
        manager=None, tasks=0, missed_calls=0, returned=0, returned_in_time=0, open=0, overdue=0
    )
    assert report.total.share_returned_in_time is None
    assert report.managers == ()
    assert report.unreturned == ()


def test_managers_are_listed_by_crm_id_with_nobodys_tasks_last() -> None:
    tasks = [task(1, None), task(2, "m-vera"), task(3, "m-anna"), task(4, "m-boris"), task(5, "m-anna")]
    report = sla_report(tasks, NOW)
    assert [line.manager for line in report.managers] == ["m-anna", "m-boris", "m-vera", None]


def test_unreturned_tasks_are_the_open_ones_most_urgent_first() -> None:
    first_due_last_id = task(9, "m-anna", due_at=T0 + timedelta(minutes=1))
    same_due_low_id = task(3, "m-boris", due_at=T0 + timedelta(minutes=30))
    same_due_high_id = task(4, None, due_at=T0 + timedelta(minutes=30))
    not_yet_due = task(1, "m-anna", due_at=NOW + timedelta(hours=1))
    returned = task(2, "m-anna", returned_after_minutes=1)
    report = sla_report([not_yet_due, returned, same_due_high_id, same_due_low_id, first_due_last_id], NOW)
    assert [t.id for t in report.unreturned] == [9, 3, 4, 1]
