"""Database tables. The same definitions run on SQLite (embedded default) and PostgreSQL.

Rows are never handed out of the repositories: they return domain dataclasses (`CallRecord`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


TALKED_CUSTOMERS = "status = 'answered' AND customer_number IS NOT NULL AND manager IS NOT NULL"


class CallRow(Base):
    __tablename__ = "calls"
    __table_args__ = (
        UniqueConstraint("pbx", "pbx_call_id"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_manager_started_at", "manager", "started_at"),
        Index("ix_calls_caller_number", "caller_number"),
        Index("ix_calls_callee_number", "callee_number"),
        # Number search also matches the raw forms (extensions, numbers that did not normalise).
        Index("ix_calls_caller", "caller"),
        Index("ix_calls_callee", "callee"),
        Index("ix_calls_request_id", "request_id"),
        # Stats: a customer's calls in time order (first-time callers, unique customers, returns), a
        # queue's calls in a period, and the calls a tracking session may have brought.
        Index("ix_calls_customer_number_started_at", "customer_number", "started_at"),
        Index("ix_calls_queue_started_at", "queue", "started_at"),
        # The customers each manager talked to in a period, read from the index alone (README "Stats").
        Index(
            "ix_calls_talked_customers",
            "started_at",
            "manager",
            "customer_number",
            postgresql_where=text(TALKED_CUSTOMERS),
            sqlite_where=text(TALKED_CUSTOMERS),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(64))
    pbx_call_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(128))
    caller: Mapped[str] = mapped_column(String(128))
    callee: Mapped[str] = mapped_column(String(128))
    did: Mapped[str | None] = mapped_column(String(64))
    caller_number: Mapped[str | None] = mapped_column(String(32))
    callee_number: Mapped[str | None] = mapped_column(String(32))
    answered_by: Mapped[str | None] = mapped_column(String(64))
    manager: Mapped[str | None] = mapped_column(String(64))
    rang: Mapped[list[str]] = mapped_column(JSON)
    queue: Mapped[str | None] = mapped_column(String(128))
    transferred_to: Mapped[list[str]] = mapped_column(JSON)
    abandoned: Mapped[bool] = mapped_column(Boolean)
    reconciled: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ring_seconds: Mapped[float] = mapped_column(Float)
    talk_seconds: Mapped[float] = mapped_column(Float)
    hangup_by: Mapped[str | None] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    recording_file: Mapped[str | None] = mapped_column(String(1024))
    recording_channel: Mapped[str | None] = mapped_column(String(128))
    # Set by a supervisor: the recording is kept past its retention age until the hold is released.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The customer's number in E.164 (the caller of an inbound call, the callee of an outbound one).
    customer_number: Mapped[str | None] = mapped_column(String(32))
    # From joining the queue to being answered, or to leaving it unanswered.
    queue_wait_seconds: Mapped[float | None] = mapped_column(Float)
    # Where the call came from (the DID's or the website visit's source), stamped when it is written.
    source: Mapped[str | None] = mapped_column(String(128))
    medium: Mapped[str | None] = mapped_column(String(128))
    campaign: Mapped[str | None] = mapped_column(String(128))
    tracking_session_id: Mapped[int | None] = mapped_column(Integer)
    # Inbound only: no earlier call from this number; answered and talked past the target threshold.
    first_time_caller: Mapped[bool | None] = mapped_column(Boolean)
    is_target: Mapped[bool | None] = mapped_column(Boolean)

    legs: Mapped[list[CallLegRow]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallLegRow.created_at"
    )


class CallLegRow(Base):
    __tablename__ = "call_legs"
    __table_args__ = (UniqueConstraint("call_id", "channel_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)

    call: Mapped[CallRow] = relationship(back_populates="legs")


class ApiTokenRow(Base):
    """API tokens. Only a hash of the secret is kept; the prefix lets an admin tell tokens apart."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    manager: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WebSessionRow(Base):
    """A browser's sign-in to the web interface: a random id in an HttpOnly cookie (only its hash is kept
    here), the token it signed in with (revoking the token ends its sessions) and the session's CSRF
    secret for its forms."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_expires_at", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRow(Base):
    """Who read which recording or transcript, and when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    manager: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    resource: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    remote: Mapped[str | None] = mapped_column(String(64))


class OriginateRow(Base):
    """A click-to-call request and how far it got. Unique request id, and idempotency key per token: a
    retried request finds its first answer here and never dials twice, and another client's key is not
    this one's."""

    __tablename__ = "originate_requests"
    __table_args__ = (UniqueConstraint("token_id", "idempotency_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    token_id: Mapped[int | None] = mapped_column(Integer)
    pbx: Mapped[str] = mapped_column(String(64))
    extension: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(128))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(String(256))
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebhookDeliveryRow(Base):
    """One event owed to one webhook: the outbox the delivery worker drains, and its log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(512))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ManagerRow(Base):
    """A CRM user who takes calls. `extensions` ties PBX calls to them (several desks, a softphone)."""

    __tablename__ = "managers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    extensions: Mapped[list[str]] = mapped_column(JSON)
    team: Mapped[str | None] = mapped_column(String(128))
    is_active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EntityRow(Base):
    """A contact, company or lead: whatever a call's number can belong to. One table for the three kinds,
    so matching, merging and the duplicate report work on one shape. Other entities are referred to by
    the CRM's ids (`owner`, `company`), so the CRM may load them in any order."""

    __tablename__ = "crm_entities"
    __table_args__ = (
        UniqueConstraint("kind", "external_id"),
        Index("ix_crm_entities_kind_created_at", "kind", "created_at"),
        Index("ix_crm_entities_owner", "owner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(256))
    owner: Mapped[str | None] = mapped_column(String(128))
    company: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str | None] = mapped_column(String(128))
    medium: Mapped[str | None] = mapped_column(String(128))
    campaign: Mapped[str | None] = mapped_column(String(128))
    origin: Mapped[str] = mapped_column(String(16))
    first_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    # A lead the CRM turned into a client: the contact's CRM id (see README "Stats", conversions).
    converted_to: Mapped[str | None] = mapped_column(String(128))
    is_active: Mapped[bool] = mapped_column(Boolean)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("crm_entities.id", ondelete="SET NULL"))
    last_activity_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EntityPhoneRow(Base):
    """One phone of an entity: as the CRM wrote it, in E.164 when it is a valid number, and its digits
    reversed so "ends with these N digits" is an indexed range scan on both databases."""

    __tablename__ = "entity_phones"
    __table_args__ = (
        Index("ix_entity_phones_e164", "e164"),
        Index("ix_entity_phones_digits_reversed", "digits_reversed"),
        Index("ix_entity_phones_tail_key", "tail_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_id: Mapped[int] = mapped_column(ForeignKey("crm_entities.id", ondelete="CASCADE"), index=True)
    raw: Mapped[str] = mapped_column(String(64))
    e164: Mapped[str | None] = mapped_column(String(32))
    digits_reversed: Mapped[str] = mapped_column(String(64))
    # The first TAIL_KEY_DIGITS of digits_reversed: an equality the caller lookup asks in the same query
    # as the E.164 number (a range could not share a cached plan with it).
    tail_key: Mapped[str] = mapped_column(String(8))
    is_valid: Mapped[bool] = mapped_column(Boolean)


class DealRow(Base):
    """A deal, for "open deal" in matching and for per-manager stats. Amount in hundredths of the
    currency unit (exact, and summable in SQL on both databases)."""

    __tablename__ = "deals"
    __table_args__ = (
        Index("ix_deals_contact", "contact"),
        Index("ix_deals_company", "company"),
        Index("ix_deals_lead", "lead"),
        Index("ix_deals_owner", "owner"),
        Index("ix_deals_opened_at", "opened_at"),
        Index("ix_deals_closed_at", "closed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    external_id: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str | None] = mapped_column(String(256))
    contact: Mapped[str | None] = mapped_column(String(128))
    company: Mapped[str | None] = mapped_column(String(128))
    lead: Mapped[str | None] = mapped_column(String(128))
    owner: Mapped[str | None] = mapped_column(String(128))
    stage: Mapped[str | None] = mapped_column(String(64))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_won: Mapped[bool | None] = mapped_column(Boolean)
    is_active: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallMatchRow(Base):
    """Which entity a call landed on, and every candidate it could have landed on (for the CRM to show)."""

    __tablename__ = "call_matches"
    __table_args__ = (
        Index("ix_call_matches_number", "number"),
        Index("ix_call_matches_digits_reversed", "digits_reversed"),
    )

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[str] = mapped_column(String(32))
    digits_reversed: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[int | None] = mapped_column(
        ForeignKey("crm_entities.id", ondelete="SET NULL"), index=True
    )
    matched_by: Mapped[str | None] = mapped_column(String(8))
    candidates: Mapped[list[dict[str, object]]] = mapped_column(JSON)
    lead_created: Mapped[bool] = mapped_column(Boolean)
    # The callback task this call opened, joined or closed: set once, so a replayed call counts once.
    callback_id: Mapped[int | None] = mapped_column(Integer)
    matched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CallbackRow(Base):
    """A missed call owed a return. `open_number` is set only while the task is open, and unique: one
    open task per customer number, however many times they called, and however many writers race."""

    __tablename__ = "callbacks"
    __table_args__ = (
        Index("ix_callbacks_state_due_at", "state", "due_at"),
        Index("ix_callbacks_number", "number"),
        Index("ix_callbacks_manager", "manager"),
        # The per-manager report's callback figures of a period, read from the index alone.
        Index(
            "ix_callbacks_missed_at",
            "missed_at",
            "manager",
            "state",
            "closed_at",
            "due_at",
            "seconds_to_return",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    number: Mapped[str] = mapped_column(String(32))
    open_number: Mapped[str | None] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(8))
    missed_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    missed_calls: Mapped[int] = mapped_column(Integer)
    entity_id: Mapped[int | None] = mapped_column(ForeignKey("crm_entities.id", ondelete="SET NULL"))
    manager: Mapped[str | None] = mapped_column(String(128))
    missed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_missed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="SET NULL"))
    returned_by: Mapped[str | None] = mapped_column(String(128))
    seconds_to_return: Mapped[float | None] = mapped_column(Float)


class MergeRow(Base):
    """The log of duplicate merges: who merged what into what, and what moved."""

    __tablename__ = "entity_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    token_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    survivor_id: Mapped[int] = mapped_column(Integer)
    merged_ids: Mapped[list[int]] = mapped_column(JSON)
    moved: Mapped[dict[str, int]] = mapped_column(JSON)


class AssignmentCursorRow(Base):
    """Where round-robin lead assignment stopped, so it continues across restarts and processes."""

    __tablename__ = "assignment_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_manager_id: Mapped[int] = mapped_column(Integer)


class RecordingRow(Base):
    """One call's recording: where the PBX put it, how far the worker got, and the stored audio. Keyed by
    the PBX's call id, so a pushed file may arrive before its call is in the database."""

    __tablename__ = "recordings"
    __table_args__ = (
        UniqueConstraint("pbx", "pbx_call_id"),
        Index("ix_recordings_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pbx: Mapped[str] = mapped_column(String(64))
    pbx_call_id: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), unique=True)
    state: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(1024))
    attempts: Mapped[int] = mapped_column(Integer)
    due_since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    format: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str | None] = mapped_column(String(64))
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)
    # {"mix": {"path", "sha256", "bytes"}, "customer": {...}, "manager": {...}}: paths relative to storage.
    files: Mapped[dict[str, dict[str, object]]] = mapped_column(JSON)
    is_truncated: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecordingDeletionRow(Base):
    """The deletion log: which call's audio was deleted, when, why, and what it was (its hashes)."""

    __tablename__ = "recording_deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    recording_id: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))
    call_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sha256: Mapped[str | None] = mapped_column(String(64))
    bytes: Mapped[int | None] = mapped_column(BigInteger)


class ManagerRollupRow(Base):
    """Per-extension call counts per UTC day and per 15-minute bucket (`grain` 86400 or 900 seconds;
    `bucket` its start, seconds since 1970), kept in the transaction that writes each call: a month's
    per-manager report sums its whole days, and the quarter hours at its edges, instead of every call.
    A quarter hour maps to one local hour in every time zone, so any zone's days and business hours are
    whole buckets."""

    __tablename__ = "manager_rollups"
    # The whole PBX's rows (extension "", each call counted once) per quarter hour: the dashboard's charts.
    __table_args__ = (
        Index(
            "ix_manager_rollups_totals",
            "grain",
            "bucket",
            postgresql_where=text("extension = ''"),
            sqlite_where=text("extension = ''"),
        ),
    )

    # Key in this order: a period is a range of (grain, bucket), read off the primary key's index.
    grain: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64), primary_key=True)
    extension: Mapped[str] = mapped_column(String(64), primary_key=True)
    inbound_received: Mapped[int] = mapped_column(Integer)
    inbound_answered: Mapped[int] = mapped_column(Integer)
    inbound_missed: Mapped[int] = mapped_column(Integer)
    outbound_made: Mapped[int] = mapped_column(Integer)
    outbound_answered: Mapped[int] = mapped_column(Integer)
    internal_calls: Mapped[int] = mapped_column(Integer)
    talk_seconds: Mapped[float] = mapped_column(Float)
    ring_seconds_answered: Mapped[float] = mapped_column(Float)


class SourceRollupRow(Base):
    """Inbound calls per source, medium and campaign per day and per quarter hour, kept like
    `ManagerRollupRow`.
    An unattributed call has empty strings (a primary key cannot hold NULL)."""

    __tablename__ = "source_rollups"

    grain: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    pbx: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    medium: Mapped[str] = mapped_column(String(128), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(128), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer)
    answered: Mapped[int] = mapped_column(Integer)
    missed: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)


class TrackingSessionRow(Base):
    """A website visit that was shown a pool number: whose visit, where it came from, and for how long the
    number was theirs. Calls to `number` between `created_at` and `expires_at` are this visit's."""

    __tablename__ = "tracking_sessions"
    __table_args__ = (
        Index("ix_tracking_sessions_number_created_at", "number", "created_at"),
        Index("ix_tracking_sessions_visitor_id", "visitor_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    visitor_id: Mapped[str] = mapped_column(String(128))
    number: Mapped[str] = mapped_column(String(32))
    is_fallback: Mapped[bool] = mapped_column(Boolean)
    utm_source: Mapped[str | None] = mapped_column(String(128))
    utm_medium: Mapped[str | None] = mapped_column(String(128))
    utm_campaign: Mapped[str | None] = mapped_column(String(128))
    utm_content: Mapped[str | None] = mapped_column(String(128))
    utm_term: Mapped[str | None] = mapped_column(String(128))
    gclid: Mapped[str | None] = mapped_column(String(256))
    yclid: Mapped[str | None] = mapped_column(String(256))
    landing_page: Mapped[str | None] = mapped_column(String(2048))
    referrer: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PoolNumberRow(Base):
    """A number of the website's dynamic pool, and which visit holds it until when. The least recently
    reserved free number is handed out next."""

    __tablename__ = "tracking_pool_numbers"
    __table_args__ = (Index("ix_tracking_pool_numbers_reserved_until", "reserved_until", "last_reserved_at"),)

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[int | None] = mapped_column(Integer)
    reserved_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TranscriptionJobRow(Base):
    """A stored recording owed a transcript: written in the transaction that marks the recording ready,
    taken by a worker (`FOR UPDATE SKIP LOCKED` on PostgreSQL), retried with growing delays, then `dead`;
    `unavailable` while no model serves its language."""

    __tablename__ = "transcription_jobs"
    __table_args__ = (Index("ix_transcription_jobs_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), unique=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    language: Mapped[str | None] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# SQLite's full-text index of transcripts (FTS5, with its shadow tables `transcripts_fts_*`): created by
# migration 0011 on SQLite only, and outside the models, which cannot describe a virtual table.
SQLITE_SEARCH_TABLE = "transcripts_fts"


def is_modelled(name: str | None, type_: str, _parents: object = None) -> bool:
    """Whether a database object is the models' to describe (alembic's `include_name`): all but the FTS5
    table and its shadow tables."""
    if type_ != "table" or name is None:
        return True
    return name != SQLITE_SEARCH_TABLE and not name.startswith(SQLITE_SEARCH_TABLE + "_")


class TranscriptRow(Base):
    """A call's transcript: its utterances (`Transcript.view()`) and their text, for search.

    `search_vector` is PostgreSQL's full-text index of `text` in the language's configuration (written
    with the transcript; NULL on SQLite, which searches the FTS5 table `transcripts_fts` that migration
    0011 keeps in step by triggers: see `calltracking/calls/transcript_repository.py`)."""

    __tablename__ = "transcripts"
    __table_args__ = (Index("ix_transcripts_search_vector", "search_vector", postgresql_using="gin"),)

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    recording_id: Mapped[int] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    language: Mapped[str] = mapped_column(String(16))
    utterances: Mapped[dict[str, object]] = mapped_column(JSON)
    text: Mapped[str] = mapped_column(Text)
    search_vector: Mapped[str | None] = mapped_column(TSVECTOR().with_variant(Text(), "sqlite"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QualityScoreRow(Base):
    """A call's quality figures from its transcript and the checklist in force (`checklist_sha256`):
    written when the transcript is stored, written again by `calltracking quality rescore`."""

    __tablename__ = "quality_scores"
    __table_args__ = (
        Index("ix_quality_scores_started_at", "started_at"),
        Index("ix_quality_scores_manager_started_at", "manager", "started_at"),
    )

    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    # Copied from the call, so a period's report per manager reads this table alone.
    manager: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    score: Mapped[float] = mapped_column(Float)
    passed: Mapped[bool] = mapped_column(Boolean)
    metrics: Mapped[dict[str, object]] = mapped_column(JSON)
    checklist: Mapped[dict[str, object]] = mapped_column(JSON)
    checklist_sha256: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # What the quality report reads, small enough to read a month of: the averaged figures by name, and
    # per checklist item (`required.greeting`) whether it was said. Derived from the two above (0013).
    figures: Mapped[dict[str, float | None] | None] = mapped_column(JSON)
    said: Mapped[dict[str, bool] | None] = mapped_column(JSON)
