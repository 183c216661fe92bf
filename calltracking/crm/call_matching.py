"""Every completed call lands on a CRM entity, in the same transaction that writes it: its number is
matched, an unknown caller gets a lead, a missed call opens a callback task and an answered one closes
the task for its number. What this writes commits with the call, or not at all, and a call written
twice (a replay, a retried batch) changes nothing the second time.

Later CRM changes re-match the calls with the numbers they touch (`rematch`), so a lead the CRM creates
after the call gets the call's history.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import CallRecord, EntityKind
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm import callback_repository as callback_tasks
from calltracking.crm.callback_repository import CallbackOpening
from calltracking.crm.callbacks import (
    callback_manager,
    due_time,
    is_missed,
    is_return,
    returned_at,
    returned_by,
)
from calltracking.crm.leads import ManagerDirectory, lead_name, lead_origin, lead_owner, wants_lead
from calltracking.crm.match_repository import (
    AutoLead,
    LeadRequest,
    NewMatch,
    StoredMatch,
    calls_with_numbers,
    ensure_auto_leads,
    find_candidates,
    get_matches,
    next_in_rotation,
    save_matches,
    set_lead_owner,
    touch_activity,
    update_match,
)
from calltracking.crm.matching import Candidate, Match, MatchedBy, choose_match
from calltracking.crm.mirror import auto_lead_id
from calltracking.crm.repository import list_managers
from calltracking.numbers import Phone, reversed_digits
from calltracking.webhooks.delivery import enqueue_many
from calltracking.webhooks.roster import WebhookRoster
from calltracking.webhooks.subscription import WebhookEvent

log = structlog.get_logger(__name__)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Batch:
    """What the matcher knows while it goes through one batch of calls, and what it still has to write:
    the matches in one statement, each entity's latest call once, the webhook events in one insert."""

    candidates: dict[str, list[Candidate]]
    directory: ManagerDirectory
    known: dict[int, StoredMatch]
    open_numbers: set[str]
    # Numbers with an answered call in the database after the batch's first miss: a new task for any
    # other number cannot have been returned already.
    answered_numbers: set[str] = field(default_factory=set)
    matches: list[NewMatch] = field(default_factory=list)
    activity: dict[int, datetime] = field(default_factory=dict)
    # The call that created its number's lead in this batch, by number.
    lead_callers: dict[str, int] = field(default_factory=dict)
    # Tasks this batch opened or joined, by number; further misses of the number are counted here and
    # written once (a caller who keeps redialling must not cost a statement per attempt).
    open_tasks: dict[str, int] = field(default_factory=dict)
    more_misses: dict[int, tuple[int, datetime]] = field(default_factory=dict)
    events: list[WebhookEvent] = field(default_factory=list)
    # Tasks opened (or joined) for the batch in one statement before its calls are landed, by number:
    # the task of the number's first missed call, for numbers without a return call in the batch.
    opened: dict[str, tuple[int, bool]] = field(default_factory=dict)
    # Numbers of the matches not written yet.
    unsaved_numbers: set[str] = field(default_factory=set)

    def count_miss(self, task_id: int, at: datetime) -> None:
        misses, latest = self.more_misses.get(task_id, (0, at))
        self.more_misses[task_id] = (misses + 1, max(latest, at))

    def add(self, new: NewMatch, at: datetime) -> None:
        self.matches.append(new)
        self.unsaved_numbers.add(new.number)
        if new.match.entity is not None:
            entity_id = new.match.entity.entity_id
            self.activity[entity_id] = max(at, self.activity.get(entity_id, at))

    async def flush(self, session: AsyncSession, now: datetime) -> None:
        for task_id, (misses, latest) in sorted(self.more_misses.items()):
            await callback_tasks.count_more_misses(session, task_id, misses, latest)
        self.more_misses.clear()
        await save_matches(session, self.matches, now)
        await touch_activity(session, self.activity)
        self.matches.clear()
        self.unsaved_numbers.clear()
        self.activity.clear()


class CallMatcher:
    """The call log's stored hook for CRM facts (see `CallLog.add_stored_hook`).

    A batch costs a fixed number of statements for matching, leads and webhooks, whatever its size; only
    a callback task opened or closed costs its own."""

    def __init__(
        self,
        crm: CrmSettings,
        tracking: TrackingSettings,
        clock: Clock = utc_now,
        roster: WebhookRoster | None = None,
    ) -> None:
        self._crm = crm
        self._tracking = tracking
        self._clock = clock
        # lead.created and callback.opened are queued only when some webhook may want them.
        self._roster = roster

    async def __call__(self, session: AsyncSession, calls: Sequence[CallRecord], ids: Sequence[int]) -> None:
        # A call given twice in one batch is one call: its last version, handled once.
        latest = {call_id: call for call, call_id in zip(calls, ids, strict=True) if call.external_number}
        if not latest:
            return
        numbers = sorted({call.external_number for call in latest.values() if call.external_number})
        batch = _Batch(
            candidates=await find_candidates(session, numbers, self._crm.tail_digits),
            directory=ManagerDirectory.of(await list_managers(session)),
            known=await get_matches(session, list(latest)),
            open_numbers=await callback_tasks.numbers_with_open_callbacks(session, numbers),
        )
        missed = [call for call in latest.values() if is_missed(call) and call.external_number]
        if missed:
            batch.answered_numbers = await callback_tasks.numbers_answered_since(
                session,
                [call.external_number for call in missed if call.external_number],
                min(call.ended_at for call in missed),
            )
        await self._create_leads(session, latest, batch)
        await self._open_callbacks(session, latest, batch)
        for call_id, call in latest.items():
            await self._land(session, call, call_id, batch)
        await batch.flush(session, self._clock())
        await enqueue_many(session, batch.events, roster=self._roster)

    async def _land(self, session: AsyncSession, call: CallRecord, call_id: int, batch: _Batch) -> None:
        number = call.external_number
        if number is None:
            return
        match = choose_match(batch.candidates[number], self._crm.match_priority)
        lead_created = batch.lead_callers.get(number) == call_id
        known = batch.known.get(call_id)
        callback_id = None
        if known is None or known.callback_id is None:
            callback_id = await self._track_callback(session, call, call_id, number, match, batch)
        batch.add(NewMatch(call_id, number, match, lead_created, callback_id), call.ended_at)
        log.info(
            "call_matched",
            call_id=call_id,
            entity_id=match.entity.entity_id if match.entity else None,
            kind=match.entity.kind.value if match.entity else None,
            candidates=len(match.candidates),
            lead_created=lead_created,
        )

    async def _create_leads(self, session: AsyncSession, calls: dict[int, CallRecord], batch: _Batch) -> None:
        """A lead for each unknown number one of the batch's calls wants one for (the first such call makes
        it), before any call is landed, so every call of the batch lands on it. A number the CRM threw
        away (spam, a wrong number: its lead is deleted) gets no new lead."""
        requests: dict[str, tuple[int, CallRecord, LeadRequest]] = {}
        for call_id, call in calls.items():
            number = call.external_number
            if number is None or number in requests or not wants_lead(call, self._crm.auto_leads):
                continue
            if not choose_match(batch.candidates[number], self._crm.match_priority).is_unknown:
                continue
            did = self._tracking.did(call.did)
            request = LeadRequest(
                external_id=auto_lead_id(number),
                phone=Phone(raw=number, e164=number, digits_reversed=reversed_digits(number)),
                call_id=call_id,
                owner=lead_owner(call, batch.directory, did),
                name=lead_name(number, did),
                source=lead_origin(call, did),
                at=call.started_at,
            )
            requests[number] = (call_id, call, request)
        if not requests:
            return
        leads = await ensure_auto_leads(session, [request for _, _, request in requests.values()])
        new_phones: list[Phone] = []
        for number, (call_id, call, request) in requests.items():
            lead = leads[request.external_id]
            if not lead.is_active:
                continue
            if lead.is_new and lead.owner is None:
                # Only the call that created the lead takes a turn: a writer that lost the race for this
                # number (and found the lead made) must not skip a manager.
                chosen = await next_in_rotation(session, batch.directory.rotation)
                if chosen is not None:
                    await set_lead_owner(session, lead.entity_id, chosen.external_id)
                    lead = replace(lead, owner=chosen.external_id)
            batch.candidates[number] = [
                Candidate(
                    entity_id=lead.entity_id,
                    kind=EntityKind.LEAD,
                    external_id=lead.external_id,
                    name=request.name,
                    owner=lead.owner,
                    matched_by=MatchedBy.NUMBER,
                    last_activity_at=call.ended_at,
                )
            ]
            if lead.is_new:
                batch.lead_callers[number] = call_id
                new_phones.append(request.phone)
                log.info(
                    "lead_created", call_id=call_id, lead_id=lead.entity_id, owner=lead.owner, did=call.did
                )
                batch.events.append(_lead_created(lead, request, call, number))
        if new_phones:
            # Earlier calls with these numbers that made no lead (an outbound call, a switch that was off)
            # belong to the new leads too.
            await rematch(session, new_phones, self._crm, self._clock())

    async def _open_callbacks(
        self, session: AsyncSession, calls: dict[int, CallRecord], batch: _Batch
    ) -> None:
        """Open the tasks of the batch's missed numbers in one statement. A number with a return call in
        the batch is left to `_track_callback`, call by call: its misses before and after the return
        belong to different tasks."""
        returning = {call.external_number for call in calls.values() if is_return(call)}
        openings: dict[str, CallbackOpening] = {}
        for call_id, call in calls.items():
            number = call.external_number
            if number is None or number in returning or number in openings or not is_missed(call):
                continue
            known = batch.known.get(call_id)
            if known is not None and known.callback_id is not None:
                continue
            match = choose_match(batch.candidates[number], self._crm.match_priority)
            openings[number] = self._opening(call, call_id, number, match, batch)
        if openings:
            batch.opened = await callback_tasks.open_callbacks(session, list(openings.values()))

    def _opening(
        self, call: CallRecord, call_id: int, number: str, match: Match, batch: _Batch
    ) -> CallbackOpening:
        did = self._tracking.did(call.did)
        owner = match.entity.owner if match.entity else None
        return CallbackOpening(
            number=number,
            call_id=call_id,
            missed_at=call.ended_at,
            due_at=due_time(call.ended_at, self._crm.callback_due_minutes),
            manager=callback_manager(call, owner, batch.directory, did),
            entity_id=match.entity.entity_id if match.entity else None,
        )

    async def _track_callback(
        self,
        session: AsyncSession,
        call: CallRecord,
        call_id: int,
        number: str,
        match: Match,
        batch: _Batch,
    ) -> int | None:
        """Open (or join) the number's task for a missed call, close it for an answered one; the task's id."""
        if is_missed(call) and number in batch.open_tasks:
            task_id = batch.open_tasks[number]
            batch.count_miss(task_id, call.ended_at)
            log.info("callback_opened", call_id=call_id, callback_id=task_id, is_new=False)
            return task_id
        if is_missed(call):
            opening = self._opening(call, call_id, number, match, batch)
            manager = opening.manager
            opened = batch.opened.pop(number, None)
            if opened is None:
                opened = (await callback_tasks.open_callbacks(session, [opening]))[number]
            task_id, is_new = opened
            batch.open_numbers.add(number)
            batch.open_tasks[number] = task_id
            if is_new:
                if number in batch.unsaved_numbers:
                    # An answered call earlier in this batch may be the return: it must be in the database.
                    await batch.flush(session, self._clock())
                    batch.answered_numbers.add(number)
                if number in batch.answered_numbers and await self._close_if_already_returned(
                    session, task_id, number, call.ended_at, batch.directory
                ):
                    batch.open_numbers.discard(number)
                    del batch.open_tasks[number]
                batch.events.append(
                    WebhookEvent(
                        event_id=f"callback.opened:{task_id}",
                        type="callback.opened",
                        occurred_at=call.ended_at,
                        data={"id": task_id, "number": number, "manager": manager, "missed_call_id": call_id},
                    )
                )
            log.info("callback_opened", call_id=call_id, callback_id=task_id, manager=manager, is_new=is_new)
            return task_id
        if is_return(call) and number in batch.open_numbers:
            await batch.flush(session, self._clock())
            closed = await callback_tasks.close_callback(
                session, number, returned_at(call), call_id, returned_by(call, batch.directory)
            )
            if closed is not None:
                batch.open_numbers.discard(number)
                batch.open_tasks.pop(number, None)
                log.info("callback_closed", call_id=call_id, callback_id=closed)
            return closed
        return None

    async def _close_if_already_returned(
        self,
        session: AsyncSession,
        task_id: int,
        number: str,
        missed_at: datetime,
        directory: ManagerDirectory,
    ) -> bool:
        row = await callback_tasks.answered_after(session, number, missed_at)
        if row is None:
            return False
        extension = row.answered_by if row.direction == "inbound" else row.manager
        await callback_tasks.close_with(
            session, task_id, row.answered_at, row.id, directory.at_extension(extension) or extension
        )
        return True


def _lead_created(lead: AutoLead, request: LeadRequest, call: CallRecord, number: str) -> WebhookEvent:
    source, medium, campaign = request.source
    return WebhookEvent(
        event_id=f"lead.created:{lead.entity_id}",
        type="lead.created",
        occurred_at=call.started_at,
        data={
            "id": lead.entity_id,
            "external_id": lead.external_id,
            "kind": EntityKind.LEAD.value,
            "phone": number,
            "owner": lead.owner,
            "did": call.did,
            "source": source,
            "medium": medium,
            "campaign": campaign,
            "call_id": request.call_id,
        },
    )


async def rematch(session: AsyncSession, phones: Iterable[Phone], crm: CrmSettings, now: datetime) -> int:
    """Match again the calls whose numbers these phones share (the CRM added, changed or removed them).
    Leads and callback tasks are facts of the moment of the call and are not redone; returns how many
    calls changed entity."""
    calls = await calls_with_numbers(session, phones, crm.tail_digits)
    if not calls:
        return 0
    candidates = await find_candidates(session, set(calls.values()), crm.tail_digits)
    known = await get_matches(session, list(calls))
    changed = 0
    for call_id, number in sorted(calls.items()):
        match = choose_match(candidates[number], crm.match_priority)
        before = known.get(call_id)
        new_entity = match.entity.entity_id if match.entity else None
        if before is not None and before.entity_id != new_entity:
            changed += 1
        await update_match(session, call_id, match, now)
    if changed:
        log.info("calls_rematched", calls=len(calls), changed=changed)
    return changed
