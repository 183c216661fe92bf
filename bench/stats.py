"""Stats reports benchmark: a month of the per-manager, queue and source reports over 10M calls, against a
bare SQL aggregate over the same month, in the same run.

Why: the reports are read over a whole month of a large office while calls keep being written. The target:
each report under 1 s, and within 2x of the bare aggregate (`SELECT manager, count(*), sum(talk_seconds),
sum(ring_seconds) FROM calls WHERE started_at >= :a AND started_at < :b GROUP BY manager`), which is what
any report of the month has to beat without its rollups. This is a measurement, never a test: it exits 0
whatever the figures, and non-zero only when the run itself is wrong (the database does not hold what was
asked, a report missing its month's calls).

The database (`ct_bench_stats` on the server of --database, kept between runs and reused when it was built
with the same parameters; --rebuild forces a new one, --drop removes it at the end) is shaped by the
project's migrations (`migrate_database`), then filled in SQL (INSERT ... SELECT from generate_series,
seeded, so two builds with the same parameters hold the same rows), with the secondary indexes dropped
during the load and created again from their own definitions afterwards:
  - managers: --managers (300) with extensions 1000.., in --teams (10) teams;
  - calls: --calls (10M) over --months (12) months from 2025-11-01 UTC, in time order (ids follow
    started_at, as a live log's do); weekdays and 08:00-19:00 Moscow time carry most of them. 55% inbound
    (80% answered; the rest missed, busy or no answer, 1-3 phones in `rang`; 15% through the queues
    `sales`/`support` with their wait; 70% with a source, medium and campaign; 2% answered on a mobile,
    no manager), 35% outbound (60% answered), 10% internal. Customers are --customers (1.5M) E.164
    numbers, 30% of calls from a tenth of them, so callers repeat; `first_time_caller` and `is_target`
    (answered, talked 30 s or more) are set as the attribution would;
  - CRM: a quarter of the numbers are contacts; every other number's first inbound call created a lead
    (15% converted); a phone row per entity; a match row per call with a customer number;
  - callbacks: one task per missed inbound call, returned after a random delay (mean 30 min; the SLA is
    15 min), the last few days' partly still open;
  - deals: --deals (100k) owned by the managers, on contacts (70%) and leads, opened over the months,
    30% won and 30% lost;
  - the rollups: `rebuild_rollups` over the whole table, then VACUUM ANALYZE.

The measurements, for one month (--month, default the last: 2026-10 in Europe/Moscow with the defaults),
each through the project's engine and a session of its own as the API uses them, warmed once, then
--repeat rounds interleaved (bare, manager, queue, source, bare, ...), median of the rounds:
  (a) the bare aggregate, through `session.execute(text(...))`;
  (b) `manager_report` (calltracking/stats/manager_report.py);
  (c) `queue_report_between` (calltracking/stats/queue_repository.py), every queue;
  (d) `source_report` (calltracking/tracking/service.py).
With --explain, each report's statements (as the driver received them, captured in the last round) are
run again under EXPLAIN (ANALYZE, BUFFERS), with their own times.

    .venv/bin/python bench/stats.py [--repeat 7] [--explain] [--rebuild] [--calls 10000000]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/api.py would shadow the
# service's `api` package: the project root goes in front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from typing import Any

import asyncpg
from harness import BenchmarkBroken  # bench/, beside this script
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from calltracking.calls.rollup_repository import rebuild_rollups
from calltracking.config import DatabaseSettings, LogSettings, StatsSettings
from calltracking.logs import configure_logging
from calltracking.stats.period import Period
from calltracking.store.engine import create_engine, create_sessionmaker, migrate_database

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DATABASE = "ct_bench_stats"
# Bumped whenever the generator changes what it writes: a database built by another version is rebuilt.
GENERATOR_VERSION = 1
FIRST_DAY = date(2025, 11, 1)
TABLES = ("calls", "crm_entities", "entity_phones", "call_matches", "callbacks", "deals", "managers")
BARE = (
    "SELECT manager, count(*), sum(talk_seconds), sum(ring_seconds) FROM calls"
    " WHERE started_at >= :a AND started_at < :b GROUP BY manager"
)


@dataclass(frozen=True)
class Shape:
    """What a database is built from: a database built from an equal shape is reused."""

    calls: int
    months: int
    managers: int
    teams: int
    customers: int
    deals: int
    seed: float
    version: int = GENERATOR_VERSION

    @property
    def end(self) -> date:
        year, month = divmod(FIRST_DAY.month - 1 + self.months, 12)
        return date(FIRST_DAY.year + year, month + 1, 1)

    @property
    def days(self) -> int:
        return (self.end - FIRST_DAY).days

    @property
    def contacts(self) -> int:
        return self.customers // 4

    @property
    def regulars(self) -> int:
        return self.customers // 10


# Traffic sources of the inbound calls that have one: (source, medium, campaign).
SOURCES = (
    ("google", "cpc", "brand"),
    ("google", "cpc", "generic"),
    ("google", "cpc", "competitors"),
    ("google", "organic", None),
    ("yandex", "cpc", "brand"),
    ("yandex", "cpc", "generic"),
    ("yandex", "cpc", "retargeting"),
    ("yandex", "organic", None),
    ("direct", None, None),
    ("vk", "social", "spring_sale"),
    ("vk", "social", "autumn_sale"),
    ("telegram", "social", None),
    ("email", "newsletter", "monthly"),
    ("partner", "referral", None),
    ("2gis", "listing", None),
    ("avito", "classifieds", None),
)


def _array(values: list[str | None]) -> str:
    items = ", ".join("NULL" if v is None else f"'{v}'" for v in values)
    return f"(ARRAY[{items}]::text[])"


def calls_sql(shape: Shape) -> list[str]:
    """The calls in two statements: draw every call into an unlogged table, then write them into `calls`
    in time order with `first_time_caller` from a window over each customer's inbound calls."""
    sources = _array([s for s, _, _ in SOURCES])
    mediums = _array([m for _, m, _ in SOURCES])
    campaigns = _array([c for _, _, c in SOURCES])
    start = FIRST_DAY.isoformat()
    m = shape.managers
    draw = f"""
CREATE UNLOGGED TABLE bench_calls AS
SELECT
    i, 'office' AS pbx,
    (extract(epoch FROM started_at)::bigint)::text || '.' || i AS pbx_call_id,
    direction, status,
    CASE WHEN direction = 'outbound' AND r_origin < 0.15 THEN 'click_to_call' ELSE 'pbx' END AS origin,
    CASE WHEN direction = 'outbound' AND r_origin < 0.15 THEN 'req-' || i END AS request_id,
    CASE direction WHEN 'inbound' THEN number ELSE ext::text END AS caller,
    CASE direction WHEN 'inbound' THEN did WHEN 'outbound' THEN number ELSE ext2::text END AS callee,
    CASE WHEN direction = 'inbound' THEN did END AS did,
    CASE WHEN direction = 'inbound' THEN number END AS caller_number,
    CASE direction WHEN 'inbound' THEN did WHEN 'outbound' THEN number END AS callee_number,
    CASE WHEN NOT answered THEN NULL
         WHEN direction = 'inbound' THEN CASE WHEN on_mobile THEN '+7916' || lpad(ext::text, 7, '0')
                                              ELSE ext::text END
         WHEN direction = 'outbound' THEN number
         ELSE ext2::text END AS answered_by,
    CASE WHEN direction = 'outbound' THEN ext::text
         WHEN NOT answered OR on_mobile THEN NULL
         WHEN direction = 'inbound' THEN ext::text
         ELSE ext2::text END AS manager,
    CASE WHEN direction = 'outbound' THEN '[]'::json
         WHEN direction = 'internal' THEN json_build_array(ext2::text)
         WHEN answered AND r_rang < 0.7 THEN json_build_array(ext::text)
         WHEN answered THEN json_build_array(ext2::text, ext::text)
         WHEN r_rang < 0.5 THEN json_build_array(ext::text)
         WHEN r_rang < 0.8 THEN json_build_array(ext::text, ext2::text)
         ELSE json_build_array(ext::text, ext2::text, ext3::text) END AS rang,
    queue,
    '[]'::json AS transferred_to,
    queue IS NOT NULL AND NOT answered AS abandoned,
    false AS reconciled,
    started_at,
    CASE WHEN answered THEN started_at + make_interval(secs => ring) END AS answered_at,
    started_at + make_interval(secs => coalesce(queue_wait, 0) + ring + talk) AS ended_at,
    ring AS ring_seconds, talk AS talk_seconds,
    CASE WHEN r_hangup < 0.55 THEN 'caller' ELSE 'callee' END AS hangup_by,
    CASE WHEN status = 'failed' THEN 'congestion' END AS failure_reason,
    CASE WHEN answered THEN to_char(started_at, 'YYYY/MM/DD/') || i || '.wav' END AS recording_file,
    CASE direction WHEN 'internal' THEN NULL ELSE number END AS customer_number,
    queue_wait AS queue_wait_seconds,
    CASE WHEN direction = 'inbound' AND r_source < 0.7 THEN {sources}[source_at] END AS source,
    CASE WHEN direction = 'inbound' AND r_source < 0.7 THEN {mediums}[source_at] END AS medium,
    CASE WHEN direction = 'inbound' AND r_source < 0.7 THEN {campaigns}[source_at] END AS campaign,
    CASE WHEN direction = 'inbound' THEN answered AND talk >= 30 END AS is_target
FROM (
    SELECT d.*,
        timestamptz '{start} 00:00+00' + make_interval(days => day, secs => CASE
            WHEN r_hour < 0.85 THEN 5 * 3600 + r_hour / 0.85 * 11 * 3600
            ELSE (r_hour - 0.85) / 0.15 * 86400 END) AS started_at,
        status = 'answered' AS answered,
        direction = 'inbound' AND status = 'answered' AND r_mobile < 0.02 AS on_mobile,
        CASE WHEN status <> 'answered' THEN 0
             ELSE -ln(1 - r_talk) * CASE direction WHEN 'inbound' THEN 150 WHEN 'outbound' THEN 120
                                                   ELSE 60 END END AS talk,
        CASE WHEN direction = 'inbound' AND status <> 'answered' THEN 5 + r_ring * 40
             ELSE 2 + r_ring * 20 END AS ring,
        CASE WHEN queue IS NULL THEN NULL
             ELSE -ln(1 - r_wait) * CASE WHEN status = 'answered' THEN 25 ELSE 50 END END AS queue_wait,
        '+79' || lpad(customer::text, 9, '0') AS number,
        '+7495111' || lpad((1 + floor(r_did * 20))::int::text, 4, '0') AS did,
        1 + floor(r_source / 0.7 * {len(SOURCES)})::int AS source_at
    FROM (
        SELECT r.*,
            CASE WHEN dow >= 6 AND r_weekend < 0.7
                 THEN least({shape.days - 1}, greatest(0, day0 - (dow - 1) + floor(r_weekday * 5)::int))
                 ELSE day0 END AS day,
            CASE WHEN direction = 'inbound' AND r_queue < 0.09 THEN 'sales'
                 WHEN direction = 'inbound' AND r_queue < 0.15 THEN 'support' END AS queue,
            CASE WHEN direction = 'inbound' THEN
                     CASE WHEN r_status < 0.80 THEN 'answered' WHEN r_busy < 0.1 THEN 'busy'
                          WHEN r_busy < 0.2 THEN 'no_answer' ELSE 'missed' END
                 WHEN direction = 'outbound' THEN
                     CASE WHEN r_status < 0.60 THEN 'answered' WHEN r_status < 0.85 THEN 'no_answer'
                          WHEN r_status < 0.95 THEN 'busy' ELSE 'failed' END
                 ELSE CASE WHEN r_status < 0.85 THEN 'answered' ELSE 'no_answer' END END AS status
        FROM (
            SELECT q.*,
                CASE WHEN r_direction < 0.55 THEN 'inbound' WHEN r_direction < 0.90 THEN 'outbound'
                     ELSE 'internal' END AS direction,
                1000 + floor({m} * power(r_ext, 1.15))::int AS ext,
                1000 + floor({m} * r_ext2)::int AS ext2,
                1000 + floor({m} * r_ext3)::int AS ext3,
                CASE WHEN r_customer < 0.3 THEN floor(r_customer2 * {shape.regulars})
                     ELSE floor(r_customer2 * {shape.customers}) END::int AS customer,
                floor(r_day * {shape.days})::int AS day0,
                extract(isodow FROM date '{start}' + floor(r_day * {shape.days})::int)::int AS dow
            FROM (
                SELECT i,
                    random() AS r_direction, random() AS r_status, random() AS r_busy, random() AS r_ext,
                    random() AS r_ext2, random() AS r_ext3, random() AS r_customer, random() AS r_customer2,
                    random() AS r_day, random() AS r_weekend, random() AS r_weekday, random() AS r_hour,
                    random() AS r_rang, random() AS r_queue, random() AS r_wait, random() AS r_source,
                    random() AS r_talk, random() AS r_ring, random() AS r_mobile, random() AS r_did,
                    random() AS r_origin, random() AS r_hangup
                FROM generate_series(1, {shape.calls}) AS i
            ) AS q
        ) AS r
    ) AS d
) AS c"""
    columns = (
        "pbx, pbx_call_id, direction, status, origin, request_id, caller, callee, did, caller_number,"
        " callee_number, answered_by, manager, rang, queue, transferred_to, abandoned, reconciled,"
        " started_at, answered_at, ended_at, ring_seconds, talk_seconds, hangup_by, failure_reason,"
        " recording_file, customer_number, queue_wait_seconds, source, medium, campaign, is_target"
    )
    load = f"""
INSERT INTO calls ({columns}, legal_hold, first_time_caller)
SELECT {columns}, false,
    CASE WHEN direction = 'inbound' THEN row_number() OVER (
        PARTITION BY direction = 'inbound', customer_number ORDER BY started_at, i) = 1 END
FROM bench_calls
ORDER BY started_at, i"""
    return [draw, load, "DROP TABLE bench_calls"]


def crm_sql(shape: Shape) -> list[str]:
    start = f"timestamptz '{FIRST_DAY.isoformat()} 00:00+00'"
    end = f"timestamptz '{shape.end.isoformat()} 00:00+00'"
    m = shape.managers
    return [
        f"""
INSERT INTO managers (external_id, name, extensions, team, is_active, created_at, updated_at)
SELECT 'mgr-' || ext, 'Manager ' || ext, json_build_array(ext::text),
    'team-' || ((ext - 1000) % {shape.teams}), true, {start}, {start}
FROM generate_series(1000, {999 + m}) AS ext""",
        # Contacts the CRM sent before the period.
        f"""
INSERT INTO crm_entities (kind, external_id, name, owner, status, origin, is_active, created_at, updated_at)
SELECT 'contact', 'c' || n, 'Contact ' || n, 'mgr-' || (1000 + floor(random() * {m})::int), 'active', 'crm',
    true, {start} - make_interval(days => floor(random() * 730)::int),
    {start} - make_interval(days => floor(random() * 30)::int)
FROM generate_series(0, {shape.contacts - 1}) AS n""",
        # A lead for every other number, made at its first inbound call.
        f"""
INSERT INTO crm_entities (kind, external_id, name, owner, status, source, medium, campaign, origin,
    first_call_id, converted_to, is_active, last_activity_at, created_at, updated_at)
SELECT 'lead', 'l' || n, 'Caller ' || customer_number, 'mgr-' || coalesce(manager, rang ->> 0), 'new',
    source, medium, campaign, 'call', id, CASE WHEN random() < 0.15 THEN 'c-conv-' || n END, true,
    started_at, started_at, started_at
FROM (SELECT c.*, substr(c.customer_number, 4)::int AS n FROM calls AS c WHERE c.first_time_caller) AS f
WHERE n >= {shape.contacts}""",
        """
INSERT INTO entity_phones (entity_id, raw, e164, digits_reversed, tail_key, is_valid)
SELECT id, number, number, reverse(substr(number, 2)), left(reverse(substr(number, 2)), 6), true
FROM (SELECT id, '+79' || lpad(substr(external_id, 2), 9, '0') AS number FROM crm_entities) AS e""",
        """
INSERT INTO call_matches (call_id, number, digits_reversed, entity_id, matched_by, candidates, lead_created,
    matched_at)
SELECT c.id, c.customer_number, reverse(substr(c.customer_number, 2)), p.entity_id,
    CASE WHEN p.entity_id IS NOT NULL THEN 'e164' END, '[]'::json, coalesce(e.first_call_id = c.id, false),
    c.ended_at
FROM calls AS c
LEFT JOIN entity_phones AS p ON p.e164 = c.customer_number
LEFT JOIN crm_entities AS e ON e.id = p.entity_id
WHERE c.customer_number IS NOT NULL""",
        # One task per missed inbound call: returned after a while, or (the last days) some still open.
        f"""
INSERT INTO callbacks (number, open_number, state, missed_call_id, missed_calls, entity_id, manager,
    missed_at, last_missed_at, due_at, closed_at, returned_by, seconds_to_return)
SELECT number, CASE WHEN is_open THEN number END, CASE WHEN is_open THEN 'open' ELSE 'done' END, id, 1,
    entity_id, manager, started_at, started_at, started_at + interval '15 minutes',
    CASE WHEN NOT is_open THEN started_at + make_interval(secs => back) END,
    CASE WHEN NOT is_open THEN manager END, CASE WHEN NOT is_open THEN back END
FROM (
    SELECT c.id, c.customer_number AS number, c.started_at, p.entity_id, 'mgr-' || (c.rang ->> 0) AS manager,
        -ln(1 - random()) * 1800 AS back,
        c.started_at > {end} - interval '3 days' AND random() < 0.3
            AND row_number() OVER (PARTITION BY c.customer_number ORDER BY c.started_at DESC) = 1 AS is_open
    FROM calls AS c
    LEFT JOIN entity_phones AS p ON p.e164 = c.customer_number
    WHERE c.direction = 'inbound' AND c.status <> 'answered'
) AS missed""",
        f"""
INSERT INTO deals (external_id, name, contact, lead, owner, stage, amount_minor, currency, opened_at,
    closed_at, is_won, is_active, updated_at)
SELECT 'd' || k, 'Deal ' || k,
    CASE WHEN r_entity < 0.7 THEN 'c' || floor(r_pick * {shape.contacts})::int END,
    CASE WHEN r_entity >= 0.7
         THEN 'l' || ({shape.contacts} + floor(r_pick * {shape.customers - shape.contacts})::int) END,
    'mgr-' || (1000 + floor(r_owner * {m})::int),
    CASE WHEN r_outcome < 0.3 THEN 'won' WHEN r_outcome < 0.6 THEN 'lost' ELSE 'negotiation' END,
    (5000 + floor(-ln(1 - r_amount) * 50000))::bigint * 100, 'RUB', opened_at,
    CASE WHEN r_outcome < 0.6 THEN least({end} - interval '1 second',
        opened_at + make_interval(secs => -ln(1 - r_close) * 20 * 86400)) END,
    CASE WHEN r_outcome < 0.3 THEN true WHEN r_outcome < 0.6 THEN false END, true, opened_at
FROM (
    SELECT k, random() AS r_entity, random() AS r_pick, random() AS r_owner, random() AS r_outcome,
        random() AS r_amount, random() AS r_close,
        {start} + make_interval(secs => random() * {shape.days} * 86400) AS opened_at
    FROM generate_series(1, {shape.deals}) AS k
) AS d""",
    ]


@contextmanager
def timed(label: str) -> Iterator[None]:
    began = time.perf_counter()
    yield
    print(f"  {label}: {time.perf_counter() - began:.1f} s", flush=True)


def admin_dsn(server: str, database: str | None = None) -> str:
    url = make_url(server).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def built_shape(server: str) -> Shape | None:
    """The shape the bench database was completely built from (its comment), or None."""
    admin = await asyncpg.connect(admin_dsn(server))
    try:
        comment = await admin.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", DATABASE
        )
    finally:
        await admin.close()
    try:
        return Shape(**json.loads(comment)) if comment else None
    except (TypeError, ValueError):
        return None


async def build(server: str, shape: Shape) -> None:
    print(f"building {DATABASE}: {shape}", flush=True)
    began = time.perf_counter()
    admin = await asyncpg.connect(admin_dsn(server))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = make_url(server).set(database=DATABASE).render_as_string(hide_password=False)
    with timed("migrations"):
        await migrate_database(DatabaseSettings(url=url))
    db = await asyncpg.connect(admin_dsn(server, DATABASE))
    try:
        # The load's own session: big sorts in memory, no wait for the WAL flush, no foreign-key
        # triggers (the rows are consistent by construction).
        await db.execute(
            "SET work_mem = '1GB'; SET maintenance_work_mem = '1GB'; SET synchronous_commit = off;"
            " SET session_replication_role = replica"
        )
        await db.execute(f"SELECT setseed({shape.seed})")
        indexes = await db.fetch(
            "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition"
            " FROM pg_index AS i JOIN pg_class AS t ON t.oid = i.indrelid"
            " WHERE t.relname = ANY($1::text[])"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)",
            list(TABLES),
        )
        for index in indexes:
            await db.execute(f"DROP INDEX {index['name']}")
        with timed(f"calls ({shape.calls:,})"):
            for statement in calls_sql(shape):
                await db.execute(statement)
        with timed("managers, contacts, leads, phones, matches, callbacks, deals"):
            for statement in crm_sql(shape):
                await db.execute(statement)
        with timed(f"{len(indexes)} secondary indexes"):
            for index in indexes:
                await db.execute(index["definition"])
    finally:
        await db.close()
    engine = create_engine(url)
    try:
        with timed("rebuild_rollups"):
            async with create_sessionmaker(engine).begin() as session:
                await session.execute(text("SET LOCAL work_mem = '1GB'"))
                await rebuild_rollups(session)
    finally:
        await engine.dispose()
    db = await asyncpg.connect(admin_dsn(server, DATABASE))
    try:
        with timed("VACUUM ANALYZE"):
            await db.execute("VACUUM ANALYZE")
        await db.execute(f"COMMENT ON DATABASE \"{DATABASE}\" IS '{json.dumps(asdict(shape))}'")
    finally:
        await db.close()
    print(f"  built in {time.perf_counter() - began:.0f} s", flush=True)


async def describe(sessions: async_sessionmaker[AsyncSession], shape: Shape) -> None:
    """What the database holds; broken when it is not what the shape asked for."""
    async with sessions() as session:
        sizes = {
            table: int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in (*TABLES, "manager_rollups", "source_rollups")
        }
        on_disk = await session.scalar(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
    print("  rows: " + ", ".join(f"{table} {count:,}" for table, count in sizes.items()) + f"; {on_disk}")
    if sizes["calls"] != shape.calls or sizes["managers"] != shape.managers or sizes["deals"] != shape.deals:
        raise BenchmarkBroken(f"{DATABASE} does not hold the shape asked for: {sizes}")


@dataclass
class Statements:
    """The statements the driver ran while `active`: text, parameters and seconds each."""

    active: bool = False
    seen: list[tuple[str, Any, float]] = field(default_factory=list)
    _began: list[float] = field(default_factory=list)

    def attach(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._began.append(time.perf_counter())

    def _after(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        began = self._began.pop()
        if self.active:
            self.seen.append((statement, parameters, time.perf_counter() - began))


Scenario = Callable[[async_sessionmaker[AsyncSession], Period], Awaitable[object]]


async def bare_aggregate(sessions: async_sessionmaker[AsyncSession], period: Period) -> object:
    async with sessions() as session:
        rows = (await session.execute(text(BARE), {"a": period.start, "b": period.end})).all()
    if not rows:
        raise BenchmarkBroken("the bare aggregate found no calls in the month")
    return rows


def report_scenarios() -> tuple[dict[str, Scenario], dict[str, str]]:
    """The reports whose modules are there, and why each missing one is not."""
    found: dict[str, Scenario] = {}
    missing: dict[str, str] = {}
    try:
        from calltracking.stats.manager_report import ReportScope, manager_report

        async def managers(sessions: async_sessionmaker[AsyncSession], period: Period) -> object:
            async with sessions() as session:
                report = await manager_report(session, ReportScope(period=period))
            if report.total is None or report.total.calls.inbound_received == 0:
                raise BenchmarkBroken("the per-manager report counted no calls in the month")
            return report

        found["(b) per-manager report"] = managers
    except ImportError as exc:
        missing["(b) per-manager report"] = str(exc)
    try:
        from calltracking.stats.queue_repository import queue_report_between

        service_level = StatsSettings().queue_service_level_seconds

        async def queues(sessions: async_sessionmaker[AsyncSession], period: Period) -> object:
            async with sessions() as session:
                report = await queue_report_between(session, period.start, period.end, service_level)
            if not report.queues:
                raise BenchmarkBroken("the queue report found no queued calls in the month")
            return report

        found["(c) queue report"] = queues
    except ImportError as exc:
        missing["(c) queue report"] = str(exc)
    try:
        from calltracking.tracking.service import source_report
        from calltracking.tracking.sources import ReportPeriod

        async def sources(sessions: async_sessionmaker[AsyncSession], period: Period) -> object:
            report = await source_report(sessions, ReportPeriod(start=period.start, end=period.end))
            if not report.lines:
                raise BenchmarkBroken("the source report found no sources in the month")
            return report

        found["(d) source report"] = sources
    except ImportError as exc:
        missing["(d) source report"] = str(exc)
    return found, missing


def month_period(shape: Shape, month: str | None, zone: str) -> Period:
    if month is None:
        last = shape.end - timedelta(days=1)
        month = f"{last.year:04d}-{last.month:02d}"
    first = date.fromisoformat(f"{month}-01")
    following = (first + timedelta(days=32)).replace(day=1)
    return Period.parse(first.isoformat(), (following - timedelta(days=1)).isoformat(), zone, following)


def abridged(text: str, limit: int) -> str:
    """`text` cut at `limit` characters: the statement that maps 300 extensions in a CASE runs to 40 kB."""
    return text if len(text) <= limit else f"{text[:limit]} ... ({len(text):,} characters)"


async def explain(engine: AsyncEngine, name: str, statements: list[tuple[str, Any, float]]) -> None:
    print(f"\n=== EXPLAIN (ANALYZE, BUFFERS): {name}, {len(statements)} statements ===")
    # One connection and transaction for them all, as the report has: a `SET LOCAL` it makes (work_mem)
    # holds for the statements after it, and is run as it is (there is no plan of a SET).
    async with engine.connect() as connection, connection.begin():
        for number, (statement, parameters, seconds) in enumerate(statements, 1):
            print(f"\n--- {name} #{number}: {seconds * 1000:.1f} ms in the last round ---")
            print(abridged(" ".join(statement.split()), 1200))
            print(abridged(f"parameters: {parameters}", 300))
            if statement.lstrip().upper().startswith("SET "):
                await connection.exec_driver_sql(statement, parameters)
                continue
            plan = await connection.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
            print("\n".join(abridged(row[0], 200) for row in plan.all()))


def without_jit(engine: AsyncEngine) -> None:
    """Every connection of `engine` with PostgreSQL's JIT compiler off (what --no-jit measures)."""

    def switch_off(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SET jit = off")
        cursor.close()

    event.listen(engine.sync_engine, "connect", switch_off)


async def measure(args: argparse.Namespace, shape: Shape) -> None:
    url = make_url(args.database).set(database=DATABASE).render_as_string(hide_password=False)
    engine = create_engine(url)
    if args.no_jit:
        without_jit(engine)
    statements = Statements()
    statements.attach(engine)
    sessions = create_sessionmaker(engine)
    try:
        await describe(sessions, shape)
        period = month_period(shape, args.month, args.tz)
        jit = "off (--no-jit)" if args.no_jit else "as the server has it"
        print(f"month: [{period.start.isoformat()}, {period.end.isoformat()}) ({args.tz}); JIT {jit}")
        reports, missing = report_scenarios()
        scenarios: dict[str, Scenario] = {"(a) bare aggregate": bare_aggregate, **reports}
        times: dict[str, list[float]] = {name: [] for name in scenarios}
        last_round: dict[str, list[tuple[str, Any, float]]] = {}
        for round_number in range(args.repeat + 1):  # round 0 warms the cache and is not counted
            for name, scenario in scenarios.items():
                statements.seen = []
                statements.active = True
                began = time.perf_counter()
                await scenario(sessions, period)
                elapsed = time.perf_counter() - began
                statements.active = False
                if round_number:
                    times[name].append(elapsed)
                    last_round[name] = statements.seen
        bare = statistics.median(times["(a) bare aggregate"])
        print(f"\n{args.repeat} rounds, median; ratio = report / bare aggregate (target: < 1 s and <= 2x)")
        print(f"{'':<24} {'median s':>8} {'min s':>6} {'max s':>6} {'ratio':>6} {'queries':>7}  per run")
        for name, runs in times.items():
            median, low, high = statistics.median(runs), min(runs), max(runs)
            per_run = " / ".join(f"{run:.3f}" for run in runs)
            queries = len(last_round[name])
            ratio = median / bare
            print(f"{name:<24} {median:8.3f} {low:6.3f} {high:6.3f} {ratio:6.2f} {queries:7d}  {per_run}")
        for name, reason in missing.items():
            print(f"{name:<24} not measured: its module is not there ({reason})")
        if args.explain:
            for name in scenarios:
                await explain(engine, name, last_round[name])
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    shape = Shape(
        calls=args.calls,
        months=args.months,
        managers=args.managers,
        teams=args.teams,
        customers=args.customers,
        deals=args.deals,
        seed=args.seed,
    )
    if args.rebuild or await built_shape(args.database) != shape:
        await build(args.database, shape)
    else:
        print(f"reusing {DATABASE} (built with the same parameters; --rebuild to build it again)")
    try:
        await measure(args, shape)
    finally:
        if args.drop:
            admin = await asyncpg.connect(admin_dsn(args.database))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            finally:
                await admin.close()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database", default=DEFAULT_SERVER, help="any database on the PostgreSQL server")
    parser.add_argument("--calls", type=int, default=10_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--managers", type=int, default=300)
    parser.add_argument("--teams", type=int, default=10)
    parser.add_argument("--customers", type=int, default=1_500_000)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=float, default=0.42)
    parser.add_argument("--month", help="YYYY-MM to report on (default: the last month of the calls)")
    parser.add_argument("--tz", default="Europe/Moscow", help="the zone the month's days are counted in")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="EXPLAIN (ANALYZE, BUFFERS) each report's SQL")
    parser.add_argument("--no-jit", action="store_true", help="measure with PostgreSQL's JIT off")
    parser.add_argument("--rebuild", action="store_true", help="build the database even if it is there")
    parser.add_argument("--drop", action="store_true", help=f"drop {DATABASE} at the end")
    return parser.parse_args()


if __name__ == "__main__":
    configure_logging(LogSettings(level="warning"))
    try:
        asyncio.run(main(parse_args()))
    except BenchmarkBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        sys.exit(1)
