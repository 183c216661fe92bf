"""Taking due rows of a work queue (webhook deliveries, recordings) so that two workers never run the
same row, and a worker that dies gives its rows back: the row's due time is pushed to the end of a
lease, and it falls due again when the lease ends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table, update
from sqlalchemy.ext.asyncio import AsyncSession


async def lease_due_rows(
    session: AsyncSession,
    table: Table,
    due: Select[Any],
    still_due: Sequence[ColumnElement[bool]],
    lease: dict[str, Any],
) -> list[Row[Any]]:
    """`due` selects the ids to take (ordered, limited); `still_due` repeats its conditions on `table`;
    `lease` is what taking a row sets. Returns the rows taken, with every column.

    Two statements, not `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`: PostgreSQL
    may run such a subquery again per row, and each run skips the rows just updated, so the LIMIT stops
    limiting. The conditions repeated in the UPDATE keep a concurrent worker out on SQLite (no row locks).
    """
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=table)
    ids = [row[0] for row in (await session.execute(due)).all()]
    if not ids:
        return []
    taken = await session.execute(
        update(table).where(table.c.id.in_(ids), *still_due).values(**lease).returning(*table.c)
    )
    return list(taken.all())
