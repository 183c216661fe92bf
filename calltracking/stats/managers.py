"""Per-manager stats: who works the phone, whose calls turn into money. Pure: the figures are put
together here from what `manager_report.py` reads, so every rule of the report is in one place.

A manager's line joins their extensions' call counts (rollups), their callback tasks, the leads and
deals the CRM says they own, and the customers they talked to. Every manager in the mirror has a line:
one with deals and no calls is flagged `deals_without_calls`, one with neither is `inactive`, never
absent. Extensions no manager holds get lines of their own, so no call goes uncounted.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from calltracking.calls.rollup import ManagerCounts
from calltracking.crm.mirror import Manager

UNASSIGNED_PREFIX = "ext:"


def unassigned_key(extension: str) -> str:
    """The line key of an extension no manager holds."""
    return UNASSIGNED_PREFIX + extension


@dataclass(frozen=True, slots=True)
class CallbackFigures:
    """Callback tasks whose missed call fell in the period: how many, returned, in time, how fast."""

    tasks: int = 0
    returned: int = 0
    returned_in_time: int = 0
    median_seconds_to_return: float | None = None


def median(values: Sequence[float]) -> float | None:
    """As PostgreSQL's percentile_cont(0.5): the middle value, or the mean of the two middle ones."""
    return statistics.median(values) if values else None


@dataclass(frozen=True, slots=True)
class DealFigures:
    opened: int = 0
    won: int = 0
    # Hundredths of the currency unit, by currency ("" when the CRM sent none).
    won_minor: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LeadFigures:
    created: int = 0
    converted: int = 0


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """What the database said about the period."""

    managers: Sequence[Manager]
    calls: Mapping[str, ManagerCounts]  # by extension
    total_calls: ManagerCounts
    unique_customers: Mapping[str, int]  # by line key
    unique_customers_by_team: Mapping[str, int]
    unique_customers_total: int
    callbacks: Mapping[str | None, CallbackFigures]  # by manager (CRM id)
    callbacks_by_team: Mapping[str, CallbackFigures]
    callbacks_total: CallbackFigures
    leads: Mapping[str | None, LeadFigures]  # by owner (CRM id)
    deals: Mapping[str | None, DealFigures]  # by owner
    won_deals_without_calls: Mapping[str | None, Sequence[str]]  # owner -> deals' CRM ids


@dataclass(frozen=True, slots=True)
class ManagerLine:
    key: str
    manager_id: str | None
    name: str | None
    team: str | None
    extensions: tuple[str, ...]
    calls: ManagerCounts
    unique_customers: int
    callback_tasks: int
    callbacks_returned: int
    callbacks_returned_in_time: int
    median_seconds_to_return: float | None
    leads: LeadFigures
    deals: DealFigures
    won_deals_without_calls: tuple[str, ...]

    @property
    def customer_calls(self) -> int:
        return self.calls.inbound_received + self.calls.outbound_made

    @property
    def has_calls(self) -> bool:
        return self.customer_calls + self.calls.internal_calls > 0

    @property
    def has_deals(self) -> bool:
        return self.deals.opened + self.deals.won > 0

    @property
    def deals_without_calls(self) -> bool:
        return self.has_deals and not self.has_calls

    @property
    def inactive(self) -> bool:
        return not self.has_calls and not self.has_deals

    @property
    def talked_calls(self) -> int:
        return self.calls.inbound_answered + self.calls.outbound_answered

    @property
    def average_talk_seconds(self) -> float | None:
        return _ratio(self.calls.talk_seconds, self.talked_calls)

    @property
    def average_ring_seconds(self) -> float | None:
        """How long an inbound call rang before this manager answered."""
        return _ratio(self.calls.ring_seconds_answered, self.calls.inbound_answered)

    @property
    def answer_rate(self) -> float | None:
        return _ratio(self.calls.inbound_answered, self.calls.inbound_received)

    @property
    def conversion_rate(self) -> float | None:
        return _ratio(self.leads.converted, self.leads.created)

    @property
    def calls_per_won_deal(self) -> float | None:
        return _ratio(self.customer_calls, self.deals.won)

    def amounts_won(self) -> dict[str, Decimal]:
        return {
            currency: Decimal(minor).scaleb(-2) for currency, minor in sorted(self.deals.won_minor.items())
        }


@dataclass(frozen=True, slots=True)
class ManagerReport:
    managers: tuple[ManagerLine, ...]
    teams: tuple[ManagerLine, ...]
    total: ManagerLine | None


def build_report(inputs: ReportInputs, only: str | None = None, team: str | None = None) -> ManagerReport:
    """Lines for every manager (and unassigned extension, and deal owner unknown to the mirror), team
    lines, and the total. `only`: a manager's CRM id, whose line alone is returned (a manager token);
    `team`: that team's managers, with the team's line as the total."""
    by_extension = {ext: m for m in sorted(inputs.managers, key=lambda m: m.id) for ext in m.extensions}
    holders: dict[str, list[str]] = {}
    for extension in inputs.calls:
        manager = by_extension.get(extension)
        key = manager.external_id if manager else unassigned_key(extension)
        holders.setdefault(key, []).append(extension)

    def line(key: str, manager: Manager | None, extensions: Iterable[str]) -> ManagerLine:
        owner = manager.external_id if manager else (None if key.startswith(UNASSIGNED_PREFIX) else key)
        counts = ManagerCounts()
        for extension in extensions:
            counts = counts.plus(inputs.calls.get(extension, ManagerCounts()))
        mine = inputs.callbacks.get(owner, CallbackFigures()) if owner else CallbackFigures()
        return _line(
            key=key,
            manager_id=owner,
            name=manager.name if manager else None,
            team=manager.team if manager else None,
            extensions=tuple(manager.extensions) if manager else tuple(extensions),
            calls=counts,
            unique_customers=inputs.unique_customers.get(key, 0),
            callbacks=mine,
            leads=inputs.leads.get(owner, LeadFigures()) if owner else LeadFigures(),
            deals=inputs.deals.get(owner, DealFigures()) if owner else DealFigures(),
            without_calls=inputs.won_deals_without_calls.get(owner, ()) if owner else (),
        )

    lines: list[ManagerLine] = []
    listed: set[str] = set()
    for manager in sorted(inputs.managers, key=lambda m: (m.name.casefold(), m.external_id)):
        has_activity = manager.external_id in holders or manager.external_id in inputs.deals
        if manager.is_active or has_activity:
            lines.append(line(manager.external_id, manager, holders.get(manager.external_id, ())))
            listed.add(manager.external_id)
    for key in sorted(k for k in holders if k.startswith(UNASSIGNED_PREFIX)):
        lines.append(line(key, None, holders[key]))
    strangers = set(inputs.deals) | set(inputs.leads) | set(inputs.won_deals_without_calls)
    for owner in sorted(o for o in strangers if o is not None and o not in listed):
        lines.append(line(owner, None, ()))
    if only is not None:
        return ManagerReport(
            managers=tuple(x for x in lines if only in (x.manager_id, x.key)), teams=(), total=None
        )
    teams: dict[str, list[ManagerLine]] = {}
    for item in lines:
        if item.team:
            teams.setdefault(item.team, []).append(item)
    team_lines = tuple(
        _merged(
            f"team:{name}",
            name,
            members,
            inputs.unique_customers_by_team.get(name, 0),
            inputs.callbacks_by_team.get(name, CallbackFigures()),
        )
        for name, members in sorted(teams.items())
    )
    if team is not None:
        chosen = tuple(x for x in team_lines if x.team == team)
        members = tuple(x for x in lines if x.team == team)
        return ManagerReport(managers=members, teams=chosen, total=chosen[0] if chosen else None)
    total = _line(
        key="total",
        manager_id=None,
        name=None,
        team=None,
        extensions=(),
        calls=inputs.total_calls,
        unique_customers=inputs.unique_customers_total,
        callbacks=inputs.callbacks_total,
        leads=_sum_leads(inputs.leads.values()),
        deals=_sum_deals(inputs.deals.values()),
        without_calls=tuple(d for deals in inputs.won_deals_without_calls.values() for d in deals),
    )
    return ManagerReport(managers=tuple(lines), teams=team_lines, total=total)


def _merged(
    key: str, team: str, members: list[ManagerLine], unique: int, callbacks: CallbackFigures
) -> ManagerLine:
    """A team's line: its members' counts summed (a missed call that rang two members is missed by
    each), its customers counted once, its callback tasks pooled for the median."""
    counts = ManagerCounts()
    for member in members:
        counts = counts.plus(member.calls)
    return _line(
        key=key,
        manager_id=None,
        name=None,
        team=team,
        extensions=tuple(e for m in members for e in m.extensions),
        calls=counts,
        unique_customers=unique,
        callbacks=callbacks,
        leads=_sum_leads(m.leads for m in members),
        deals=_sum_deals(m.deals for m in members),
        without_calls=tuple(d for m in members for d in m.won_deals_without_calls),
    )


def _line(
    *,
    key: str,
    manager_id: str | None,
    name: str | None,
    team: str | None,
    extensions: tuple[str, ...],
    calls: ManagerCounts,
    unique_customers: int,
    callbacks: CallbackFigures,
    leads: LeadFigures,
    deals: DealFigures,
    without_calls: Sequence[str],
) -> ManagerLine:
    return ManagerLine(
        key=key,
        manager_id=manager_id,
        name=name,
        team=team,
        extensions=extensions,
        calls=calls,
        unique_customers=unique_customers,
        callback_tasks=callbacks.tasks,
        callbacks_returned=callbacks.returned,
        callbacks_returned_in_time=callbacks.returned_in_time,
        median_seconds_to_return=callbacks.median_seconds_to_return,
        leads=leads,
        deals=deals,
        won_deals_without_calls=tuple(sorted(without_calls)),
    )


def _sum_leads(figures: Iterable[LeadFigures]) -> LeadFigures:
    items = list(figures)
    return LeadFigures(created=sum(f.created for f in items), converted=sum(f.converted for f in items))


def _sum_deals(figures: Iterable[DealFigures]) -> DealFigures:
    won_minor: dict[str, int] = {}
    opened = won = 0
    for item in figures:
        opened += item.opened
        won += item.won
        for currency, minor in item.won_minor.items():
            won_minor[currency] = won_minor.get(currency, 0) + minor
    return DealFigures(opened=opened, won=won, won_minor=won_minor)


def _ratio(part: float, whole: float) -> float | None:
    return None if not whole else part / whole


def line_columns(item: ManagerLine) -> dict[str, object]:
    """A line as the report's flat columns: the JSON line, a CSV row, a spreadsheet row and the CLI
    table all read these (amounts as a currency map, lists as lists)."""
    return {
        "key": item.key,
        "manager_id": item.manager_id,
        "name": item.name,
        "team": item.team,
        "extensions": list(item.extensions),
        "inactive": item.inactive,
        "deals_without_calls": item.deals_without_calls,
        "inbound_received": item.calls.inbound_received,
        "inbound_answered": item.calls.inbound_answered,
        "inbound_missed": item.calls.inbound_missed,
        "answer_rate": item.answer_rate,
        "outbound_made": item.calls.outbound_made,
        "outbound_answered": item.calls.outbound_answered,
        "internal_calls": item.calls.internal_calls,
        "talk_seconds": round(item.calls.talk_seconds, 3),
        "average_talk_seconds": _rounded(item.average_talk_seconds),
        "average_ring_seconds": _rounded(item.average_ring_seconds),
        "unique_customers": item.unique_customers,
        "callback_tasks": item.callback_tasks,
        "callbacks_returned": item.callbacks_returned,
        "callbacks_returned_in_time": item.callbacks_returned_in_time,
        "median_seconds_to_return": _rounded(item.median_seconds_to_return),
        "leads_created": item.leads.created,
        "leads_converted": item.leads.converted,
        "conversion_rate": item.conversion_rate,
        "deals_opened": item.deals.opened,
        "deals_won": item.deals.won,
        "amount_won": {currency: f"{amount:.2f}" for currency, amount in item.amounts_won().items()},
        "calls_per_won_deal": item.calls_per_won_deal,
        "won_deals_without_calls": list(item.won_deals_without_calls),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
