"""Request and response models of the REST API (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.cursors import CALL_CURSOR_PATTERN
from calltracking.calls.record import CallStatus, Direction, EntityKind, EntityRef, LegKind, StoredCall
from calltracking.calls.recording import Recording, recording_state_of, recording_view
from calltracking.crm.match_repository import StoredMatch
from calltracking.crm.mirror import EXTERNAL_ID_PATTERN
from calltracking.store.times import as_utc

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
EXTENSION_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
NUMBER_PATTERN = r"^\+?[ ()\-.]*(?:[0-9][ ()\-.]*){2,20}$"
# What a customer's number may look like in a search: digits and the usual formatting.
SEARCH_NUMBER_PATTERN = r"^[0-9+() .\-]{1,32}$"
DID_PATTERN = r"^[0-9A-Za-z+*#_.\-]{1,64}$"
# A transcript search: any text but control characters (NUL included), bounded.
TRANSCRIPT_QUERY_PATTERN = r"^[^\x00-\x1f\x7f]*$"
TRANSCRIPT_QUERY_MAX = 200
# The `pbx` filter of every list and report: one configured PBX's rows. Any printable name passes the
# pattern (the settings allow letters of any script); a name no `[[pbx]]` has is refused 400 `unknown_pbx`.
PbxFilter = Annotated[
    str | None,
    Field(
        pattern=r"^[^\x00-\x1f\x7f]{1,64}$",
        description="only this PBX's calls: a configured `[[pbx]] name` (another name: 400 `unknown_pbx`)",
    ),
]


def iso_8601_utc(value: object) -> datetime | None:
    """A query's time: ISO 8601 only (pydantic would also read `0.5` as a Unix time), in UTC (no zone means
    UTC), so it compares right with stored times on SQLite too; a bound beyond what UTC times hold (year 1
    ahead of UTC) is taken as the earliest or latest time."""
    if value is None or isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value[:4].isdigit() and "-" in value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValueError("expected an ISO 8601 date-time, e.g. 2026-11-22T12:00:00Z") from exc
    else:
        raise ValueError("expected an ISO 8601 date-time, e.g. 2026-11-22T12:00:00Z")
    if parsed is None:
        return None
    return as_utc(parsed)


def whole_number(value: object) -> object:
    """A JSON number with no fraction (`2.0`) as the integer it is; anything else as it came, for a strict
    integer field to accept or refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    error: ErrorBody


class HealthOut(BaseModel):
    status: Literal["ok"]


class PbxReadiness(BaseModel):
    name: str
    connected: bool
    # False on a hot-standby process: another `serve` holds this PBX's lease and listens to it.
    listening: bool = True


class ReadyOut(BaseModel):
    ready: bool
    database: bool
    pbxs: list[PbxReadiness]
    spool_depth: int


class CallQuery(_Strict):
    from_: datetime | None = Field(
        default=None, alias="from", description="calls started at or after (ISO 8601)"
    )
    to: datetime | None = Field(default=None, description="calls started before (ISO 8601)")
    pbx: PbxFilter = None
    manager: str | None = Field(default=None, pattern=EXTENSION_PATTERN)
    direction: Direction | None = None
    status: CallStatus | None = None
    number: str | None = Field(
        default=None, pattern=SEARCH_NUMBER_PATTERN, description="the customer's number, in any usual format"
    )
    did: str | None = Field(default=None, pattern=DID_PATTERN, description="the tracking number (DID) called")
    has_recording: bool | None = None
    entity: str | None = Field(
        default=None,
        pattern=r"^(contact|company|lead):[A-Za-z0-9._:@+\-]{1,128}$",
        description="calls of one CRM entity, as `kind:external_id`, e.g. `contact:c-100`",
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=TRANSCRIPT_QUERY_MAX,
        pattern=TRANSCRIPT_QUERY_PATTERN,
        description="words every one of which the call's transcript contains (full-text search)",
    )
    sort: Literal["started_at", "-started_at"] = "-started_at"
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(
        default=None,
        pattern=CALL_CURSOR_PATTERN,
        description="next_cursor of the previous page: `<microseconds since 1970-01-01T00:00:00Z>_<id>` of "
        "the page's last call",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _iso_8601_utc(cls, value: object) -> datetime | None:
        return iso_8601_utc(value)


class EntityRefOut(BaseModel):
    id: int
    kind: EntityKind
    external_id: str
    name: str | None

    @classmethod
    def of(cls, ref: EntityRef | None) -> EntityRefOut | None:
        if ref is None:
            return None
        return cls.model_construct(id=ref.id, kind=ref.kind, external_id=ref.external_id, name=ref.name)


class RecordingOut(BaseModel):
    """A call's stored audio. `url` streams it (Range requests work); `sides` can be asked for with
    `?side=` when the PBX recorded each direction apart."""

    duration_seconds: float
    format: str
    sides: list[Literal["customer", "manager"]]
    sha256: str = Field(description="SHA-256 of the audio `url` returns")
    source_sha256: str | None = Field(description="SHA-256 of the file the PBX wrote")
    bytes: int
    is_truncated: bool = Field(description="the PBX stopped writing the file early; what it holds is kept")
    url: str

    @classmethod
    def of(cls, call_id: int, recording: Recording | None) -> RecordingOut | None:
        view = recording_view(call_id, recording)
        return None if view is None else cls.model_validate(view)


RecordingStateName = Literal[
    "none", "pending", "ready", "empty", "missing", "quarantined", "refused", "deleting", "deleted"
]


class CallOut(BaseModel):
    id: int
    pbx: str
    linkedid: str
    direction: Direction
    status: CallStatus
    origin: str
    request_id: str | None
    caller: str
    callee: str
    did: str | None
    caller_number: str | None
    callee_number: str | None
    answered_by: str | None
    manager: str | None
    rang: list[str]
    queue: str | None
    transferred_to: list[str]
    abandoned: bool
    reconciled: bool
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    ring_seconds: float
    talk_seconds: float
    hangup_by: str | None
    failure_reason: str | None
    queue_wait_seconds: float | None = Field(
        default=None, description="from joining the queue to an agent's answer, or to leaving unanswered"
    )
    source: str | None = Field(default=None, description="inbound: the DID's or the website visit's source")
    medium: str | None = None
    campaign: str | None = None
    tracking_session_id: int | None = Field(
        default=None, description="the website visit whose pool number was called (README: Call tracking)"
    )
    first_time_caller: bool | None = Field(
        default=None, description="inbound: no earlier call from the number"
    )
    is_target: bool | None = Field(
        default=None, description="inbound: answered and talked longer than `[tracking] target_talk_seconds`"
    )
    unique_in_period: bool | None = Field(
        default=None,
        description="inbound, when the history is asked `from` a time: the caller's first call since then "
        "(before `to`); the calls marked so are the period's unique callers",
    )
    has_recording: bool = Field(description="the recording's audio is stored and can be played")
    recording: RecordingOut | None = None
    recording_state: RecordingStateName = Field(
        default="none",
        description="none (not recorded), pending, ready, empty (nobody spoke), missing (the file never "
        "came), quarantined (not audio), refused (a path outside the monitor directory), deleting/deleted "
        "(retention)",
    )
    entity: EntityRefOut | None = Field(
        default=None, description="the contact, company or lead the customer's number matched"
    )

    @classmethod
    def of(
        cls, stored: StoredCall, entity: EntityRef | None = None, recording: Recording | None = None
    ) -> CallOut:
        """Built without re-validation: the record comes from our own database, already checked on the way
        in (validating every row of every page cost about a third of a history request's CPU)."""
        call = stored.call
        return cls.model_construct(
            id=stored.id,
            pbx=call.pbx,
            linkedid=call.pbx_call_id,
            direction=call.direction,
            status=call.status,
            origin=call.origin.value,
            request_id=call.request_id,
            caller=call.caller,
            callee=call.callee,
            did=call.did,
            caller_number=call.caller_number,
            callee_number=call.callee_number,
            answered_by=call.answered_by,
            manager=call.manager,
            rang=list(call.rang),
            queue=call.queue,
            transferred_to=list(call.transferred_to),
            abandoned=call.abandoned,
            reconciled=call.reconciled,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=call.ended_at,
            ring_seconds=call.ring_seconds,
            talk_seconds=call.talk_seconds,
            hangup_by=call.hangup_by,
            failure_reason=call.failure_reason,
            queue_wait_seconds=call.queue_wait_seconds,
            source=call.source,
            medium=call.medium,
            campaign=call.campaign,
            tracking_session_id=call.tracking_session_id,
            first_time_caller=call.first_time_caller,
            is_target=call.is_target,
            has_recording=recording is not None and recording.is_ready,
            recording=RecordingOut.of(stored.id, recording),
            recording_state=cast(
                RecordingStateName, recording_state_of(recording, call.recording_file is not None)
            ),
            entity=EntityRefOut.of(entity),
        )


class LegOut(BaseModel):
    channel: str
    endpoint: str
    kind: LegKind
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: int | None


class CandidateOut(BaseModel):
    id: int
    kind: EntityKind
    external_id: str
    name: str | None
    owner: str | None
    matched_by: Literal["number", "tail"]
    has_open_deal: bool


class CallMatchOut(BaseModel):
    """How the call landed on the CRM: every candidate in rank order (the first one won), whether this
    call created its lead, and the callback task it opened, joined or closed."""

    candidates: list[CandidateOut]
    lead_created: bool
    callback_id: int | None

    @classmethod
    def of(cls, match: StoredMatch | None) -> CallMatchOut | None:
        if match is None:
            return None
        return cls(
            candidates=[CandidateOut.model_validate(candidate) for candidate in match.candidates],
            lead_created=match.lead_created,
            callback_id=match.callback_id,
        )


class CallDetailOut(CallOut):
    legs: list[LegOut]
    match: CallMatchOut | None = None

    @classmethod
    def of_detail(
        cls,
        stored: StoredCall,
        entity: EntityRef | None = None,
        match: StoredMatch | None = None,
        recording: Recording | None = None,
    ) -> CallDetailOut:
        legs = [
            LegOut(
                channel=leg.channel,
                endpoint=leg.endpoint,
                kind=leg.kind,
                created_at=leg.created_at,
                answered_at=leg.answered_at,
                ended_at=leg.ended_at,
                hangup_cause=leg.hangup_cause,
            )
            for leg in stored.call.legs
        ]
        summary = CallOut.of(stored, entity, recording)
        return cls.model_construct(
            **{name: getattr(summary, name) for name in CallOut.model_fields},
            legs=legs,
            match=CallMatchOut.of(match),
        )


class CallPage(BaseModel):
    items: list[CallOut]
    next_cursor: str | None


class OriginateIn(_Strict):
    """Who to ring first, as exactly one of `extension` or `manager` (the other absent or null)."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("extension", "manager")
            ]
        },
    )

    extension: str | None = Field(
        default=None, pattern=EXTENSION_PATTERN, description="the manager's extension"
    )
    manager: str | None = Field(
        default=None,
        pattern=EXTERNAL_ID_PATTERN,
        description="the manager's CRM id (their first extension rings); a manager the CRM mirror does not "
        "know is taken as an extension",
    )
    number: str = Field(
        min_length=2,
        max_length=40,
        pattern=NUMBER_PATTERN,
        description="the customer's number as the PBX should dial it: digits, an optional leading +, "
        "spaces, dashes, dots and brackets",
    )
    request_id: str | None = Field(
        default=None, pattern=REQUEST_ID_PATTERN, description="the CRM's id for this call"
    )
    pbx: str | None = Field(
        default=None, max_length=64, description="which PBX (default: the first configured)"
    )

    @field_validator("number")
    @classmethod
    def _dialable(cls, value: str) -> str:
        digits = "".join(ch for ch in value if ch not in " ()-.")
        body = digits[1:] if digits.startswith("+") else digits
        if not body.isdigit() or not 2 <= len(body) <= 20:
            raise ValueError(
                "number must be digits, optionally with a leading + (spaces, dashes, brackets allowed)"
            )
        return digits

    @model_validator(mode="after")
    def _one_caller(self) -> OriginateIn:
        if (self.extension is None) == (self.manager is None):
            raise ValueError("give exactly one of extension or manager")
        return self

    @property
    def who(self) -> str:
        return self.extension or self.manager or ""


class OriginateAccepted(BaseModel):
    request_id: str
    status: str
    status_url: str


class OriginateStatusOut(BaseModel):
    request_id: str
    pbx: str
    extension: str
    number: str
    status: Literal["queued", "ringing_manager", "ringing_customer", "answered", "failed"]
    reason: str | None
    call_id: int | None
    created_at: datetime
    updated_at: datetime


def call_payload(stored: StoredCall, entity: EntityRef | None) -> dict[str, Any]:
    """A completed call in webhooks and on the WebSocket: the same shape as the call history's items."""
    return CallOut.of(stored, entity).model_dump(mode="json")
