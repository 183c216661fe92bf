"""The rollups' SQL: add a batch's changes with one upsert per table, in the transaction that writes the
calls, so a report never sees a call without its counts or counts without their call."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.rollup import RollupDelta
from calltracking.store.tables import ManagerRollupRow, SourceRollupRow
from calltracking.store.upserts import insert_for

MANAGER_ROLLUPS = cast(Table, ManagerRollupRow.__table__)
SOURCE_ROLLUPS = cast(Table, SourceRollupRow.__table__)


async def apply_rollup(session: AsyncSession, delta: RollupDelta) -> None:
    managers, sources = delta.changes()
    if managers:
        rows = [
            {"pbx": pbx, "bucket": bucket, "extension": extension, **asdict(counts)}
            for (pbx, bucket, extension), counts in sorted(managers.items())
        ]
        await _add(session, MANAGER_ROLLUPS, ("pbx", "bucket", "extension"), rows)
    if sources:
        rows = [
            {"pbx": pbx, "bucket": bucket, "source": source, "medium": medium, "campaign": campaign}
            | asdict(counts)
            for (pbx, bucket, source, medium, campaign), counts in sorted(sources.items())
        ]
        await _add(session, SOURCE_ROLLUPS, ("pbx", "bucket", "source", "medium", "campaign"), rows)


async def _add(session: AsyncSession, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or add them to the rows already there (sorted: two writers lock in one order)."""
    upsert = insert_for(session, table)
    added = {name: table.c[name] + upsert.excluded[name] for name in rows[0] if name not in key}
    await session.execute(upsert.on_conflict_do_update(index_elements=list(key), set_=added), rows)
