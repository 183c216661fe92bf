"""The call page's timeline, built from a call record alone: pure, no I/O."""

from __future__ import annotations

from datetime import timedelta

from api.web.call_timeline import Moment, Step, call_timeline
from calltracking.calls.record import CallLeg, CallStatus, Direction, LegKind
from tests.helpers.factories import make_call


def _extension(n: int, endpoint: str, created_after: float, answered_after: float | None) -> CallLeg:
    start = make_call().started_at
    return CallLeg(
        f"1795349935.{n}",
        f"PJSIP/{endpoint}-0000000{n}",
        endpoint,
        LegKind.EXTENSION,
        start + timedelta(seconds=created_after),
        None if answered_after is None else start + timedelta(seconds=answered_after),
        start + timedelta(seconds=30),
        16,
    )


def test_a_call_rung_at_two_phones_answered_transferred_and_hung_up_reads_in_order() -> None:
    base = make_call()
    start = base.started_at
    call = make_call(
        rang=("102", "101"),
        answered_by="101",
        answered_at=start + timedelta(seconds=5),
        transferred_to=("105",),
        hangup_by="customer",
        ended_at=start + timedelta(seconds=30),
        legs=(
            _extension(2, "102", 0.5, None),
            _extension(3, "101", 1.0, 5.0),
            _extension(4, "105", 12.0, 14.0),
        ),
    )
    assert call_timeline(call) == (
        Moment(Step.STARTED, start, call.caller),
        Moment(Step.RANG, start + timedelta(seconds=0.5), "102"),
        Moment(Step.RANG, start + timedelta(seconds=1), "101", picked_up=True),
        Moment(Step.ANSWERED, start + timedelta(seconds=5), "101"),
        Moment(Step.TRANSFERRED, start + timedelta(seconds=14), "105"),
        Moment(Step.HUNG_UP, start + timedelta(seconds=30), "customer"),
    )


def test_a_missed_call_rings_and_ends_without_an_answer() -> None:
    call = make_call(
        status=CallStatus.MISSED, answered_by=None, manager=None, answered_at=None, talk_seconds=0.0, legs=()
    )
    steps = [moment.step for moment in call_timeline(call)]
    assert steps == [Step.STARTED, Step.RANG, Step.ENDED]
    ring = call_timeline(call)[1]
    assert ring.at is None  # no channel to time it: no time made up, its place after the start kept
    assert not ring.picked_up


def test_an_outbound_call_is_answered_by_the_number_dialled() -> None:
    call = make_call(direction=Direction.OUTBOUND, caller="101", callee="89161234567", answered_by=None)
    answered = [moment for moment in call_timeline(call) if moment.step is Step.ANSWERED]
    assert answered == [Moment(Step.ANSWERED, call.answered_at, "89161234567")]


def test_an_untimed_transfer_stays_after_the_answer() -> None:
    call = make_call(transferred_to=("107",), hangup_by="manager")
    steps = [(moment.step, moment.who) for moment in call_timeline(call)]
    assert steps[-2:] == [(Step.TRANSFERRED, "107"), (Step.HUNG_UP, "manager")]
    transfer = call_timeline(call)[-2]
    assert transfer.at is None
