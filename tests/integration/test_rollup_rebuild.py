"""The rollups two ways: kept call by call by `save_calls` (the rules in `calls/rollup.py`), and rebuilt
from `calls` in SQL by `rebuild_rollups`. The rebuild writes the same rules a second time; these tests
are what keeps the two in step, on both databases."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.app.replay import replay_captures
from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.calls.repository import save_calls
from calltracking.calls.rollup import BUCKET_SECONDS, DAY_SECONDS, bucket_of
from calltracking.calls.rollup_repository import MANAGER_ROLLUPS, SOURCE_ROLLUPS, rebuild_rollups
from calltracking.config import PbxSettings
from calltracking.store.engine import create_engine, create_sessionmaker
from tests.helpers.captures import capture, story_captures
from tests.helpers.factories import T0, make_call
from tests.helpers.listening import database_settings

Rollups = dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]
# pbx, grain, bucket and the rest of the key.
KEYS = {MANAGER_ROLLUPS.name: 4, SOURCE_ROLLUPS.name: 6}


def inbound_missed(n: int, rang: tuple[str, ...], **changes: Any) -> CallRecord:
    missed = {"status": CallStatus.MISSED, "answered_by": None, "manager": None, "answered_at": None}
    return make_call(n, rang=rang, talk_seconds=0.0, ring_seconds=14.5, **{**missed, **changes})


def outbound(n: int, manager: str | None, status: CallStatus, talk: float) -> CallRecord:
    return make_call(
        n, direction=Direction.OUTBOUND, status=status, caller=manager or "", callee="+79167654321",
        did=None, caller_number=None, callee_number="+79167654321", answered_by=None, manager=manager,
        rang=(), talk_seconds=talk, ring_seconds=7.25,
    )  # fmt: skip


def internal(n: int, caller: str, manager: str | None, status: CallStatus) -> CallRecord:
    return make_call(
        n, direction=Direction.INTERNAL, status=status, caller=caller, callee=manager or "105", did=None,
        caller_number=None, callee_number=None, answered_by=manager, manager=manager,
        rang=(manager or "105",), talk_seconds=12.5 if manager else 0.0,
    )  # fmt: skip


# Every rule of who a call counts for, over several buckets (make_call(n) starts n minutes after T0).
VARIED = [
    make_call(1, rang=("101", "102"), talk_seconds=61.75, ring_seconds=3.5),  # 102 rang, 101 answered
    make_call(2, answered_by="102", manager="102", rang=("101", "102", "103")),
    inbound_missed(3, ("101", "102", "103")),
    inbound_missed(4, ("104", "104", "")),  # a phone listed twice, and an empty name: each counts once
    inbound_missed(5, ("106",), status=CallStatus.BUSY),
    inbound_missed(6, (), queue="sales", queue_wait_seconds=31.5, abandoned=True),  # nobody rang
    inbound_missed(7, ("101",), status=CallStatus.NO_ANSWER, source="google", medium="cpc"),
    make_call(8, answered_by="+79169998877", manager=None, rang=("101",)),  # forwarded to a mobile
    make_call(9, manager="", rang=()),
    make_call(16, queue="support", queue_wait_seconds=4.0, answered_by="107", manager="107", rang=("107",)),
    make_call(17, source="google", medium="cpc", campaign="brand", is_target=True, first_time_caller=True),
    make_call(18, source="yandex", medium=None, campaign=None, is_target=False),
    make_call(19, source="direct", medium="", campaign="", is_target=None, manager="103"),
    outbound(20, "101", CallStatus.ANSWERED, 95.5),
    outbound(21, "102", CallStatus.NO_ANSWER, 0.0),
    outbound(22, "102", CallStatus.BUSY, 0.0),
    outbound(23, None, CallStatus.FAILED, 0.0),
    outbound(24, "103", CallStatus.ANSWERED, 0.0),
    internal(31, "101", "102", CallStatus.ANSWERED),
    internal(32, "103", "103", CallStatus.ANSWERED),  # the caller is also the one who answered
    internal(33, "104", None, CallStatus.NO_ANSWER),
    internal(34, "", "105", CallStatus.ANSWERED),
    make_call(47, status=CallStatus.FAILED, manager=None, answered_by=None, rang=("108", "109")),
    make_call(24 * 60 + 5, source="google", medium="cpc", campaign="brand", is_target=True),  # next day
]
# Versions that replace calls above (same pbx_call_id): applied after, in later transactions.
REWRITES = [
    # Closed from partial knowledge, then seen whole: from missed by 101 to answered by 102.
    [inbound_missed(40, ("101",), reconciled=True, legs=())],
    [make_call(40, answered_by="102", manager="102", rang=("101", "102"))],
    # A reconciled version of a call seen whole is not written, nor counted.
    [replace(VARIED[0], reconciled=True, status=CallStatus.MISSED, manager=None, legs=())],
    # Written again as it was (a replay), and once more twice in one batch, the later one winning.
    VARIED[:10],
    [replace(VARIED[13], talk_seconds=1.0), replace(VARIED[13], talk_seconds=99.25)],
    # Attribution stamped later, changed, or taken away; the target flag moved.
    [replace(VARIED[2], source="google", medium="cpc", campaign="brand")],
    [replace(VARIED[10], source="yandex", medium="organic", campaign=None, is_target=False)],
    [replace(VARIED[11], source=None, medium=None, campaign=None, is_target=True)],
    # A reconciled call whose start moved into the previous bucket once it was seen whole.
    [inbound_missed(45, ("102",), reconciled=True, legs=())],
    [
        make_call(
            45,
            started_at=T0 + timedelta(minutes=44, seconds=59),
            answered_by="103",
            manager="103",
            rang=("102", "103"),
        )
    ],
]


async def rollups(session: AsyncSession) -> Rollups:
    """Both tables, row by row, without the rows that count nothing (a call moved out of a bucket leaves
    a row of zeros behind in the kept rollups; a rebuild writes no such row)."""
    tables: Rollups = {}
    for table in (MANAGER_ROLLUPS, SOURCE_ROLLUPS):
        width = KEYS[table.name]
        rows = {}
        # pbx, grain and bucket first, whatever order the table keeps them in.
        first = [table.c.pbx, table.c.grain, table.c.bucket]
        columns = first + [column for column in table.c if column.name not in {"pbx", "grain", "bucket"}]
        for row in (await session.execute(select(*columns))).all():
            key, counts = tuple(row[:width]), tuple(round(value, 6) for value in row[width:])
            if any(counts):
                rows[key] = counts
        tables[table.name] = rows
    return tables


async def kept_and_rebuilt(sessions: async_sessionmaker[AsyncSession]) -> tuple[Rollups, Rollups]:
    async with sessions() as session:
        kept = await rollups(session)
    async with sessions.begin() as session:
        await rebuild_rollups(session)
    async with sessions() as session:
        rebuilt = await rollups(session)
    return kept, rebuilt


async def test_rebuilt_rollups_equal_the_ones_kept_call_by_call(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await save_calls(session, VARIED)
    for batch in REWRITES:
        async with sessions.begin() as session:
            await save_calls(session, batch)

    kept, rebuilt = await kept_and_rebuilt(sessions)

    assert len(kept[MANAGER_ROLLUPS.name]) > 20
    assert len(kept[SOURCE_ROLLUPS.name]) > 5
    assert rebuilt == kept


async def test_a_rebuild_of_a_range_rewrites_its_whole_buckets_and_nothing_else(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions.begin() as session:
        await save_calls(session, VARIED)
        kept = await rollups(session)
        for table in (MANAGER_ROLLUPS, SOURCE_ROLLUPS):
            column = table.c.inbound_received if table is MANAGER_ROLLUPS else table.c.calls
            await session.execute(update(table).values({column: column + 100}))
        damaged = await rollups(session)
    # Neither bound on a bucket's start: the calls of the whole first and last buckets are counted again.
    start, end = T0 + timedelta(minutes=17, seconds=30), T0 + timedelta(minutes=31, seconds=1)
    first, last = bucket_of(start), bucket_of(end) + BUCKET_SECONDS

    async with sessions.begin() as session:
        await rebuild_rollups(session, start, end)
    async with sessions() as session:
        rebuilt = await rollups(session)

    def inside(rows: dict[tuple[Any, ...], tuple[Any, ...]], is_inside: bool) -> dict[Any, Any]:
        quarters = {key: counts for key, counts in rows.items() if key[1] == BUCKET_SECONDS}
        return {key: counts for key, counts in quarters.items() if (first <= key[2] < last) is is_inside}

    for name in KEYS:
        assert inside(kept[name], True)
        assert inside(rebuilt[name], True) == inside(kept[name], True)
        assert inside(rebuilt[name], False) == inside(damaged[name], False) != inside(kept[name], False)
        # The day the range is in is summed again from its quarter hours, damaged ones included.
        days: dict[tuple[Any, ...], list[float]] = {}
        for (pbx, grain, bucket, *rest), counts in rebuilt[name].items():
            if grain == BUCKET_SECONDS:
                day = (pbx, DAY_SECONDS, bucket - bucket % DAY_SECONDS, *rest)
                days[day] = [a + b for a, b in zip(days.get(day, [0.0] * len(counts)), counts, strict=True)]
        rebuilt_days = {key: counts for key, counts in rebuilt[name].items() if key[1] == DAY_SECONDS}
        assert rebuilt_days == {key: tuple(round(v, 6) for v in counts) for key, counts in days.items()}


async def test_rebuilt_rollups_equal_the_kept_ones_after_replaying_the_story_captures(
    database_url: str, tmp_path: Path
) -> None:
    settings = database_settings(database_url, tmp_path)
    captures = [capture(name) for name in story_captures()]
    await replay_captures(captures, PbxSettings(name="office"), settings, tmp_path / "spool")
    # And once more: every call rewritten with itself.
    await replay_captures(captures, PbxSettings(name="office"), settings, tmp_path / "spool")
    engine = create_engine(database_url)
    try:
        kept, rebuilt = await kept_and_rebuilt(create_sessionmaker(engine))
    finally:
        await engine.dispose()

    totals = [
        counts
        for (_, grain, _, extension), counts in kept[MANAGER_ROLLUPS.name].items()
        if extension == "" and grain == BUCKET_SECONDS
    ]
    logged = sum(inbound + outbound + internal for inbound, _, _, outbound, _, internal, *_ in totals)
    assert logged == len(captures)  # one call each
    assert rebuilt == kept
