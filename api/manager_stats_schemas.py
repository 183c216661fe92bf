"""Request and response models of the per-manager report (`/api/v1/stats/managers`)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.stats_schemas import PeriodOut, ReportQuery
from calltracking.crm.mirror import EXTERNAL_ID_PATTERN

TEAM_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"


class ManagerStatsQuery(ReportQuery):
    team: str | None = Field(default=None, pattern=TEAM_PATTERN, description="one team's managers")
    business_hours: bool = Field(
        default=False, description="only calls (and missed-call tasks) inside `[stats]` business hours"
    )
    format: str | None = Field(
        default=None,
        pattern=r"^(json|csv|xlsx)$",
        description="instead of the Accept header: `csv` or `xlsx` (Excel workbook)",
    )


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
