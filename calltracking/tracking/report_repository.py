"""The source report's SQL: four grouped reads over one period, each with the optional PBX filter."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, and_, case, distinct, false, func, null, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.record import Direction, EntityKind
from calltracking.calls.rollup import period_cover
from calltracking.store.tables import CallMatchRow, CallRow, DealRow, EntityRow, SourceRollupRow
from calltracking.tracking.sources import (
    CallerCounts,
    Callers,
    ReportPeriod,
    RollupLine,
    SourceKey,
    WonDeal,
)

CALLS = cast(Table, CallRow.__table__)
ROLLUPS = cast(Table, SourceRollupRow.__table__)
ENTITIES = cast(Table, EntityRow.__table__)
MATCHES = cast(Table, CallMatchRow.__table__)
DEALS = cast(Table, DealRow.__table__)


async def rollup_lines(session: AsyncSession, period: ReportPeriod, pbx: str | None) -> list[RollupLine]:
    inside = [
        and_(ROLLUPS.c.grain == grain, ROLLUPS.c.bucket >= first, ROLLUPS.c.bucket < last)
        for grain, first, last in period_cover(period.first_bucket, period.end_bucket)
    ]
    conditions = [or_(*inside) if inside else false()]
    if pbx is not None:
        conditions.append(ROLLUPS.c.pbx == pbx)
    key = (ROLLUPS.c.source, ROLLUPS.c.medium, ROLLUPS.c.campaign)
    rows = await session.execute(
        select(
            *key,
            func.sum(ROLLUPS.c.calls).label("calls"),
            func.sum(ROLLUPS.c.answered).label("answered"),
            func.sum(ROLLUPS.c.missed).label("missed"),
            func.sum(ROLLUPS.c.target).label("target"),
        )
        .where(*conditions)
        .group_by(*key)
    )
    # The rollups hold "" for an unattributed part (a primary key cannot be NULL).
    return [
        RollupLine(
            key=(row.source or None, row.medium or None, row.campaign or None),
            calls=int(row.calls),
            answered=int(row.answered),
            missed=int(row.missed),
            target=int(row.target),
        )
        for row in rows.all()
    ]


async def callers(session: AsyncSession, period: ReportPeriod, pbx: str | None) -> CallerCounts:
    """Distinct customer numbers of the period's inbound calls per source and over all sources, and those
    of them with their first call ever in the period, counted in the database: a month holds hundreds of
    thousands. Two aggregates of the same calls, which PostgreSQL runs side by side (`Parallel Append`)."""
    number = CALLS.c.customer_number
    first_time = case((CALLS.c.first_time_caller.is_(True), number))
    counts = (func.count(distinct(number)), func.count(distinct(first_time)))
    # "" for an unattributed part, as in the rollups: a NULL and a "" source are one line (`_key`).
    key = (
        func.coalesce(CALLS.c.source, "").label("source"),
        func.coalesce(CALLS.c.medium, "").label("medium"),
        func.coalesce(CALLS.c.campaign, "").label("campaign"),
    )
    inbound = (*_inbound_in(period, pbx), number.is_not(None))
    by_source = select(*key, *counts).where(*inbound).group_by(*key)
    # The total's row: NULL where a source's row has "" at least.
    total = select(null(), null(), null(), *counts).where(*inbound)
    by_key: dict[SourceKey, Callers] = {}
    in_total = Callers()
    for row in await session.execute(union_all(by_source, total)):
        figures = Callers(unique=int(row[3]), first_time=int(row[4]))
        if row[0] is None:
            in_total = figures
        else:
            by_key[_key(row)] = figures
    return CallerCounts(by_source=by_key, total=in_total)


async def leads_by_source(
    session: AsyncSession, period: ReportPeriod, pbx: str | None
) -> dict[SourceKey, int]:
    """Leads the service created for the period's calls (their first call in it), by the lead's source."""
    key = (ENTITIES.c.source, ENTITIES.c.medium, ENTITIES.c.campaign)
    rows = await session.execute(
        select(*key, func.count().label("leads"))
        .select_from(ENTITIES.join(CALLS, CALLS.c.id == ENTITIES.c.first_call_id))
        .where(
            # Made here for a caller (joined on its first call): adopted by the CRM since, or not.
            ENTITIES.c.kind == EntityKind.LEAD.value,
            # A lead the service made is created at its first call's start (`ensure_auto_lead` is given
            # `call.started_at`), so this is the calls' bound again; it reads the period's leads from
            # `ix_crm_entities_kind_created_at` instead of every lead.
            ENTITIES.c.created_at >= period.start,
            ENTITIES.c.created_at < period.end,
            *_calls_in(period, pbx),
        )
        .group_by(*key)
    )
    return {_key(row): int(row.leads) for row in rows.all()}


async def won_deals(session: AsyncSession, period: ReportPeriod, pbx: str | None) -> list[WonDeal]:
    """Won deals of the entities the period's inbound calls landed on, closed at or after such a call, once
    per source."""
    entity_deal = or_(
        and_(ENTITIES.c.kind == EntityKind.CONTACT.value, DEALS.c.contact == ENTITIES.c.external_id),
        and_(ENTITIES.c.kind == EntityKind.COMPANY.value, DEALS.c.company == ENTITIES.c.external_id),
        and_(ENTITIES.c.kind == EntityKind.LEAD.value, DEALS.c.lead == ENTITIES.c.external_id),
    )
    rows = await session.execute(
        select(CALLS.c.source, CALLS.c.medium, CALLS.c.campaign, DEALS.c.id, DEALS.c.amount_minor)
        .select_from(
            CALLS.join(MATCHES, MATCHES.c.call_id == CALLS.c.id)
            .join(ENTITIES, ENTITIES.c.id == MATCHES.c.entity_id)
            .join(DEALS, entity_deal)
        )
        .where(
            *_inbound_in(period, pbx),
            DEALS.c.is_won.is_(True),
            DEALS.c.is_active.is_(True),
            DEALS.c.closed_at >= CALLS.c.started_at,
            # Implied by `closed_at >= started_at` and `started_at >= period.start`: lets
            # `ix_deals_closed_at` keep the deals closed since the period started, not every won deal.
            DEALS.c.closed_at >= period.start,
        )
        .distinct()
    )
    return [WonDeal(key=_key(row), deal_id=row.id, amount_minor=row.amount_minor) for row in rows.all()]


def _calls_in(period: ReportPeriod, pbx: str | None) -> list[Any]:
    conditions = [CALLS.c.started_at >= period.start, CALLS.c.started_at < period.end]
    if pbx is not None:
        conditions.append(CALLS.c.pbx == pbx)
    return conditions


def _inbound_in(period: ReportPeriod, pbx: str | None) -> list[Any]:
    return [CALLS.c.direction == Direction.INBOUND.value, *_calls_in(period, pbx)]


def _key(row: Any) -> SourceKey:
    return (row.source or None, row.medium or None, row.campaign or None)
