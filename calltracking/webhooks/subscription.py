"""Webhooks: what the CRM subscribes to, and what a delivery looks like on the wire.

A delivery is an HTTP POST of one event as JSON:

    {"id": "call.completed:office:1795349935.0", "type": "call.completed",
     "occurred_at": "2026-11-22T12:18:55+00:00", "data": {...}}

with these headers:

    X-Calltracking-Event: call.completed
    X-Calltracking-Delivery: 42                  (the delivery's id in the delivery log)
    X-Calltracking-Timestamp: 1795349940         (unix seconds, when this attempt was sent)
    X-Calltracking-Signature: sha256=<hex>       (HMAC-SHA256 of "<timestamp>." + the raw body)

The key is the webhook's secret, shown once when the webhook is created. A receiver recomputes the HMAC
over the raw body it received, compares in constant time, and rejects timestamps far from its own clock
(replays). Delivery is at least once: a receiver deduplicates by the event's `id`, which is the same on
every attempt and on every replay of the same fact.

This module is pure (no I/O); the outbox and its worker live in `webhook_delivery.py`, the SQL in
`repository.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, get_args

from calltracking.errors import CalltrackingError

EventType = Literal[
    "call.ringing",
    "call.answered",
    "call.completed",
    "lead.created",
    "callback.opened",
    "recording.ready",
    "transcript.ready",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

EVENT_HEADER = "X-Calltracking-Event"
DELIVERY_HEADER = "X-Calltracking-Delivery"
TIMESTAMP_HEADER = "X-Calltracking-Timestamp"
SIGNATURE_HEADER = "X-Calltracking-Signature"
SIGNATURE_PREFIX = "sha256="

EVENT_ID_MAX_LENGTH = 64  # the delivery log's column
DEFAULT_MAX_ATTEMPTS = 10

# Waits after the 1st, 2nd, ... failed attempt; the last one repeats. About 14 hours from the first
# failure to the 10th attempt, enough to ride out a CRM that is down overnight.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=6),
)


class WebhookEventInvalid(CalltrackingError):
    """An event that cannot be delivered as given (unknown type, id too long, time without a zone)."""


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # every attempt failed (or the webhook was deleted); only a manual retry revives it


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A fact the CRM may subscribe to. `event_id` identifies the fact, not the attempt: the producer
    derives it from the fact itself (e.g. "call.completed:office:1795349935.0"), so producing the same
    fact twice queues it once. `data` must be JSON-ready (strings, numbers, lists, dicts)."""

    event_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in EVENT_TYPES:
            raise WebhookEventInvalid(f"unknown event type {self.type!r}")
        if not 0 < len(self.event_id) <= EVENT_ID_MAX_LENGTH:
            raise WebhookEventInvalid(f"event id must be 1 to {EVENT_ID_MAX_LENGTH} characters")
        if self.occurred_at.tzinfo is None:
            raise WebhookEventInvalid("occurred_at must carry a time zone")

    def body(self) -> dict[str, Any]:
        """The JSON document POSTed to the receiver (stored as is in the delivery log)."""
        return {
            "id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(),
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Webhook:
    id: int
    url: str
    events: tuple[str, ...]
    secret: str = field(repr=False)
    description: str | None
    is_active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One event owed to one webhook, and how its delivery went."""

    id: int
    webhook_id: int
    event_id: str
    event_type: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A due delivery taken by the worker, with where to send it and the key to sign it with."""

    delivery: WebhookDelivery
    url: str
    secret: str = field(repr=False)


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `"<timestamp>." + body` keyed with the webhook's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def encode_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def signed_headers(delivery: WebhookDelivery, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: delivery.event_type,
        DELIVERY_HEADER: str(delivery.id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: SIGNATURE_PREFIX + sign(secret, timestamp, body),
    }


def retry_delay(failed_attempts: int) -> timedelta:
    """How long to wait after the given number of failed attempts (1 for the first failure)."""
    return RETRY_DELAYS[min(max(failed_attempts, 1), len(RETRY_DELAYS)) - 1]
