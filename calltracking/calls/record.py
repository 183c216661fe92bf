"""What a call is, once the PBX is done with it: the record every other part of the service works from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from calltracking.numbers import is_e164


class EntityKind(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"
    LEAD = "lead"


@dataclass(frozen=True, slots=True)
class EntityRef:
    """The entity a call landed on, as call history, screen pops and webhooks name it."""

    id: int
    kind: EntityKind
    external_id: str
    name: str | None

    def view(self) -> dict[str, object]:
        return {"id": self.id, "kind": self.kind.value, "external_id": self.external_id, "name": self.name}


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class CallStatus(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAILED = "failed"


class CallOrigin(StrEnum):
    PBX = "pbx"
    CLICK_TO_CALL = "click_to_call"


class LegKind(StrEnum):
    TRUNK = "trunk"
    EXTENSION = "extension"
    LOCAL = "local"


@dataclass(frozen=True, slots=True)
class CallLeg:
    """One PBX channel of a call, kept so a supervisor can see who rang and who talked."""

    channel_id: str
    channel: str
    endpoint: str
    kind: LegKind
    created_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    hangup_cause: int | None


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A completed call. `pbx` + `pbx_call_id` (Asterisk's Linkedid) identify it across replays."""

    pbx: str
    pbx_call_id: str
    direction: Direction
    status: CallStatus
    origin: CallOrigin
    caller: str
    callee: str
    started_at: datetime
    ended_at: datetime
    ring_seconds: float
    talk_seconds: float
    did: str | None = None
    caller_number: str | None = None
    callee_number: str | None = None
    request_id: str | None = None
    answered_by: str | None = None
    manager: str | None = None
    rang: tuple[str, ...] = ()
    queue: str | None = None
    transferred_to: tuple[str, ...] = ()
    abandoned: bool = False
    reconciled: bool = False
    answered_at: datetime | None = None
    hangup_by: str | None = None
    failure_reason: str | None = None
    recording_file: str | None = None
    recording_channel: str | None = None
    legs: tuple[CallLeg, ...] = field(default=())
    # From joining the queue to an agent's answer, or to leaving it unanswered (None: never queued).
    queue_wait_seconds: float | None = None
    # Call tracking, stamped when the call is written (`CallAttribution`): where it came from and how it
    # counts. None until then, and for calls that are not inbound.
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    tracking_session_id: int | None = None
    first_time_caller: bool | None = None
    is_target: bool | None = None

    @property
    def external_number(self) -> str | None:
        """The customer's side: who called in, or whom a manager called out to."""
        if self.direction is Direction.INBOUND:
            return self.caller_number
        if self.direction is Direction.OUTBOUND:
            return self.callee_number
        return None

    @property
    def customer_number(self) -> str | None:
        """The customer's number when it is a phone number (E.164): what stats and call tracking count
        customers by. A caller ID that is an extension or not a number is no customer's."""
        number = self.external_number
        return number if number is not None and is_e164(number) else None


@dataclass(frozen=True, slots=True)
class StoredCall:
    """A call as the database holds it: the record plus the id the API and CRM refer to it by."""

    id: int
    call: CallRecord


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What a call-history query asks for. `numbers` are the forms the customer's number may be stored in."""

    started_from: datetime | None = None
    started_before: datetime | None = None
    # One PBX's calls (its `[[pbx]] name`).
    pbx: str | None = None
    manager: str | None = None
    direction: Direction | None = None
    status: CallStatus | None = None
    numbers: frozenset[str] = frozenset()
    did: str | None = None
    has_recording: bool | None = None
    # A CRM entity as (kind, external_id): its calls, including those matched before the CRM sent it.
    entity: tuple[str, str] | None = None
    # Words every one of which the call's transcript contains (full-text search).
    text: str | None = None


class ProgressKind(StrEnum):
    RINGING = "ringing"  # an extension's phone rings (screen pop)
    DIALING_CUSTOMER = "dialing_customer"  # the PBX called out to the carrier
    ANSWERED = "answered"  # a person was connected with the other side
    ORIGINATE_FAILED = "originate_failed"  # the first leg of an Originate did not come up


@dataclass(frozen=True, slots=True)
class CallProgress:
    """Something that happened in a call still going on, for click-to-call status, screen pops, webhooks."""

    kind: ProgressKind
    pbx: str
    pbx_call_id: str
    at: datetime
    direction: Direction
    caller: str
    callee: str
    extension: str | None = None
    request_id: str | None = None
    reason: str | None = None
    # The CRM entity of the customer's number, for a screen pop (set by the hub's enricher).
    entity: EntityRef | None = None


@dataclass(frozen=True, slots=True)
class CallCompleted:
    """A call just written to the database, with the id the API knows it by."""

    call_id: int
    call: CallRecord
    entity: EntityRef | None = None


LiveEvent = CallProgress | CallCompleted
