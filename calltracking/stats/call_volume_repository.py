"""The calls of a period counted per quarter hour, direction and status, in one grouped query."""

from __future__ import annotations

from typing import cast

from sqlalchemy import ColumnElement, Table, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.stats.call_volume import BucketCount
from calltracking.stats.period import Period
from calltracking.store.tables import CallRow

CALLS = cast(Table, CallRow.__table__)
_BUCKET = {
    "sqlite": "(CAST(strftime('%s', calls.started_at) AS INTEGER) / 900) * 900",
    "postgresql": "(floor(extract(epoch FROM calls.started_at) / 900) * 900)::bigint",
}


async def bucket_counts(
    session: AsyncSession, period: Period, manager: str | None = None, pbx: str | None = None
) -> list[BucketCount]:
    """`manager`: only the calls whose manager is that extension (a manager's own)."""
    bucket: ColumnElement[int] = literal_column(_BUCKET[session.get_bind().dialect.name]).label("bucket")
    conditions = [CALLS.c.started_at >= period.start, CALLS.c.started_at < period.end]
    if manager is not None:
        conditions.append(CALLS.c.manager == manager)
    if pbx is not None:
        conditions.append(CALLS.c.pbx == pbx)
    statement = (
        select(bucket, CALLS.c.direction, CALLS.c.status, func.count().label("calls"))
        .where(*conditions)
        .group_by(literal_column("bucket"), CALLS.c.direction, CALLS.c.status)
    )
    rows = (await session.execute(statement)).all()
    return [BucketCount(int(row.bucket), row.direction, row.status, int(row.calls)) for row in rows]
