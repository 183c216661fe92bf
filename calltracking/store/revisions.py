"""Where a database's schema stands against the migrations this code ships, without changing it (what
`calltracking doctor` reports; `calltracking migrate` is what moves it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from calltracking.config import DatabaseSettings
from calltracking.errors import DatabaseUnavailable
from calltracking.store.engine import ALEMBIC_INI, engine_for


@dataclass(frozen=True, slots=True)
class SchemaRevision:
    """`current` is None for a database without the schema; `is_known` is False for a revision this
    code does not ship (the database was migrated by a newer calltracking)."""

    current: str | None
    head: str
    is_known: bool

    @property
    def is_current(self) -> bool:
        return self.current == self.head


def shipped_head() -> str:
    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    if head is None:  # the package ships its migrations: only a broken install has none
        raise RuntimeError("no alembic migrations found beside calltracking.store")
    return head


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


async def schema_revision(settings: DatabaseSettings) -> SchemaRevision:
    """The database's alembic revision and the shipped head. `DatabaseUnavailable` when it cannot be
    reached; a SQLite file that does not exist is reported as having no schema, and is not created."""
    head = shipped_head()
    path = sqlite_file(settings.url)
    if path is not None and not path.exists():
        return SchemaRevision(current=None, head=head, is_known=True)
    engine = engine_for(settings)
    try:
        async with engine.connect() as connection:
            current = await connection.run_sync(_current_revision)
    except DatabaseUnavailable:
        raise
    except Exception as exc:  # drivers raise their own kinds (asyncpg, OSError): all mean "not reached"
        first_line = (str(exc).splitlines() or [""])[0]
        raise DatabaseUnavailable(f"{type(exc).__name__}: {first_line}"[:300]) from exc
    finally:
        await engine.dispose()
    known = current is None or _ships(current)
    return SchemaRevision(current=current, head=head, is_known=known)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _ships(revision: str) -> bool:
    scripts = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    try:
        return scripts.get_revision(revision) is not None
    except Exception:  # alembic's own "no such revision" errors
        return False
