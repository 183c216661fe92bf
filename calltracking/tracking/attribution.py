"""Where an inbound call came from and how it counts, decided once, when the call is written. Pure.

- Source, medium and campaign: a call to a pool number while a website visit held it is that visit's
  (its utm_source, utm_medium, utm_campaign, and the session's id); any other call, or one to a pool
  number nobody held, takes its DID's settings; else none. Fallback sessions (the number shown when the
  pool ran out) are no one visit's and are never passed here.
- First-time caller: no inbound call from the same number started earlier, stored or in the same batch.
  Calls at the same instant are both first.
- Target call: answered, and talked longer than `target_talk_seconds`.

Calls that are not inbound keep every field None; so does the first-time flag of a call without a
customer number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.config import TrackingSettings
from calltracking.numbers import is_same_line

CallKey = tuple[str, str]  # pbx, pbx_call_id


@dataclass(frozen=True, slots=True)
class VisitWindow:
    """A tracking session as attribution sees it: the pool number it held, and from when until when."""

    session_id: int
    number: str
    created_at: datetime
    expires_at: datetime
    source: str | None
    medium: str | None
    campaign: str | None

    def covers(self, at: datetime) -> bool:
        return self.created_at <= at <= self.expires_at


@dataclass(frozen=True, slots=True)
class Origin:
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    tracking_session_id: int | None = None


def key_of(call: CallRecord) -> CallKey:
    return (call.pbx, call.pbx_call_id)


def pool_number(did: str | None, numbers: Iterable[str]) -> str | None:
    """The pool number (as configured) a call's DID is, in whatever format the carrier sent it."""
    if not did:
        return None
    return next((number for number in numbers if number == did or is_same_line(number, did)), None)


def visit_at(windows: Iterable[VisitWindow], number: str, at: datetime) -> VisitWindow | None:
    """The visit that held `number` at `at`: the latest one to take it, should two windows overlap."""
    held = [window for window in windows if window.number == number and window.covers(at)]
    return max(held, key=lambda window: (window.created_at, window.session_id), default=None)


def origin_of(call: CallRecord, tracking: TrackingSettings, windows: Iterable[VisitWindow]) -> Origin:
    if call.direction is not Direction.INBOUND:
        return Origin()
    number = pool_number(call.did, tracking.pool.numbers)
    visit = visit_at(windows, number, call.started_at) if number is not None else None
    if visit is not None:
        return Origin(visit.source or None, visit.medium or None, visit.campaign or None, visit.session_id)
    did = tracking.did(call.did)
    if did is None:
        return Origin()
    return Origin(did.source or None, did.medium or None, did.campaign or None)


def is_target(call: CallRecord, target_talk_seconds: float) -> bool | None:
    if call.direction is not Direction.INBOUND:
        return None
    return call.status is CallStatus.ANSWERED and call.talk_seconds > target_talk_seconds


def caller_numbers(calls: Iterable[CallRecord]) -> set[str]:
    """The customer numbers of the inbound calls: whose earlier calls decide the first-time flags."""
    return {
        call.customer_number
        for call in calls
        if call.direction is Direction.INBOUND and call.customer_number is not None
    }


def first_times(calls: Sequence[CallRecord], earliest_stored: Mapping[str, datetime]) -> list[bool | None]:
    """Each call's first-time flag. `earliest_stored`: per number, the start of its earliest inbound call in
    the database other than the calls of this batch (whose versions here are the ones that count)."""
    starts: dict[str, list[tuple[datetime, CallKey]]] = {}
    for call in calls:
        if call.direction is Direction.INBOUND and call.customer_number is not None:
            starts.setdefault(call.customer_number, []).append((call.started_at, key_of(call)))
    flags: list[bool | None] = []
    for call in calls:
        number = call.customer_number
        if call.direction is not Direction.INBOUND or number is None:
            flags.append(None)
            continue
        stored = earliest_stored.get(number)
        earlier_in_batch = any(
            started < call.started_at and key != key_of(call) for started, key in starts[number]
        )
        flags.append(not earlier_in_batch and (stored is None or stored >= call.started_at))
    return flags


def numbers_to_demote(calls: Iterable[CallRecord], earliest_stored: Mapping[str, datetime]) -> set[str]:
    """Numbers whose stored first call is no longer first: this batch has an inbound call that started
    earlier (written late: a spool drained after an outage, a replay of an older capture)."""
    demoted = set()
    for call in calls:
        number = call.customer_number
        if call.direction is not Direction.INBOUND or number is None or number not in earliest_stored:
            continue
        if call.started_at < earliest_stored[number]:
            demoted.add(number)
    return demoted


def attribute(
    calls: Sequence[CallRecord],
    tracking: TrackingSettings,
    windows: Iterable[VisitWindow],
    earliest_stored: Mapping[str, datetime],
) -> list[CallRecord]:
    """The calls with their origin and flags stamped, in the same order."""
    visits = list(windows)
    stamped = []
    for call, first_time in zip(calls, first_times(calls, earliest_stored), strict=True):
        origin = origin_of(call, tracking, visits)
        stamped.append(
            replace(
                call,
                source=origin.source,
                medium=origin.medium,
                campaign=origin.campaign,
                tracking_session_id=origin.tracking_session_id,
                first_time_caller=first_time,
                is_target=is_target(call, tracking.target_talk_seconds),
            )
        )
    return stamped
