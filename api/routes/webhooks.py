"""Webhooks: the CRM registers URLs per event type and reads each webhook's delivery log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from api.errors import Conflict, NotFound
from api.keys import SESSIONS
from api.operations import Api, Context
from calltracking.access.tokens import Role
from calltracking.webhooks import repository as webhook_repository
from calltracking.webhooks.subscription import (
    DEFAULT_MAX_ATTEMPTS,
    DELIVERY_HEADER,
    EVENT_HEADER,
    EVENT_TYPES,
    RETRY_DELAYS,
    SIGNATURE_HEADER,
    SIGNATURE_PREFIX,
    TIMESTAMP_HEADER,
    DeliveryStatus,
    EventType,
    Webhook,
    WebhookDelivery,
    new_webhook_secret,
)

api = Api()
TAG = "webhooks"
ROLES = (Role.ADMIN, Role.INTEGRATION)
MAX_ID = 2**31 - 1  # the id columns are 32-bit integers on PostgreSQL
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


def _duration(delay: timedelta) -> str:
    seconds = int(delay.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


SIGNING = (
    "Each event is POSTed as JSON `{id, type, occurred_at, data}` with the headers "
    f"`{EVENT_HEADER}` (the type), `{DELIVERY_HEADER}` (the delivery's id), `{TIMESTAMP_HEADER}` "
    f"(unix seconds) and `{SIGNATURE_HEADER}: {SIGNATURE_PREFIX}<hex>`, the HMAC-SHA256 of "
    "`<timestamp>.<raw body>` keyed with the webhook's secret. Any 2xx answer counts as delivered; "
    "anything else (redirects included) is retried after "
    + ", ".join(_duration(delay) for delay in RETRY_DELAYS)
    + f" (then every {_duration(RETRY_DELAYS[-1])}), and after {DEFAULT_MAX_ATTEMPTS} attempts the delivery "
    "is dead. Delivery is at least once: deduplicate by the event's `id`."
)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The whole URL grammar accepted, so the OpenAPI document says exactly what is refused: http or https,
# optional user info, a host name or IPv4 address (IDN hosts in their xn-- form), an optional port, then
# printable ASCII (percent-encode anything else).
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})"
URL_PATTERN = (
    r"^https?://(?:[A-Za-z0-9._~%!$&'()*+,;=:-]+@)?[A-Za-z0-9_][A-Za-z0-9_.-]*"
    rf"(?::{_PORT})?(?:[/?#][!-~]*)?$"
)
DeliveryStatusName = Annotated[
    DeliveryStatus, WithJsonSchema({"type": "string", "enum": [status.value for status in DeliveryStatus]})
]


class WebhookIn(_Model):
    url: str = Field(
        max_length=2048,
        pattern=URL_PATTERN,
        description="Where events are POSTed: an absolute http or https URL, in ASCII (IDN hosts in their "
        "xn-- form, anything else percent-encoded).",
    )
    events: list[EventType] = Field(
        min_length=1,
        max_length=len(EVENT_TYPES),
        json_schema_extra={"uniqueItems": True},
        description="The event types to receive, each at most once.",
    )
    description: str | None = Field(
        default=None, max_length=256, description="Free text; NUL characters are dropped."
    )

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str) -> str:
        # The pattern already holds; this is the HTTP client's own parser agreeing with it.
        try:
            parsed = URL(value)
        except ValueError as exc:
            raise ValueError("not a valid URL") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("must be an absolute http or https URL with a host")
        return value

    @field_validator("events")
    @classmethod
    def _no_duplicates(cls, value: list[EventType]) -> list[EventType]:
        if len(set(value)) != len(value):
            raise ValueError("each event type may be listed only once")
        return value

    @field_validator("description")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.replace("\x00", "")  # PostgreSQL refuses NUL in text


class WebhookOut(_Model):
    id: int
    url: str
    events: list[EventType]
    description: str | None
    created_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(**_webhook_fields(webhook))


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="The key deliveries are signed with. Shown in this response only: store it now."
    )


class WebhookList(_Model):
    items: list[WebhookOut]


class DeliveryQuery(_Model):
    status: DeliveryStatusName | None = None
    limit: int = Field(default=50, ge=1, le=500)


class DeliveryOut(_Model):
    id: int
    webhook_id: int
    event_id: str
    event_type: str
    payload: dict[str, Any] = Field(description="The body POSTed to the webhook.")
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far (the successful one included).")
    next_attempt_at: datetime | None = Field(description="When the next attempt is due (pending only).")
    last_error: str | None = Field(description="What went wrong on the last failed attempt.")
    last_status_code: int | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            webhook_id=delivery.webhook_id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            payload=delivery.payload,
            status=delivery.status,
            attempts=delivery.attempts,
            next_attempt_at=delivery.next_attempt_at if delivery.status is DeliveryStatus.PENDING else None,
            last_error=delivery.last_error,
            last_status_code=delivery.last_status_code,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )


class DeliveryPage(_Model):
    items: list[DeliveryOut]


@api.route(
    "POST",
    "/api/v1/webhooks",
    summary="Register a webhook",
    tag=TAG,
    roles=ROLES,
    body=WebhookIn,
    responses={201: WebhookCreatedOut},
    description="The answer carries the webhook's signing `secret`; it is returned on creation only. "
    + SIGNING,
)
async def create_webhook(request: web.Request, ctx: Context) -> web.StreamResponse:
    wanted = ctx.body_as(WebhookIn)
    secret = new_webhook_secret()
    async with request.app[SESSIONS].begin() as session:
        webhook = await webhook_repository.create_webhook(
            session,
            url=wanted.url,
            events=wanted.events,
            secret=secret,
            description=wanted.description,
            now=datetime.now(UTC),
        )
    body = WebhookCreatedOut(**_webhook_fields(webhook), secret=secret)
    return web.json_response(text=body.model_dump_json(), status=201)


@api.route(
    "GET",
    "/api/v1/webhooks",
    summary="The registered webhooks",
    tag=TAG,
    roles=ROLES,
    responses={200: WebhookList},
    description="Oldest first. Secrets are not shown.",
)
async def list_webhooks(request: web.Request, ctx: Context) -> web.StreamResponse:
    async with request.app[SESSIONS]() as session:
        webhooks = await webhook_repository.list_webhooks(session)
    body = WebhookList(items=[WebhookOut.of(webhook) for webhook in webhooks])
    return web.json_response(text=body.model_dump_json())


@api.route(
    "GET",
    "/api/v1/webhooks/{webhook_id}",
    summary="One webhook",
    tag=TAG,
    roles=ROLES,
    path_params={"webhook_id": ID},
    responses={200: WebhookOut, 404: None},
)
async def get_webhook(request: web.Request, ctx: Context) -> web.StreamResponse:
    webhook_id = _id(request, "webhook_id")
    async with request.app[SESSIONS]() as session:
        webhook = await _existing_webhook(session, webhook_id)
    return web.json_response(text=WebhookOut.of(webhook).model_dump_json())


@api.route(
    "DELETE",
    "/api/v1/webhooks/{webhook_id}",
    summary="Delete a webhook",
    tag=TAG,
    roles=ROLES,
    path_params={"webhook_id": ID},
    responses={204: None, 404: None},
    description="It receives nothing more; deliveries still pending become dead.",
)
async def delete_webhook(request: web.Request, ctx: Context) -> web.StreamResponse:
    webhook_id = _id(request, "webhook_id")
    async with request.app[SESSIONS].begin() as session:
        if not await webhook_repository.deactivate_webhook(session, webhook_id):
            raise NotFound(f"no webhook {webhook_id}")
    return web.Response(status=204)


@api.route(
    "GET",
    "/api/v1/webhooks/{webhook_id}/deliveries",
    summary="A webhook's delivery log",
    tag=TAG,
    roles=ROLES,
    path_params={"webhook_id": ID},
    query=DeliveryQuery,
    responses={200: DeliveryPage, 404: None},
    description="Newest first; `status` picks pending, delivered or dead deliveries.",
)
async def list_deliveries(request: web.Request, ctx: Context) -> web.StreamResponse:
    webhook_id = _id(request, "webhook_id")
    query = ctx.query_as(DeliveryQuery)
    async with request.app[SESSIONS]() as session:
        await _existing_webhook(session, webhook_id)
        deliveries = await webhook_repository.list_deliveries(
            session, webhook_id, status=query.status, limit=query.limit
        )
    body = DeliveryPage(items=[DeliveryOut.of(delivery) for delivery in deliveries])
    return web.json_response(text=body.model_dump_json())


@api.route(
    "POST",
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
    summary="Send a delivery again",
    tag=TAG,
    roles=ROLES,
    path_params={"webhook_id": ID, "delivery_id": ID},
    responses={202: DeliveryOut, 404: None, 409: None},
    description="A dead or pending delivery becomes due now; a dead one starts over with a full set of "
    "attempts. A delivered one cannot be retried (409).",
)
async def retry_delivery(request: web.Request, ctx: Context) -> web.StreamResponse:
    webhook_id = _id(request, "webhook_id")
    delivery_id = _id(request, "delivery_id")
    async with request.app[SESSIONS].begin() as session:
        await _existing_webhook(session, webhook_id)
        delivery = await webhook_repository.get_delivery(session, webhook_id, delivery_id)
        if delivery is None:
            raise NotFound(f"no delivery {delivery_id} for webhook {webhook_id}")
        requeued = await webhook_repository.requeue_delivery(
            session, webhook_id, delivery_id, now=datetime.now(UTC)
        )
    if requeued is None:
        raise Conflict(f"delivery {delivery_id} was already delivered")
    return web.json_response(text=DeliveryOut.of(requeued).model_dump_json(), status=202)


async def _existing_webhook(session: AsyncSession, webhook_id: int) -> Webhook:
    webhook = await webhook_repository.get_webhook(session, webhook_id)
    if webhook is None:
        raise NotFound(f"no webhook {webhook_id}")
    return webhook


def _id(request: web.Request, name: str) -> int:
    value = int(request.match_info[name])
    if not 1 <= value <= MAX_ID:
        raise NotFound(f"no {name.removesuffix('_id')} {value}")
    return value


def _webhook_fields(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "url": webhook.url,
        "events": list(webhook.events),
        "description": webhook.description,
        "created_at": webhook.created_at,
    }
