"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database on the local server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
BACKENDS = ("sqlite", "postgresql")


@asynccontextmanager
async def fresh_database(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
        return
    name = f"ct_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield POSTGRES_URL.format(name=name)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
