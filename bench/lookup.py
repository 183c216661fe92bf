"""Caller-ID lookup benchmark: `GET /api/v1/lookup` over a million contacts against a bare indexed SELECT.

Why: the dialplan asks the service who is calling before it rings anyone, so the lookup's latency is
added to every inbound call. The issue's target: with 1,000,000 contacts in PostgreSQL, p99 of the
endpoint at most 2x that of a bare indexed SELECT served over HTTP, measured in the same run (the
absolute speed of this shared, noisy, 2-core machine says little). This is a measurement, never a
test: it exits 0 whatever the ratio, and non-zero only when the run itself is wrong (a non-200 answer,
a lookup that names the wrong contact, a seeded count that does not match, the service's query planned
as a sequential scan).

The server process (this one) holds, on loopback sockets:
  - a scratch PostgreSQL database (created on the server named by --database, dropped afterwards) with
    the service's own schema (`migrate()`), 50 managers written through `upsert_managers`, then
    --contacts contacts (1,000,000 by default) and one company per 20 contacts with their phones,
    loaded with COPY (asyncpg `copy_records_to_table`), then VACUUM ANALYZEd;
  - the service's own app from `api.app.create_app` (integration token, auth cached 5 s as in
    production);
  - a bare aiohttp app whose one handler runs the bare indexed SELECT through an asyncpg pool.
The load runs in a child process (this script with `--load`), so the client's CPU does not come out of
the servers' share of the 2 cores. The parent runs every scenario in turn, --rounds times, interleaved;
for each it hands the child --warmup, then --requests random numbers, which the child sends at a fixed
--concurrency, timing each request with `time.perf_counter`, and checks every answer afterwards.

The scenarios: (b) the baseline, the bare SELECT over HTTP with the number already in E.164; (a) the
service's lookup in JSON and (a2) with `format=text`, numbers written `8 (916) 123-45-67`, 10% of them
numbers the CRM does not have (reported apart: only the last-digits half of the same query answers);
(d) the service's lookup of a short non-number, answered before any database work (what its HTTP side
alone costs); (c) in this process, no HTTP: the bare SELECT and the service's own SQL for each number
(`asyncpg_lookup`) through an asyncpg pool, at the same concurrency (what the database costs).

    .venv/bin/python bench/lookup.py [--contacts 1000000] [--requests 1000] [--rounds 3] [--concurrency 8]
"""

# ruff: noqa: RUF001 - the seeded names are Cyrillic on purpose, as in a Russian CRM

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and bench/api.py would shadow the
# service's `api` package: the project root goes in front of it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import asyncpg
import pydantic
import sqlalchemy
from aiohttp import web
from harness import (  # bench/, beside this script
    BenchmarkBroken,
    emit,
    integration_token,
    percentile,
    run_script,
    served,
    stdin_lines,
)
from profiles import Profiles  # bench/, beside this script
from scratch_database import scratch_database  # bench/, beside this script
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from yarl import URL

from api.app import create_app
from calltracking.calls.record import EntityKind
from calltracking.config import CrmSettings, Settings, load_settings
from calltracking.crm.lookup import display_name, look_up_caller
from calltracking.crm.lookup_repository import LookupHit, SessionLookup, asyncpg_lookup
from calltracking.crm.matching import Candidate, MatchedBy
from calltracking.crm.mirror import EntityOrigin, ManagerIn
from calltracking.crm.repository import upsert_managers
from calltracking.numbers import Phone, parse_phone
from calltracking.store.engine import create_engine, create_sessionmaker, migrate

DEFAULT_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CHILD_TIMEOUT_SECONDS = 3600.0
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TAIL_DIGITS = CrmSettings().tail_digits
BARE_SELECT = "SELECT e.name FROM entity_phones p JOIN crm_entities e ON e.id = p.entity_id WHERE p.e164 = $1"
# The service's engine pools 5 + 5 overflow connections (calltracking.store.engine.create_engine): the bare
# app gets as many.
POOL_MIN, POOL_MAX = 5, 10

# --- the seeded CRM --------------------------------------------------------------------------------

MANAGER_COUNT = 50
INACTIVE_MANAGERS = frozenset({49, 50})  # left the company: their contacts ring nobody in particular
CONTACTS_PER_COMPANY = 20
SHARE_WITH_COMPANY = 0.4
SHARE_WITH_TWO_PHONES = 0.3
SHARE_WITHOUT_OWNER = 0.03
SHARE_RECENTLY_ACTIVE = 0.3
UNKNOWN_SHARE = 0.1  # callers the CRM has never heard of, mixed into the lookup stream
GENERATOR_SAMPLE = 2000  # phones checked against parse_phone before seeding

# Russian mobile operator codes (all valid for phonenumbers; the run checks a sample).
MOBILE_CODES = (
    *range(900, 907),
    *range(908, 930),
    *range(950, 954),
    958,
    *range(960, 970),
    *range(977, 990),
    *range(991, 1000),
)
SUBSCRIBERS = 10**7
NUMBER_SPACE = len(MOBILE_CODES) * SUBSCRIBERS
# Phone index -> number is (index * SCRAMBLE + SCRAMBLE_OFFSET) mod NUMBER_SPACE: a bijection (SCRAMBLE
# is a prime not dividing the space), so every index names a distinct number, and the numbers look
# random. Seeded phones use the low indices; numbers for unknown callers come from above them.
SCRAMBLE = 2_654_435_761
SCRAMBLE_OFFSET = 48_271_333
assert math.gcd(SCRAMBLE, NUMBER_SPACE) == 1

MALE_FIRST = ("Иван", "Алексей", "Дмитрий", "Сергей", "Андрей", "Михаил", "Николай", "Павел", "Олег", "Юрий")
FEMALE_FIRST = ("Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Вера", "Юлия")
SURNAMES = (
    "Иванов",
    "Смирнов",
    "Кузнецов",
    "Попов",
    "Васильев",
    "Петров",
    "Соколов",
    "Михайлов",
    "Новиков",
    "Фёдоров",
    "Морозов",
    "Волков",
    "Алексеев",
    "Лебедев",
    "Семёнов",
    "Егоров",
    "Павлов",
    "Козлов",
    "Степанов",
    "Николаев",
    "Орлов",
    "Андреев",
    "Макаров",
    "Никитин",
)
COMPANY_FORMS = ("ООО", "АО", "ИП", "ООО")
COMPANY_WORDS = ("Ромашка", "Вектор", "Стройсервис", "Северный ветер", "Техноград", "Альфа-Логистик", "Уют")
SOURCES = (None, None, "site", "yandex", "avito", "referral")

ENTITY_COLUMNS = (
    "id",
    "kind",
    "external_id",
    "name",
    "owner",
    "company",
    "status",
    "source",
    "medium",
    "campaign",
    "origin",
    "first_call_id",
    "is_active",
    "merged_into_id",
    "last_activity_at",
    "created_at",
    "updated_at",
)
PHONE_COLUMNS = ("id", "entity_id", "raw", "e164", "digits_reversed", "tail_key", "is_valid")


def mix(value: int, salt: int) -> int:
    """A well-spread 64-bit hash (splitmix64): every property of contact n is a pure function of n, so a
    million contacts need no table in memory to know which number belongs to whom."""
    x = (value + salt * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def chance(value: int, salt: int, share: float) -> bool:
    return mix(value, salt) % 10_000 < share * 10_000


def mobile(index: int) -> str:
    """Distinct phone index, distinct valid Russian mobile number in E.164."""
    code, subscriber = divmod((index * SCRAMBLE + SCRAMBLE_OFFSET) % NUMBER_SPACE, SUBSCRIBERS)
    return f"+7{MOBILE_CODES[code]}{subscriber:07d}"


def human(e164: str, style: int) -> str:
    """The ways people and CRMs write a Russian mobile."""
    d = e164[2:]
    styles = (
        f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8{d}",
        f"8-{d[:3]}-{d[3:6]}-{d[6:8]}-{d[8:]}",
        e164,
    )
    return styles[style % len(styles)]


def stored_phone(e164: str, style: int) -> Phone:
    """What the service stores for a phone the CRM wrote in `style` (as parse_phone computes it)."""
    return Phone(raw=human(e164, style), e164=e164, digits_reversed=e164[:0:-1])


def manager_id(k: int) -> str:
    return f"m-{k:02d}"


def manager_extensions(k: int) -> list[str]:
    return [str(100 + k), str(200 + k)] if k % 5 == 0 else [str(100 + k)]


def person_name(n: int, salt: int) -> str:
    h = mix(n, salt)
    surname = SURNAMES[h % len(SURNAMES)]
    h //= len(SURNAMES)
    if h % 2:
        return f"{surname}а {FEMALE_FIRST[(h // 2) % len(FEMALE_FIRST)]}"
    return f"{surname} {MALE_FIRST[(h // 2) % len(MALE_FIRST)]}"


@dataclass(frozen=True, slots=True)
class Contact:
    index: int
    entity_id: int
    external_id: str
    name: str
    owner: int | None  # manager number, 1..MANAGER_COUNT
    company: int | None  # company index
    phones: tuple[Phone, ...]


@dataclass(frozen=True, slots=True)
class Population:
    """The seeded CRM, as pure functions of the contact count. Entity ids: companies 1..C, then contacts;
    phone indices: each contact's first phone n, second phone N + n, company k's phone 2N + k, and the
    numbers of unknown callers 2N + C + j."""

    contacts: int

    @property
    def companies(self) -> int:
        return max(1, self.contacts // CONTACTS_PER_COMPANY)

    def contact(self, n: int) -> Contact:
        phones = [stored_phone(mobile(n), mix(n, 11))]
        if chance(n, 12, SHARE_WITH_TWO_PHONES):
            phones.append(stored_phone(mobile(self.contacts + n), mix(n, 13)))
        return Contact(
            index=n,
            entity_id=self.companies + n + 1,
            external_id=f"c-{n + 1:07d}",
            name=person_name(n, 14),
            owner=None if chance(n, 15, SHARE_WITHOUT_OWNER) else mix(n, 16) % MANAGER_COUNT + 1,
            company=mix(n, 18) % self.companies if chance(n, 17, SHARE_WITH_COMPANY) else None,
            phones=tuple(phones),
        )

    def company_name(self, k: int) -> str:
        word = COMPANY_WORDS[mix(k, 21) % len(COMPANY_WORDS)]
        return f"{COMPANY_FORMS[k % len(COMPANY_FORMS)]} «{word} {k + 1}»"

    def company_phone(self, k: int) -> Phone:
        return stored_phone(mobile(2 * self.contacts + k), mix(k, 22))

    def unknown_number(self, j: int) -> str:
        return mobile(2 * self.contacts + self.companies + j)

    def entity_records(self) -> Iterator[tuple[Any, ...]]:
        for k in range(self.companies):
            owner = manager_id(mix(k, 23) % MANAGER_COUNT + 1)
            yield (
                k + 1,
                EntityKind.COMPANY.value,
                f"co-{k + 1:06d}",
                self.company_name(k),
                owner,
                *(None, None, SOURCES[mix(k, 24) % len(SOURCES)], None, None),
                EntityOrigin.CRM.value,
                None,
                True,
                None,
                None,
                NOW - timedelta(days=400),
                NOW - timedelta(days=1),
            )
        for n in range(self.contacts):
            contact = self.contact(n)
            active_at = NOW - timedelta(minutes=mix(n, 19) % 500_000)
            yield (
                contact.entity_id,
                EntityKind.CONTACT.value,
                contact.external_id,
                contact.name,
                None if contact.owner is None else manager_id(contact.owner),
                None if contact.company is None else f"co-{contact.company + 1:06d}",
                None,
                SOURCES[mix(n, 20) % len(SOURCES)],
                None,
                None,
                EntityOrigin.CRM.value,
                None,
                True,
                None,
                active_at if chance(n, 25, SHARE_RECENTLY_ACTIVE) else None,
                NOW - timedelta(days=400),
                NOW - timedelta(days=1),
            )

    def phone_records(self) -> Iterator[tuple[Any, ...]]:
        phone_id = 0
        for k in range(self.companies):
            phone_id += 1
            phone = self.company_phone(k)
            yield (phone_id, k + 1, phone.raw, phone.e164, phone.digits_reversed, phone.tail_key, True)
        for n in range(self.contacts):
            contact = self.contact(n)
            for phone in contact.phones:
                phone_id += 1
                yield (
                    phone_id,
                    contact.entity_id,
                    phone.raw,
                    phone.e164,
                    phone.digits_reversed,
                    phone.tail_key,
                    True,
                )

    def expected(self, contact: Contact) -> tuple[str, str]:
        """What the endpoint must answer for this contact's numbers: `external_id|extension` (JSON) and
        `name|extension` (text), the display name built by the service's own rule."""
        active = contact.owner is not None and contact.owner not in INACTIVE_MANAGERS
        extension = manager_extensions(contact.owner)[0] if active and contact.owner else ""
        hit = LookupHit(
            candidate=Candidate(
                entity_id=contact.entity_id,
                kind=EntityKind.CONTACT,
                external_id=contact.external_id,
                name=contact.name,
                owner=None if contact.owner is None else manager_id(contact.owner),
                matched_by=MatchedBy.NUMBER,
            ),
            company_name=None if contact.company is None else self.company_name(contact.company),
            manager_name=None,
            manager_extensions=(),
            manager_active=False,
        )
        return f"{contact.external_id}|{extension}", f"{display_name(hit)}|{extension}"


def check_generator(population: Population) -> None:
    """The seeded rows must be what the service itself would store for these raw numbers."""
    rng = random.Random(7)
    for _ in range(GENERATOR_SAMPLE):
        contact = population.contact(rng.randrange(population.contacts))
        for phone in contact.phones:
            if parse_phone(phone.raw, "RU") != phone:
                raise BenchmarkBroken(f"generator disagrees with parse_phone: {phone}")
        unknown = population.unknown_number(rng.randrange(population.contacts))
        if parse_phone(human(unknown, 0), "RU").e164 != unknown:
            raise BenchmarkBroken(f"unknown number {unknown} does not normalise to itself")


# --- seeding ---------------------------------------------------------------------------------------


def plain_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def counted(records: Iterator[tuple[Any, ...]], tally: Counter[str]) -> Iterator[tuple[Any, ...]]:
    for record in records:
        tally["rows"] += 1
        yield record


async def seed(sessions: async_sessionmaker[AsyncSession], dsn: str, population: Population) -> None:
    started = time.perf_counter()
    managers = [
        ManagerIn(
            external_id=manager_id(k),
            name=person_name(k, 31),
            extensions=manager_extensions(k),
            is_active=k not in INACTIVE_MANAGERS,
        )
        for k in range(1, MANAGER_COUNT + 1)
    ]
    async with sessions.begin() as session:
        await upsert_managers(session, managers, NOW)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "crm_entities", records=population.entity_records(), columns=ENTITY_COLUMNS
        )
        entities_done = time.perf_counter()
        rows = population.companies + population.contacts
        print(f"  crm_entities: {rows:,} rows in {entities_done - started:.1f} s")
        generated = Counter[str]()
        await connection.copy_records_to_table(
            "entity_phones", records=counted(population.phone_records(), generated), columns=PHONE_COLUMNS
        )
        phones_done = time.perf_counter()
        for table in ("crm_entities", "entity_phones"):
            await connection.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        phones = await connection.fetchval("SELECT count(*) FROM entity_phones")
        entities = await connection.fetchval("SELECT count(*) FROM crm_entities WHERE kind = 'contact'")
        print(f"  entity_phones: {phones:,} rows in {phones_done - entities_done:.1f} s")
        # Production tables are vacuumed and analyzed by autovacuum (also after bulk inserts); a freshly
        # COPYed one must be, or the planner guesses and every first read sets hint bits.
        await connection.execute("VACUUM (ANALYZE) managers, crm_entities, entity_phones")
        print(f"  VACUUM (ANALYZE) in {time.perf_counter() - phones_done:.1f} s")
    finally:
        await connection.close()
    if entities != population.contacts:
        raise BenchmarkBroken(f"seeded {population.contacts} contacts, crm_entities holds {entities}")
    if phones != generated["rows"]:
        raise BenchmarkBroken(f"seeded {generated['rows']} phones, entity_phones holds {phones}")
    print(
        f"seeded {MANAGER_COUNT} managers, {population.contacts:,} contacts, "
        f"{population.companies:,} companies, {phones:,} phones "
        f"in {time.perf_counter() - started:.1f} s (COPY)"
    )


async def describe_environment(dsn: str) -> str:
    connection = await asyncpg.connect(dsn)
    try:
        server = await connection.fetchval("SHOW server_version")
        buffers = await connection.fetchval("SHOW shared_buffers")
        sizes = await connection.fetch(
            "SELECT c.relname, pg_size_pretty(pg_relation_size(c.oid)) AS size FROM pg_class c"
            " WHERE c.relname IN ('crm_entities', 'entity_phones', 'ix_entity_phones_e164',"
            " 'ix_entity_phones_tail_key', 'pk_crm_entities') ORDER BY c.relname"
        )
    finally:
        await connection.close()
    listed = ", ".join(f"{row['relname']} {row['size']}" for row in sizes)
    return (
        f"Python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}, asyncpg {asyncpg.__version__}, "
        f"pydantic {pydantic.__version__}, "
        f"PostgreSQL {server} (shared_buffers {buffers}), {os.cpu_count()} CPUs\n"
        f"sizes: {listed}"
    )


# --- the service's SQL and its plan ------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    sql: str
    parameters: tuple[Any, ...]


async def service_statements(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], settings: Settings, number: str
) -> list[Statement]:
    """The SQL `look_up_caller` sends for `number`, caught on the engine as it runs. The service runs the
    same statements, compiled by the same dialect, on its own asyncpg pool (`PoolLookup`); here they go
    through the sessions (`SessionLookup`) so the engine's event can catch them."""
    caught: list[Statement] = []

    def catch(_conn: Any, _cursor: Any, sql: str, parameters: Any, _context: Any, _many: bool) -> None:
        caught.append(Statement(sql, tuple(parameters or ())))

    event.listen(engine.sync_engine, "before_cursor_execute", catch)
    try:
        await look_up_caller(SessionLookup(sessions), number, settings.crm)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", catch)
    return caught


async def explain(dsn: str, label: str, statement: Statement, index: str) -> None:
    """Print EXPLAIN (ANALYZE, BUFFERS) of a statement the service runs; BROKEN if it scans a big table
    sequentially or does not use `index`."""
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement.sql}", *statement.parameters)
    finally:
        await connection.close()
    plan = [row[0] for row in rows]
    print(f"\nEXPLAIN (ANALYZE, BUFFERS), {label}:")
    print("\n".join(f"    {line}" for line in plan))
    text = "\n".join(plan)
    for table in ("entity_phones", "crm_entities"):
        if f"Seq Scan on {table}" in text:
            raise BenchmarkBroken(f"{label}: the plan scans {table} sequentially")
    if index not in text:
        raise BenchmarkBroken(f"{label}: the plan does not use {index}")


# --- the servers -----------------------------------------------------------------------------------


def bare_select_app(pool: asyncpg.Pool) -> web.Application:
    async def lookup(request: web.Request) -> web.Response:
        row = await pool.fetchrow(BARE_SELECT, request.query["number"])
        return web.json_response({"name": row["name"] if row else None})

    app = web.Application()
    app.router.add_get("/lookup", lookup)
    return app


def api_settings(database_url: str) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "database": {"url": database_url},
            "api": {"rate_limit_per_minute": 1_000_000_000, "token_cache_seconds": 5},
        },
    )


# --- what each scenario sends ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """One request: the number to look up, the answer it must get, and whether the CRM knows it."""

    number: str
    expected: str
    known: bool


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # "http" (load child) or "sql" (asyncpg in this process)
    check: str  # how an answer is reduced to compare with Probe.expected
    mixes_unknown: bool  # UNKNOWN_SHARE of its probes are numbers nobody has
    not_a_number: bool = False  # short internal numbers: answered before any database work


SCENARIOS = (
    Scenario("bare_select", "http", "bare", mixes_unknown=False),
    Scenario("lookup", "http", "lookup_json", mixes_unknown=True),
    Scenario("lookup_text", "http", "text", mixes_unknown=True),
    Scenario("lookup_no_db", "http", "lookup_json", mixes_unknown=False, not_a_number=True),
    Scenario("raw_select", "sql", "bare", mixes_unknown=False),
    Scenario("raw_service_sql", "sql", "service_sql", mixes_unknown=False),
)


class Prober:
    """Random probes for each scenario; every number drawn fresh, so no scenario reads pages another has
    just brought into the cache more than chance would."""

    def __init__(self, population: Population, seed: int) -> None:
        self.population = population
        self.rng = random.Random(seed)
        self.unknown_drawn = 0

    def probes(self, scenario: Scenario, count: int) -> list[Probe]:
        if scenario.not_a_number:
            # Not a phone number (an internal extension): the service answers without a query, which
            # shows what its HTTP side alone costs.
            return [Probe(str(self.rng.randrange(100, 10_000)), "|", known=True) for _ in range(count)]
        unknown = round(count * UNKNOWN_SHARE) if scenario.mixes_unknown else 0
        probes = [self._unknown(scenario) for _ in range(unknown)]
        probes += [self._known(scenario) for _ in range(count - unknown)]
        self.rng.shuffle(probes)
        return probes

    def _known(self, scenario: Scenario) -> Probe:
        contact = self.population.contact(self.rng.randrange(self.population.contacts))
        e164 = self.rng.choice(contact.phones).e164
        assert e164 is not None
        as_json, as_text = self.population.expected(contact)
        if scenario.check == "lookup_json":
            return Probe(human(e164, 0), as_json, known=True)
        if scenario.check == "text":
            return Probe(human(e164, 0), as_text, known=True)
        if scenario.check == "service_sql":
            return Probe(e164, contact.external_id, known=True)
        return Probe(e164, contact.name, known=True)

    def _unknown(self, scenario: Scenario) -> Probe:
        number = self.population.unknown_number(self.unknown_drawn)
        self.unknown_drawn += 1
        return Probe(human(number, 0) if scenario.check in ("lookup_json", "text") else number, "|", False)


def answer_of(check: str, body: bytes) -> str:
    """An answer reduced to what Probe.expected holds for its scenario."""
    if check == "text":
        return body.decode()
    document = json.loads(body)
    if check == "bare":
        return str(document["name"] or "")
    return f"{(document['entity'] or {}).get('external_id', '')}|{document['extension']}"


# --- the load child (--load) -------------------------------------------------------------------------


async def fire(
    session: aiohttp.ClientSession, urls: list[URL], headers: dict[str, str], concurrency: int
) -> tuple[list[float], list[int], list[bytes]]:
    """Every URL once, from `concurrency` workers; each request's latency, status and body, in order."""
    latencies = [0.0] * len(urls)
    statuses = [0] * len(urls)
    bodies = [b""] * len(urls)
    cursor = 0

    async def worker() -> None:
        nonlocal cursor
        while cursor < len(urls):
            i = cursor
            cursor += 1
            started = time.perf_counter()
            async with session.get(urls[i], headers=headers) as response:
                body = await response.read()
            latencies[i] = time.perf_counter() - started
            statuses[i], bodies[i] = response.status, body

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(urls)))))
    return latencies, statuses, bodies


def verdict(check: str, expected: list[str], statuses: list[int], bodies: list[bytes]) -> dict[str, Any]:
    wrong_status = Counter(status for status in statuses if status != 200)
    wrong = [
        (want, body.decode(errors="replace")[:300])
        for want, status, body in zip(expected, statuses, bodies, strict=True)
        if status == 200 and answer_of(check, body) != want
    ]
    return {
        "bad_statuses": dict(wrong_status),
        "wrong": len(wrong),
        "first_wrong": wrong[0] if wrong else None,
    }


async def run_load() -> None:
    """The child: for each task from the parent, warm up, say `ready`, wait for `go`, measure, check the
    answers (outside the clock), report."""
    parent = await stdin_lines()
    while line := await parent.readline():
        task = json.loads(line)
        connector = aiohttp.TCPConnector(limit=task["concurrency"])
        async with aiohttp.ClientSession(connector=connector) as session:
            warm = [URL(url, encoded=True) for url in task["warmup_urls"]]
            urls = [URL(url, encoded=True) for url in task["urls"]]
            _, warm_statuses, warm_bodies = await fire(session, warm, task["headers"], task["concurrency"])
            emit({"event": "ready"})
            await parent.readline()
            started = time.perf_counter()
            latencies, statuses, bodies = await fire(session, urls, task["headers"], task["concurrency"])
            seconds = time.perf_counter() - started
        emit(
            {
                "event": "done",
                "latencies": latencies,
                "seconds": seconds,
                "warmup": verdict(task["check"], task["warmup_expected"], warm_statuses, warm_bodies),
                "measured": verdict(task["check"], task["expected"], statuses, bodies),
            }
        )


# --- the parent's side of the load ---------------------------------------------------------------------


@dataclass
class Figures:
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    requests: int = 0  # of the whole stretch (known and unknown numbers), for req/s and CPU per request
    server_cpu: float = 0.0
    connections: int = 0  # new PostgreSQL connections the server's pools opened while measured


class ConnectionCount:
    """New connections opened by the service's pool and the bare app's: a pool that closes and reopens
    connections under load pays a PostgreSQL backend start and the driver's setup each time."""

    def __init__(self) -> None:
        self.opened = 0

    def count(self, *_: Any) -> None:
        self.opened += 1

    async def count_async(self, *_: Any) -> None:
        self.opened += 1


@dataclass
class Bench:
    """Everything a measured stretch needs."""

    args: argparse.Namespace
    prober: Prober
    urls: dict[str, str]  # scenario -> base URL (http scenarios)
    headers: dict[str, dict[str, str]]
    pool: asyncpg.Pool
    dialect: Any  # the engine's, which compiles the service's statements for its asyncpg pool
    profiles: Profiles
    connections: ConnectionCount
    figures: dict[str, Figures] = field(default_factory=dict)

    def record(
        self, name: str, latencies: list[float], seconds: float, requests: int, cpu: float, connections: int
    ) -> None:
        figures = self.figures.setdefault(name, Figures())
        figures.latencies += latencies
        figures.seconds += seconds
        figures.requests += requests
        figures.server_cpu += cpu
        figures.connections += connections


def query_url(base: str, number: str) -> str:
    return f"{base}?{urlencode({'number': number}, quote_via=quote)}"


async def over_http(bench: Bench, child: asyncio.subprocess.Process, scenario: Scenario, format_: str) -> str:
    assert child.stdin is not None and child.stdout is not None
    warm = bench.prober.probes(scenario, bench.args.warmup)
    probes = bench.prober.probes(scenario, bench.args.requests)
    base = bench.urls[scenario.name]
    suffix = "&format=text" if format_ == "text" else ""
    task = {
        "concurrency": bench.args.concurrency,
        "headers": bench.headers[scenario.name],
        "check": scenario.check,
        "warmup_urls": [query_url(base, p.number) + suffix for p in warm],
        "warmup_expected": [p.expected for p in warm],
        "urls": [query_url(base, p.number) + suffix for p in probes],
        "expected": [p.expected for p in probes],
    }
    child.stdin.write(json.dumps(task).encode() + b"\n")
    if not await child.stdout.readline():
        raise BenchmarkBroken("the load child died")
    with bench.profiles.active(scenario.name):
        opened = bench.connections.opened
        cpu = time.process_time()
        child.stdin.write(b"go\n")
        answer = await child.stdout.readline()
        cpu = time.process_time() - cpu
        opened = bench.connections.opened - opened
    if not answer:
        raise BenchmarkBroken("the load child died")
    done = json.loads(answer)
    for stage in ("warmup", "measured"):
        verdicts = done[stage]
        if verdicts["bad_statuses"]:
            raise BenchmarkBroken(f"{scenario.name}: answers other than 200: {verdicts['bad_statuses']}")
        if verdicts["wrong"]:
            raise BenchmarkBroken(
                f"{scenario.name}: {verdicts['wrong']} wrong answers, e.g. expected {verdicts['first_wrong']}"
            )
    latencies: list[float] = done["latencies"]
    split = {
        True: [t for t, p in zip(latencies, probes, strict=True) if p.known],
        False: [t for t, p in zip(latencies, probes, strict=True) if not p.known],
    }
    for known, part in split.items():
        if part:
            name = scenario.name if known else f"{scenario.name}_unknown"
            bench.record(name, part, done["seconds"], len(probes), cpu, opened)
    return summary_line(latencies, done["seconds"])


async def in_process(bench: Bench, scenario: Scenario) -> str:
    """The query alone: asyncpg on the same pool size, same concurrency, no HTTP."""
    if scenario.check == "service_sql":

        def statement(number: str) -> tuple[str, tuple[Any, ...]]:
            # The very statement PoolLookup sends for this number (its exact E.164 OR its last digits).
            return asyncpg_lookup(number, TAIL_DIGITS, bench.dialect)

        def answer_from(rows: list[asyncpg.Record], number: str) -> str:
            # The service keeps the exact hits (the query also returns phones sharing the last digits).
            exact = [row for row in rows if row["e164"] == number]
            return exact[0]["external_id"] if exact else ""
    else:

        def statement(number: str) -> tuple[str, tuple[Any, ...]]:
            return BARE_SELECT, (number,)

        def answer_from(rows: list[asyncpg.Record], number: str) -> str:
            return str(rows[0]["name"] or "") if rows else ""

    async def fire_sql(probes: list[Probe]) -> tuple[list[float], list[str]]:
        latencies = [0.0] * len(probes)
        answers = [""] * len(probes)
        cursor = 0

        async def worker() -> None:
            nonlocal cursor
            while cursor < len(probes):
                i = cursor
                cursor += 1
                started = time.perf_counter()
                sql, arguments = statement(probes[i].number)
                rows = await bench.pool.fetch(sql, *arguments)
                latencies[i] = time.perf_counter() - started
                answers[i] = answer_from(rows, probes[i].number)

        await asyncio.gather(*(worker() for _ in range(min(bench.args.concurrency, len(probes)))))
        return latencies, answers

    warm = bench.prober.probes(scenario, bench.args.warmup)
    probes = bench.prober.probes(scenario, bench.args.requests)
    _, warm_answers = await fire_sql(warm)
    with bench.profiles.active(scenario.name):
        opened = bench.connections.opened
        cpu = time.process_time()
        started = time.perf_counter()
        latencies, answers = await fire_sql(probes)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        opened = bench.connections.opened - opened
    for probe, answer in zip(warm + probes, warm_answers + answers, strict=True):
        if answer != probe.expected:
            raise BenchmarkBroken(
                f"{scenario.name}: {probe.number} gave {answer!r}, expected {probe.expected!r}"
            )
    bench.record(scenario.name, latencies, seconds, len(probes), cpu, opened)
    return summary_line(latencies, seconds)


async def drive(bench: Bench) -> None:
    """Start the load child; run every scenario --rounds times, interleaved."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--load",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**26,
    )
    assert child.stdin is not None
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_SECONDS):
            for round_number in range(bench.args.rounds):
                for scenario in SCENARIOS:
                    if scenario.kind == "http":
                        fmt = "text" if scenario.check == "text" else "json"
                        line = await over_http(bench, child, scenario, fmt)
                    else:
                        line = await in_process(bench, scenario)
                    print(f"  round {round_number + 1}: {scenario.name}: {line}", flush=True)
            child.stdin.close()
    except BaseException:
        # Only on failure: killing a child that already exited would reap it behind asyncio's back.
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        await child.wait()
        raise
    code = await child.wait()
    if code != 0:
        raise BenchmarkBroken(f"the load child exited with status {code}")


def summary_line(latencies: list[float], seconds: float) -> str:
    ordered = sorted(latencies)
    return (
        f"p50 {percentile(ordered, 50) * 1000:.2f} ms, p99 {percentile(ordered, 99) * 1000:.2f} ms, "
        f"{len(ordered) / seconds:,.0f} req/s"
    )


# --- reporting -----------------------------------------------------------------------------------------


ROWS = (
    ("bare_select", "(b) bare SELECT over HTTP (baseline)"),
    ("lookup", "(a) lookup, known number"),
    ("lookup_unknown", "(a) lookup, unknown number"),
    ("lookup_text", "(a2) lookup text, known number"),
    ("lookup_text_unknown", "(a2) lookup text, unknown number"),
    ("lookup_no_db", "(d) lookup of a non-number, no database"),
    ("raw_select", "(c) bare SELECT, asyncpg, no HTTP"),
    ("raw_service_sql", "(c) service's SQL, asyncpg, no HTTP"),
)


def report(figures: dict[str, Figures]) -> None:
    base = sorted(figures["bare_select"].latencies)
    base_p50, base_p99 = percentile(base, 50), percentile(base, 99)
    print(
        f"\n{'scenario':38} {'n':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'req/s':>7} {'CPU us':>7}"
        f" {'p50 x':>6} {'p99 x':>6} {'conns':>5}"
    )
    for name, label in ROWS:
        measured = figures[name]
        ordered = sorted(measured.latencies)
        p50, p95, p99 = (percentile(ordered, p) for p in (50, 95, 99))
        print(
            f"{label:38} {len(ordered):6} {p50 * 1000:7.2f} {p95 * 1000:7.2f} {p99 * 1000:7.2f}"
            f" {measured.requests / measured.seconds:7,.0f}"
            f" {measured.server_cpu / measured.requests * 1e6:7,.0f}"
            f" {p50 / base_p50:6.2f} {p99 / base_p99:6.2f} {measured.connections:5}"
        )
    print(
        "x: ratio to (b) measured in this run. req/s and CPU us are per stretch (known and unknown numbers"
        " together); CPU us: the server process's CPU time per request (apps, drivers; not PostgreSQL's);"
        " conns: new PostgreSQL connections the server's pools opened during the measured requests."
    )
    for name in ("lookup", "lookup_unknown", "lookup_text", "lookup_text_unknown"):
        ordered = sorted(figures[name].latencies)
        ratio50, ratio99 = percentile(ordered, 50) / base_p50, percentile(ordered, 99) / base_p99
        verdict_ = "met" if ratio99 <= 2.0 else "NOT met"
        print(
            f"ratio {name} / bare_select: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x"
            f" (target p99 <= 2.0x: {verdict_})"
        )


# --- the run -------------------------------------------------------------------------------------------


async def serve_and_measure(args: argparse.Namespace) -> None:
    population = Population(args.contacts)
    check_generator(population)
    async with scratch_database(args.database) as url:
        dsn = plain_dsn(url)
        engine = create_engine(url)
        try:
            await migrate(engine)
            sessions = create_sessionmaker(engine)
            await seed(sessions, dsn, population)
            print(await describe_environment(dsn))
            settings = api_settings(url)
            secret = await integration_token(sessions)
            sample = population.contact(population.contacts // 2)
            sample_e164 = sample.phones[0].e164
            assert sample_e164 is not None
            # One statement per lookup: the exact number OR its last digits, two index scans ORed.
            [exact] = await service_statements(engine, sessions, settings, human(sample_e164, 0))
            await explain(
                dsn, f"the service's query for a known number {sample_e164}", exact, "ix_entity_phones_e164"
            )
            unknown = population.unknown_number(10**6)
            statements = await service_statements(engine, sessions, settings, human(unknown, 0))
            if len(statements) != 1:
                raise BenchmarkBroken(f"an unknown number ran {len(statements)} statements, expected 1")
            await explain(
                dsn,
                f"the same query for an unknown number {unknown}",
                statements[0],
                "ix_entity_phones_tail_key",
            )
            app = create_app(settings, sessions)
            connections = ConnectionCount()
            event.listen(engine.sync_engine.pool, "connect", connections.count)
            async with (
                asyncpg.create_pool(
                    dsn, min_size=POOL_MIN, max_size=POOL_MAX, init=connections.count_async
                ) as pool,
                served(bare_select_app(pool)) as bare_url,
                served(app) as api_url,
            ):
                bench = Bench(
                    args=args,
                    prober=Prober(population, seed=20261122),
                    urls={
                        "bare_select": f"{bare_url}/lookup",
                        "lookup": f"{api_url}/api/v1/lookup",
                        "lookup_text": f"{api_url}/api/v1/lookup",
                        "lookup_no_db": f"{api_url}/api/v1/lookup",
                    },
                    headers={
                        "bare_select": {},
                        "lookup": {"Authorization": f"Bearer {secret}"},
                        "lookup_text": {"Authorization": f"Bearer {secret}"},
                        "lookup_no_db": {"Authorization": f"Bearer {secret}"},
                    },
                    pool=pool,
                    dialect=engine.dialect,
                    profiles=Profiles(args.profile),
                    connections=connections,
                )
                print(
                    f"\nload: child process, concurrency {args.concurrency}, {args.rounds} rounds x "
                    f"({args.warmup} warm-up + {args.requests} measured) requests per scenario; "
                    f"lookup streams: {UNKNOWN_SHARE:.0%} unknown numbers"
                )
                await drive(bench)
            bench.profiles.write()
            report(bench.figures)
        finally:
            await engine.dispose()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--contacts", type=int, default=1_000_000, help="contacts seeded into the scratch database"
    )
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per scenario per round")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over all scenarios")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument(
        "--database",
        default=DEFAULT_DATABASE,
        help="PostgreSQL server (SQLAlchemy asyncpg URL); the run uses a scratch database on it",
    )
    parser.add_argument("--profile", type=Path, help="write a cProfile of the server per scenario here")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args(argv)
    if min(args.rounds, args.concurrency) < 1 or args.requests < 10 or args.warmup < 0 or args.contacts < 100:
        parser.error(
            "--rounds and --concurrency must be positive, --requests at least 10, --contacts at least 100"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    return run_script(parse_args(argv), run_load, serve_and_measure)


if __name__ == "__main__":
    sys.exit(main())
