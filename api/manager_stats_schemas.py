"""Request and response models of the per-manager report (`/api/v1/stats/managers`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.stats_schemas import _PERIOD_BOUND, _ZONE_NAMES, PBX_PATTERN, PeriodOut, period_bound
from calltracking.crm.mirror import EXTERNAL_ID_PATTERN

TEAM_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"


class ManagerStatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(
        default=None,
        alias="from",
        json_schema_extra=_PERIOD_BOUND,
        description="calls started at or after: a date (local midnight in `tz`) or an ISO 8601 date-time "
        "with its zone, on a quarter hour; default: the first of this month",
    )
    to: str | None = Field(
        default=None,
        json_schema_extra=_PERIOD_BOUND,
        description="a date, included (the period ends at the next local midnight), or an ISO 8601 "
        "date-time on a quarter hour, not included; default: the end of today",
    )
    tz: str | None = Field(
        default=None,
        json_schema_extra=_ZONE_NAMES,
        description="an IANA time zone; default: the `[stats] timezone` setting, else the first PBX's",
    )
    team: str | None = Field(default=None, pattern=TEAM_PATTERN, description="one team's managers")
    pbx: str | None = Field(default=None, pattern=PBX_PATTERN, description="one PBX's calls")
    business_hours: bool = Field(
        default=False, description="only calls (and missed-call tasks) inside `[stats]` business hours"
    )
    format: str | None = Field(
        default=None,
        pattern=r"^(json|csv|xlsx)$",
        description="instead of the Accept header: `csv` or `xlsx` (Excel workbook)",
    )

    _bounds = field_validator("from_", "to", mode="before")(period_bound)


class ManagerLineOut(BaseModel):
    key: str = Field(description="the manager's CRM id, `ext:<extension>`, `team:<name>` or `total`")
    manager_id: str | None
    name: str | None
    team: str | None
    extensions: list[str]
    inactive: bool = Field(description="no calls and no deals in the period")
    deals_without_calls: bool = Field(description="deals opened or won in the period, and no calls")
    inbound_received: int = Field(description="answered by them, or missed after ringing their phone")
    inbound_answered: int
    inbound_missed: int
    answer_rate: float | None
    outbound_made: int
    outbound_answered: int
    internal_calls: int
    talk_seconds: float = Field(description="with customers: inbound and outbound")
    average_talk_seconds: float | None
    average_ring_seconds: float | None = Field(description="how long inbound calls rang before they answered")
    unique_customers: int
    callback_tasks: int = Field(description="missed-call tasks assigned to them, missed in the period")
    callbacks_returned: int
    callbacks_returned_in_time: int = Field(description="returned within `[crm] callback_due_minutes`")
    median_seconds_to_return: float | None
    leads_created: int = Field(description="leads this service created for callers, owned by them")
    leads_converted: int
    conversion_rate: float | None
    deals_opened: int
    deals_won: int
    amount_won: dict[str, str] = Field(description='by currency (`""` when the CRM sent none)')
    calls_per_won_deal: float | None
    won_deals_without_calls: list[str] = Field(
        description="deals won in the period with no call to or from any of their numbers"
    )


class ManagerReportOut(BaseModel):
    period: PeriodOut
    business_hours: bool
    managers: list[ManagerLineOut]
    teams: list[ManagerLineOut]
    total: ManagerLineOut | None = Field(description="null for a manager token, who sees only their line")


class SeriesPointOut(BaseModel):
    label: str = Field(description="a local date (YYYY-MM-DD), or an hour of the day (00-23)")
    inbound_received: int
    inbound_answered: int
    inbound_missed: int
    outbound_made: int
    outbound_answered: int
    internal_calls: int
    talk_seconds: float


class ManagerSeriesOut(BaseModel):
    days: list[SeriesPointOut]
    hours: list[SeriesPointOut]


class ManagerDetailOut(BaseModel):
    period: PeriodOut
    business_hours: bool
    manager: ManagerLineOut
    series: ManagerSeriesOut


MANAGER_ID = {"manager_id": {"type": "string", "pattern": EXTERNAL_ID_PATTERN}}
