"""Request and response models of the CRM mirror endpoints. The item models themselves
(`ContactIn`, ...) live in calltracking/crm.py, shared with `calltracking import`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.cursors import ID_CURSOR_PATTERN
from api.schemas import PbxFilter, iso_8601_utc
from calltracking.calls.record import EntityKind
from calltracking.crm.callbacks import CallbackTask, SlaLine
from calltracking.crm.mirror import EXTERNAL_ID_PATTERN, Deal, Entity, EntityOrigin, Manager, RowError

MAX_BULK_ITEMS = 10_000


class BulkIn(BaseModel):
    """Up to 10,000 items; each is checked on its own against the item schema of the endpoint."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    items: list[dict[str, Any]] = Field(max_length=MAX_BULK_ITEMS)


class RowErrorOut(BaseModel):
    index: int = Field(description="position of the item in `items`")
    external_id: str | None
    errors: list[str]

    @classmethod
    def of(cls, error: RowError) -> RowErrorOut:
        return cls(index=error.index, external_id=error.external_id, errors=list(error.errors))


class BulkOut(BaseModel):
    created: int
    updated: int
    rejected: int
    errors: list[RowErrorOut]


class PhoneOut(BaseModel):
    raw: str
    e164: str | None
    is_valid: bool


class ManagerOut(BaseModel):
    id: int
    external_id: str
    name: str
    extensions: list[str]
    team: str | None
    is_active: bool

    @classmethod
    def of(cls, manager: Manager) -> ManagerOut:
        return cls(
            id=manager.id,
            external_id=manager.external_id,
            name=manager.name,
            extensions=list(manager.extensions),
            team=manager.team,
            is_active=manager.is_active,
        )


class EntityOut(BaseModel):
    id: int
    kind: EntityKind
    external_id: str
    name: str | None
    owner: str | None
    company: str | None
    status: str | None
    source: str | None
    medium: str | None
    campaign: str | None
    converted_to: str | None
    origin: EntityOrigin
    is_active: bool
    merged_into_id: int | None
    first_call_id: int | None
    phones: list[PhoneOut]
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime | None

    @classmethod
    def of(cls, entity: Entity) -> EntityOut:
        return cls(
            id=entity.id,
            kind=entity.kind,
            external_id=entity.external_id,
            name=entity.name,
            owner=entity.owner,
            company=entity.company,
            status=entity.status,
            source=entity.source,
            medium=entity.medium,
            campaign=entity.campaign,
            converted_to=entity.converted_to,
            origin=entity.origin,
            is_active=entity.is_active,
            merged_into_id=entity.merged_into_id,
            first_call_id=entity.first_call_id,
            phones=[PhoneOut(raw=p.raw, e164=p.e164, is_valid=p.is_valid) for p in entity.phones],
            created_at=entity.created_at,
            updated_at=entity.updated_at,
            last_activity_at=entity.last_activity_at,
        )


class DealOut(BaseModel):
    id: int
    external_id: str
    name: str | None
    contact: str | None
    company: str | None
    lead: str | None
    owner: str | None
    stage: str | None
    amount: Decimal | None
    currency: str | None
    opened_at: datetime | None
    closed_at: datetime | None
    is_won: bool | None
    is_active: bool

    @classmethod
    def of(cls, deal: Deal) -> DealOut:
        return cls(
            id=deal.id,
            external_id=deal.external_id,
            name=deal.name,
            contact=deal.contact,
            company=deal.company,
            lead=deal.lead,
            owner=deal.owner,
            stage=deal.stage,
            amount=deal.amount,
            currency=deal.currency,
            opened_at=deal.opened_at,
            closed_at=deal.closed_at,
            is_won=deal.is_won,
            is_active=deal.is_active,
        )


class LeadQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    created_since: datetime | None = Field(default=None, description="leads created at or after (ISO 8601)")
    cursor: str | None = Field(
        default=None, pattern=ID_CURSOR_PATTERN, description="next_cursor of the last page (an id)"
    )
    limit: int = Field(default=100, ge=1, le=1000)

    @field_validator("created_since", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> datetime | None:
        return iso_8601_utc(value)


class LeadPage(BaseModel):
    items: list[EntityOut]
    next_cursor: str | None


class LookupQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str = Field(pattern=r"^[0-9+() .\-]{1,32}$", description="the caller's number as the PBX has it")
    format: Literal["json", "text"] = Field(
        default="json", description="`text` answers `name|extension` for the dialplan's CURL()"
    )


class LookupEntityOut(BaseModel):
    id: int
    kind: EntityKind
    external_id: str
    name: str | None
    matched_by: str


class LookupManagerOut(BaseModel):
    external_id: str
    name: str | None
    extension: str | None


class LookupOut(BaseModel):
    number: str
    e164: str | None
    found: bool
    name: str = Field(description="for CALLERID(name); empty when unknown")
    extension: str = Field(description="the responsible manager's extension; empty when none")
    entity: LookupEntityOut | None
    manager: LookupManagerOut | None


class CallbackQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["open", "overdue", "done"] | None = Field(
        default=None, description="overdue = open and past its due time"
    )
    manager: str | None = Field(default=None, pattern=EXTERNAL_ID_PATTERN, description="the manager's CRM id")
    pbx: PbxFilter = None
    cursor: str | None = Field(
        default=None, pattern=ID_CURSOR_PATTERN, description="next_cursor of the last page (an id)"
    )
    limit: int = Field(default=100, ge=1, le=1000)


class CallbackOut(BaseModel):
    id: int
    number: str
    state: Literal["open", "done"]
    is_overdue: bool
    manager: str | None
    entity_id: int | None
    missed_call_id: int | None
    missed_calls: int
    missed_at: datetime
    last_missed_at: datetime
    due_at: datetime
    closed_at: datetime | None
    closed_by_call_id: int | None
    returned_by: str | None
    seconds_to_return: float | None

    @classmethod
    def of(cls, task: CallbackTask, now: datetime) -> CallbackOut:
        return cls(
            id=task.id,
            number=task.number,
            state=task.state.value,
            is_overdue=task.is_overdue(now),
            manager=task.manager,
            entity_id=task.entity_id,
            missed_call_id=task.missed_call_id,
            missed_calls=task.missed_calls,
            missed_at=task.missed_at,
            last_missed_at=task.last_missed_at,
            due_at=task.due_at,
            closed_at=task.closed_at,
            closed_by_call_id=task.closed_by_call_id,
            returned_by=task.returned_by,
            seconds_to_return=task.seconds_to_return,
        )


class CallbackPage(BaseModel):
    items: list[CallbackOut]
    next_cursor: str | None


class CallbackReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: datetime | None = Field(default=None, alias="from", description="missed at or after (ISO 8601)")
    to: datetime | None = Field(default=None, description="missed before (ISO 8601)")
    manager: str | None = Field(default=None, pattern=EXTERNAL_ID_PATTERN)
    pbx: PbxFilter = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _iso_8601(cls, value: object) -> datetime | None:
        return iso_8601_utc(value)


class SlaLineOut(BaseModel):
    manager: str | None
    tasks: int = Field(description="missed customers (a task per number, however often they called)")
    missed_calls: int
    returned: int
    returned_in_time: int
    open: int
    overdue: int
    share_returned_in_time: float | None = Field(
        description="returned in time / (returned + overdue); null when nothing is decided yet"
    )

    @classmethod
    def of(cls, line: SlaLine) -> SlaLineOut:
        return cls(
            manager=line.manager,
            tasks=line.tasks,
            missed_calls=line.missed_calls,
            returned=line.returned,
            returned_in_time=line.returned_in_time,
            open=line.open,
            overdue=line.overdue,
            share_returned_in_time=line.share_returned_in_time,
        )


class CallbackReportOut(BaseModel):
    sla_minutes: float
    total: SlaLineOut
    managers: list[SlaLineOut]
    unreturned: list[CallbackOut]
