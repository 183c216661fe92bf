"""One async engine per process, and the migrations that shape its schema.

SQLite gets WAL and a busy timeout so the API's readers never block the call writer; PostgreSQL is used
through asyncpg. Both run the same alembic migrations.

Nothing waits on the database without a bound: connecting, each statement and waiting for a pooled
connection have their timeouts in the engine, and every use of a session made here (`async with
sessions() as s`, `async with sessions.begin() as s`) has an overall deadline. A database that is down
or hangs comes out of a session as `DatabaseUnavailable`, so callers tell "cannot reach it" from "it
refused this data" without knowing the driver.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Self, cast

import orjson
from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Connection, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio.session import _AsyncSessionContextManager

from calltracking.config import DatabaseSettings
from calltracking.errors import ConfigError, DatabaseUnavailable
from calltracking.store.sqlite_connection import sqlite_connector

ALEMBIC_INI = Path(__file__).with_name("alembic.ini")
# The key of a session's `info` that holds its deadline in seconds (None: unbounded).
DEADLINE = "deadline_seconds"


def read_json(text: str | bytes) -> Any:
    """JSON columns as read back: orjson (several times faster, which a month's quality report needs),
    and the standard parser for what orjson refuses but Python's json wrote (NaN, Infinity)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def create_engine(
    url: str,
    busy_timeout_seconds: float = 30.0,
    *,
    connect_timeout_seconds: float = 60.0,
    statement_timeout_seconds: float | None = None,
    pool_timeout_seconds: float = 30.0,
) -> AsyncEngine:
    """`statement_timeout_seconds` bounds every statement on PostgreSQL (asyncpg's `command_timeout`,
    which also covers BEGIN, COMMIT and the pool's liveness ping); None leaves statements unbounded."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database URL {url!r} cannot be parsed") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            parsed,
            async_creator=sqlite_connector(parsed, busy_timeout_seconds),
            pool_timeout=pool_timeout_seconds,
            json_deserializer=read_json,
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_async_engine(
            parsed,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            pool_timeout=pool_timeout_seconds,
            json_deserializer=read_json,
            connect_args={
                "timeout": connect_timeout_seconds,
                "command_timeout": statement_timeout_seconds,
                # The JIT compiles a report's expressions anew on every run, for seconds, to save
                # milliseconds (bench/README.md "Stats reports at 10M calls"): never worth it here.
                # asyncpg prepares every statement, and after five runs PostgreSQL may switch it to a
                # generic plan, blind to the period's bounds: the source report went from 0.2 s to 0.6 s
                # on its sixth run (bench/README.md "Web pages"). Plan each run for its own values.
                "server_settings": {"jit": "off", "plan_cache_mode": "force_custom_plan"},
            },
        )
    raise ConfigError(
        f"unsupported database {parsed.get_backend_name()!r}: use sqlite+aiosqlite or postgresql+asyncpg"
    )


def engine_for(settings: DatabaseSettings, statement_timeout_seconds: float | None = None) -> AsyncEngine:
    """The service's engine, with every timeout its settings give (`statement_timeout_seconds` overrides
    the statement timeout, for migrations)."""
    return create_engine(
        settings.url,
        settings.busy_timeout_seconds,
        connect_timeout_seconds=settings.connect_timeout_seconds,
        statement_timeout_seconds=statement_timeout_seconds or settings.statement_timeout_seconds,
        pool_timeout_seconds=settings.pool_timeout_seconds,
    )


# Each pooled SQLite connection's page cache, in KiB (SQLite's default is 2,000). The call writer's
# commits make every other connection drop its cache at its next read (WAL), so a large cache is rarely
# warm; what it did do is make the service's memory swing by 20 MB with the number of connections that
# happened to be open (bench/README.md "memory.py").
SQLITE_CACHE_KIB = 1024


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.close()


def create_sessionmaker(
    engine: AsyncEngine, deadline_seconds: float | None = None
) -> async_sessionmaker[AsyncSession]:
    """Sessions on `engine`; each use of one ends within `deadline_seconds` (None: no overall deadline,
    only the engine's timeouts)."""
    return async_sessionmaker(
        engine, class_=BoundedSession, expire_on_commit=False, info={DEADLINE: deadline_seconds}
    )


def with_deadline(
    sessions: async_sessionmaker[AsyncSession], deadline_seconds: float
) -> async_sessionmaker[AsyncSession]:
    """The same sessions with their own deadline: the API answers within its own bound, shorter than
    what a background writer may wait."""
    return create_sessionmaker(sessions.kw["bind"], deadline_seconds)


def is_unreachable(error: BaseException) -> bool:
    """Whether an error says the database could not be reached in time, rather than that it refused
    what was asked: a connection refused, reset or timed out (asyncpg raises these bare), a pool with no
    free connection, SQLite's lock held past the busy timeout."""
    if isinstance(error, DatabaseUnavailable | OSError | sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, sa_exc.OperationalError | sa_exc.InterfaceError
        )
    return False


class _Deadline:
    """The bound around one use of a session: the block ends within `seconds`, and a database that cannot
    be reached (or did not answer in time) leaves it as `DatabaseUnavailable`."""

    __slots__ = ("_seconds", "_timeout")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._timeout = asyncio.timeout(seconds) if seconds is not None else None

    async def enter(self) -> None:
        if self._timeout is not None:
            await self._timeout.__aenter__()

    async def leave(self, error: BaseException | None) -> None:
        """Close the bound; raise what should leave the block instead of `error`, if anything."""
        if self._timeout is not None:
            try:
                await self._timeout.__aexit__(
                    type(error) if error is not None else None,
                    error,
                    error.__traceback__ if error is not None else None,
                )
            except TimeoutError as expired:
                raise DatabaseUnavailable(
                    f"the database did not answer within {self._seconds:g} s"
                ) from expired
        if error is not None and not isinstance(error, DatabaseUnavailable) and is_unreachable(error):
            raise DatabaseUnavailable(
                f"the database cannot be reached: {type(error).__name__}: {error}"[:500]
            ) from error


class BoundedSession(AsyncSession):
    """An AsyncSession whose `async with` blocks (plain or `begin()`) are bounded by the deadline its
    sessionmaker put in `info`."""

    _deadline: _Deadline | None = None

    async def __aenter__(self) -> Self:
        deadline = _Deadline(self.info.get(DEADLINE))
        await deadline.enter()
        self._deadline = deadline
        return self

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        # Also called, without __aenter__, by the `begin()` context below: that one holds the deadline.
        deadline, self._deadline = self._deadline, None
        try:
            await super().__aexit__(type_, value, traceback)
        except BaseException as failure:
            if deadline is not None:
                await deadline.leave(failure)
            raise
        if deadline is not None:
            await deadline.leave(value)

    def _maker_context_manager(self) -> _AsyncSessionContextManager[Self]:
        return _BoundedTransaction(self)


class _BoundedTransaction(_AsyncSessionContextManager[Any]):
    """`async with sessions.begin() as session`: a session and its transaction, under one deadline."""

    __slots__ = ("_deadline",)

    def __init__(self, session: BoundedSession) -> None:
        super().__init__(session)
        self._deadline = _Deadline(session.info.get(DEADLINE))

    async def __aenter__(self) -> Any:
        await self._deadline.enter()
        try:
            return await super().__aenter__()
        except BaseException as failure:
            await self._deadline.leave(failure)
            raise

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        try:
            await super().__aexit__(type_, value, traceback)
        except BaseException as failure:
            await self._deadline.leave(failure)
            raise
        await self._deadline.leave(value)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction: all of it, or (failed, killed) none of it."""
    async with engine.connect() as connection:
        await connection.run_sync(_upgrade_atomically, revision)


async def migrate_database(settings: DatabaseSettings) -> None:
    """Migrate on an engine of its own: a schema change may rightly take longer than any statement the
    service runs (an index over millions of calls), so it is bounded by `migration_timeout_seconds`, not
    by the statement timeout."""
    engine = engine_for(settings, statement_timeout_seconds=settings.migration_timeout_seconds)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _upgrade_atomically(connection: Connection, revision: str) -> None:
    if connection.dialect.name != "sqlite":
        with connection.begin():
            _upgrade(connection, revision)
        return
    # The sqlite3 module commits before every CREATE or ALTER on its own, so a service killed while it
    # migrated left tables without their alembic_version, and every later start failed on "table already
    # exists". For this one connection the driver leaves transactions to us: one BEGIN IMMEDIATE, one COMMIT.
    driver = cast(Any, connection.connection.dbapi_connection)
    previous = driver.isolation_level
    driver.isolation_level = None
    try:
        with connection.begin():
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            _upgrade(connection, revision)
    finally:
        driver.isolation_level = previous


def _upgrade(connection: Connection, revision: str) -> None:
    config = Config(str(ALEMBIC_INI))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        # A schema this code has no migration for: a newer version migrated it. There is no downgrade.
        if "Can't locate revision" not in str(exc):
            raise
        raise ConfigError(
            "the database was migrated by a newer calltracking, which this version cannot use: run that "
            "version again, or restore the backup taken before the upgrade (docs/operations.md: Upgrades)"
        ) from exc
