"""What happened in one call, in order, for the call page: it started, which phones rang, who answered,
to whom it was transferred, who hung up. Pure: built from the stored record alone (its fields and its
channels' times), so the page and its unit test read the same story the assembler wrote down."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from calltracking.calls.record import CallLeg, CallRecord, Direction, LegKind


class Step(StrEnum):
    STARTED = "started"
    RANG = "rang"
    ANSWERED = "answered"
    TRANSFERRED = "transferred"
    HUNG_UP = "hung_up"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Moment:
    """One step of the call: who (an extension, a number, or `customer`/`manager` for a hang-up) and
    when, if the record knows; `picked_up` marks the phone that rang and then answered."""

    step: Step
    at: datetime | None
    who: str | None = None
    picked_up: bool = False


def call_timeline(call: CallRecord) -> tuple[Moment, ...]:
    """The call's moments in time order; a moment whose time the record lacks keeps its place in the
    story (a ring before the answer, a transfer after it)."""
    story = [
        Moment(Step.STARTED, call.started_at, call.caller),
        *_rings(call),
        *_answer(call),
        *_transfers(call),
        _end(call),
    ]
    return tuple(_in_time_order(call.started_at, story))


def _rings(call: CallRecord) -> list[Moment]:
    return [
        Moment(
            Step.RANG,
            _leg_time(call.legs, extension, answered=False),
            extension,
            extension == call.answered_by,
        )
        for extension in call.rang
    ]


def _answer(call: CallRecord) -> list[Moment]:
    if call.answered_at is None:
        return []
    # An outbound call is answered by the number dialled; an inbound or internal one by an extension.
    who = call.answered_by or (call.callee if call.direction is Direction.OUTBOUND else None)
    return [Moment(Step.ANSWERED, call.answered_at, who)]


def _transfers(call: CallRecord) -> list[Moment]:
    return [
        Moment(Step.TRANSFERRED, _leg_time(call.legs, target, answered=True), target)
        for target in call.transferred_to
    ]


def _end(call: CallRecord) -> Moment:
    if call.hangup_by:
        return Moment(Step.HUNG_UP, call.ended_at, call.hangup_by)
    return Moment(Step.ENDED, call.ended_at)


def _leg_time(legs: tuple[CallLeg, ...], endpoint: str, *, answered: bool) -> datetime | None:
    """When the extension's channel was created (it started ringing), or, for a transfer, when it was
    answered (it took the call)."""
    for leg in legs:
        if leg.endpoint == endpoint and leg.kind is LegKind.EXTENSION:
            return (leg.answered_at or leg.created_at) if answered else leg.created_at
    return None


def _in_time_order(start: datetime, story: list[Moment]) -> list[Moment]:
    """Sorted by time, each untimed moment taking the time of the moment before it in the story: the
    sort then leaves it right after that moment."""
    keyed: list[tuple[datetime, int, Moment]] = []
    last = start
    for position, moment in enumerate(story):
        last = moment.at or last
        keyed.append((last, position, moment))
    return [moment for _, _, moment in sorted(keyed, key=lambda item: (item[0], item[1]))]
