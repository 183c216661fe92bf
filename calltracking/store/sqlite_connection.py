"""The embedded database's driver connections: aiosqlite's, made safe to close after they were stopped.

Why: when an operation on a SQLite connection is cancelled (a deadline, a shutdown), SQLAlchemy
invalidates the connection: it starts a graceful `close()` in a shielded task and, if the wait for that is
cancelled too, stops the connection's worker thread at once. aiosqlite's `close()` then ends by asking the
worker thread, already gone, to stop again, and waits for an answer that never comes. The task hangs, and
so does whatever waits for every task to end: asyncio's shutdown of `calltracking serve`, a test's event
loop. Seen as a test process stuck in its event loop's close on aiosqlite 0.22 and SQLAlchemy 2.1.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from functools import partial

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import dialect as aiosqlite_dialect
from sqlalchemy.engine import URL

ROWS_PER_FETCH = 64  # aiosqlite's default chunk for iterating a cursor


class SqliteConnection(aiosqlite.Connection):
    """An aiosqlite connection whose worker thread is stopped at most once: a second `stop()` has
    nothing to wait for, and a `close()` after a stop is done already (the stop closes the database
    connection in the worker thread)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, ROWS_PER_FETCH)
        self._stop_requested = False

    def stop(self) -> asyncio.Future[object] | None:
        if self._stop_requested:
            return None
        self._stop_requested = True
        return super().stop()

    async def close(self) -> None:
        if self._stop_requested:
            return
        await super().close()


def sqlite_connector(url: URL, busy_timeout_seconds: float) -> Callable[[], Awaitable[SqliteConnection]]:
    """SQLAlchemy's `async_creator` for `url`: the connections SQLAlchemy's aiosqlite dialect would open,
    with the same arguments (path, URI mode, threads), as `SqliteConnection`s."""
    args, options = aiosqlite_dialect().create_connect_args(url)
    connector = partial(sqlite3.connect, *args, timeout=busy_timeout_seconds, **options)

    async def connect() -> SqliteConnection:
        connection = SqliteConnection(connector)
        # As SQLAlchemy does for aiosqlite's own connections: a connection nobody closed must not keep
        # the process from exiting.
        connection._thread.daemon = True
        await connection
        return connection

    return connect
