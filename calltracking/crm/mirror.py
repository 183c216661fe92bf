"""The CRM mirror: the few facts about managers, contacts, companies, leads and deals that calls need.

The CRM is the source of truth and sends these by its own ids (`external_id`); one entity refers to
another by that id (a contact's `company`, anyone's `owner`), so the CRM may load them in any order and
a reference to something not loaded yet is not an error. The input models below are shared by the REST
API and `calltracking import`, so both accept and refuse exactly the same rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from calltracking.calls.record import EntityKind
from calltracking.numbers import Phone

# What a CRM id may look like: it is used in URL paths, so no slash, space or control characters.
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._:@+\-]{1,128}$"
EXTENSION_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"
MAX_PHONES = 20
AUTO_LEAD_PREFIX = "ct-"
MAX_AMOUNT = 10**15 - 1
AMOUNT_PATTERN = r"^(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,2})?$"
_AMOUNT = re.compile(AMOUNT_PATTERN.removesuffix("$") + r"\Z")
_RFC_3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)

# What pydantic's strip_whitespace removes at either end: Unicode White_Space.
_SPACE = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def trimmed_text(min_length: int, max_length: int) -> str:
    """A pattern for free text of `min_length` to `max_length` characters once white space is stripped
    from both ends, without a NUL byte (no database stores one). The lengths are in the pattern, not in
    minLength/maxLength, which the document would apply to the text before stripping."""
    edge, inner = f"[^\\x00{_SPACE}]", r"[^\x00]"
    core = edge if max_length == 1 else f"{edge}(?:{inner}{{0,{max_length - 2}}}{edge})?"
    if min_length == 0:
        core = f"(?:{core})?"
    return f"^[{_SPACE}]*{core}[{_SPACE}]*$"


def _text(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, pattern=trimmed_text(min_length, max_length))


ExternalId = Annotated[str, StringConstraints(pattern=EXTERNAL_ID_PATTERN)]
Text = Annotated[str, _text(0, 256)]
ShortText = Annotated[str, _text(0, 128)]
RawPhone = Annotated[str, _text(1, 64)]
Label = Annotated[str, _text(0, 64)]


class EntityOrigin(StrEnum):
    CRM = "crm"  # sent by the CRM
    CALL = "call"  # created here for an unknown caller


class CrmInput(BaseModel):
    """What every CRM item has: the CRM's id, and whether it is active."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: ExternalId
    # Strict: a JSON 0 or "no" is a mistake in an API request (the CSV import reads its own words).
    is_active: StrictBool = True

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # No database stores a NUL byte (PostgreSQL refuses one): refuse the row, not the batch.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL byte")
        if isinstance(value, list) and any(isinstance(v, str) and "\x00" in v for v in value):
            raise ValueError("contains a NUL byte")
        return value


class ManagerIn(CrmInput):
    name: Text
    extensions: list[Annotated[str, StringConstraints(pattern=EXTENSION_PATTERN)]] = Field(
        default_factory=list, max_length=20
    )
    team: ShortText | None = Field(default=None, description="the team or department, for team stats")


class _PartyIn(CrmInput):
    name: Text | None = None
    owner: ExternalId | None = Field(default=None, description="the responsible manager's CRM id")
    phones: list[RawPhone] = Field(default_factory=list, max_length=MAX_PHONES)


class ContactIn(_PartyIn):
    company: ExternalId | None = Field(default=None, description="the company's CRM id")


class CompanyIn(_PartyIn):
    pass


class LeadIn(_PartyIn):
    status: Label | None = None
    source: ShortText | None = None
    medium: ShortText | None = None
    campaign: ShortText | None = None
    converted_to: ExternalId | None = Field(
        default=None, description="the CRM id of the contact this lead became: the lead is converted"
    )


class DealIn(CrmInput):
    name: Text | None = None
    contact: ExternalId | None = None
    company: ExternalId | None = None
    lead: ExternalId | None = None
    owner: ExternalId | None = None
    stage: Label | None = None
    # Exact money: a whole number, or text with at most two decimals ("1500.50"); a JSON number with a
    # fraction is a float, and would arrive as whatever binary fraction is nearest.
    amount: Annotated[
        Decimal | None,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": AMOUNT_PATTERN},
                    {"type": "integer", "minimum": 0, "maximum": MAX_AMOUNT},
                    {"type": "null"},
                ]
            }
        ),
    ] = Field(default=None, ge=0, lt=Decimal(MAX_AMOUNT + 1), decimal_places=2)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    is_won: StrictBool | None = None

    @field_validator("amount", mode="before")
    @classmethod
    def _exact_amount(cls, value: object) -> object:
        if value is None or isinstance(value, Decimal):
            return value
        if isinstance(value, str) and _AMOUNT.match(value):
            return Decimal(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
            return Decimal(int(value))
        raise ValueError('an amount is a whole number or text with at most two decimals, e.g. "1500.50"')

    @field_validator("opened_at", "closed_at", mode="before")
    @classmethod
    def _iso_text(cls, value: object) -> object:
        """RFC 3339 text only (what `format: date-time` says): pydantic would also read a number, or
        text such as "1700000000", as a Unix time."""
        if value is None or isinstance(value, datetime):
            return value
        if not isinstance(value, str) or not _RFC_3339.match(value):
            raise ValueError("a time is RFC 3339 text with a zone, e.g. 2026-11-22T12:00:00Z")
        return value

    @field_validator("opened_at", "closed_at")
    @classmethod
    def _with_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a time needs a zone (e.g. 2026-11-22T12:00:00Z)")
        return value

    @property
    def amount_minor(self) -> int | None:
        return None if self.amount is None else int(self.amount * 100)


PartyIn = ContactIn | CompanyIn | LeadIn
KIND_OF_INPUT: dict[type[_PartyIn], EntityKind] = {
    ContactIn: EntityKind.CONTACT,
    CompanyIn: EntityKind.COMPANY,
    LeadIn: EntityKind.LEAD,
}
ImportKind = Literal["managers", "contacts", "companies", "leads", "deals"]


@dataclass(frozen=True, slots=True)
class Manager:
    id: int
    external_id: str
    name: str
    extensions: tuple[str, ...]
    is_active: bool
    team: str | None = None


@dataclass(frozen=True, slots=True)
class Entity:
    """A contact, company or lead as mirrored here."""

    id: int
    kind: EntityKind
    external_id: str
    name: str | None
    owner: str | None
    phones: tuple[Phone, ...]
    origin: EntityOrigin
    is_active: bool
    created_at: datetime
    updated_at: datetime
    company: str | None = None
    status: str | None = None
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    first_call_id: int | None = None
    converted_to: str | None = None
    merged_into_id: int | None = None
    last_activity_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Deal:
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

    @property
    def is_open(self) -> bool:
        return self.is_active and self.closed_at is None and self.is_won is None


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused row of a bulk load: where it was, which id it claimed, and what is wrong with it."""

    index: int
    external_id: str | None
    errors: tuple[str, ...]


def auto_lead_id(e164: str) -> str:
    """The CRM id of the lead created for an unknown caller: one per number by construction, so two
    writers racing on the same number meet on the same unique key."""
    return AUTO_LEAD_PREFIX + e164.lstrip("+")


InputT = TypeVar("InputT", bound=CrmInput)


def validate_rows(rows: Sequence[object], model: type[InputT]) -> tuple[list[InputT], list[RowError]]:
    """Each row on its own: a bad row is reported with its position and the others still load."""
    valid: list[InputT] = []
    errors: list[RowError] = []
    for index, row in enumerate(rows):
        try:
            valid.append(model.model_validate(row))
        except ValidationError as exc:
            external_id = row.get("external_id") if isinstance(row, dict) else None
            errors.append(
                RowError(
                    index=index,
                    external_id=str(external_id)[:128] if external_id is not None else None,
                    errors=tuple(
                        f"{'.'.join(map(str, error['loc'])) or 'row'}: {error['msg']}"
                        for error in exc.errors(include_url=False, include_input=False)
                    ),
                )
            )
    return valid, errors
