"""Request and response models of the call-quality report (`/api/v1/reports/quality`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from api.manager_stats_schemas import TEAM_PATTERN
from api.stats_schemas import PeriodOut, ReportQuery
from calltracking.quality.report import QualityLine, ReportedScore

MANAGER_KEY_PATTERN = r"^[^\x00-\x1f\x7f]{1,128}$"


class QualityReportQuery(ReportQuery):
    manager: str | None = Field(
        default=None, pattern=MANAGER_KEY_PATTERN, description="one line: a CRM id or `ext:<extension>`"
    )
    team: str | None = Field(default=None, pattern=TEAM_PATTERN, description="one team's managers")


class WorstCallOut(BaseModel):
    call_id: int
    started_at: datetime
    score: float
    passed: bool
    call: str = Field(description="the call's link")
    transcript: str = Field(description="the transcript's link")

    @classmethod
    def of(cls, scored: ReportedScore) -> WorstCallOut:
        return cls(
            call_id=scored.call_id,
            started_at=scored.started_at,
            score=scored.score,
            passed=scored.passed,
            call=f"/api/v1/calls/{scored.call_id}",
            transcript=f"/api/v1/calls/{scored.call_id}/transcript",
        )


class QualityLineOut(BaseModel):
    key: str = Field(description="the manager's CRM id, `ext:<extension>`, `team:<name>` or `total`")
    manager_id: str | None
    name: str | None
    team: str | None
    calls_scored: int
    average_score: float | None = Field(description="0-100")
    passed_share: float | None = Field(
        description="calls that said every required phrase and no forbidden one"
    )
    averages: dict[str, float | None] = Field(description="each metric's mean over the calls that have it")
    score_histogram: dict[str, int] = Field(description="calls per 10-point bucket (100 in `90-100`)")
    talk_share_quartiles: list[float] | None = Field(
        description="the manager's talk share: first quartile, median, third quartile"
    )
    hit_rates: dict[str, float] = Field(
        description="`required.<name>` / `forbidden.<name>`: share of calls the phrase was said in"
    )
    worst_calls: list[WorstCallOut] = Field(description="lowest scores first")

    @classmethod
    def of(cls, line: QualityLine) -> QualityLineOut:
        return cls(
            key=line.key,
            manager_id=line.manager_id,
            name=line.name,
            team=line.team,
            calls_scored=line.calls_scored,
            average_score=line.average_score,
            passed_share=line.passed_share,
            averages=line.averages,
            score_histogram=line.score_histogram,
            talk_share_quartiles=list(line.talk_share_quartiles) if line.talk_share_quartiles else None,
            hit_rates=line.hit_rates,
            worst_calls=[WorstCallOut.of(scored) for scored in line.worst_calls],
        )


class QualityReportOut(BaseModel):
    period: PeriodOut
    managers: list[QualityLineOut]
    total: QualityLineOut | None = Field(description="every line shown; none for a manager token")
