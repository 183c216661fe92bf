"""Missed calls must be returned: which calls open a callback task, which close it, who owns it, and the
SLA report. Pure; the tasks live in `callback_repository.py`.

A task is per customer number: a second missed call while one is open adds to it (the SLA runs from the
first). It closes on the first answered call with that number after the miss, outbound to it or inbound
from it, and records who returned it and how long it took.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.config import DidSettings
from calltracking.crm.leads import ManagerDirectory

MISSED_STATUSES = frozenset({CallStatus.MISSED, CallStatus.BUSY, CallStatus.NO_ANSWER})


class CallbackState(StrEnum):
    OPEN = "open"
    DONE = "done"


def is_missed(call: CallRecord) -> bool:
    return (
        call.direction is Direction.INBOUND
        and call.status in MISSED_STATUSES
        and call.external_number is not None
    )


def is_return(call: CallRecord) -> bool:
    """An answered conversation with the customer, whoever dialled."""
    return (
        call.status is CallStatus.ANSWERED
        and call.direction in (Direction.INBOUND, Direction.OUTBOUND)
        and call.external_number is not None
    )


def callback_manager(
    call: CallRecord, entity_owner: str | None, directory: ManagerDirectory, did: DidSettings | None
) -> str | None:
    """The owner of the matched entity, else the first manager whose phone rang, else the DID default."""
    if directory.is_active(entity_owner):
        return entity_owner
    for extension in call.rang:
        manager = directory.at_extension(extension)
        if manager is not None:
            return manager
    if did is not None and did.default_manager:
        return did.default_manager
    return None


def returned_by(call: CallRecord, directory: ManagerDirectory) -> str | None:
    extension = call.answered_by if call.direction is Direction.INBOUND else call.manager
    return directory.at_extension(extension) or extension


def due_time(missed_at: datetime, minutes: float) -> datetime:
    return missed_at + timedelta(minutes=minutes)


def returned_at(call: CallRecord) -> datetime:
    return call.answered_at or call.started_at


@dataclass(frozen=True, slots=True)
class CallbackTask:
    id: int
    number: str
    state: CallbackState
    manager: str | None
    missed_call_id: int | None
    missed_calls: int
    entity_id: int | None
    missed_at: datetime
    last_missed_at: datetime
    due_at: datetime
    closed_at: datetime | None = None
    closed_by_call_id: int | None = None
    returned_by: str | None = None
    seconds_to_return: float | None = None

    def is_overdue(self, now: datetime) -> bool:
        return self.state is CallbackState.OPEN and now > self.due_at

    @property
    def is_returned_in_time(self) -> bool:
        return self.closed_at is not None and self.closed_at <= self.due_at


@dataclass(frozen=True, slots=True)
class SlaLine:
    """One manager's (or everyone's) missed calls and how they were returned."""

    manager: str | None
    tasks: int
    missed_calls: int
    returned: int
    returned_in_time: int
    open: int
    overdue: int

    @property
    def share_returned_in_time(self) -> float | None:
        """Of the tasks whose SLA is decided (returned, or open past due), the share returned in time;
        a task still open and not yet due does not count either way."""
        decided = self.returned + self.overdue
        return None if decided == 0 else self.returned_in_time / decided


@dataclass(frozen=True, slots=True)
class SlaReport:
    total: SlaLine
    managers: tuple[SlaLine, ...]
    unreturned: tuple[CallbackTask, ...]


def sla_report(tasks: Iterable[CallbackTask], now: datetime) -> SlaReport:
    all_tasks = list(tasks)
    by_manager: dict[str | None, list[CallbackTask]] = {}
    for task in all_tasks:
        by_manager.setdefault(task.manager, []).append(task)
    lines = tuple(
        _line(manager, group, now)
        for manager, group in sorted(by_manager.items(), key=lambda item: (item[0] is None, item[0] or ""))
    )
    unreturned = tuple(
        sorted((t for t in all_tasks if t.state is CallbackState.OPEN), key=lambda t: (t.due_at, t.id))
    )
    return SlaReport(total=_line(None, all_tasks, now), managers=lines, unreturned=unreturned)


def _line(manager: str | None, tasks: list[CallbackTask], now: datetime) -> SlaLine:
    return SlaLine(
        manager=manager,
        tasks=len(tasks),
        missed_calls=sum(t.missed_calls for t in tasks),
        returned=sum(1 for t in tasks if t.state is CallbackState.DONE),
        returned_in_time=sum(1 for t in tasks if t.is_returned_in_time),
        open=sum(1 for t in tasks if t.state is CallbackState.OPEN),
        overdue=sum(1 for t in tasks if t.is_overdue(now)),
    )
