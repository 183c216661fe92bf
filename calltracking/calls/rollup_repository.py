"""The rollups' SQL: add a batch's changes with one upsert per table, in the transaction that writes the
calls, so a report never sees a call without its counts or counts without their call."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import BigInteger, BindParameter, DateTime, Table, TextClause, bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.rollup import BUCKET_SECONDS, DAY_SECONDS, RollupDelta, bucket_of, ceil_to, day_of
from calltracking.store.tables import ManagerRollupRow, SourceRollupRow
from calltracking.store.times import as_utc
from calltracking.store.upserts import insert_for

MANAGER_ROLLUPS = cast(Table, ManagerRollupRow.__table__)
SOURCE_ROLLUPS = cast(Table, SourceRollupRow.__table__)


async def apply_rollup(session: AsyncSession, delta: RollupDelta) -> None:
    managers, sources = delta.changes()
    if managers:
        rows = [
            {"pbx": pbx, "grain": grain, "bucket": bucket, "extension": extension, **asdict(counts)}
            for (pbx, grain, bucket, extension), counts in sorted(managers.items())
        ]
        await _add(session, MANAGER_ROLLUPS, ("pbx", "grain", "bucket", "extension"), rows)
    if sources:
        rows = [
            {"pbx": pbx, "grain": grain, "bucket": bucket, "source": source, "medium": medium}
            | {"campaign": campaign}
            | asdict(counts)
            for (pbx, grain, bucket, source, medium, campaign), counts in sorted(sources.items())
        ]
        await _add(session, SOURCE_ROLLUPS, ("pbx", "grain", "bucket", "source", "medium", "campaign"), rows)


async def _add(session: AsyncSession, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """Insert the rows, or add them to the rows already there (sorted: two writers lock in one order)."""
    upsert = insert_for(session, table)
    added = {name: table.c[name] + upsert.excluded[name] for name in rows[0] if name not in key}
    await session.execute(upsert.on_conflict_do_update(index_elements=list(key), set_=added), rows)


# Rebuilding the rollups from `calls`, for a range or for everything: after a restore, a bulk import, or to
# check the incremental counts. This writes `manager_contribution`/`source_contribution` a second time, in
# SQL, so that a rebuild is one INSERT ... SELECT per table instead of every call through Python;
# tests/integration/test_rollup_rebuild.py compares the two on both databases and keeps them in step.
#
# Every call adds the same counts to each extension it counts for (and to the PBX's totals), so the counts
# are one expression per call and the rules only say which extensions: one branch of a UNION ALL each.
_COUNTS = """
    CASE WHEN c.direction = 'inbound' THEN 1 ELSE 0 END AS inbound_received,
    CASE WHEN c.direction = 'inbound' AND c.status = 'answered' THEN 1 ELSE 0 END AS inbound_answered,
    CASE WHEN c.direction = 'inbound' AND c.status <> 'answered' THEN 1 ELSE 0 END AS inbound_missed,
    CASE WHEN c.direction = 'outbound' THEN 1 ELSE 0 END AS outbound_made,
    CASE WHEN c.direction = 'outbound' AND c.status = 'answered' THEN 1 ELSE 0 END AS outbound_answered,
    CASE WHEN c.direction NOT IN ('inbound', 'outbound') THEN 1 ELSE 0 END AS internal_calls,
    CASE WHEN c.direction IN ('inbound', 'outbound') AND c.status = 'answered'
         THEN c.talk_seconds ELSE 0 END AS talk_seconds,
    CASE WHEN c.direction = 'inbound' AND c.status = 'answered'
         THEN c.ring_seconds ELSE 0 END AS ring_seconds_answered"""
_MANAGER_COUNTS = (
    "inbound_received",
    "inbound_answered",
    "inbound_missed",
    "outbound_made",
    "outbound_answered",
    "internal_calls",
    "talk_seconds",
    "ring_seconds_answered",
)
# (extension, whether it is one of `rang`, which calls): who a call counts for, as `manager_contribution`
# says. The rang branch is DISTINCT (a phone listed twice counts once); the others cannot repeat an
# extension within a call, and only the first gives "" (the totals' row).
_MANAGER_BRANCHES = (
    # The PBX's totals: every call once.
    ("''", False, "1 = 1"),
    # Inbound answered, outbound, internal: the extension that answered or placed it.
    ("c.manager", False, "c.manager <> '' AND (c.direction <> 'inbound' OR c.status = 'answered')"),
    # Internal: the caller's extension too, unless it is also the one that answered.
    (
        "c.caller",
        False,
        "c.direction NOT IN ('inbound', 'outbound') AND c.caller <> ''"
        " AND (c.manager IS NULL OR c.manager <> c.caller)",
    ),
    # Inbound not answered: every extension whose phone rang.
    ("r.value", True, "c.direction = 'inbound' AND c.status <> 'answered' AND r.value <> ''"),
)
# The elements of the JSON list `rang`, as a table `r(value)` joined to each call.
_RANG = {
    "sqlite": "json_each(c.rang) AS r",
    "postgresql": "jsonb_array_elements_text("
    "CASE WHEN jsonb_typeof(c.rang::jsonb) = 'array' THEN c.rang::jsonb ELSE '[]'::jsonb END) AS r(value)",
}
# The start of the UTC quarter hour a call started in, in seconds since 1970 (`bucket_of`).
_BUCKET = {
    "sqlite": "(CAST(strftime('%s', c.started_at) AS INTEGER) / 900) * 900",
    "postgresql": "(floor(extract(epoch FROM c.started_at) / 900) * 900)::bigint",
}


async def rebuild_rollups(
    session: AsyncSession, start: datetime | None = None, end: datetime | None = None
) -> None:
    """Recompute both rollup tables from `calls`, for the calls started in [start, end) (None: no bound),
    widened to whole buckets: the buckets in range are deleted and written again from every call in them.

    Run it in the caller's transaction, while nothing writes calls of that range: a call saved meanwhile
    may be counted twice or not at all."""
    dialect = session.get_bind().dialect.name
    first = None if start is None else bucket_of(as_utc(start))
    last = None if end is None else ceil_to(int(as_utc(end).timestamp()), BUCKET_SECONDS)
    for statement in rebuild_statements(dialect, first, last):
        await session.execute(statement)


def rebuild_statements(dialect: str, first: int | None = None, last: int | None = None) -> list[TextClause]:
    """The statements of `rebuild_rollups` for buckets [first, last): also what migration 0008 runs to
    count the calls logged before the rollups existed. The quarter hours come from the calls, then the
    days that touch the range from their quarter hours."""
    (buckets, bucket_bounds), (calls, call_bounds) = _ranges(first, last)
    day_first = None if first is None else day_of(first)
    day_last = None if last is None else ceil_to(last, DAY_SECONDS)
    (days, day_bounds), _ = _ranges(day_first, day_last, prefix="day_")
    bucket = _BUCKET[dialect]
    statements = []
    for table in (MANAGER_ROLLUPS, SOURCE_ROLLUPS):
        statements.append(
            text(f"DELETE FROM {table.name} WHERE grain = {BUCKET_SECONDS} AND {buckets}").bindparams(
                *bucket_bounds
            )
        )
        statements.append(
            text(f"DELETE FROM {table.name} WHERE grain = {DAY_SECONDS} AND {days}").bindparams(*day_bounds)
        )
    branches = " UNION ALL ".join(
        f"SELECT {'DISTINCT ' if is_rang else ''}c.id, c.pbx, {bucket} AS bucket,"
        f" {extension} AS extension, {_COUNTS}"
        f" FROM calls AS c{', ' + _RANG[dialect] if is_rang else ''} WHERE {calls} AND {which}"
        for extension, is_rang, which in _MANAGER_BRANCHES
    )
    counts = ", ".join(f"sum(x.{name})" for name in _MANAGER_COUNTS)
    statements.append(
        text(
            f"INSERT INTO manager_rollups (pbx, grain, bucket, extension, {', '.join(_MANAGER_COUNTS)})"
            f" SELECT x.pbx, {BUCKET_SECONDS}, x.bucket, x.extension, {counts} FROM ({branches}) AS x"
            " GROUP BY x.pbx, x.bucket, x.extension"
        ).bindparams(*call_bounds)
    )
    statements.append(
        text(
            "INSERT INTO source_rollups"
            " (pbx, grain, bucket, source, medium, campaign, calls, answered, missed, target)"
            f" SELECT c.pbx, {BUCKET_SECONDS}, {bucket}, coalesce(c.source, ''), coalesce(c.medium, ''),"
            " coalesce(c.campaign, ''), count(*),"
            " sum(CASE WHEN c.status = 'answered' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN c.status <> 'answered' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN c.is_target THEN 1 ELSE 0 END)"
            f" FROM calls AS c WHERE {calls} AND c.direction = 'inbound'"
            " GROUP BY 1, 2, 3, 4, 5, 6"
        ).bindparams(*call_bounds)
    )
    day = f"bucket - bucket % {DAY_SECONDS}"
    for table, key, names in (
        (MANAGER_ROLLUPS, "extension", _MANAGER_COUNTS),
        (SOURCE_ROLLUPS, "source, medium, campaign", ("calls", "answered", "missed", "target")),
    ):
        statements.append(
            text(
                f"INSERT INTO {table.name} (pbx, grain, bucket, {key}, {', '.join(names)})"
                f" SELECT pbx, {DAY_SECONDS}, {day}, {key}, {', '.join(f'sum({n})' for n in names)}"
                f" FROM {table.name} WHERE grain = {BUCKET_SECONDS} AND {days}"
                f" GROUP BY pbx, {day}, {key}"
            ).bindparams(*day_bounds)
        )
    return statements


Where = tuple[str, list[BindParameter[Any]]]


def _ranges(first: int | None, last: int | None, prefix: str = "") -> tuple[Where, Where]:
    """The conditions on the buckets, and on the calls, of [first, last), with their parameters."""
    buckets: Where = ("1 = 1", [])
    calls: Where = ("1 = 1", [])
    for name, value, operator in ((f"{prefix}first", first, ">="), (f"{prefix}last", last, "<")):
        if value is None:
            continue
        buckets = (
            f"{buckets[0]} AND bucket {operator} :{name}_bucket",
            [*buckets[1], bindparam(f"{name}_bucket", value, BigInteger())],
        )
        calls = (
            f"{calls[0]} AND c.started_at {operator} :{name}_at",
            [*calls[1], bindparam(f"{name}_at", datetime.fromtimestamp(value, UTC), DateTime(timezone=True))],
        )
    return buckets, calls
