"""The calls table: idempotent upserts, and what a reconciled record may replace."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from calltracking.calls.repository import count_calls, list_calls, save_calls
from calltracking.store.engine import create_engine, create_sessionmaker, migrate
from tests.helpers.factories import make_call


async def test_a_reconciled_record_never_replaces_a_complete_one(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    complete = make_call(1)
    guess = replace(complete, reconciled=True, talk_seconds=1.0, legs=())
    try:
        async with sessions.begin() as session:
            [first_id] = await save_calls(session, [complete])
        async with sessions.begin() as session:
            assert await save_calls(session, [guess]) == [first_id]
        async with sessions() as session:
            [stored] = await list_calls(session)
        assert (stored.id, stored.call) == (first_id, complete)

        other_guess = replace(make_call(2), reconciled=True, legs=())
        async with sessions.begin() as session:
            [second_id] = await save_calls(session, [other_guess])
        async with sessions.begin() as session:
            assert await save_calls(session, [make_call(2)]) == [second_id]
        async with sessions() as session:
            stored_calls = await list_calls(session)
            assert await count_calls(session) == 2
        assert [s.call for s in stored_calls] == [complete, make_call(2)]
    finally:
        await engine.dispose()


async def test_of_two_reconciled_records_the_one_that_knew_the_call_longer_stays(database_url: str) -> None:
    """A hot standby took the call over and logged it reconciled, ending late; the first holder comes back
    and restores an old checkpoint, whose version of the call ends where that holder lost sight of it."""
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    taken_over = replace(make_call(1), reconciled=True, legs=())
    stale = replace(taken_over, ended_at=taken_over.ended_at - timedelta(seconds=5), talk_seconds=1.0)
    later = replace(taken_over, ended_at=taken_over.ended_at + timedelta(seconds=5), talk_seconds=11.0)
    try:
        async with sessions.begin() as session:
            [call_id] = await save_calls(session, [taken_over])
        async with sessions.begin() as session:
            assert await save_calls(session, [stale]) == [call_id]
        async with sessions() as session:
            [kept] = await list_calls(session)
        async with sessions.begin() as session:
            await save_calls(session, [later])
        async with sessions() as session:
            [replaced] = await list_calls(session)
    finally:
        await engine.dispose()
    assert kept.call == taken_over
    assert replaced.call == later


async def test_the_same_call_twice_in_one_batch_is_one_row(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            ids = await save_calls(session, [make_call(1), replace(make_call(1), talk_seconds=9.0)])
        async with sessions() as session:
            [stored] = await list_calls(session)
    finally:
        await engine.dispose()
    assert ids == [stored.id, stored.id]
    assert stored.call.talk_seconds == 9.0


async def test_hostile_text_is_trimmed_not_refused(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    hostile = make_call(1, caller="x\x00" * 500, queue="q" * 1000, rang=("1\x00" * 300,))
    try:
        async with sessions.begin() as session:
            await save_calls(session, [hostile])
        async with sessions() as session:
            [stored] = await list_calls(session)
    finally:
        await engine.dispose()
    assert stored.call.caller == "x" * 128
    assert stored.call.queue == "q" * 128
    assert "\x00" not in stored.call.rang[0]
