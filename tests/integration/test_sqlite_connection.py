"""The embedded database's connections close after a cancelled operation (`calltracking/store/
sqlite_connection.py`): aiosqlite's own, invalidated by SQLAlchemy while a query ran and stopped while
closing, waited forever, which hung the event loop's close (a test process) and would hang `serve`'s
shutdown. SQLite only: the hang is aiosqlite's, and PostgreSQL's driver has no worker thread to stop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from calltracking.store.engine import create_engine
from calltracking.store.sqlite_connection import SqliteConnection

# A query that keeps SQLite's worker thread busy for about a second on a quiet machine, long enough to
# cancel it twice.
SLOW_QUERY = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000) SELECT count(*) FROM c"
)
SETTLE_SECONDS = 60


def connectors(path: Path) -> dict[str, Callable[[], aiosqlite.Connection]]:
    return {
        "aiosqlite's": lambda: aiosqlite.connect(path),
        "ours": lambda: SqliteConnection(lambda: sqlite3.connect(path)),
    }


async def closed_while_stopped(connection: aiosqlite.Connection) -> bool:
    """Close the connection while it is stopped, as SQLAlchemy's terminate does; whether it closed."""
    await connection
    closing = asyncio.ensure_future(connection.close())
    await asyncio.sleep(0)  # the close is queued to the worker thread
    connection.stop()
    try:
        async with asyncio.timeout(3):
            await closing
    except TimeoutError:
        return False
    return True


async def test_a_connection_stopped_while_it_closes_closes(tmp_path: Path) -> None:
    made = connectors(tmp_path / "calls.db")
    assert await closed_while_stopped(made["ours"]())
    # What the fix is for: aiosqlite's own connection waits forever here.
    assert not await closed_while_stopped(made["aiosqlite's"]())


async def test_a_connection_stopped_before_it_closes_closes(tmp_path: Path) -> None:
    connection = await SqliteConnection(lambda: sqlite3.connect(tmp_path / "calls.db"))
    stopping = connection.stop()
    assert stopping is not None and connection.stop() is None
    async with asyncio.timeout(3):
        await stopping
        await connection.close()


async def cancel_mid_query_twice(engine: AsyncEngine) -> None:
    """A query cancelled while it runs (SQLAlchemy invalidates the connection and closes it gracefully),
    then cancelled again while that close waits for the query (SQLAlchemy stops the connection)."""

    async def query() -> None:
        async with engine.connect() as connection:
            await connection.execute(SLOW_QUERY)

    running = asyncio.create_task(query())
    await asyncio.sleep(0.3)
    running.cancel()
    await asyncio.sleep(0.1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


def worker_threads(started_after: set[threading.Thread]) -> list[threading.Thread]:
    """aiosqlite's worker threads alive now that were not in `started_after`: this test's, not those of
    connections an earlier test in the same process left open."""
    return [
        thread
        for thread in threading.enumerate()
        if "_connection_worker_thread" in thread.name and thread not in started_after
    ]


def others() -> set[asyncio.Task[object]]:
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_the_service_engine_leaves_no_task_behind_a_cancelled_query(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await cancel_mid_query_twice(engine)
    async with asyncio.timeout(SETTLE_SECONDS):
        while others():
            await asyncio.sleep(0.05)
    await engine.dispose()
    async with engine.connect() as connection:  # the pool still works after it
        assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    await engine.dispose()


def test_a_loop_closed_right_after_a_cancelled_query_gets_no_late_answer(tmp_path: Path) -> None:
    """The event loop ends (asyncio.run cancels what is left and closes) while the worker thread still
    runs the cancelled query: the connection's close keeps the loop open until the thread is done, so
    the thread never answers a closed loop (an exception in the thread before)."""
    failures: list[BaseException | None] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: failures.append(args.exc_value)
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    before = set(threading.enumerate())
    try:
        asyncio.run(cancel_mid_query_twice(engine))
        for thread in worker_threads(started_after=before):
            thread.join(SETTLE_SECONDS)
    finally:
        threading.excepthook = previous
    assert failures == []


async def test_aiosqlite_alone_leaves_a_task_waiting_forever(tmp_path: Path) -> None:
    """The failure the service's engine is tested against above, shown on SQLAlchemy's default
    aiosqlite connections, so that the test above can fail. Once the worker thread has ended nothing
    will ever answer the task left waiting; it is then ended by hand."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    before = set(threading.enumerate())
    await cancel_mid_query_twice(engine)
    async with asyncio.timeout(SETTLE_SECONDS):
        while worker_threads(started_after=before):
            await asyncio.sleep(0.05)
    stuck = others()
    assert stuck, "aiosqlite closed a stopped connection: the workaround may no longer be needed"
    for task in stuck:
        task.cancel()
    await asyncio.wait(stuck, timeout=5)
    await engine.dispose()
