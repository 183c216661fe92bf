"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from calltracking.numbers import parse_phone
from calltracking.store.engine import create_engine, migrate
from calltracking.store.tables import SQLITE_SEARCH_TABLE, Base, is_modelled


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
    """Everything but SQLite's FTS5 table of transcripts, which the models cannot describe (its own test
    below checks it is there)."""
    context = MigrationContext.configure(connection, opts={"compare_type": True, "include_name": is_modelled})
    return list(compare_metadata(context, Base.metadata))


async def test_only_the_fts5_table_is_left_out_of_the_comparison(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    left_out = {name for name in tables if not is_modelled(name, "table")}
    modelled = {name for name in tables if is_modelled(name, "table")} - {"alembic_version"}
    assert modelled == set(Base.metadata.tables)
    if database_url.startswith("sqlite"):
        assert SQLITE_SEARCH_TABLE in left_out and all(n.startswith(SQLITE_SEARCH_TABLE) for n in left_out)
    else:
        assert left_out == set()


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


async def test_calls_logged_before_0008_count_in_the_rollups(database_url: str) -> None:
    engine = create_engine(database_url)
    started = datetime(2026, 10, 5, 7, 3, tzinfo=UTC)
    calls = [
        ("1", "inbound", "answered", "101", '["101"]', 30.0, 4.0),
        ("2", "inbound", "missed", None, '["101", "102"]', 0.0, 20.0),
        ("3", "outbound", "answered", "103", "[]", 50.0, 5.0),
    ]
    # The missed call's caller ID is a short number, no customer's.
    callers = {"1": "+79161234567", "2": "7777", "3": "+79161234567"}
    try:
        await migrate(engine, "0007")
        async with engine.begin() as connection:
            for call_id, direction, status, manager, rang, talk, ring in calls:
                await connection.execute(
                    text(
                        "INSERT INTO calls (pbx, pbx_call_id, direction, status, origin, caller, callee,"
                        " manager, rang, transferred_to, abandoned, reconciled, started_at, ended_at,"
                        " ring_seconds, talk_seconds, caller_number)"
                        " VALUES ('office', :id, :direction, :status, 'pbx', '+79161234567', '101',"
                        " :manager, :rang, '[]', false, false, :at, :at, :ring, :talk, :caller_number)"
                    ),
                    {
                        "id": call_id,
                        "direction": direction,
                        "status": status,
                        "manager": manager,
                        "rang": rang,
                        "at": started,
                        "ring": ring,
                        "talk": talk,
                        "caller_number": callers[call_id],
                    },
                )
        await migrate(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT bucket, extension, inbound_received, inbound_missed, outbound_made,"
                        " talk_seconds FROM manager_rollups WHERE grain = 900 ORDER BY extension"
                    )
                )
            ).all()
            customers = (
                await connection.execute(text("SELECT customer_number FROM calls ORDER BY pbx_call_id"))
            ).scalars()
            customer_numbers = list(customers)
    finally:
        await engine.dispose()
    bucket = int(datetime(2026, 10, 5, 7, 0, tzinfo=UTC).timestamp())
    assert [tuple(row) for row in rows] == [
        (bucket, "", 2, 1, 1, 80.0),
        (bucket, "101", 2, 1, 0, 30.0),
        (bucket, "102", 1, 1, 0, 0.0),
        (bucket, "103", 0, 0, 1, 50.0),
    ]
    # The customer's number of an old inbound call is its caller's; the outbound one's callee was "101".
    assert customer_numbers == ["+79161234567", None, None]


async def test_scores_stored_before_0013_get_the_reports_columns(database_url: str) -> None:
    """0013 derives `figures` and `said` in SQL from the stored metrics and checklist: equal to what the
    service writes for a new score (`report_columns`), a metric without a value included."""
    from calltracking.quality.checklist import checklist_in_force, score_call
    from calltracking.quality.report import report_columns
    from calltracking.quality.scored import scored_call
    from tests.helpers.quality import BAD, GOOD

    example = checklist_in_force(None).checklist
    at = datetime(2026, 10, 5, 7, 3, tzinfo=UTC)
    scored = [
        scored_call(n, "101", at, score_call(t, 20.0, example), "sha", at) for n, t in ((1, GOOD), (2, BAD))
    ]
    scored[1].metrics["customer_words_per_minute"] = None  # a side that never spoke
    engine = create_engine(database_url)
    try:
        await migrate(engine, "0012")
        async with engine.begin() as connection:
            for item in scored:
                await connection.execute(
                    text(
                        "INSERT INTO calls (id, pbx, pbx_call_id, direction, status, origin, caller, callee,"
                        " rang, transferred_to, abandoned, reconciled, started_at, ended_at, ring_seconds,"
                        " talk_seconds) VALUES (:id, 'office', :linkedid, 'inbound', 'answered', 'pbx', '1',"
                        " '101', '[]', '[]', false, false, :at, :at, 0, 20)"
                    ),
                    {"id": item.call_id, "linkedid": str(item.call_id), "at": at},
                )
                await connection.execute(
                    text(
                        "INSERT INTO quality_scores (call_id, manager, started_at, score, passed, metrics,"
                        " checklist, checklist_sha256, scored_at) VALUES (:id, '101', :at, :score, :passed,"
                        " :metrics, :checklist, 'sha', :at)"
                    ),
                    {
                        "id": item.call_id,
                        "at": at,
                        "score": item.score,
                        "passed": item.passed,
                        "metrics": json.dumps(item.metrics),
                        "checklist": json.dumps(item.checklist),
                    },
                )
        await migrate(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT call_id, figures, said FROM quality_scores ORDER BY call_id")
                )
            ).all()
    finally:
        await engine.dispose()
    for item, row in zip(scored, rows, strict=True):
        figures, said = (json.loads(v) if isinstance(v, str) else v for v in (row.figures, row.said))
        expected_figures, expected_said = report_columns(item.metrics, item.checklist)
        assert {name: None if v is None else float(v) for name, v in figures.items()} == expected_figures
        assert said == expected_said
    assert any(said.values()) and not all(said.values())
