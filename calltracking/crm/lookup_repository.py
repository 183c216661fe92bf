"""SQL for the caller-ID lookup: the candidates for one number with their owner and company, in one
indexed round trip (the dialplan waits on it), or those of several numbers in one (the screen pops of a
burst). The statements are written once, with SQLAlchemy, and run either through the sessions (SQLite)
or compiled once onto a plain asyncpg pool (PostgreSQL)."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg
from sqlalchemy import String, and_, any_, bindparam, or_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import EntityKind
from calltracking.crm.match_repository import candidate_of, candidate_select, mark_open_deals, tail_of
from calltracking.crm.matching import Candidate, MatchedBy
from calltracking.crm.repository import ENTITIES, MANAGERS, PHONES
from calltracking.errors import DatabaseUnavailable
from calltracking.numbers import TAIL_KEY_DIGITS, reversed_digits
from calltracking.store.engine import DEADLINE

COMPANIES = ENTITIES.alias("company")


@dataclass(frozen=True, slots=True)
class LookupHit:
    candidate: Candidate
    company_name: str | None
    manager_name: str | None
    manager_extensions: tuple[str, ...]
    manager_active: bool


def _select() -> Any:
    """The matcher's candidates for a phone, with what a caller-ID answer also needs: the owner's name and
    extensions, and the contact's company."""
    return (
        candidate_select(
            COMPANIES.c.name.label("company_name"),
            MANAGERS.c.name.label("manager_name"),
            MANAGERS.c.extensions,
            MANAGERS.c.is_active.label("manager_active"),
            PHONES.c.digits_reversed,
        )
        .outerjoin(MANAGERS, MANAGERS.c.external_id == ENTITIES.c.owner)
        .outerjoin(
            COMPANIES,
            and_(COMPANIES.c.kind == EntityKind.COMPANY.value, COMPANIES.c.external_id == ENTITIES.c.company),
        )
    )


# Built once: constructing the statement on every call was a fifth of the endpoint's CPU time. The exact
# number and the phones sharing its last six digits come in one round trip, as two index equalities that
# PostgreSQL ORs and can keep one cached plan for; the exact hits, when there are any, win, else those
# that share the configured number of last digits.
BY_NUMBER = _select().where(PHONES.c.e164 == bindparam("e164"))
BY_NUMBER_OR_TAIL = _select().where(
    or_(PHONES.c.e164 == bindparam("e164"), PHONES.c.tail_key == bindparam("tail_key"))
)


# Several numbers in one round trip (the screen pops of a burst): the same two index equalities, each
# against an array (PostgreSQL) or a list of values (elsewhere). Each number then keeps its own rows.
BY_NUMBERS_ANY = _select().where(
    or_(
        PHONES.c.e164 == any_(bindparam("e164s", type_=ARRAY(String))),
        PHONES.c.tail_key == any_(bindparam("tail_keys", type_=ARRAY(String))),
    )
)
BY_NUMBERS_IN = _select().where(
    or_(
        PHONES.c.e164.in_(bindparam("e164s", expanding=True)),
        PHONES.c.tail_key.in_(bindparam("tail_keys", expanding=True)),
    )
)


def _query(e164: str, tail_digits: int) -> tuple[Any, dict[str, str]]:
    if tail_of(e164, tail_digits) is None:
        return BY_NUMBER, {"e164": e164}
    return BY_NUMBER_OR_TAIL, {"e164": e164, "tail_key": reversed_digits(e164)[:TAIL_KEY_DIGITS]}


def _many_values(e164s: Sequence[str], tail_digits: int) -> dict[str, list[str]]:
    numbers = sorted(set(e164s))
    tail_keys = {reversed_digits(n)[:TAIL_KEY_DIGITS] for n in numbers if tail_of(n, tail_digits) is not None}
    return {"e164s": numbers, "tail_keys": sorted(tail_keys)}


def _best_hits(rows: Sequence[Mapping[Any, Any]], e164: str, tail_digits: int) -> dict[int, LookupHit]:
    exact = [row for row in rows if row["e164"] == e164]
    if exact:
        return {row["id"]: _hit(row, MatchedBy.NUMBER) for row in exact}
    tail = tail_of(e164, tail_digits)
    return {
        row["id"]: _hit(row, MatchedBy.TAIL)
        for row in rows
        if tail is not None and row["digits_reversed"].startswith(tail)
    }


class LookupReader(Protocol):
    """Where the lookup reads the number index from."""

    async def hits(self, e164: str, tail_digits: int) -> list[LookupHit]: ...

    async def hits_many(self, e164s: Sequence[str], tail_digits: int) -> dict[str, list[LookupHit]]:
        """`hits` of each number, in one round trip (more only for a tie to break)."""
        ...

    async def close(self) -> None: ...


async def open_lookup_reader(sessions: async_sessionmaker[AsyncSession]) -> LookupReader:
    """On PostgreSQL, a small asyncpg pool of its own running the same statements, compiled once: the
    dialplan waits on every lookup, and SQLAlchemy's session, pool checkout (with its liveness ping) and
    result processing were most of the endpoint's time (bench/lookup.py). Elsewhere, the sessions."""
    engine = sessions.kw["bind"]
    if engine.dialect.name != "postgresql":
        return SessionLookup(sessions)
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    # Bounded like the sessions it sits beside: a database that hangs answers the dialplan "unavailable"
    # within the same deadline, never not at all.
    deadline = (sessions.kw.get("info") or {}).get(DEADLINE)
    # min_size 0: no connection at start, so the API starts while the database is down (like the call log).
    pool = await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=10,
        init=_json_codec,
        reset=_nothing_to_reset,
        timeout=deadline or 60,
        command_timeout=deadline,
    )
    return PoolLookup(pool, sessions, engine.dialect, deadline)


async def _json_codec(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _nothing_to_reset(_connection: asyncpg.Connection) -> None:
    """The pool runs single reads outside a transaction: they leave no session state (no LISTEN, lock,
    cursor or SET), so a connection goes back without asyncpg's default reset, which sent `RESET ALL` and
    the like before the lookup could return: a second round trip for every lookup. (asyncpg still rolls
    back a transaction left open, without a round trip otherwise.)"""


class SessionLookup:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def hits(self, e164: str, tail_digits: int) -> list[LookupHit]:
        async with self._sessions() as session:
            # Reads only: no transaction, so no BEGIN and ROLLBACK round trips around the query.
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            return await lookup_hits(session, e164, tail_digits)

    async def hits_many(self, e164s: Sequence[str], tail_digits: int) -> dict[str, list[LookupHit]]:
        if not e164s:
            return {}
        async with self._sessions() as session:
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            values = _many_values(e164s, tail_digits)
            rows = (await session.execute(BY_NUMBERS_IN, values)).mappings().all()
            found = {}
            for e164 in values["e164s"]:
                hits = _best_hits(rows, e164, tail_digits)
                found[e164] = (
                    await _with_open_deals(session, e164, hits) if len(hits) > 1 else list(hits.values())
                )
            return found

    async def close(self) -> None:
        return None


class PoolLookup:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sessions: async_sessionmaker[AsyncSession],
        dialect: Any,
        deadline_seconds: float | None = None,
    ) -> None:
        self._pool = pool
        self._sessions = sessions
        self._deadline = deadline_seconds
        self._compiled = {
            statement: _compiled_for(statement, dialect)
            for statement in (BY_NUMBER, BY_NUMBER_OR_TAIL, BY_NUMBERS_ANY)
        }

    async def hits(self, e164: str, tail_digits: int) -> list[LookupHit]:
        statement, values = _query(e164, tail_digits)
        rows = await self._fetch(statement, values)
        return await self._settled(_best_hits(rows, e164, tail_digits), e164)

    async def hits_many(self, e164s: Sequence[str], tail_digits: int) -> dict[str, list[LookupHit]]:
        if not e164s:
            return {}
        values = _many_values(e164s, tail_digits)
        rows = await self._fetch(BY_NUMBERS_ANY, values)
        return {
            e164: await self._settled(_best_hits(rows, e164, tail_digits), e164) for e164 in values["e164s"]
        }

    async def _fetch(self, statement: Any, values: Mapping[str, Any]) -> list[asyncpg.Record]:
        try:
            async with asyncio.timeout(self._deadline), self._pool.acquire() as connection:
                return await self._compiled[statement].fetch(connection, **values)
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
            raise DatabaseUnavailable(f"the lookup's database cannot be reached: {exc!r}"[:500]) from exc

    async def _settled(self, hits: dict[int, LookupHit], e164: str) -> list[LookupHit]:
        if len(hits) > 1:
            # A tie to break by open deals: rare, so it takes the ordinary path.
            async with self._sessions() as session:
                return await _with_open_deals(session, e164, hits)
        return list(hits.values())

    async def close(self) -> None:
        await self._pool.close()


class _Compiled:
    """A statement compiled once for asyncpg, with its parameters in the order the SQL numbers them."""

    def __init__(self, statement: Any, dialect: Any) -> None:
        self._compiled = statement.compile(dialect=dialect)
        self._sql = self._compiled.string
        self._order = list(self._compiled.positiontup or ())

    @property
    def sql(self) -> str:
        return str(self._sql)

    def arguments(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        params = self._compiled.construct_params(dict(values))
        return tuple(params[name] for name in self._order)

    async def fetch(self, connection: asyncpg.Connection, **values: Any) -> list[asyncpg.Record]:
        return list(await connection.fetch(self._sql, *self.arguments(values)))


def asyncpg_lookup(e164: str, tail_digits: int, dialect: Any) -> tuple[str, tuple[Any, ...]]:
    """The SQL and arguments `PoolLookup` sends for a number (for benchmarks and EXPLAIN)."""
    statement, values = _query(e164, tail_digits)
    compiled = _compiled_for(statement, dialect)
    return compiled.sql, compiled.arguments(values)


@functools.cache
def _compiled_for(statement: Any, dialect: Any) -> _Compiled:
    return _Compiled(statement, dialect)


async def lookup_hits(session: AsyncSession, e164: str, tail_digits: int) -> list[LookupHit]:
    statement, values = _query(e164, tail_digits)
    rows = (await session.execute(statement, values)).mappings().all()
    hits = _best_hits(rows, e164, tail_digits)
    if len(hits) > 1:
        return await _with_open_deals(session, e164, hits)
    return list(hits.values())


async def _with_open_deals(session: AsyncSession, e164: str, hits: dict[int, LookupHit]) -> list[LookupHit]:
    candidates = {e164: [hit.candidate for hit in hits.values()]}
    await mark_open_deals(session, candidates)
    return [
        LookupHit(
            candidate,
            hits[candidate.entity_id].company_name,
            hits[candidate.entity_id].manager_name,
            hits[candidate.entity_id].manager_extensions,
            hits[candidate.entity_id].manager_active,
        )
        for candidate in candidates[e164]
    ]


def _hit(row: Mapping[Any, Any], matched_by: MatchedBy) -> LookupHit:
    return LookupHit(
        candidate=candidate_of(row, matched_by),
        company_name=row["company_name"],
        manager_name=row["manager_name"],
        manager_extensions=tuple(row["extensions"] or ()),
        manager_active=bool(row["manager_active"]),
    )
