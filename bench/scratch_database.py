"""A throwaway PostgreSQL database for one benchmark run, so no existing table is ever touched."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url


@contextlib.asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """A new, empty database on the server of `server_url`, dropped afterwards."""
    url = make_url(server_url)
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"ct_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
