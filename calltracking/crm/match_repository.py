"""SQL for matching: the candidates for a set of numbers, the match kept on each call, auto-created leads
and the round-robin cursor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import EntityKind, EntityRef
from calltracking.crm.matching import Candidate, Match, MatchedBy
from calltracking.crm.mirror import EntityOrigin, Manager
from calltracking.crm.repository import ENTITIES, PHONES, add_entity_phones
from calltracking.numbers import Phone, prefix_range, reversed_digits
from calltracking.store.tables import AssignmentCursorRow, CallMatchRow, CallRow, DealRow
from calltracking.store.times import from_db
from calltracking.store.upserts import insert_for

MATCHES = cast(Table, CallMatchRow.__table__)
CALLS = cast(Table, CallRow.__table__)
DEALS = cast(Table, DealRow.__table__)
CURSORS = cast(Table, AssignmentCursorRow.__table__)
ROUND_ROBIN = "leads"
# Numbers per statement; tail ranges are ORed, so fewer of them.
NUMBER_CHUNK = 500
TAIL_CHUNK = 100


def tail_of(number: str, digits: int) -> str | None:
    """The reversed last `digits` digits of a number, or None when it has fewer."""
    reversed_all = reversed_digits(number)
    return reversed_all[:digits] if len(reversed_all) >= digits else None


async def find_candidates(
    session: AsyncSession, numbers: Iterable[str], tail_digits: int
) -> dict[str, list[Candidate]]:
    """Active contacts, companies and leads having each number: exact E.164 hits, and for a number with
    none, those whose stored phone ends in the same `tail_digits` digits."""
    wanted = sorted(set(numbers))
    found: dict[str, list[Candidate]] = {number: [] for number in wanted}
    for start in range(0, len(wanted), NUMBER_CHUNK):
        chunk = wanted[start : start + NUMBER_CHUNK]
        rows = await session.execute(candidate_select().where(PHONES.c.e164.in_(chunk)))
        for row in rows.all():
            found[row.e164].append(candidate_of(row._mapping, MatchedBy.NUMBER))
    by_tail: dict[str, list[str]] = {}
    for number in wanted:
        tail = tail_of(number, tail_digits)
        if not found[number] and tail is not None:
            by_tail.setdefault(tail, []).append(number)
    tails = sorted(by_tail)
    for start in range(0, len(tails), TAIL_CHUNK):
        chunk = tails[start : start + TAIL_CHUNK]
        rows = await session.execute(
            candidate_select(PHONES.c.digits_reversed).where(or_(*(_starts_with(t) for t in chunk)))
        )
        for row in rows.all():
            tail = row.digits_reversed[:tail_digits]
            for number in by_tail.get(tail, ()):
                found[number].append(candidate_of(row._mapping, MatchedBy.TAIL))
    await mark_open_deals(session, found)
    return found


def candidate_select(*extra: Any) -> Any:
    """The active contacts, companies and leads with a phone, and `extra` columns; to be narrowed by a
    condition on the phone (the matcher and the caller lookup share it)."""
    return (
        select(
            PHONES.c.e164,
            ENTITIES.c.id,
            ENTITIES.c.kind,
            ENTITIES.c.external_id,
            ENTITIES.c.name,
            ENTITIES.c.owner,
            ENTITIES.c.last_activity_at,
            *extra,
        )
        .join(ENTITIES, ENTITIES.c.id == PHONES.c.entity_id)
        .where(ENTITIES.c.is_active.is_(True))
    )


def _starts_with(tail: str) -> Any:
    low, high = prefix_range(tail)
    if high is None:
        return PHONES.c.digits_reversed >= low
    return and_(PHONES.c.digits_reversed >= low, PHONES.c.digits_reversed < high)


def candidate_of(row: Mapping[Any, Any], matched_by: MatchedBy) -> Candidate:
    """A row of `candidate_select` (a SQLAlchemy row's mapping, or an asyncpg record)."""
    last_activity_at = row["last_activity_at"]
    return Candidate(
        entity_id=row["id"],
        kind=EntityKind(row["kind"]),
        external_id=row["external_id"],
        name=row["name"],
        owner=row["owner"],
        matched_by=matched_by,
        last_activity_at=from_db(last_activity_at) if last_activity_at else None,
    )


async def mark_open_deals(session: AsyncSession, found: dict[str, list[Candidate]]) -> None:
    """Open deals only decide between several candidates: asked only when there is a choice."""
    if all(len(group) < 2 for group in found.values()):
        return
    keys: dict[str, set[str]] = {kind.value: set() for kind in EntityKind}
    for candidate in (c for group in found.values() for c in group):
        keys[candidate.kind.value].add(candidate.external_id)
    with_deal: set[tuple[str, str]] = set()
    is_open = and_(DEALS.c.is_active.is_(True), DEALS.c.closed_at.is_(None), DEALS.c.is_won.is_(None))
    for kind, column in (("contact", DEALS.c.contact), ("company", DEALS.c.company), ("lead", DEALS.c.lead)):
        if keys[kind]:
            rows = await session.execute(
                select(column).where(is_open, column.in_(sorted(keys[kind]))).distinct()
            )
            with_deal.update((kind, value) for value in rows.scalars().all())
    for number, group in found.items():
        found[number] = [_with_deal(c) if (c.kind.value, c.external_id) in with_deal else c for c in group]


def _with_deal(candidate: Candidate) -> Candidate:
    return Candidate(
        entity_id=candidate.entity_id,
        kind=candidate.kind,
        external_id=candidate.external_id,
        name=candidate.name,
        owner=candidate.owner,
        matched_by=candidate.matched_by,
        has_open_deal=True,
        last_activity_at=candidate.last_activity_at,
    )


@dataclass(frozen=True, slots=True)
class StoredMatch:
    call_id: int
    number: str
    entity_id: int | None
    matched_by: MatchedBy | None
    candidates: tuple[dict[str, Any], ...]
    lead_created: bool
    callback_id: int | None


async def get_matches(session: AsyncSession, call_ids: Sequence[int]) -> dict[int, StoredMatch]:
    if not call_ids:
        return {}
    rows = await session.execute(select(MATCHES).where(MATCHES.c.call_id.in_(list(call_ids))))
    return {
        row.call_id: StoredMatch(
            call_id=row.call_id,
            number=row.number,
            entity_id=row.entity_id,
            matched_by=MatchedBy(row.matched_by) if row.matched_by else None,
            candidates=tuple(row.candidates or ()),
            lead_created=row.lead_created,
            callback_id=row.callback_id,
        )
        for row in rows.all()
    }


@dataclass(frozen=True, slots=True)
class NewMatch:
    """What one call matched, to be written with the others of its batch."""

    call_id: int
    number: str
    match: Match
    lead_created: bool
    callback_id: int | None


async def save_matches(session: AsyncSession, matches: Sequence[NewMatch], now: datetime) -> None:
    """Keep what the calls matched, in one statement. A call written again (a replay, a retried batch)
    keeps the fact that it created its lead and the callback task it counted in."""
    if not matches:
        return
    rows = {
        new.call_id: {
            "call_id": new.call_id,
            "number": new.number,
            "digits_reversed": reversed_digits(new.number),
            "entity_id": new.match.entity.entity_id if new.match.entity else None,
            "matched_by": new.match.entity.matched_by.value if new.match.entity else None,
            "candidates": [candidate_view(c) for c in new.match.candidates],
            "lead_created": new.lead_created,
            "callback_id": new.callback_id,
            "matched_at": now,
        }
        for new in matches
    }
    statement = insert_for(session, MATCHES)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["call_id"],
            set_={
                "number": statement.excluded.number,
                "digits_reversed": statement.excluded.digits_reversed,
                "entity_id": statement.excluded.entity_id,
                "matched_by": statement.excluded.matched_by,
                "candidates": statement.excluded.candidates,
                "lead_created": or_(MATCHES.c.lead_created, statement.excluded.lead_created),
                "callback_id": func.coalesce(MATCHES.c.callback_id, statement.excluded.callback_id),
                "matched_at": statement.excluded.matched_at,
            },
        ),
        list(rows.values()),
    )


async def update_match(session: AsyncSession, call_id: int, match: Match, now: datetime) -> None:
    await session.execute(
        update(MATCHES)
        .where(MATCHES.c.call_id == call_id)
        .values(
            entity_id=match.entity.entity_id if match.entity else None,
            matched_by=match.entity.matched_by.value if match.entity else None,
            candidates=[candidate_view(c) for c in match.candidates],
            matched_at=now,
        )
    )


def candidate_view(candidate: Candidate) -> dict[str, Any]:
    return {
        "id": candidate.entity_id,
        "kind": candidate.kind.value,
        "external_id": candidate.external_id,
        "name": candidate.name,
        "owner": candidate.owner,
        "matched_by": candidate.matched_by.value,
        "has_open_deal": candidate.has_open_deal,
    }


async def calls_with_numbers(
    session: AsyncSession, phones: Iterable[Phone], tail_digits: int
) -> dict[int, str]:
    """Call id -> number, for the calls a change of these phones may re-match: the same E.164 number, or,
    for a phone that is not a valid number, the same last `tail_digits` digits. (A valid phone that only
    shares the last digits of a call's number is a different number; it would only be a fallback candidate
    for a call with no exact match, and scanning ranges for every phone of a bulk load is what made loads
    slow.)"""
    e164s = sorted({p.e164 for p in phones if p.e164})
    tails = sorted(
        {
            p.digits_reversed[:tail_digits]
            for p in phones
            if p.e164 is None and len(p.digits_reversed) >= tail_digits
        }
    )
    found: dict[int, str] = {}
    for start in range(0, len(e164s), NUMBER_CHUNK):
        rows = await session.execute(
            select(MATCHES.c.call_id, MATCHES.c.number).where(
                MATCHES.c.number.in_(e164s[start : start + NUMBER_CHUNK])
            )
        )
        found.update((row.call_id, row.number) for row in rows.all())
    for start in range(0, len(tails), TAIL_CHUNK):
        conditions = []
        for tail in tails[start : start + TAIL_CHUNK]:
            low, high = prefix_range(tail)
            column = MATCHES.c.digits_reversed
            conditions.append(column >= low if high is None else and_(column >= low, column < high))
        rows = await session.execute(select(MATCHES.c.call_id, MATCHES.c.number).where(or_(*conditions)))
        found.update((row.call_id, row.number) for row in rows.all())
    return found


async def touch_activity(session: AsyncSession, latest: Mapping[int, datetime]) -> None:
    """Move each entity's last activity forward to its latest call, in one executemany (a batch of calls
    must not cost a round trip per entity)."""
    if not latest:
        return
    at = bindparam("activity_at", type_=ENTITIES.c.last_activity_at.type)
    await session.execute(
        update(ENTITIES)
        .where(
            ENTITIES.c.id == bindparam("activity_entity_id"),
            or_(ENTITIES.c.last_activity_at.is_(None), ENTITIES.c.last_activity_at < at),
        )
        .values(last_activity_at=at),
        [
            {"activity_entity_id": entity_id, "activity_at": when}
            for entity_id, when in sorted(latest.items())
        ],
    )


@dataclass(frozen=True, slots=True)
class AutoLead:
    entity_id: int
    external_id: str
    owner: str | None
    is_new: bool
    is_active: bool = True


@dataclass(frozen=True, slots=True)
class LeadRequest:
    """A lead an unknown number's call asks for: what it is created with if no call created it first."""

    external_id: str
    phone: Phone
    call_id: int
    owner: str | None
    name: str
    source: tuple[str | None, str | None, str | None]
    at: datetime


async def ensure_auto_leads(session: AsyncSession, requests: Sequence[LeadRequest]) -> dict[str, AutoLead]:
    """The lead of each unknown number (by external id), created at most once: the id is derived from the
    number, and the insert skips numbers another call (or process) made a lead for first. One insert for
    all (an executemany: compiled once, whatever the batch's size), one for their phones and one read of
    the leads that existed; rows go in the order of their ids, so two writers lock them in the same
    order."""
    unique = {request.external_id: request for request in requests}
    if not unique:
        return {}
    ordered = [unique[external_id] for external_id in sorted(unique)]
    statement = (
        insert_for(session, ENTITIES)
        .on_conflict_do_nothing(index_elements=["kind", "external_id"])
        .returning(ENTITIES.c.id, ENTITIES.c.external_id)
    )
    rows = [
        {
            "kind": EntityKind.LEAD.value,
            "external_id": request.external_id,
            "name": request.name,
            "owner": request.owner,
            "company": None,
            "status": "new",
            "source": request.source[0],
            "medium": request.source[1],
            "campaign": request.source[2],
            "origin": EntityOrigin.CALL.value,
            "first_call_id": request.call_id,
            "is_active": True,
            "merged_into_id": None,
            "last_activity_at": None,
            "created_at": request.at,
            "updated_at": request.at,
        }
        for request in ordered
    ]
    created = {row.external_id: int(row.id) for row in (await session.execute(statement, rows)).all()}
    if created:
        await add_entity_phones(
            session, [(created[r.external_id], r.phone) for r in ordered if r.external_id in created]
        )
    leads = {
        external_id: AutoLead(
            entity_id=entity_id, external_id=external_id, owner=unique[external_id].owner, is_new=True
        )
        for external_id, entity_id in created.items()
    }
    existing = [external_id for external_id in sorted(unique) if external_id not in created]
    for start in range(0, len(existing), NUMBER_CHUNK):
        found = await session.execute(
            select(ENTITIES.c.id, ENTITIES.c.external_id, ENTITIES.c.owner, ENTITIES.c.is_active).where(
                ENTITIES.c.kind == EntityKind.LEAD.value,
                ENTITIES.c.external_id.in_(existing[start : start + NUMBER_CHUNK]),
            )
        )
        for row in found.all():
            leads[row.external_id] = AutoLead(
                entity_id=row.id,
                external_id=row.external_id,
                owner=row.owner,
                is_new=False,
                is_active=row.is_active,
            )
    return leads


async def next_in_rotation(session: AsyncSession, rotation: Sequence[Manager]) -> Manager | None:
    """Round-robin over active managers, continuing where the last assignment stopped (also after a
    restart, and shared by every process on the same database)."""
    if not rotation:
        return None
    # The cursor row exists before it is locked: two writers that both found no row would both start
    # the rotation from its first manager. (0 is below every id: the first turn is the first manager.)
    await session.execute(
        insert_for(session, CURSORS)
        .values(name=ROUND_ROBIN, last_manager_id=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    last = (
        await session.execute(
            select(CURSORS.c.last_manager_id).where(CURSORS.c.name == ROUND_ROBIN).with_for_update()
        )
    ).scalar_one()
    chosen = next((m for m in rotation if m.id > last), rotation[0])
    await session.execute(
        update(CURSORS).where(CURSORS.c.name == ROUND_ROBIN).values(last_manager_id=chosen.id)
    )
    return chosen


async def set_lead_owner(session: AsyncSession, entity_id: int, owner: str) -> None:
    await session.execute(update(ENTITIES).where(ENTITIES.c.id == entity_id).values(owner=owner))


async def entity_refs(session: AsyncSession, call_ids: Sequence[int]) -> dict[int, EntityRef]:
    if not call_ids:
        return {}
    rows = await session.execute(
        select(MATCHES.c.call_id, ENTITIES.c.id, ENTITIES.c.kind, ENTITIES.c.external_id, ENTITIES.c.name)
        .join(ENTITIES, ENTITIES.c.id == MATCHES.c.entity_id)
        .where(MATCHES.c.call_id.in_(list(call_ids)))
    )
    return {
        row.call_id: EntityRef(
            id=row.id, kind=EntityKind(row.kind), external_id=row.external_id, name=row.name
        )
        for row in rows.all()
    }
