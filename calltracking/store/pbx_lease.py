"""Which `serve` process listens to a PBX: a PostgreSQL advisory lock per PBX, held on a connection.

Two processes may run against one PostgreSQL for hot standby. Each PBX has its own lock: the process whose
connection holds it listens, the others wait and try again. PostgreSQL releases a session's advisory locks
the moment its connection closes, so a process that dies (SIGKILL included: the kernel closes its socket)
hands the PBX over at the standby's next try. A host that vanishes without closing its sockets is noticed
by the server's TCP keepalives, which the lock's connection sets short (`KEEPALIVE_SETTINGS`).

SQLite has no second process to hand over to: there the lease is always held.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Protocol

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = structlog.get_logger(__name__)

# The server drops a silent peer's session (and its locks) after idle + interval * count seconds: ~11 s.
KEEPALIVE_SETTINGS = {"tcp_keepalives_idle": 5, "tcp_keepalives_interval": 2, "tcp_keepalives_count": 3}
LOCK_NAMESPACE = "calltracking/pbx-listener/"


class LeaseState(Enum):
    HELD = "held"
    # Another process holds it: this one must not listen.
    HELD_ELSEWHERE = "held_elsewhere"
    # The database cannot say (down, or the lock's connection broke): nobody can take it from a database
    # that is down, so the holder keeps listening and asks again.
    UNKNOWN = "unknown"


class PbxLease(Protocol):
    async def claim(self) -> LeaseState:
        """Take the lease if it is free; say whether this process holds it now."""

    async def release(self) -> None:
        """Give it up (a clean stop), so a standby takes over at once."""


def lock_key(pbx: str) -> int:
    """A stable signed 64-bit key per PBX name, the type `pg_try_advisory_lock(bigint)` takes."""
    digest = hashlib.blake2b((LOCK_NAMESPACE + pbx).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class UncontestedLease:
    """The lease on a database no second process shares (SQLite): always held."""

    async def claim(self) -> LeaseState:
        return LeaseState.HELD

    async def release(self) -> None:
        return None


class AdvisoryLockLease:
    """`pg_try_advisory_lock` on a connection of its own, kept out of any transaction (an idle transaction
    would hold back vacuum for as long as the process listens)."""

    def __init__(self, engine: AsyncEngine, pbx: str) -> None:
        self._engine = engine
        self._pbx = pbx
        self._key = lock_key(pbx)
        self._connection: AsyncConnection | None = None

    async def claim(self) -> LeaseState:
        if self._connection is not None:
            try:
                await self._connection.execute(text("SELECT 1"))
                return LeaseState.HELD
            except Exception as exc:  # the lock went with the connection, whatever broke it
                return await self._unknown(exc)
        try:
            connection = await self._connect()
        except Exception as exc:  # any failure to reach the database means "cannot say"
            return await self._unknown(exc)
        try:
            taken = (
                await connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key})
            ).scalar_one()
        except Exception as exc:
            self._connection = connection
            return await self._unknown(exc)
        if taken:
            self._connection = connection
            return LeaseState.HELD
        await connection.close()
        return LeaseState.HELD_ELSEWHERE

    async def release(self) -> None:
        if self._connection is None:
            return
        try:
            await self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except Exception as exc:  # closing the connection below releases it anyway
            log.warning("pbx_lease_release_failed", pbx=self._pbx, error=str(exc) or type(exc).__name__)
        await self._drop_connection()

    async def _connect(self) -> AsyncConnection:
        connection = await self._engine.connect()
        try:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for name, value in KEEPALIVE_SETTINGS.items():
                await connection.execute(text(f"SET {name} = {int(value)}"))
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _unknown(self, error: BaseException) -> LeaseState:
        log.warning("pbx_lease_unknown", pbx=self._pbx, error=str(error) or type(error).__name__)
        await self._drop_connection()
        return LeaseState.UNKNOWN

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            await connection.invalidate()
            await connection.close()
        except Exception as exc:  # a broken connection may fail to close; it is gone anyway
            log.debug("pbx_lease_connection_close_failed", pbx=self._pbx, error=str(exc))


def lease_for(engine: AsyncEngine, pbx: str) -> PbxLease:
    if engine.dialect.name == "postgresql":
        return AdvisoryLockLease(engine, pbx)
    return UncontestedLease()
