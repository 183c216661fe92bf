"""Request and response models of the call tracking endpoints: the website's number pool and the report
per traffic source."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from api.stats_schemas import PeriodOut, ReportQuery
from calltracking.crm.mirror import trimmed_text
from calltracking.tracking.pool import Reservation, Visit
from calltracking.tracking.sources import SourceLine


def _text(max_length: int) -> StringConstraints:
    """Free text a website sends: up to `max_length` characters once stripped, no NUL byte."""
    return StringConstraints(strip_whitespace=True, pattern=trimmed_text(0, max_length))


Utm = Annotated[str, _text(128)]
ClickId = Annotated[str, _text(256)]
Url = Annotated[str, _text(2048)]
# The site's own id of the visitor (a cookie): printable ASCII, no spaces.
VISITOR_ID_PATTERN = r"^[!-~]{1,128}$"
PBX_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
_KNOWN_ZONES = frozenset(available_timezones())
_ZONE_ENUM: list[JsonValue] = [*sorted(_KNOWN_ZONES)]


class TrackingSessionIn(BaseModel):
    """A website visit asking for its number. Send it again (same `visitor_id`) on every page view: the
    visitor keeps its number, and the number's reservation is renewed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    visitor_id: str = Field(pattern=VISITOR_ID_PATTERN, description="the site's id of the visitor")
    utm_source: Utm | None = None
    utm_medium: Utm | None = None
    utm_campaign: Utm | None = None
    utm_content: Utm | None = None
    utm_term: Utm | None = None
    gclid: ClickId | None = None
    yclid: ClickId | None = None
    landing_page: Url | None = None
    referrer: Url | None = None

    def visit(self) -> Visit:
        return Visit(
            visitor_id=self.visitor_id,
            utm_source=self.utm_source or None,
            utm_medium=self.utm_medium or None,
            utm_campaign=self.utm_campaign or None,
            utm_content=self.utm_content or None,
            utm_term=self.utm_term or None,
            gclid=self.gclid or None,
            yclid=self.yclid or None,
            landing_page=self.landing_page or None,
            referrer=self.referrer or None,
        )


class TrackingSessionOut(BaseModel):
    session_id: int
    number: str = Field(description="the number to show the visitor")
    expires_at: datetime = Field(description="until when it is theirs, unless renewed")
    is_fallback: bool = Field(description="the pool was exhausted: a shared number, not this visit's own")

    @classmethod
    def of(cls, reservation: Reservation) -> TrackingSessionOut:
        return cls(
            session_id=reservation.session_id,
            number=reservation.number,
            expires_at=reservation.expires_at,
            is_fallback=reservation.is_fallback,
        )


class SourceReportQuery(ReportQuery):
    pass


class SourceLineOut(BaseModel):
    source: str | None
    medium: str | None
    campaign: str | None
    calls: int = Field(description="inbound calls")
    answered: int
    missed: int = Field(description="inbound calls nobody answered")
    missed_share: float | None = Field(description="missed / calls; null without calls")
    target_calls: int = Field(description="answered and talked longer than target_talk_seconds")
    unique_callers: int
    first_time_callers: int = Field(description="callers whose first call ever was in the period")
    leads: int = Field(description="leads created for the period's calls")
    deals_won: int = Field(description="won deals of the entities these calls landed on, closed after")
    amount_won: Decimal

    @classmethod
    def of(cls, line: SourceLine) -> SourceLineOut:
        return cls(
            source=line.source,
            medium=line.medium,
            campaign=line.campaign,
            calls=line.calls,
            answered=line.answered,
            missed=line.missed,
            missed_share=line.missed_share,
            target_calls=line.target_calls,
            unique_callers=line.unique_callers,
            first_time_callers=line.first_time_callers,
            leads=line.leads,
            deals_won=line.deals_won,
            amount_won=line.amount_won,
        )


class SourceReportOut(BaseModel):
    period: PeriodOut
    lines: list[SourceLineOut]
    total: SourceLineOut
