"""Real database outages for tests, on both backends."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from calltracking.store.engine import create_engine, migrate
from tests.helpers.tcp_proxy import TcpProxy


@dataclass
class Outage:
    """A real way for the database to be unavailable: a lock held by another SQLite connection, or the
    PostgreSQL server unreachable (connections refused and cut) behind a loopback proxy."""

    url: str
    proxy: TcpProxy | None = None
    lock: sqlite3.Connection | None = None

    async def begin(self) -> None:
        if self.proxy is not None:
            await self.proxy.cut()
        else:
            self.lock = sqlite3.connect(make_url(self.url).database or "", isolation_level=None)
            self.lock.execute("BEGIN EXCLUSIVE")

    async def end(self) -> None:
        if self.proxy is not None:
            await self.proxy.start()
        elif self.lock is not None:
            self.lock.execute("ROLLBACK")
            self.lock.close()
            self.lock = None


async def migrated(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
