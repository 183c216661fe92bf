"""The calls of a period counted per quarter hour, direction and status, in one grouped query."""

from __future__ import annotations

from typing import cast

from sqlalchemy import ColumnElement, Table, and_, case, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.rollup import BUCKET_SECONDS, TOTAL
from calltracking.stats.call_volume import BucketCount
from calltracking.stats.period import Period
from calltracking.store.tables import CallRow, ManagerRollupRow

CALLS = cast(Table, CallRow.__table__)
ROLLUPS = cast(Table, ManagerRollupRow.__table__)
_BUCKET = {
    "sqlite": "(CAST(strftime('%s', calls.started_at) AS INTEGER) / 900) * 900",
    "postgresql": "(floor(extract(epoch FROM calls.started_at) / 900) * 900)::bigint",
}


async def bucket_counts(
    session: AsyncSession, period: Period, manager: str | None = None, pbx: str | None = None
) -> list[BucketCount]:
    """`manager`: only the calls whose manager is that extension (a manager's own), counted from the
    calls; everyone's from the rollups' whole-PBX rows. A month is at most ~3,000 rows either way."""
    if manager is None:
        return await _whole_pbx(session, period, pbx)
    bucket: ColumnElement[int] = literal_column(_BUCKET[session.get_bind().dialect.name]).label("bucket")
    conditions = [CALLS.c.started_at >= period.start, CALLS.c.started_at < period.end]
    if manager is not None:
        conditions.append(CALLS.c.manager == manager)
    if pbx is not None:
        conditions.append(CALLS.c.pbx == pbx)
    answered = CALLS.c.status == "answered"
    inbound, internal = CALLS.c.direction == "inbound", CALLS.c.direction == "internal"
    outbound = CALLS.c.direction == "outbound"
    series = {
        "inbound_answered": and_(inbound, answered),
        "inbound_missed": and_(inbound, ~answered),
        "outbound_answered": and_(outbound, answered),
        "outbound_unanswered": and_(outbound, ~answered),
        "internal": internal,
    }
    statement = (
        select(
            bucket,
            *(func.sum(case((condition, 1), else_=0)).label(name) for name, condition in series.items()),
        )
        .where(*conditions)
        .group_by(literal_column("bucket"))
    )
    rows = (await session.execute(statement)).all()
    return [
        BucketCount(int(row.bucket), {name: int(row._mapping[name] or 0) for name in series}) for row in rows
    ]


async def _whole_pbx(session: AsyncSession, period: Period, pbx: str | None) -> list[BucketCount]:
    """The rollups' rows of extension "" count every call once (`calls.rollup.manager_contribution`)."""
    first, last = period.buckets
    conditions = [
        ROLLUPS.c.extension == TOTAL,
        ROLLUPS.c.grain == BUCKET_SECONDS,
        ROLLUPS.c.bucket >= first,
        ROLLUPS.c.bucket < last,
    ]
    if pbx is not None:
        conditions.append(ROLLUPS.c.pbx == pbx)
    counts = [
        func.sum(ROLLUPS.c[name]).label(name)
        for name in (
            "inbound_received",
            "inbound_answered",
            "outbound_made",
            "outbound_answered",
            "internal_calls",
        )
    ]
    statement = select(ROLLUPS.c.bucket, *counts).where(*conditions).group_by(ROLLUPS.c.bucket)
    return [
        BucketCount(
            int(row.bucket),
            {
                "inbound_answered": int(row.inbound_answered),
                "inbound_missed": int(row.inbound_received - row.inbound_answered),
                "outbound_answered": int(row.outbound_answered),
                "outbound_unanswered": int(row.outbound_made - row.outbound_answered),
                "internal": int(row.internal_calls),
            },
        )
        for row in (await session.execute(statement)).all()
    ]
