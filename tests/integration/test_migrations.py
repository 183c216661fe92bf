"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from calltracking.numbers import parse_phone
from calltracking.store.engine import create_engine, migrate
from calltracking.store.tables import Base


async def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    finally:
        await engine.dispose()
    assert differences == []


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_phones_stored_before_0005_get_their_tail_key(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "0004")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO crm_entities (id, kind, external_id, origin, is_active, created_at,"
                    " updated_at) VALUES (1, 'contact', 'c-1', 'crm', true, :at, :at)"
                ),
                {"at": datetime(2026, 11, 1, tzinfo=UTC)},
            )
            await connection.execute(
                text(
                    "INSERT INTO entity_phones (entity_id, raw, e164, digits_reversed, is_valid)"
                    " VALUES (1, '8 916 123-45-67', '+79161234567', '76543216197', true)"
                )
            )
        await migrate(engine)
        async with engine.connect() as connection:
            tail_key = (await connection.execute(text("SELECT tail_key FROM entity_phones"))).scalar_one()
    finally:
        await engine.dispose()
    assert tail_key == parse_phone("8 916 123-45-67", "RU").tail_key == "765432"


async def test_a_migration_that_fails_midway_leaves_no_part_of_itself(database_url: str) -> None:
    """A service killed or failing while it migrates must not leave half a schema that every later start
    trips over: 0004 fails here (its first table is in the way), and 0001-0003 are rolled back with it."""
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE managers (id INTEGER PRIMARY KEY)"))
        with pytest.raises(DBAPIError):
            await migrate(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert tables == ["managers"]

        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE managers"))
        await migrate(engine)
        async with engine.connect() as connection:
            differences = await connection.run_sync(_differences)
        assert differences == []
    finally:
        await engine.dispose()
