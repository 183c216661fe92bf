"""Web interface benchmark: each page under /ui/ against the JSON endpoint that serves the same data, over
100,000 calls in PostgreSQL, in the same run.

Why: issue 15 asks that "pages render under 300 ms at p95 with 100k calls in PostgreSQL (a bench against
the JSON endpoint that serves the same data, in the same run)". The machine is shared and noisy, so the
page's p95 is printed beside its JSON counterpart's and as a ratio to it. This is a measurement, never a
test: it exits 0 whatever the figures, and 1 only when the run itself is wrong (the database does not hold
what was asked, a request answered with an unexpected status, the sign-in refused).

The database (`ct_bench_web` on the server of --database, kept between runs and reused when it was built
with the same parameters on the same day; --rebuild forces a new one, --drop removes it at the end) is
shaped by the project's migrations (`migrate_database`), then filled in SQL (INSERT ... SELECT from
generate_series, seeded), with the secondary indexes dropped during the load and created again from their
own definitions afterwards:
  - calls: --calls (100k) over the --days (60) days up to the build, in time order (ids follow
    started_at); weekdays and 08:00-19:00 Moscow time carry most. 55% inbound (80% answered; else missed,
    busy or no answer; 15% through the queues `sales`/`support`; 70% with a traffic source), 35% outbound
    (60% answered), 10% internal; 30 extensions (101-130, the first ones busiest), 20,000 customers, 30%
    of the calls from a tenth of them; one extension leg per call;
  - CRM mirror: 20 managers holding extensions 101-120 in 4 teams (121-130 are held by nobody: their
    lines are `ext:<extension>`); a quarter of the numbers are contacts, every other number's first
    inbound call made a lead; a phone per entity, a match per call; one callback task per missed inbound
    call (the last 3 days' partly still open); 2,000 deals;
  - a `ready` recording row per answered call, and a quality score (the shipped example checklist run
    over one of four short transcripts) for a fifth of the answered calls with a manager;
  - the rollups: `rebuild_rollups`, then VACUUM ANALYZE.

The server: the service's own app (`api.app.create_app`), served in this process on a loopback port as
`calltracking serve` does (`web.AppRunner(app, access_log=None)` + `web.TCPSite`), `[stats] timezone`
Europe/Moscow, the API's rate limit out of the way. An admin token; one `aiohttp.ClientSession` (cookie
jar) signs in through the form (GET /ui/signin for the `ct_signin` cookie and the hidden `csrf_token`,
POST /ui/signin) and sends the pages; the JSON requests carry the token as a bearer.

The pairs, each measured as --warmup then --pairs rounds of (page, JSON), one request at a time, the wall
time of each from send to body read (`time.perf_counter`), one pair after another:
  (1) /ui/?from=<1st>&to=<today>             vs GET /api/v1/stats/managers?from=<1st>&to=<today>
  (2) /ui/calls                              vs GET /api/v1/calls?limit=50
  (3) /ui/calls?status=missed&from=<1st>     vs GET /api/v1/calls?status=missed&from=<1st, ISO>&limit=50
  (4) /ui/calls/<id>                          vs GET /api/v1/calls/<id>  (a call of this month with a
                                                recording and a quality score; skipped if the page 404s)
  (5) /ui/quality?from=<1st>&to=<today>      vs GET /api/v1/reports/quality?from=...&to=...  (skipped if
                                                the page 404s)
For each: p50 and p95 (nearest rank) of page and JSON, page p95 / JSON p95, the median of the per-round
ratios page / JSON, and whether the page's p95 is under 300 ms.

    .venv/bin/python bench/web_pages.py [--calls 100000] [--pairs 200] [--warmup 20] [--rebuild] [--drop]
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
import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
from harness import BenchmarkBroken, percentile, served  # bench/, beside this script
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from calltracking.access.repository import create_token
from calltracking.access.tokens import Role, new_token
from calltracking.app.memory import settle_heap
from calltracking.calls.rollup_repository import rebuild_rollups
from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from calltracking.config import DatabaseSettings, LogSettings, Settings, load_settings
from calltracking.logs import configure_logging
from calltracking.quality.checklist import checklist_in_force, score_call
from calltracking.quality.scored import scored_call
from calltracking.store.engine import create_engine, create_sessionmaker, migrate_database

DEFAULT_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
DATABASE = "ct_bench_web"
# Bumped whenever the generator changes what it writes: a database built by another version is rebuilt.
GENERATOR_VERSION = 2
ZONE = "Europe/Moscow"
TARGET_MS = 300.0
EXTENSIONS = 30  # 101-130
HELD = 20  # managers in the CRM mirror hold 101-120
TEAMS = 4
CUSTOMERS = 20_000
DEALS = 2_000
TABLES = (
    "calls",
    "call_legs",
    "crm_entities",
    "entity_phones",
    "call_matches",
    "callbacks",
    "deals",
    "managers",
    "recordings",
    "quality_scores",
)
SOURCES = (
    ("google", "cpc", "brand"),
    ("google", "cpc", "generic"),
    ("google", "organic", None),
    ("yandex", "cpc", "brand"),
    ("yandex", "cpc", "retargeting"),
    ("yandex", "organic", None),
    ("direct", None, None),
    ("vk", "social", "autumn_sale"),
    ("telegram", "social", None),
    ("email", "newsletter", "monthly"),
    ("partner", "referral", None),
    ("avito", "classifieds", None),
)
CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


@dataclass(frozen=True)
class Shape:
    """What a database is built from: one built from an equal shape (the same day) is reused."""

    calls: int
    days: int
    built_on: str  # the UTC day of the build: the calls end there
    seed: float
    version: int = GENERATOR_VERSION


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


def database_url(server: str) -> str:
    return make_url(server).set(database=DATABASE).render_as_string(hide_password=False)


# --- the database ----------------------------------------------------------------------------------


def _array(values: list[str | None]) -> str:
    items = ", ".join("NULL" if v is None else f"'{v}'" for v in values)
    return f"(ARRAY[{items}]::text[])"


def calls_sql(shape: Shape, end: datetime) -> list[str]:
    """Every call drawn into an unlogged table, then written into `calls` in time order with
    `first_time_caller` from a window over each customer's inbound calls."""
    sources = _array([s for s, _, _ in SOURCES])
    mediums = _array([m for _, m, _ in SOURCES])
    campaigns = _array([c for _, _, c in SOURCES])
    first = (end - timedelta(days=shape.days)).date().isoformat()
    end_sql = f"timestamptz '{end.isoformat()}'"
    regulars = CUSTOMERS // 10
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
    CASE WHEN NOT answered THEN NULL WHEN direction = 'inbound' THEN ext::text
         WHEN direction = 'outbound' THEN number ELSE ext2::text END AS answered_by,
    CASE WHEN direction = 'outbound' THEN ext::text WHEN NOT answered THEN NULL
         WHEN direction = 'inbound' THEN ext::text ELSE ext2::text END AS manager,
    CASE WHEN direction = 'outbound' THEN '[]'::json
         WHEN direction = 'internal' THEN json_build_array(ext2::text)
         WHEN answered AND r_rang < 0.7 THEN json_build_array(ext::text)
         WHEN answered THEN json_build_array(ext2::text, ext::text)
         WHEN r_rang < 0.5 THEN json_build_array(ext::text)
         ELSE json_build_array(ext::text, ext2::text) END AS rang,
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
    CASE WHEN answered THEN '/var/spool/asterisk/monitor/' || to_char(started_at, 'YYYY/MM/DD/')
        || i || '.wav' END AS recording_file,
    CASE direction WHEN 'internal' THEN NULL ELSE number END AS customer_number,
    queue_wait AS queue_wait_seconds,
    CASE WHEN direction = 'inbound' AND r_source < 0.7 THEN {sources}[source_at] END AS source,
    CASE WHEN direction = 'inbound' AND r_source < 0.7 THEN {mediums}[source_at] END AS medium,
    CASE WHEN direction = 'inbound' AND r_source < 0.7 THEN {campaigns}[source_at] END AS campaign,
    CASE WHEN direction = 'inbound' THEN answered AND talk >= 30 END AS is_target,
    ext
FROM (
    SELECT d.*,
        CASE WHEN raw_start >= {end_sql} THEN raw_start - interval '1 day' ELSE raw_start END AS started_at,
        status = 'answered' AS answered,
        CASE WHEN status <> 'answered' THEN 0
             ELSE -ln(1 - r_talk) * CASE direction WHEN 'inbound' THEN 150 WHEN 'outbound' THEN 120
                                                   ELSE 60 END END AS talk,
        CASE WHEN direction = 'inbound' AND status <> 'answered' THEN 5 + r_ring * 40
             ELSE 2 + r_ring * 20 END AS ring,
        CASE WHEN queue IS NULL THEN NULL
             ELSE -ln(1 - r_wait) * CASE WHEN status = 'answered' THEN 25 ELSE 50 END END AS queue_wait,
        '+79' || lpad(customer::text, 9, '0') AS number,
        '+7495111' || lpad((1 + floor(r_did * 5))::int::text, 4, '0') AS did,
        1 + floor(r_source / 0.7 * {len(SOURCES)})::int AS source_at
    FROM (
        SELECT r.*,
            timestamptz '{first} 00:00+00' + make_interval(days => day, secs => CASE
                WHEN r_hour < 0.85 THEN 5 * 3600 + r_hour / 0.85 * 11 * 3600
                ELSE (r_hour - 0.85) / 0.15 * 86400 END) AS raw_start,
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
                101 + floor({EXTENSIONS} * power(r_ext, 1.15))::int AS ext,
                101 + floor({EXTENSIONS} * r_ext2)::int AS ext2,
                CASE WHEN r_customer < 0.3 THEN floor(r_customer2 * {regulars})
                     ELSE floor(r_customer2 * {CUSTOMERS}) END::int AS customer,
                CASE WHEN dow >= 6 AND r_weekend < 0.7
                     THEN least({shape.days}, greatest(0, day0 - (dow - 1) + floor(r_weekday * 5)::int))
                     ELSE day0 END AS day
            FROM (
                SELECT p.*, floor(r_day * ({shape.days} + 1))::int AS day0,
                    extract(isodow FROM date '{first}' + floor(r_day * ({shape.days} + 1))::int)::int AS dow
                FROM (
                    SELECT i,
                        random() AS r_direction, random() AS r_status, random() AS r_busy,
                        random() AS r_ext, random() AS r_ext2, random() AS r_customer,
                        random() AS r_customer2, random() AS r_day, random() AS r_weekend,
                        random() AS r_weekday, random() AS r_hour, random() AS r_rang, random() AS r_queue,
                        random() AS r_wait, random() AS r_source, random() AS r_talk, random() AS r_ring,
                        random() AS r_did, random() AS r_origin, random() AS r_hangup
                    FROM generate_series(1, {shape.calls}) AS i
                ) AS p
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
    legs = """
INSERT INTO call_legs (call_id, channel_id, channel, endpoint, kind, created_at, answered_at, ended_at,
    hangup_cause)
SELECT c.id, c.pbx_call_id, 'PJSIP/' || b.ext || '-' || lpad(to_hex(c.id), 8, '0'), 'PJSIP/' || b.ext,
    'extension', c.started_at, c.answered_at, c.ended_at, 16
FROM calls AS c JOIN bench_calls AS b ON b.pbx = c.pbx AND b.pbx_call_id = c.pbx_call_id"""
    return [draw, load, legs, "DROP TABLE bench_calls"]


def crm_sql(end: datetime, days: int) -> list[str]:
    start = f"timestamptz '{(end - timedelta(days=days)).date().isoformat()} 00:00+00'"
    end_sql = f"timestamptz '{end.isoformat()}'"
    contacts = CUSTOMERS // 4
    return [
        f"""
INSERT INTO managers (external_id, name, extensions, team, is_active, created_at, updated_at)
SELECT 'mgr-' || ext, 'Manager ' || ext, json_build_array(ext::text), 'team-' || ((ext - 101) % {TEAMS}),
    true, {start}, {start}
FROM generate_series(101, {100 + HELD}) AS ext""",
        f"""
INSERT INTO crm_entities (kind, external_id, name, owner, status, origin, is_active, created_at, updated_at)
SELECT 'contact', 'c' || n, 'Contact ' || n, 'mgr-' || (101 + floor(random() * {HELD})::int), 'active', 'crm',
    true, {start} - make_interval(days => floor(random() * 730)::int),
    {start} - make_interval(days => floor(random() * 30)::int)
FROM generate_series(0, {contacts - 1}) AS n""",
        f"""
INSERT INTO crm_entities (kind, external_id, name, owner, status, source, medium, campaign, origin,
    first_call_id, converted_to, is_active, last_activity_at, created_at, updated_at)
SELECT 'lead', 'l' || n, 'Caller ' || customer_number,
    CASE WHEN coalesce(manager, rang ->> 0)::int <= {100 + HELD}
         THEN 'mgr-' || coalesce(manager, rang ->> 0) END,
    'new', source, medium, campaign, 'call', id, CASE WHEN random() < 0.15 THEN 'c-conv-' || n END, true,
    started_at, started_at, started_at
FROM (SELECT c.*, substr(c.customer_number, 4)::int AS n FROM calls AS c WHERE c.first_time_caller) AS f
WHERE n >= {contacts}""",
        """
INSERT INTO entity_phones (entity_id, raw, e164, digits_reversed, tail_key, is_valid)
SELECT id, number, number, reverse(substr(number, 2)), left(reverse(substr(number, 2)), 6), true
FROM (SELECT id, '+79' || lpad(substr(external_id, 2), 9, '0') AS number FROM crm_entities) AS e""",
        """
INSERT INTO call_matches (call_id, number, digits_reversed, entity_id, matched_by, candidates, lead_created,
    matched_at)
SELECT c.id, c.customer_number, reverse(substr(c.customer_number, 2)), p.entity_id,
    CASE WHEN p.entity_id IS NOT NULL THEN 'number' END, '[]'::json, coalesce(e.first_call_id = c.id, false),
    c.ended_at
FROM calls AS c
LEFT JOIN entity_phones AS p ON p.e164 = c.customer_number
LEFT JOIN crm_entities AS e ON e.id = p.entity_id
WHERE c.customer_number IS NOT NULL""",
        f"""
INSERT INTO callbacks (number, open_number, state, missed_call_id, missed_calls, entity_id, manager,
    missed_at, last_missed_at, due_at, closed_at, returned_by, seconds_to_return)
SELECT number, CASE WHEN is_open THEN number END, CASE WHEN is_open THEN 'open' ELSE 'done' END, id, 1,
    entity_id, manager, started_at, started_at, started_at + interval '15 minutes',
    CASE WHEN NOT is_open THEN started_at + make_interval(secs => back) END,
    CASE WHEN NOT is_open THEN manager END, CASE WHEN NOT is_open THEN back END
FROM (
    SELECT c.id, c.customer_number AS number, c.started_at, p.entity_id,
        CASE WHEN (c.rang ->> 0)::int <= {100 + HELD} THEN 'mgr-' || (c.rang ->> 0) END AS manager,
        -ln(1 - random()) * 1800 AS back,
        c.started_at > {end_sql} - interval '3 days' AND random() < 0.3
            AND row_number() OVER (PARTITION BY c.customer_number ORDER BY c.started_at DESC) = 1 AS is_open
    FROM calls AS c
    LEFT JOIN entity_phones AS p ON p.e164 = c.customer_number
    WHERE c.direction = 'inbound' AND c.status <> 'answered'
) AS missed""",
        f"""
INSERT INTO deals (external_id, name, contact, lead, owner, stage, amount_minor, currency, opened_at,
    closed_at, is_won, is_active, updated_at)
SELECT 'd' || k, 'Deal ' || k,
    CASE WHEN r_entity < 0.7 THEN 'c' || floor(r_pick * {contacts})::int END,
    CASE WHEN r_entity >= 0.7 THEN 'l' || ({contacts} + floor(r_pick * {CUSTOMERS - contacts})::int) END,
    'mgr-' || (101 + floor(r_owner * {HELD})::int),
    CASE WHEN r_outcome < 0.3 THEN 'won' WHEN r_outcome < 0.6 THEN 'lost' ELSE 'negotiation' END,
    (5000 + floor(-ln(1 - r_amount) * 50000))::bigint * 100, 'RUB', opened_at,
    CASE WHEN r_outcome < 0.6 THEN least({end_sql} - interval '1 second',
        opened_at + make_interval(secs => -ln(1 - r_close) * 20 * 86400)) END,
    CASE WHEN r_outcome < 0.3 THEN true WHEN r_outcome < 0.6 THEN false END, true, opened_at
FROM (
    SELECT k, random() AS r_entity, random() AS r_pick, random() AS r_owner, random() AS r_outcome,
        random() AS r_amount, random() AS r_close,
        {start} + make_interval(secs => random() * {days} * 86400) AS opened_at
    FROM generate_series(1, {DEALS}) AS k
) AS d""",
        # A ready recording per answered call (the files are not there: no page reads audio).
        """
INSERT INTO recordings (pbx, pbx_call_id, call_id, state, source, attempts, due_since, next_attempt_at,
    duration_seconds, format, sha256, source_sha256, bytes, files, is_truncated, created_at, updated_at)
SELECT pbx, pbx_call_id, id, 'ready', recording_file, 1, ended_at, ended_at, talk_seconds, 'opus',
    md5(pbx_call_id) || md5(pbx_call_id), md5(recording_file) || md5(recording_file),
    (talk_seconds * 2000)::bigint,
    json_build_object('mix', json_build_object('path', to_char(started_at, 'YYYY/MM/DD/') || id || '.ogg',
        'sha256', md5(pbx_call_id) || md5(pbx_call_id), 'bytes', (talk_seconds * 2000)::bigint)),
    false, ended_at, ended_at
FROM calls WHERE recording_file IS NOT NULL""",
    ]


def _said(speaker: Speaker, start: float, end: float, words_said: str) -> Utterance:
    words = words_said.split()
    step = (end - start) / len(words)
    return Utterance(
        speaker=speaker,
        start=start,
        end=end,
        text=words_said,
        words=tuple(Word(w, start + i * step, start + (i + 1) * step, 0.9) for i, w in enumerate(words)),
    )


def score_templates() -> tuple[str, list[dict[str, Any]]]:
    """Four short transcripts scored by the service's own code against the shipped checklist: the
    stored rows (score, passed, metrics, checklist) the quality scores are copied from."""
    m, c = Speaker.MANAGER, Speaker.CUSTOMER
    scripts = [
        [
            (m, 0.0, 3.0, "добрый день компания ромашка"),
            (c, 3.5, 4.5, "да здравствуйте"),
            (m, 5.0, 7.0, "меня зовут анна чем могу помочь"),
            (c, 7.5, 11.0, "хотел узнать про доставку"),
            (m, 11.5, 16.0, "спасибо за звонок всего доброго"),
        ],
        [
            (m, 0.0, 2.0, "алло слушаю"),
            (c, 2.5, 6.0, "здравствуйте я по поводу заказа"),
            (m, 6.5, 9.0, "не знаю перезвоните позже"),
        ],
        [
            (m, 0.0, 3.0, "добрый день компания ромашка меня зовут иван"),
            (c, 3.5, 8.0, "здравствуйте сколько стоит доставка"),
            (m, 8.5, 20.0, "ну это самое короче доставка стоит пятьсот рублей"),
            (c, 20.5, 22.0, "понятно спасибо"),
        ],
        [
            (c, 0.0, 2.0, "алло"),
            (m, 2.5, 6.0, "добрый день чем могу помочь"),
            (c, 6.5, 15.0, "мне нужно оформить возврат товара купленного вчера"),
            (m, 15.5, 25.0, "конечно оформим спасибо за звонок всего доброго"),
        ],
    ]
    in_force = checklist_in_force(None)
    now = datetime.now(UTC)
    rows = []
    for number, script in enumerate(scripts):
        transcript = Transcript(language="ru", utterances=tuple(_said(*line) for line in script))
        quality = score_call(transcript, script[-1][2], in_force.checklist)
        scored = scored_call(number, "101", now, quality, in_force.sha256, now)
        rows.append(
            {
                "score": scored.score,
                "passed": scored.passed,
                "metrics": json.dumps(scored.metrics),
                "checklist": json.dumps(scored.checklist),
            }
        )
    return in_force.sha256, rows


async def insert_scores(db: asyncpg.Connection) -> None:
    sha256, templates = score_templates()
    await db.execute(
        "CREATE TEMP TABLE score_templates (n int, score float8, passed bool, metrics json, checklist json)"
    )
    await db.executemany(
        "INSERT INTO score_templates VALUES ($1, $2, $3, $4::json, $5::json)",
        [(n, t["score"], t["passed"], t["metrics"], t["checklist"]) for n, t in enumerate(templates)],
    )
    await db.execute(
        f"""
INSERT INTO quality_scores (call_id, manager, started_at, score, passed, metrics, checklist, checklist_sha256,
    scored_at)
SELECT c.id, c.manager, c.started_at, t.score, t.passed, t.metrics, t.checklist, '{sha256}',
    c.ended_at + interval '2 minutes'
FROM calls AS c JOIN score_templates AS t ON t.n = c.id % {len(templates)}
WHERE c.status = 'answered' AND c.manager IS NOT NULL AND c.direction <> 'internal' AND c.id % 5 = 0"""
    )


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
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    admin = await asyncpg.connect(admin_dsn(server))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    url = database_url(server)
    with timed("migrations"):
        await migrate_database(DatabaseSettings(url=url))
    db = await asyncpg.connect(admin_dsn(server, DATABASE))
    try:
        # The load's own session: big sorts in memory, no wait for the WAL flush, no foreign-key
        # triggers (the rows are consistent by construction).
        await db.execute(
            "SET work_mem = '256MB'; SET maintenance_work_mem = '256MB'; SET synchronous_commit = off;"
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
        with timed(f"calls ({shape.calls:,}) and their legs"):
            for statement in calls_sql(shape, end):
                await db.execute(statement)
        with timed("managers, contacts, leads, phones, matches, callbacks, deals, recordings"):
            for statement in crm_sql(end, shape.days):
                await db.execute(statement)
        with timed("quality scores"):
            await insert_scores(db)
        with timed(f"{len(indexes)} secondary indexes"):
            for index in indexes:
                await db.execute(index["definition"])
    finally:
        await db.close()
    engine = create_engine(url)
    try:
        with timed("rebuild_rollups"):
            async with create_sessionmaker(engine).begin() as session:
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


async def describe(sessions: async_sessionmaker[AsyncSession], shape: Shape, month_start: datetime) -> None:
    """What the database holds; broken when it is not what the shape asked for."""
    async with sessions() as session:
        sizes = {
            table: int(await session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
            for table in (*TABLES, "manager_rollups", "source_rollups")
        }
        this_month = await session.scalar(
            text("SELECT count(*) FROM calls WHERE started_at >= :a"), {"a": month_start}
        )
    print("  rows: " + ", ".join(f"{table} {count:,}" for table, count in sizes.items()))
    print(f"  calls this month (since {month_start.isoformat()}): {this_month:,}")
    if sizes["calls"] != shape.calls or sizes["managers"] != HELD or not sizes["manager_rollups"]:
        raise BenchmarkBroken(f"{DATABASE} does not hold the shape asked for: {sizes}")


# --- the measurement -------------------------------------------------------------------------------


def app_settings(url: str) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "database": {"url": url},
            "stats": {"timezone": ZONE},
            "api": {"rate_limit_per_minute": 1_000_000_000},
        },
    )


async def admin_token(sessions: async_sessionmaker[AsyncSession]) -> str:
    token = new_token()
    async with sessions.begin() as session:
        await create_token(session, token, "bench-web", Role.ADMIN, None)
    return token.secret


async def sign_in(client: aiohttp.ClientSession, base: str, secret: str) -> None:
    """Through the form, as a browser does: the page (its cookie and hidden field), then the POST."""
    async with client.get(f"{base}/ui/signin") as response:
        page = await response.text()
        if response.status != 200:
            raise BenchmarkBroken(f"GET /ui/signin answered {response.status}")
    found = CSRF_INPUT.search(page)
    if found is None:
        raise BenchmarkBroken("the sign-in page has no csrf_token field")
    form = {"csrf_token": found.group(1) or found.group(2), "token": secret, "next": "/ui/"}
    async with client.post(f"{base}/ui/signin", data=form, allow_redirects=False) as response:
        if response.status != 303:
            raise BenchmarkBroken(f"POST /ui/signin answered {response.status}: {await response.text()}")
    async with client.get(f"{base}/ui/", allow_redirects=False) as response:
        if response.status != 200:
            raise BenchmarkBroken(f"after sign-in, /ui/ answered {response.status}")


async def timed_get(client: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None) -> float:
    began = time.perf_counter()
    async with client.get(url, headers=headers, allow_redirects=False) as response:
        body = await response.read()
    elapsed = time.perf_counter() - began
    if response.status != 200:
        raise BenchmarkBroken(f"GET {url} answered {response.status}: {body[:300]!r}")
    return elapsed


@dataclass
class Pair:
    name: str
    page: str
    json: str
    note: str = ""


@dataclass
class Result:
    pair: Pair
    page: list[float]
    json: list[float]

    def line(self) -> str:
        page, api = sorted(self.page), sorted(self.json)
        page_p95, json_p95 = percentile(page, 95), percentile(api, 95)
        ratios = statistics.median(p / j for p, j in zip(self.page, self.json, strict=True))
        verdict = "yes" if page_p95 * 1000 < TARGET_MS else "NO"
        return (
            f"{self.pair.name:<26} {percentile(page, 50) * 1000:8.1f} {page_p95 * 1000:8.1f}"
            f" {percentile(api, 50) * 1000:8.1f} {json_p95 * 1000:8.1f} {page_p95 / json_p95:8.2f}"
            f" {ratios:8.2f}  {verdict}"
        )


async def page_exists(client: aiohttp.ClientSession, url: str) -> bool:
    async with client.get(url, allow_redirects=False) as response:
        await response.read()
        return response.status != 404


async def measure(args: argparse.Namespace, shape: Shape) -> None:
    url = database_url(args.database)
    settings = app_settings(url)
    zone = ZoneInfo(settings.report_timezone)
    today = datetime.now(zone).date()
    first = today.replace(day=1)
    month_start = datetime.combine(first, datetime.min.time(), zone)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        await describe(sessions, shape, month_start)
        async with sessions() as session:
            call_id = await session.scalar(
                text(
                    "SELECT max(q.call_id) FROM quality_scores AS q"
                    " JOIN recordings AS r ON r.call_id = q.call_id WHERE q.started_at >= :a"
                ),
                {"a": month_start},
            )
        secret = await admin_token(sessions)
        app = create_app(settings, sessions)
        period = f"from={first.isoformat()}&to={today.isoformat()}"
        iso_from = month_start.isoformat().replace("+", "%2B")
        pairs = [
            Pair("(1) dashboard, month", f"/ui/?{period}", f"/api/v1/stats/managers?{period}"),
            # The page's two slow tables, which its script fetches after it renders, each against the
            # JSON endpoint of the same report.
            Pair(
                "(1a) its managers table",
                f"/ui/fragments/managers?{period}",
                f"/api/v1/stats/managers?{period}",
            ),
            Pair(
                "(1b) its sources table",
                f"/ui/fragments/sources?{period}",
                f"/api/v1/reports/sources?{period}",
            ),
            Pair("(2) calls, first page", "/ui/calls", "/api/v1/calls?limit=50"),
            Pair(
                "(3) calls, missed, month",
                f"/ui/calls?status=missed&from={first.isoformat()}",
                f"/api/v1/calls?status=missed&from={iso_from}&limit=50",
            ),
            Pair("(4) one call", f"/ui/calls/{call_id}", f"/api/v1/calls/{call_id}"),
            Pair("(5) quality, month", f"/ui/quality?{period}", f"/api/v1/reports/quality?{period}"),
        ]
        bearer = {"Authorization": f"Bearer {secret}"}
        async with served(app) as base:
            jar = aiohttp.CookieJar(unsafe=True)  # cookies of 127.0.0.1, as a browser keeps them
            async with aiohttp.ClientSession(cookie_jar=jar) as client:
                await sign_in(client, base, secret)
                settle_heap()  # as `calltracking serve` does once it is wired up
                print(
                    f"period {first} - {today} ({settings.report_timezone}); call {call_id};"
                    f" {args.warmup} warm-up + {args.pairs} measured rounds of (page, JSON) per pair\n",
                    flush=True,
                )
                results: list[Result] = []
                skipped: list[str] = []
                for pair in pairs:
                    if not await page_exists(client, base + pair.page):
                        skipped.append(f"{pair.name}: {pair.page} answers 404, not measured")
                        continue
                    pages: list[float] = []
                    jsons: list[float] = []
                    for round_number in range(args.warmup + args.pairs):
                        page = await timed_get(client, base + pair.page)
                        api = await timed_get(client, base + pair.json, bearer)
                        if round_number >= args.warmup:
                            pages.append(page)
                            jsons.append(api)
                    results.append(Result(pair, pages, jsons))
                    print(f"  measured {pair.name}", flush=True)
        print(
            f"\n{'':<26} {'page p50':>8} {'page p95':>8} {'json p50':>8} {'json p95':>8}"
            f" {'p95 x':>8} {'med. x':>8}  page p95 < {TARGET_MS:.0f} ms"
        )
        print(f"{'':<26} {'ms':>8} {'ms':>8} {'ms':>8} {'ms':>8}")
        for result in results:
            print(result.line())
        for line in skipped:
            print(line)
        print("\nrequests:")
        for pair in pairs:
            print(f"  {pair.name}: {pair.page}  vs  {pair.json}")
    finally:
        await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    shape = Shape(
        calls=args.calls, days=args.days, built_on=datetime.now(UTC).date().isoformat(), seed=args.seed
    )
    if args.rebuild or await built_shape(args.database) != shape:
        await build(args.database, shape)
    else:
        print(f"reusing {DATABASE} (built today with the same parameters; --rebuild to build it again)")
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
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60, help="the calls spread over this many days to now")
    parser.add_argument("--seed", type=float, default=0.42)
    parser.add_argument("--pairs", type=int, default=200, help="measured rounds of (page, JSON) per pair")
    parser.add_argument("--warmup", type=int, default=20, help="rounds before those, not counted")
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
