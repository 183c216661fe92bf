"""The per-manager report's SQL: call counts from the rollups, customers from the calls' index, callback
tasks, leads and deals from the CRM mirror. A month of a large office is a few thousand rollup rows and
index ranges, never a scan of every call; `managers.py` puts the figures together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    and_,
    case,
    distinct,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.calls.rollup import BUCKET_SECONDS, ManagerCounts, period_cover
from calltracking.crm.mirror import Manager
from calltracking.crm.repository import list_managers
from calltracking.stats.managers import (
    CallbackFigures,
    DealFigures,
    LeadFigures,
    ManagerReport,
    ReportInputs,
    build_report,
    median,
    unassigned_key,
)
from calltracking.stats.period import BusinessHours, Period, bucket_bounds
from calltracking.store.tables import (
    CallbackRow,
    CallMatchRow,
    CallRow,
    DealRow,
    EntityPhoneRow,
    EntityRow,
    ManagerRollupRow,
    ManagerRow,
)

CALLS = cast(Table, CallRow.__table__)
ROLLUPS = cast(Table, ManagerRollupRow.__table__)
CALLBACKS = cast(Table, CallbackRow.__table__)
DEALS = cast(Table, DealRow.__table__)
ENTITIES = cast(Table, EntityRow.__table__)
PHONES = cast(Table, EntityPhoneRow.__table__)
MATCHES = cast(Table, CallMatchRow.__table__)
MANAGERS = cast(Table, ManagerRow.__table__)
COUNT_NAMES = tuple(f.name for f in fields(ManagerCounts))
# GROUPING(who, extension, team) of a row of GROUPING SETS ((who, extension), (team), ()): which it counts.
_BY_WHO, _BY_TEAM, _OVERALL = 1, 6, 7
# GROUPING(manager, team) of GROUPING SETS ((manager), (team), ()), for the callback tasks.
_TASKS_BY_MANAGER, _TASKS_BY_TEAM, _TASKS_OVERALL = 1, 2, 3
REPORT_WORK_MEM = "64MB"


@dataclass(frozen=True, slots=True)
class ReportScope:
    """What a report asks for besides its period."""

    period: Period
    business_hours: BusinessHours | None = None
    pbx: str | None = None
    team: str | None = None
    # A manager token's own CRM id: their line alone.
    only: str | None = None


async def manager_report(session: AsyncSession, scope: ReportScope) -> ManagerReport:
    managers = await list_managers(session)
    ranges = scope.period.business_ranges(scope.business_hours) if scope.business_hours else None
    calls, total = await _call_counts(session, scope, ranges)
    unique, by_team, unique_total = await _unique_customers(session, scope, ranges, managers)
    callbacks = await _callbacks(session, scope, ranges)
    crm = await _crm_figures(session, scope.period)
    inputs = ReportInputs(
        managers=managers,
        calls=calls,
        total_calls=total,
        unique_customers=unique,
        unique_customers_by_team=by_team,
        unique_customers_total=unique_total,
        callbacks=callbacks.by_manager,
        callbacks_by_team=callbacks.by_team,
        callbacks_total=callbacks.total,
        leads=crm.leads,
        deals=crm.deals,
        won_deals_without_calls=crm.won_deals_without_calls,
    )
    return build_report(inputs, only=scope.only, team=scope.team)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """A manager's calls in one local day, or in one hour of the day over the whole period."""

    label: str
    calls: ManagerCounts


async def manager_series(
    session: AsyncSession, scope: ReportScope, extensions: Sequence[str] | None
) -> tuple[list[SeriesPoint], list[SeriesPoint]]:
    """Per local day and per local hour of the day, from the extensions' rollup buckets (None: every
    extension's, the whole PBX)."""
    ranges = scope.period.business_ranges(scope.business_hours) if scope.business_hours else None
    rows: Sequence[Any] = []
    if extensions is None or extensions:
        which = [] if extensions is None else [ROLLUPS.c.extension.in_(list(extensions))]
        statement = (
            select(ROLLUPS.c.bucket, *(func.sum(ROLLUPS.c[name]).label(name) for name in COUNT_NAMES))
            .where(*_rollup_filter(scope, ranges, days=False), *which)
            .group_by(ROLLUPS.c.bucket)
        )
        rows = (await session.execute(statement)).all()
    days: dict[date, ManagerCounts] = {day: ManagerCounts() for day, _, _ in scope.period.days()}
    hours = {hour: ManagerCounts() for hour in range(24)}
    for row in rows:
        local = scope.period.local(datetime.fromtimestamp(row.bucket, scope.period.start.tzinfo))
        counts = _counts(row)
        days[local.date()] = days.get(local.date(), ManagerCounts()).plus(counts)
        hours[local.hour] = hours[local.hour].plus(counts)
    return (
        [SeriesPoint(day.isoformat(), counts) for day, counts in sorted(days.items())],
        [SeriesPoint(f"{hour:02d}", counts) for hour, counts in sorted(hours.items())],
    )


def _rollup_filter(
    scope: ReportScope, ranges: list[tuple[datetime, datetime]] | None, days: bool = True
) -> list[Any]:
    """The rollup rows of the period (or of its business hours): whole UTC days from the daily rows, the
    rest from the quarter hours; `days=False` reads quarter hours only (for local series)."""
    spans = [scope.period.buckets] if ranges is None else bucket_bounds(ranges)
    pieces = (
        [piece for first, last in spans for piece in period_cover(first, last)]
        if days
        else [(BUCKET_SECONDS, first, last) for first, last in spans if first < last]
    )
    inside = [
        and_(ROLLUPS.c.grain == grain, ROLLUPS.c.bucket >= first, ROLLUPS.c.bucket < last)
        for grain, first, last in pieces
    ]
    conditions: list[Any] = [or_(*inside) if inside else false()]
    if scope.pbx is not None:
        conditions.append(ROLLUPS.c.pbx == scope.pbx)
    return conditions


def _time_filter(
    column: Any, scope: ReportScope, ranges: list[tuple[datetime, datetime]] | None
) -> list[Any]:
    conditions: list[Any] = [column >= scope.period.start, column < scope.period.end]
    if ranges is not None:
        conditions.append(or_(*(and_(column >= a, column < b) for a, b in ranges)) if ranges else false())
    return conditions


def _counts(row: Any) -> ManagerCounts:
    values: dict[str, Any] = {
        name: float(getattr(row, name) or 0) if name.endswith("seconds") else int(getattr(row, name) or 0)
        for name in COUNT_NAMES
    }
    return ManagerCounts(**values)


async def _call_counts(
    session: AsyncSession, scope: ReportScope, ranges: list[tuple[datetime, datetime]] | None
) -> tuple[dict[str, ManagerCounts], ManagerCounts]:
    statement = (
        select(ROLLUPS.c.extension, *(func.sum(ROLLUPS.c[name]).label(name) for name in COUNT_NAMES))
        .where(*_rollup_filter(scope, ranges))
        .group_by(ROLLUPS.c.extension)
    )
    by_extension = {row.extension: _counts(row) for row in (await session.execute(statement)).all()}
    total = by_extension.pop("", ManagerCounts())
    return by_extension, total


async def _unique_customers(
    session: AsyncSession,
    scope: ReportScope,
    ranges: list[tuple[datetime, datetime]] | None,
    managers: Sequence[Manager],
) -> tuple[dict[str, int], dict[str, int], int]:
    """Customers talked to, each once per manager, per team and in total. The period's answered calls
    come from a narrow index (`ix_calls_talked_customers`); extensions are mapped to their holders by a
    join on a small table of literals, as numbers (grouping and sorting integers is several times cheaper
    than text under a collation). PostgreSQL counts the three levels in one pass (GROUPING SETS);
    SQLite, which has none, from distinct rows read once."""
    names: list[str] = []
    teams: list[str] = []
    holder: dict[str, tuple[int, int | None]] = {}
    for manager in sorted(managers, key=lambda m: m.id):
        team_id = None
        if manager.team:
            if manager.team not in teams:
                teams.append(manager.team)
            team_id = teams.index(manager.team)
        names.append(manager.external_id)
        for extension in manager.extensions:
            holder.setdefault(extension, (len(names) - 1, team_id))
    # Never empty: an extension no call has stands in when the mirror has no managers.
    rows = sorted(holder.items()) or [("", (-1, None))]
    holders = union_all(
        *(
            select(
                literal(extension, String).label("extension"),
                literal(who, Integer).label("who"),
                literal(team_id, Integer).label("team"),
            )
            for extension, (who, team_id) in rows
        )
    ).cte("holders")
    source = CALLS.outerjoin(holders, holders.c.extension == CALLS.c.manager)
    who = func.coalesce(holders.c.who, -1)
    unassigned = case((holders.c.who.is_(None), CALLS.c.manager))
    conditions = _time_filter(CALLS.c.started_at, scope, ranges)
    conditions += [
        CALLS.c.status == "answered",
        CALLS.c.customer_number.is_not(None),
        CALLS.c.manager.is_not(None),
    ]
    if scope.pbx is not None:
        conditions.append(CALLS.c.pbx == scope.pbx)
    counts = (
        _unique_by_grouping_sets if session.get_bind().dialect.name == "postgresql" else _unique_by_distinct
    )
    levels = await counts(session, source, (who, unassigned, holders.c.team), conditions)
    per_manager = {
        names[row_who] if row_who >= 0 else unassigned_key(extension or ""): n
        for (row_who, extension), n in levels.managers.items()
    }
    per_team = {teams[team_id]: n for team_id, n in levels.teams.items()}
    return per_manager, per_team, levels.total


@dataclass(frozen=True, slots=True)
class _Levels:
    managers: dict[tuple[int, str | None], int]  # (holder's number, or -1 and the extension) -> count
    teams: dict[int, int]
    total: int


Keys = tuple[ColumnElement[Any], ColumnElement[Any], ColumnElement[Any]]


async def _unique_by_grouping_sets(
    session: AsyncSession, source: Any, keys: Keys, conditions: list[Any]
) -> _Levels:
    who, unassigned, team = keys
    # A customer's number is E.164 (`CallRecord.customer_number`): the integer of its digits.
    customer = func.substr(CALLS.c.customer_number, 2).cast(BigInteger)
    # Sorting half a million numbers for the distinct counts wants more than the default 4 MB.
    await session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
    statement = (
        select(
            who.label("who"),
            unassigned.label("extension"),
            team.label("team"),
            func.grouping(who, unassigned, team).label("level"),
            func.count(distinct(customer)).label("n"),
        )
        .select_from(source)
        .where(*conditions)
        .group_by(func.grouping_sets(tuple_(who, unassigned), tuple_(team), tuple_()))
    )
    levels = _Levels({}, {}, 0)
    total = 0
    for row in (await session.execute(statement)).all():
        if row.level == _BY_WHO:
            levels.managers[(row.who, row.extension)] = int(row.n)
        elif row.level == _BY_TEAM and row.team is not None:
            levels.teams[row.team] = int(row.n)
        elif row.level == _OVERALL:
            total = int(row.n)
    return replace(levels, total=total)


async def _unique_by_distinct(
    session: AsyncSession, source: Any, keys: Keys, conditions: list[Any]
) -> _Levels:
    who, unassigned, team = keys
    pairs = (
        select(
            who.label("who"),
            unassigned.label("extension"),
            team.label("team"),
            CALLS.c.customer_number.label("customer"),
        )
        .select_from(source)
        .where(*conditions)
        .distinct()
        .cte("pairs")
    )
    by_team = select(pairs.c.team, pairs.c.customer).where(pairs.c.team.is_not(None)).distinct().subquery()
    customers = select(pairs.c.customer).distinct().subquery()
    statement = union_all(
        select(
            literal(_BY_WHO).label("level"),
            pairs.c.who,
            pairs.c.extension,
            func.count(distinct(pairs.c.customer)).label("n"),
        ).group_by(pairs.c.who, pairs.c.extension),
        select(literal(_BY_TEAM), by_team.c.team, literal(None, String), func.count()).group_by(
            by_team.c.team
        ),
        select(literal(_OVERALL), literal(None, Integer), literal(None, String), func.count()).select_from(
            customers
        ),
    )
    levels = _Levels({}, {}, 0)
    total = 0
    for row in (await session.execute(statement)).all():
        if row.level == _BY_WHO:
            levels.managers[(row.who, row.extension)] = int(row.n)
        elif row.level == _BY_TEAM:
            levels.teams[row.who] = int(row.n)
        else:
            total = int(row.n)
    return replace(levels, total=total)


@dataclass(frozen=True, slots=True)
class _CallbackFigures:
    by_manager: dict[str | None, CallbackFigures]
    by_team: dict[str, CallbackFigures]
    total: CallbackFigures


async def _callbacks(
    session: AsyncSession, scope: ReportScope, ranges: list[tuple[datetime, datetime]] | None
) -> _CallbackFigures:
    """Per manager, per team (the manager's, from the mirror) and in total: on PostgreSQL counted in SQL
    in one pass (GROUPING SETS, the median by percentile_cont); on SQLite, which has neither, from the
    period's tasks read once."""
    returned = and_(CALLBACKS.c.state == "done", CALLBACKS.c.closed_at.is_not(None))
    in_time = and_(returned, CALLBACKS.c.closed_at <= CALLBACKS.c.due_at)
    source = CALLBACKS.outerjoin(MANAGERS, MANAGERS.c.external_id == CALLBACKS.c.manager)
    conditions = _time_filter(CALLBACKS.c.missed_at, scope, ranges)
    if scope.pbx is not None:
        source = source.join(CALLS, CALLS.c.id == CALLBACKS.c.missed_call_id)
        conditions.append(CALLS.c.pbx == scope.pbx)

    manager, team = CALLBACKS.c.manager, MANAGERS.c.team
    if session.get_bind().dialect.name == "postgresql":
        figures = [
            func.count().label("tasks"),
            func.sum(case((returned, 1), else_=0)).label("returned"),
            func.sum(case((in_time, 1), else_=0)).label("in_time"),
            func.percentile_cont(0.5)
            .within_group(CALLBACKS.c.seconds_to_return)
            .filter(returned)
            .label("median"),
        ]

        def read(row: Any) -> CallbackFigures:
            median_seconds = None if row.median is None else float(row.median)
            return CallbackFigures(
                int(row.tasks), int(row.returned or 0), int(row.in_time or 0), median_seconds
            )

        by_manager: dict[str | None, CallbackFigures] = {}
        by_team: dict[str, CallbackFigures] = {}
        total = CallbackFigures()
        statement = (
            select(manager, team, func.grouping(manager, team).label("level"), *figures)
            .select_from(source)
            .where(*conditions)
            .group_by(func.grouping_sets(tuple_(manager), tuple_(team), tuple_()))
        )
        for row in await session.execute(statement):
            if row.level == _TASKS_BY_MANAGER:
                by_manager[row.manager] = read(row)
            elif row.level == _TASKS_BY_TEAM and row.team is not None:
                by_team[row.team] = read(row)
            elif row.level == _TASKS_OVERALL:
                total = read(row)
        return _CallbackFigures(by_manager, by_team, total)
    # SQLite: the period's tasks, one row each with the same conditions as columns, counted here. One
    # statement, where counting each level in SQL was four (three levels and the times for the medians).
    tasks = (
        await session.execute(
            select(
                manager,
                team,
                case((returned, 1), else_=0).label("returned"),
                case((in_time, 1), else_=0).label("in_time"),
                CALLBACKS.c.seconds_to_return,
            )
            .select_from(source)
            .where(*conditions)
        )
    ).all()

    def counted(rows: Sequence[Any]) -> CallbackFigures:
        times = [row.seconds_to_return for row in rows if row.returned and row.seconds_to_return is not None]
        return CallbackFigures(
            len(rows), sum(row.returned for row in rows), sum(row.in_time for row in rows), median(times)
        )

    managers: dict[str | None, list[Any]] = {}
    teams: dict[str, list[Any]] = {}
    for row in tasks:
        managers.setdefault(row.manager, []).append(row)
        if row.team is not None:
            teams.setdefault(row.team, []).append(row)
    return _CallbackFigures(
        {key: counted(rows) for key, rows in managers.items()},
        {key: counted(rows) for key, rows in teams.items()},
        counted(tasks),
    )


def is_converted() -> ColumnElement[bool]:
    """How the CRM reports a lead's conversion (README "Stats"): it names the contact the lead became
    (`converted_to`), or it sends a deal for the lead, or the lead was merged into a contact."""
    survivor = ENTITIES.alias("survivor")
    return or_(
        ENTITIES.c.converted_to.is_not(None),
        exists().where(DEALS.c.lead == ENTITIES.c.external_id),
        exists().where(survivor.c.id == ENTITIES.c.merged_into_id, survivor.c.kind == "contact"),
    )


# What `_crm_figures` reads, one statement for all: which figure a row of the UNION ALL carries.
_LEADS, _DEALS_OPENED, _DEALS_WON, _WON_WITHOUT_CALLS = 1, 2, 3, 4


@dataclass(frozen=True, slots=True)
class _CrmFigures:
    leads: dict[str | None, LeadFigures]
    deals: dict[str | None, DealFigures]
    won_deals_without_calls: dict[str | None, list[str]]


async def _crm_figures(session: AsyncSession, period: Period) -> _CrmFigures:
    """Leads, deals opened, deals won and won deals without calls, per owner, in one statement (a UNION
    ALL of the four, each row tagged with its figure): a report's cost on a small database is its
    round trips to the database, not the work in it."""
    statement = union_all(
        _leads(period), _deals_opened(period), _deals_won(period), _won_without_calls(period)
    )
    leads: dict[str | None, LeadFigures] = {}
    opened: dict[str | None, int] = {}
    won: dict[str | None, int] = {}
    minor: dict[str | None, dict[str, int]] = {}
    found: dict[str | None, list[str]] = {}
    for row in (await session.execute(statement)).all():
        if row.figure == _LEADS:
            leads[row.owner] = LeadFigures(created=int(row.n), converted=int(row.m or 0))
        elif row.figure == _DEALS_OPENED:
            opened[row.owner] = int(row.n)
        elif row.figure == _DEALS_WON:
            won[row.owner] = won.get(row.owner, 0) + int(row.n)
            amounts = minor.setdefault(row.owner, {})
            amounts[row.key or ""] = amounts.get(row.key or "", 0) + int(row.m or 0)
        else:
            found.setdefault(row.owner, []).append(row.key)
    deals = {
        owner: DealFigures(opened=opened.get(owner, 0), won=won.get(owner, 0), won_minor=minor.get(owner, {}))
        for owner in set(opened) | set(won)
    }
    return _CrmFigures(leads, deals, found)


def _leads(period: Period) -> Select[Any]:
    """figure, owner, key (none), n: leads created, m: of them converted."""
    return (
        select(
            literal(_LEADS, Integer).label("figure"),
            ENTITIES.c.owner.label("owner"),
            literal(None, String).label("key"),
            func.count().label("n"),
            func.sum(case((is_converted(), 1), else_=0)).label("m"),
        )
        .where(
            ENTITIES.c.kind == "lead",
            # Made here for a caller (the CRM adopting it later keeps its first call).
            ENTITIES.c.first_call_id.is_not(None),
            ENTITIES.c.created_at >= period.start,
            ENTITIES.c.created_at < period.end,
        )
        .group_by(ENTITIES.c.owner)
    )


def _deals_opened(period: Period) -> Select[Any]:
    return (
        select(
            literal(_DEALS_OPENED, Integer),
            DEALS.c.owner,
            literal(None, String),
            func.count(),
            literal(None, BigInteger),
        )
        .where(DEALS.c.is_active, DEALS.c.opened_at >= period.start, DEALS.c.opened_at < period.end)
        .group_by(DEALS.c.owner)
    )


def _deals_won(period: Period) -> Select[Any]:
    """key: the currency, n: deals won, m: their amount in hundredths."""
    return (
        select(
            literal(_DEALS_WON, Integer),
            DEALS.c.owner,
            DEALS.c.currency,
            func.count(),
            func.sum(DEALS.c.amount_minor),
        )
        .where(
            DEALS.c.is_active,
            DEALS.c.is_won.is_(True),
            DEALS.c.closed_at >= period.start,
            DEALS.c.closed_at < period.end,
        )
        .group_by(DEALS.c.owner, DEALS.c.currency)
    )


def _won_without_calls(period: Period) -> Select[Any]:
    """Deals won in the period (key: the deal's CRM id) with no call, before the win, to or from any number
    of the deal's contact, company or lead: sales made off the phone system (a personal mobile)."""
    of_deal = or_(
        and_(ENTITIES.c.kind == "contact", ENTITIES.c.external_id == DEALS.c.contact),
        and_(ENTITIES.c.kind == "company", ENTITIES.c.external_id == DEALS.c.company),
        and_(ENTITIES.c.kind == "lead", ENTITIES.c.external_id == DEALS.c.lead),
    )
    before_win = or_(DEALS.c.closed_at.is_(None), CALLS.c.started_at <= DEALS.c.closed_at)
    by_number = (
        select(1)
        .select_from(ENTITIES.join(PHONES, PHONES.c.entity_id == ENTITIES.c.id))
        .join(CALLS, CALLS.c.customer_number == PHONES.c.e164)
        .where(of_deal, before_win)
        .exists()
    )
    matches = MATCHES
    by_match = (
        select(1)
        .select_from(ENTITIES.join(matches, matches.c.entity_id == ENTITIES.c.id))
        .join(CALLS, CALLS.c.id == matches.c.call_id)
        .where(of_deal, before_win)
        .exists()
    )
    return select(
        literal(_WON_WITHOUT_CALLS, Integer),
        DEALS.c.owner,
        DEALS.c.external_id,
        literal(None, BigInteger),
        literal(None, BigInteger),
    ).where(
        DEALS.c.is_active,
        DEALS.c.is_won.is_(True),
        DEALS.c.closed_at >= period.start,
        DEALS.c.closed_at < period.end,
        ~by_number,
        ~by_match,
    )
