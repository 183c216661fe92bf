"""The embedded database's driver connections: aiosqlite's, made safe to close after they were stopped.

Why: when an operation on a SQLite connection is cancelled (a deadline, a shutdown), SQLAlchemy
invalidates the connection: it starts a graceful `close()` in a shielded task and, if the wait for that is
cancelled too, stops the connection's worker thread at once. aiosqlite's `close()` then ends by asking the
worker thread, already gone, to stop again, and waits for an answer that never comes. The task hangs, and
so does whatever waits for every task to end: asyncio's shutdown of `calltracking serve`, a test's event
loop. Seen as a test process stuck in its event loop's close on aiosqlite 0.22 and SQLAlchemy 2.1; with
the second stop skipped, the thread then answered the loop after it had closed (an error in the thread).
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
STOP_WAIT_SECONDS = 30.0
THREAD_POLL_SECONDS = 0.01
FIRST_POLL_SECONDS = 0.0005


class SqliteConnection(aiosqlite.Connection):
    """An aiosqlite connection whose worker thread is stopped at most once, and whose `close()` returns
    only once that thread has ended, even when the close is cancelled: the thread answers through the
    event loop, and an answer to a loop that closed in the meantime is an error in the thread (a test's
    loop, or `serve`'s at shutdown, closes right after cancelling what runs)."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, ROWS_PER_FETCH)
        self._stop_requested = False

    def stop(self) -> asyncio.Future[object] | None:
        if self._stop_requested:
            return None
        self._stop_requested = True
        return super().stop()

    async def close(self) -> None:
        try:
            if not self._stop_requested:
                await super().close()
        finally:
            if self._stop_requested:
                await self._worker_ended()

    async def _worker_ended(self) -> None:
        """Wait for the worker thread to finish what it was given, through a cancellation, for at most
        STOP_WAIT_SECONDS (a statement it runs cannot be interrupted; SQLite's own busy timeout bounds
        one waiting for a lock)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_WAIT_SECONDS
        cancelled = False
        # After a plain close the thread is ending as this runs: look again soon before looking rarely.
        delay = 0.0
        while self._thread.is_alive() and loop.time() < deadline:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                cancelled = True
            delay = min(THREAD_POLL_SECONDS, delay * 2 or FIRST_POLL_SECONDS)
        if cancelled:
            raise asyncio.CancelledError


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
