"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database on the local server.

A fresh database can start as a copy of a template: a database built once per test session (per xdist
worker) by running the migrations, or the migrations and a replay of the captures, then copied for each
test that wants it (PostgreSQL `CREATE DATABASE ... TEMPLATE`, a file copy for SQLite). A copy costs a
few milliseconds where building it costs seconds, and each test still gets a database of its own."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.store.engine import create_engine, create_sessionmaker, migrate

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
BACKENDS = ("sqlite", "postgresql")
SQLITE_FILE = "calls.db"
SQLITE_COMPANIONS = ("-wal", "-shm")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path, template: str | None = None) -> AsyncIterator[str]:
    """A database of this test's own, empty or a copy of `template` (from `Templates.get`)."""
    if backend == "sqlite":
        url = sqlite_url(tmp_path / SQLITE_FILE)
        if template is not None:
            await fill_from_template(url, backend, template)
        yield url
        return
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield POSTGRES_URL.format(name=name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def fill_from_template(url: str, backend: str, template: str) -> None:
    """Make the (empty, unused) database at `url`, from `fresh_database`, a copy of `template`."""
    if backend == "sqlite":
        path = Path(make_url(url).database or "")
        for suffix in ("", *SQLITE_COMPANIONS):
            source = Path(template + suffix)
            if source.exists():
                shutil.copyfile(source, Path(f"{path}{suffix}"))
        return
    name = make_url(url).database
    await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


Build = Callable[[str, Path], Awaitable[None]]


class Templates:
    """Template databases of one test session (one xdist worker), built on first use, by name and backend.

    `build(url, directory)` fills the template at `url`; `directory` is the template's own, for files
    that belong with its rows (a recording store): `files` names it. A build must leave no connection
    open (dispose its engines): PostgreSQL copies only a database nobody is connected to.
    """

    def __init__(self) -> None:
        self._directory: Path | None = None
        self._built: dict[tuple[str, str], str] = {}
        self._postgres: list[str] = []

    async def get(self, backend: str, name: str, build: Build) -> str:
        """The template `name` for `backend`: a SQLite file's path or a PostgreSQL database's name."""
        key = (backend, name)
        if key in self._built:
            return self._built[key]
        directory = self.files(backend, name)
        shutil.rmtree(directory, ignore_errors=True)  # what a build that failed half-way left
        directory.mkdir(parents=True)
        if backend == "sqlite":
            path = directory / SQLITE_FILE
            await build(sqlite_url(path), directory)
            self._built[key] = str(path)
            return str(path)
        database = f"ct_template_{uuid.uuid4().hex[:12]}"
        await _admin(f'CREATE DATABASE "{database}"')
        self._postgres.append(database)
        await build(POSTGRES_URL.format(name=database), directory)
        self._built[key] = database
        return database

    def files(self, backend: str, name: str) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="ct-templates-"))
        return self._directory / f"{name}-{backend}"

    def remove_all(self) -> None:
        """Drop the PostgreSQL templates (from a thread of its own: an event loop may be running in this
        one) and delete the files."""

        async def drop() -> None:
            for database in self._postgres:
                await _admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

        if self._postgres:
            worker = threading.Thread(target=asyncio.run, args=(drop(),))
            worker.start()
            worker.join()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
        self._postgres.clear()
        self._built.clear()
        self._directory = None


# One per process: with pytest-xdist, one per worker. Emptied by the session fixture in tests/conftest.py.
TEMPLATES = Templates()


async def _migrate(url: str, _: Path) -> None:
    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def database_for_test(backend: str, tmp_path: Path, migrated: bool) -> AsyncIterator[str]:
    """What the `database_url` fixtures give a test: a database of its own, empty, or (`migrated`) a
    copy of the migrated template."""
    template = await TEMPLATES.get(backend, "migrated", _migrate) if migrated else None
    async with fresh_database(backend, tmp_path, template) as url:
        yield url


async def is_empty(database_url: str) -> bool:
    """Whether the database at `database_url` has no tables yet (as `fresh_database` made it)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "")
        return not path.exists() or path.stat().st_size == 0
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{url.database}")
    try:
        return not await connection.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()


async def fill_migrated(database_url: str) -> None:
    """Make the empty database at `database_url` a copy of the migrated template: migrating an empty
    database costs seconds (alembic, every revision), a copy milliseconds."""
    backend = make_url(database_url).get_backend_name()
    await fill_from_template(database_url, backend, await TEMPLATES.get(backend, "migrated", _migrate))


@asynccontextmanager
async def sessions_on(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """What the `sessions` fixtures give a test: sessions on the database, migrated (for a copy of the
    migrated template, migrating is a check: already at head); the engine disposed at the end."""
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


class Statements:
    """Counts the statements an engine sends to the database (what a batch costs, whatever its size)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.count = 0
        event.listen(sessions.kw["bind"].sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1
