"""All SQL about the CRM mirror: upserts keyed by the CRM's ids, phones, deactivation, reads.

Bulk upserts are a few statements per chunk whatever its size (one upsert, one phone delete, one phone
insert), so a first load of hundreds of thousands of contacts takes minutes, not hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, case, delete, false, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import EntityKind
from calltracking.crm.mirror import (
    KIND_OF_INPUT,
    Deal,
    DealIn,
    Entity,
    EntityOrigin,
    Manager,
    ManagerIn,
    PartyIn,
)
from calltracking.numbers import Phone, parse_phone
from calltracking.store.tables import DealRow, EntityPhoneRow, EntityRow, ManagerRow
from calltracking.store.times import from_db
from calltracking.store.upserts import insert_for

ENTITIES = cast(Table, EntityRow.__table__)
PHONES = cast(Table, EntityPhoneRow.__table__)
MANAGERS = cast(Table, ManagerRow.__table__)
DEALS = cast(Table, DealRow.__table__)
# Rows per statement: well under PostgreSQL's 32767 bind parameters for the widest table.
CHUNK = 1000


@dataclass
class UpsertResult:
    created: int = 0
    updated: int = 0
    # Phones an upsert added or removed: the calls with these numbers are matched again.
    touched_phones: list[Phone] = field(default_factory=list)


async def upsert_managers(session: AsyncSession, items: Sequence[ManagerIn], now: datetime) -> UpsertResult:
    unique = _last_wins(items)
    result = UpsertResult(updated=len(items) - len(unique))
    for chunk in _chunks(unique):
        rows = [
            {
                "external_id": item.external_id,
                "name": item.name,
                "extensions": list(dict.fromkeys(item.extensions)),
                "team": item.team,
                "is_active": item.is_active,
                "created_at": now,
                "updated_at": now,
            }
            for item in chunk
        ]
        await _upsert_by_external_id(
            session, MANAGERS, rows, ("name", "extensions", "team", "is_active", "updated_at"), result
        )
    return result


async def _upsert_by_external_id(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    updated: Sequence[str],
    result: UpsertResult,
) -> None:
    """Insert or update rows keyed by the CRM's id, counting which were new."""
    existing = await _existing(session, table, [row["external_id"] for row in rows])
    statement = insert_for(session, table)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["external_id"], set_={name: statement.excluded[name] for name in updated}
        ),
        rows,
    )
    result.updated += len(existing)
    result.created += len(rows) - len(existing)


async def upsert_parties(
    session: AsyncSession, items: Sequence[PartyIn], default_country: str, now: datetime
) -> UpsertResult:
    """Contacts, companies and leads (one kind or mixed). A lead created here for an unknown caller may be
    sent back by the CRM under its `ct-...` id: that updates it and makes it the CRM's."""
    unique = _last_wins(items, key=lambda item: (KIND_OF_INPUT[type(item)], item.external_id))
    result = UpsertResult(updated=len(items) - len(unique))
    for chunk in _chunks(unique):
        for kind in EntityKind:
            same_kind = [item for item in chunk if KIND_OF_INPUT[type(item)] is kind]
            if same_kind:
                await _upsert_kind(session, kind, same_kind, default_country, now, result)
    return result


async def _upsert_kind(
    session: AsyncSession,
    kind: EntityKind,
    items: list[PartyIn],
    default_country: str,
    now: datetime,
    result: UpsertResult,
) -> None:
    rows = [_party_values(kind, item, now) for item in items]
    statement = insert_for(session, ENTITIES)
    updated_columns = ("name", "owner", "company", "status", "source", "medium", "campaign", "converted_to")
    set_ = {name: statement.excluded[name] for name in updated_columns}
    # A merged entity stays merged: the CRM sending it again (a full re-sync) must not revive a duplicate.
    set_["is_active"] = case(
        (ENTITIES.c.merged_into_id.is_(None), statement.excluded["is_active"]), else_=false()
    )
    set_["origin"] = statement.excluded["origin"]
    set_["updated_at"] = statement.excluded["updated_at"]
    existing = await _existing(session, ENTITIES, [item.external_id for item in items], kind=kind)
    returned = await session.execute(
        statement.on_conflict_do_update(index_elements=["kind", "external_id"], set_=set_).returning(
            ENTITIES.c.id, ENTITIES.c.external_id
        ),
        rows,
    )
    ids = {row.external_id: row.id for row in returned.all()}
    result.updated += len(existing)
    result.created += len(items) - len(existing)
    old = await session.execute(
        select(PHONES.c.raw, PHONES.c.e164, PHONES.c.digits_reversed).where(
            PHONES.c.entity_id.in_(list(ids.values()))
        )
    )
    result.touched_phones.extend(Phone(row.raw, row.e164, row.digits_reversed) for row in old.all())
    await session.execute(delete(PHONES).where(PHONES.c.entity_id.in_(list(ids.values()))))
    phone_rows = []
    for item in items:
        for phone in _unique_phones(item.phones, default_country):
            phone_rows.append(_phone_values(ids[item.external_id], phone))
            result.touched_phones.append(phone)
    if phone_rows:
        await session.execute(insert(PHONES), phone_rows)


def _party_values(kind: EntityKind, item: PartyIn, now: datetime) -> dict[str, Any]:
    return {
        "kind": kind.value,
        "external_id": item.external_id,
        "name": item.name,
        "owner": item.owner,
        "company": getattr(item, "company", None),
        "status": getattr(item, "status", None),
        "source": getattr(item, "source", None),
        "medium": getattr(item, "medium", None),
        "campaign": getattr(item, "campaign", None),
        "converted_to": getattr(item, "converted_to", None),
        "origin": EntityOrigin.CRM.value,
        "first_call_id": None,
        "is_active": item.is_active,
        "merged_into_id": None,
        "last_activity_at": None,
        "created_at": now,
        "updated_at": now,
    }


def _unique_phones(raws: Iterable[str], default_country: str) -> list[Phone]:
    """One row per distinct number: `+7 916...` and `8 916...` on the same contact are one phone."""
    phones: dict[str, Phone] = {}
    for raw in raws:
        phone = parse_phone(raw, default_country)
        phones.setdefault(phone.e164 or phone.raw, phone)
    return list(phones.values())


def _phone_values(entity_id: int, phone: Phone) -> dict[str, Any]:
    return {
        "entity_id": entity_id,
        "raw": phone.raw,
        "e164": phone.e164,
        "digits_reversed": phone.digits_reversed,
        "tail_key": phone.tail_key,
        "is_valid": phone.is_valid,
    }


async def add_phones(session: AsyncSession, entity_id: int, phones: Sequence[Phone]) -> None:
    await add_entity_phones(session, [(entity_id, phone) for phone in phones])


async def add_entity_phones(session: AsyncSession, phones: Sequence[tuple[int, Phone]]) -> None:
    """Phones of several entities in one statement."""
    if phones:
        await session.execute(
            insert(PHONES), [_phone_values(entity_id, phone) for entity_id, phone in phones]
        )


async def upsert_deals(session: AsyncSession, items: Sequence[DealIn], now: datetime) -> UpsertResult:
    unique = _last_wins(items)
    result = UpsertResult(updated=len(items) - len(unique))
    for chunk in _chunks(unique):
        rows = [
            {
                "external_id": item.external_id,
                "name": item.name,
                "contact": item.contact,
                "company": item.company,
                "lead": item.lead,
                "owner": item.owner,
                "stage": item.stage,
                "amount_minor": item.amount_minor,
                "currency": item.currency,
                "opened_at": item.opened_at,
                "closed_at": item.closed_at,
                "is_won": item.is_won,
                "is_active": item.is_active,
                "updated_at": now,
            }
            for item in chunk
        ]
        await _upsert_by_external_id(
            session, DEALS, rows, [name for name in rows[0] if name != "external_id"], result
        )
    return result


async def deactivate_party(
    session: AsyncSession, kind: EntityKind, external_id: str, now: datetime
) -> list[Phone] | None:
    """Soft delete: the entity stops matching calls but keeps its history. Returns its phones (to match
    their calls again), None when there is no such entity."""
    row = (
        await session.execute(
            select(ENTITIES.c.id).where(ENTITIES.c.kind == kind.value, ENTITIES.c.external_id == external_id)
        )
    ).first()
    if row is None:
        return None
    await session.execute(
        update(ENTITIES).where(ENTITIES.c.id == row.id).values(is_active=False, updated_at=now)
    )
    phones = await session.execute(
        select(PHONES.c.raw, PHONES.c.e164, PHONES.c.digits_reversed).where(PHONES.c.entity_id == row.id)
    )
    return [Phone(p.raw, p.e164, p.digits_reversed) for p in phones.all()]


async def deactivate_manager(session: AsyncSession, external_id: str, now: datetime) -> bool:
    done = await session.execute(
        update(MANAGERS).where(MANAGERS.c.external_id == external_id).values(is_active=False, updated_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def deactivate_deal(session: AsyncSession, external_id: str, now: datetime) -> bool:
    done = await session.execute(
        update(DEALS).where(DEALS.c.external_id == external_id).values(is_active=False, updated_at=now)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def get_manager(session: AsyncSession, external_id: str) -> Manager | None:
    row = (await session.execute(select(MANAGERS).where(MANAGERS.c.external_id == external_id))).first()
    return _manager(row) if row is not None else None


async def list_managers(session: AsyncSession) -> list[Manager]:
    rows = await session.execute(select(MANAGERS).order_by(MANAGERS.c.id))
    return [_manager(row) for row in rows.all()]


def _manager(row: Any) -> Manager:
    return Manager(
        id=row.id,
        external_id=row.external_id,
        name=row.name,
        extensions=tuple(row.extensions or ()),
        team=row.team,
        is_active=row.is_active,
    )


async def get_party(session: AsyncSession, kind: EntityKind, external_id: str) -> Entity | None:
    row = (
        await session.execute(
            select(ENTITIES).where(ENTITIES.c.kind == kind.value, ENTITIES.c.external_id == external_id)
        )
    ).first()
    if row is None:
        return None
    [entity] = await _entities(session, [row])
    return entity


async def get_parties_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Entity]:
    wanted = list(set(ids))
    if not wanted:
        return {}
    rows = (await session.execute(select(ENTITIES).where(ENTITIES.c.id.in_(wanted)))).all()
    return {entity.id: entity for entity in await _entities(session, list(rows))}


async def list_leads(
    session: AsyncSession, created_since: datetime | None, after_id: int | None, limit: int
) -> list[Entity]:
    """Leads in the order they were created here (by id), for a CRM polling for new ones."""
    conditions = [ENTITIES.c.kind == EntityKind.LEAD.value]
    if created_since is not None:
        conditions.append(ENTITIES.c.created_at >= created_since)
    if after_id is not None:
        conditions.append(ENTITIES.c.id > after_id)
    rows = await session.execute(
        select(ENTITIES).where(and_(*conditions)).order_by(ENTITIES.c.id).limit(limit)
    )
    return await _entities(session, list(rows.all()))


async def _entities(session: AsyncSession, rows: list[Any]) -> list[Entity]:
    phones: dict[int, list[Phone]] = {row.id: [] for row in rows}
    if rows:
        found = await session.execute(
            select(PHONES).where(PHONES.c.entity_id.in_(list(phones))).order_by(PHONES.c.id)
        )
        for phone in found.all():
            phones[phone.entity_id].append(Phone(phone.raw, phone.e164, phone.digits_reversed))
    return [
        Entity(
            id=row.id,
            kind=EntityKind(row.kind),
            external_id=row.external_id,
            name=row.name,
            owner=row.owner,
            phones=tuple(phones[row.id]),
            origin=EntityOrigin(row.origin),
            is_active=row.is_active,
            created_at=from_db(row.created_at),
            updated_at=from_db(row.updated_at),
            company=row.company,
            status=row.status,
            source=row.source,
            medium=row.medium,
            campaign=row.campaign,
            converted_to=row.converted_to,
            first_call_id=row.first_call_id,
            merged_into_id=row.merged_into_id,
            last_activity_at=from_db(row.last_activity_at) if row.last_activity_at else None,
        )
        for row in rows
    ]


async def get_deal(session: AsyncSession, external_id: str) -> Deal | None:
    row = (await session.execute(select(DEALS).where(DEALS.c.external_id == external_id))).first()
    if row is None:
        return None
    return Deal(
        id=row.id,
        external_id=row.external_id,
        name=row.name,
        contact=row.contact,
        company=row.company,
        lead=row.lead,
        owner=row.owner,
        stage=row.stage,
        amount=None if row.amount_minor is None else Decimal(row.amount_minor).scaleb(-2),
        currency=row.currency,
        opened_at=from_db(row.opened_at) if row.opened_at else None,
        closed_at=from_db(row.closed_at) if row.closed_at else None,
        is_won=row.is_won,
        is_active=row.is_active,
    )


async def _existing(
    session: AsyncSession, table: Table, external_ids: list[str], kind: EntityKind | None = None
) -> set[str]:
    statement = select(table.c.external_id).where(table.c.external_id.in_(external_ids))
    if kind is not None:
        statement = statement.where(table.c.kind == kind.value)
    return set((await session.execute(statement)).scalars().all())


def _last_wins(items: Sequence[Any], key: Any = None) -> list[Any]:
    """A batch may name the same id twice (PostgreSQL refuses that in one upsert): the last one wins. The
    callers count each later one as an update of the one before, so created + updated is what was sent."""
    by_key: dict[Any, Any] = {}
    for item in items:
        by_key[key(item) if key else item.external_id] = item
    return list(by_key.values())


def _chunks(items: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


async def manager_of_token(session: AsyncSession, token_manager: str) -> str | None:
    """The CRM id of the manager a manager token names: by CRM id, or by one of their extensions (tokens
    made before the CRM mirror was loaded name an extension)."""
    rows = (
        await session.execute(select(MANAGERS.c.external_id, MANAGERS.c.extensions).order_by(MANAGERS.c.id))
    ).all()
    by_id = next((row.external_id for row in rows if row.external_id == token_manager), None)
    by_extension = next((row.external_id for row in rows if token_manager in (row.extensions or ())), None)
    return by_id or by_extension


async def extension_of(session: AsyncSession, manager: str) -> str:
    """The extension that rings for a manager named by CRM id: their first one. A name the mirror does not
    know (or a manager without extensions) is taken to be an extension already."""
    row = (
        await session.execute(
            select(MANAGERS.c.extensions).where(
                MANAGERS.c.external_id == manager, MANAGERS.c.is_active.is_(True)
            )
        )
    ).first()
    if row is None or not row.extensions:
        return manager
    return str(row.extensions[0])


async def refresh_statistics(session: AsyncSession) -> None:
    """ANALYZE the mirror's tables (PostgreSQL; SQLite plans without statistics well enough here)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("ANALYZE managers, crm_entities, entity_phones, deals"))
