"""Request and response models of the reports (`/api/v1/stats/...`)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from api.schemas import PbxFilter
from calltracking.stats.queues import AgentFigures, QueueFigures, QueueReport

# The zones a report may be counted in, listed in the document so that it promises no name the server
# refuses.
TIME_ZONES = sorted(available_timezones())
ZONE_NAMES: JsonDict = {"enum": [zone for zone in TIME_ZONES]}
# A day or an instant of a report's period: what `Period.parse` reads.
PERIOD_BOUND: JsonDict = {
    "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]
}
QUEUE_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"


def period_bound(value: object) -> str | None:
    """A query's `from`/`to`: a date (YYYY-MM-DD) or an ISO 8601 date-time with its zone, kept as text for
    `Period.parse`. Nothing else (pydantic would read `0.5` as a Unix time)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("expected a date (YYYY-MM-DD) or an ISO 8601 date-time with a zone")
    try:
        if len(value) == 10:
            date.fromisoformat(value)
            return value
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError("expected a date (YYYY-MM-DD) or an ISO 8601 date-time with a zone") from exc
    if moment.tzinfo is None or not value[:4].isdigit():
        raise ValueError("expected a date (YYYY-MM-DD) or an ISO 8601 date-time with a zone")
    return value


class PeriodOut(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from", description="the period's start, UTC")
    to: datetime = Field(description="the period's end (not included), UTC")
    tz: str = Field(description="the zone whose days the period is counted in")


class ReportQuery(BaseModel):
    """The period and PBX every report is asked for, read the same way by all of them."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(
        default=None,
        alias="from",
        json_schema_extra=PERIOD_BOUND,
        description="calls started at or after: a date (local midnight in `tz`) or an ISO 8601 date-time "
        "with its zone, on a quarter hour; default: the first of this month",
    )
    to: str | None = Field(
        default=None,
        json_schema_extra=PERIOD_BOUND,
        description="calls started before: an ISO 8601 date-time on a quarter hour, or a date, included "
        "(the period ends at the next local midnight); default: the end of today",
    )
    tz: str | None = Field(
        default=None,
        json_schema_extra=ZONE_NAMES,
        description="an IANA time zone; default: the `[stats] timezone` setting, else the first PBX's",
    )
    pbx: PbxFilter = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _period_bound(cls, value: object) -> str | None:
        return period_bound(value)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in TIME_ZONES:
            raise ValueError("expected an IANA time zone, e.g. Europe/Moscow")
        return value


class QueueStatsQuery(ReportQuery):
    queue: str | None = Field(default=None, pattern=QUEUE_PATTERN, description="one queue")
    service_level_seconds: float | None = Field(
        default=None,
        gt=0,
        le=86400,
        description="answered within this many seconds counts for the service level; default: the "
        "`[stats] queue_service_level_seconds` setting",
    )


class QueueAgentOut(BaseModel):
    agent: str = Field(description="the extension that answered")
    answered: int
    talk_seconds: float
    average_talk_seconds: float

    @classmethod
    def of(cls, figures: AgentFigures) -> QueueAgentOut:
        return cls(
            agent=figures.agent,
            answered=figures.answered,
            talk_seconds=figures.talk_seconds,
            average_talk_seconds=figures.average_talk_seconds,
        )


class QueueLineOut(BaseModel):
    queue: str | None = Field(description="the queue; null in the total")
    offered: int = Field(description="calls that joined the queue")
    answered: int
    abandoned: int = Field(description="the caller hung up while waiting")
    other_unanswered: int = Field(description="left unanswered otherwise: a timeout, no agent, an exit key")
    short_abandoned: int = Field(description="abandoned within 10 s")
    abandoned_average_wait_seconds: float | None
    abandoned_p90_wait_seconds: float | None
    answered_within_service_level: int
    service_level: float | None = Field(description="answered within the service level / offered")
    answered_average_wait_seconds: float | None
    answered_p90_wait_seconds: float | None
    agents: list[QueueAgentOut]

    @classmethod
    def of(cls, figures: QueueFigures) -> QueueLineOut:
        return cls(
            queue=figures.queue,
            offered=figures.offered,
            answered=figures.answered,
            abandoned=figures.abandoned,
            other_unanswered=figures.other_unanswered,
            short_abandoned=figures.short_abandoned,
            abandoned_average_wait_seconds=figures.abandoned_average_wait_seconds,
            abandoned_p90_wait_seconds=figures.abandoned_p90_wait_seconds,
            answered_within_service_level=figures.answered_within_service_level,
            service_level=figures.service_level,
            answered_average_wait_seconds=figures.answered_average_wait_seconds,
            answered_p90_wait_seconds=figures.answered_p90_wait_seconds,
            agents=[QueueAgentOut.of(agent) for agent in figures.agents],
        )


class QueueReportOut(BaseModel):
    period: PeriodOut
    service_level_seconds: float
    queues: list[QueueLineOut]
    total: QueueLineOut

    @classmethod
    def of(cls, period: PeriodOut, report: QueueReport) -> QueueReportOut:
        return cls(
            period=period,
            service_level_seconds=report.service_level_seconds,
            queues=[QueueLineOut.of(line) for line in report.queues],
            total=QueueLineOut.of(report.total),
        )
