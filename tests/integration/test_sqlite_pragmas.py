"""Every connection of the embedded database is set up alike (`calltracking/store/engine.py`): WAL so the
API's readers never wait on the call writer, full sync so a committed call survives a power cut, foreign
keys enforced, and a page cache small enough that the service's memory does not swing with the number of
pooled connections open (bench/README.md "memory.py"). SQLite only: these are its own settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from calltracking.store.engine import SQLITE_CACHE_KIB, create_engine

SYNCHRONOUS_FULL = 2


async def test_each_pooled_connection_is_set_up_alike(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    try:
        connections = [await engine.connect() for _ in range(3)]  # three at once: three connections
        settings = await asyncio.gather(
            *(
                connection.execute(
                    text(
                        "SELECT (SELECT journal_mode FROM pragma_journal_mode),"
                        " (SELECT synchronous FROM pragma_synchronous),"
                        " (SELECT foreign_keys FROM pragma_foreign_keys),"
                        " (SELECT cache_size FROM pragma_cache_size)"
                    )
                )
                for connection in connections
            )
        )
        for connection in connections:
            await connection.close()
    finally:
        await engine.dispose()
    assert [tuple(result.one()) for result in settings] == [
        ("wal", SYNCHRONOUS_FULL, 1, -SQLITE_CACHE_KIB)
    ] * 3
    assert SQLITE_CACHE_KIB <= 1024, "a page cache per connection that keeps the service's memory flat"
