"""The admin pages: API tokens (create, revoke), webhooks and their delivery logs (create, deactivate,
retry a failed delivery) and the PBX links. For the admin role only, as the API's token and webhook
administration is; every change is a POST carrying the session's CSRF secret and is logged.

A new token's secret, like a new webhook's signing secret, exists in clear only in the answer to the
POST that created it: it is rendered there (never redirected to, never put in a URL) and the page is
not stored by the browser."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from api.keys import SESSIONS, SETTINGS, STATUS
from api.routes.webhooks import MAX_ID, WebhookIn
from api.schemas import EXTENSION_PATTERN
from api.web.render import checked_form, render, web_session
from calltracking.access.repository import create_token, list_tokens, revoke_token
from calltracking.access.session_repository import WebSession
from calltracking.access.tokens import Role, new_token
from calltracking.webhooks import repository as webhook_repository
from calltracking.webhooks.subscription import (
    EVENT_TYPES,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    new_webhook_secret,
)

log = structlog.get_logger(__name__)
HOME = "/ui/admin"
MAX_NAME = 128  # the token name column
SHOWN_DELIVERIES = 100
ROLES = tuple(role.value for role in Role)


def install(app: web.Application) -> None:
    app.router.add_get("/admin", overview)
    app.router.add_post("/admin/tokens", create_token_page)
    app.router.add_post(r"/admin/tokens/{token:\d+}/revoke", revoke_token_page)
    app.router.add_post("/admin/webhooks", create_webhook_page)
    app.router.add_get(r"/admin/webhooks/{webhook:\d+}", webhook_page)
    app.router.add_post(r"/admin/webhooks/{webhook:\d+}/deactivate", deactivate_webhook_page)
    app.router.add_post(r"/admin/webhooks/{webhook:\d+}/deliveries/{delivery:\d+}/retry", retry_delivery_page)


@dataclass(frozen=True, slots=True)
class PbxLink:
    name: str
    connected: bool


@dataclass(frozen=True, slots=True)
class TokenForm:
    """The create-token form as typed, and what is wrong with it (field -> problem code, which the
    template words in the page's language)."""

    name: str = ""
    role: str = Role.MANAGER.value
    manager: str = ""
    problems: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class WebhookForm:
    url: str = ""
    events: tuple[str, ...] = ()
    description: str = ""
    problems: Mapping[str, str] | None = None


def _admin(request: web.Request) -> WebSession:
    """The signed-in admin; anyone else gets the 403 page, as the API refuses them its admin routes."""
    found = web_session(request)
    if found.principal.role is not Role.ADMIN:
        raise web.HTTPForbidden(reason="for administrators only")
    return found


async def overview(request: web.Request) -> web.StreamResponse:
    """Everything an admin looks after on one page, so a link problem is seen next to the tokens and
    webhooks it may explain."""
    _admin(request)
    return await _overview(request, {})


async def _overview(request: web.Request, extra: dict[str, Any], status: int = 200) -> web.Response:
    async with request.config_dict[SESSIONS]() as session:
        tokens = await list_tokens(session)
        webhooks = await webhook_repository.list_webhooks(session, with_deleted=True)
    context: dict[str, Any] = {
        "tokens": tokens,
        "webhooks": webhooks,
        "pbxs": pbx_links(request),
        "spool_depth": request.config_dict[STATUS].spool_depth(),
        "event_types": EVENT_TYPES,
        "token_form": TokenForm(),
        "webhook_form": WebhookForm(),
        "created_token": None,
        "created_webhook": None,
        "created_secret": None,
    }
    response = render(request, "admin.html", context | extra, status=status)
    if extra.get("created_secret"):
        response.headers["Cache-Control"] = "no-store"
    return response


def pbx_links(request: web.Request) -> list[PbxLink]:
    """Every configured PBX with its link state; a link the status knows of but the settings do not
    name is shown too, so nothing connected goes unseen."""
    connected = dict(request.config_dict[STATUS].pbx_connected())
    names = [pbx.name for pbx in request.config_dict[SETTINGS].pbxs]
    names += [name for name in connected if name not in names]
    return [PbxLink(name=name, connected=bool(connected.get(name, False))) for name in names]


def token_problems(name: str, role: str, manager: str) -> dict[str, str]:
    """What keeps a token from being created, by field: the same rules as the CLI's `token create`,
    with the API's extension pattern for a manager's extension."""
    problems: dict[str, str] = {}
    if not name:
        problems["name"] = "name_missing"
    elif len(name) > MAX_NAME or any(ord(c) < 0x20 or c == "\x7f" for c in name):
        problems["name"] = "name_invalid"
    if role not in ROLES:
        problems["role"] = "role_invalid"
    if role == Role.MANAGER.value:
        if not manager:
            problems["manager"] = "manager_missing"
        elif not re.fullmatch(EXTENSION_PATTERN, manager):
            problems["manager"] = "manager_invalid"
    elif manager:
        problems["manager"] = "manager_not_manager"
    return problems


async def create_token_page(request: web.Request) -> web.StreamResponse:
    """Answered with the page itself, not a redirect: the secret is only in this answer (no-store),
    and a bad form comes back as typed with its problems (422)."""
    found = _admin(request)
    form = await checked_form(request)
    name = form.get("name", "").strip()
    role = form.get("role", "")
    manager = form.get("manager", "").strip()
    problems = token_problems(name, role, manager)
    if problems:
        shown = TokenForm(name=name[:MAX_NAME], role=role, manager=manager[:64], problems=problems)
        return await _overview(request, {"token_form": shown}, status=422)
    token = new_token()
    async with request.config_dict[SESSIONS].begin() as session:
        token_id = await create_token(session, token, name, Role(role), manager or None)
    log.info(
        "web_token_created",
        token_id=token_id,
        prefix=token.prefix,
        role=role,
        manager=manager or None,
        by=found.principal.token_id,
    )
    created = {"id": token_id, "name": name, "prefix": token.prefix}
    return await _overview(request, {"created_token": created, "created_secret": token.secret})


async def revoke_token_page(request: web.Request) -> web.StreamResponse:
    """The token is refused at once, and the browser sessions signed in with it end with it (a session
    is only found through a token that is not revoked)."""
    found = _admin(request)
    await checked_form(request)
    token_id = _id(request, "token")
    async with request.config_dict[SESSIONS].begin() as session:
        revoked = await revoke_token(session, str(token_id))
    if revoked:
        log.info("web_token_revoked", token_id=token_id, by=found.principal.token_id)
    raise web.HTTPSeeOther(f"{HOME}#tokens")


async def create_webhook_page(request: web.Request) -> web.StreamResponse:
    found = _admin(request)
    await checked_form(request)
    posted = await request.post()
    url = str(posted.get("url", "")).strip()
    events = tuple(str(value) for value in posted.getall("events", []))
    description = str(posted.get("description", "")).strip()
    try:
        wanted = WebhookIn.model_validate(
            {"url": url, "events": list(events), "description": description or None}
        )
    except ValidationError as exc:
        fields = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
        problems = {field: f"{field}_invalid" for field in fields}
        shown = WebhookForm(url=url[:2048], events=events, description=description[:256], problems=problems)
        return await _overview(request, {"webhook_form": shown}, status=422)
    secret = new_webhook_secret()
    async with request.config_dict[SESSIONS].begin() as session:
        webhook = await webhook_repository.create_webhook(
            session,
            url=wanted.url,
            events=wanted.events,
            secret=secret,
            description=wanted.description,
            now=datetime.now(UTC),
        )
    log.info(
        "web_webhook_created",
        webhook_id=webhook.id,
        url=webhook.url,
        events=list(webhook.events),
        by=found.principal.token_id,
    )
    return await _overview(request, {"created_webhook": webhook, "created_secret": secret})


async def deactivate_webhook_page(request: web.Request) -> web.StreamResponse:
    found = _admin(request)
    await checked_form(request)
    webhook_id = _id(request, "webhook")
    async with request.config_dict[SESSIONS].begin() as session:
        if not await webhook_repository.deactivate_webhook(session, webhook_id):
            raise web.HTTPNotFound()
    log.info("web_webhook_deactivated", webhook_id=webhook_id, by=found.principal.token_id)
    raise web.HTTPSeeOther(f"{HOME}/webhooks/{webhook_id}")


async def webhook_page(request: web.Request) -> web.StreamResponse:
    _admin(request)
    webhook_id = _id(request, "webhook")
    wanted = request.query.get("status", "")
    status = DeliveryStatus(wanted) if wanted in {s.value for s in DeliveryStatus} else None
    async with request.config_dict[SESSIONS]() as session:
        webhook = await webhook_repository.get_webhook(session, webhook_id, with_deleted=True)
        if webhook is None:
            raise web.HTTPNotFound()
        deliveries = await webhook_repository.list_deliveries(
            session, webhook_id, status=status, limit=SHOWN_DELIVERIES
        )
    return render(
        request,
        "admin_webhook.html",
        {
            "webhook": webhook,
            "deliveries": deliveries,
            "status": status.value if status else "",
            "statuses": [s.value for s in DeliveryStatus],
            "retryable": retryable,
            "shown_limit": SHOWN_DELIVERIES,
        },
    )


def retryable(webhook: Webhook, delivery: WebhookDelivery) -> bool:
    """A dead delivery, or a pending one that has already failed, of a webhook still active (the
    delivery worker sends nothing to a deleted one)."""
    if not webhook.is_active:
        return False
    if delivery.status is DeliveryStatus.DEAD:
        return True
    return delivery.status is DeliveryStatus.PENDING and delivery.attempts > 0


async def retry_delivery_page(request: web.Request) -> web.StreamResponse:
    """The API's retry: the delivery becomes due now, a dead one with a fresh set of attempts."""
    found = _admin(request)
    await checked_form(request)
    webhook_id = _id(request, "webhook")
    delivery_id = _id(request, "delivery")
    async with request.config_dict[SESSIONS].begin() as session:
        if await webhook_repository.get_webhook(session, webhook_id) is None:
            raise web.HTTPNotFound()
        if await webhook_repository.get_delivery(session, webhook_id, delivery_id) is None:
            raise web.HTTPNotFound()
        requeued = await webhook_repository.requeue_delivery(
            session, webhook_id, delivery_id, now=datetime.now(UTC)
        )
    if requeued is None:
        raise web.HTTPConflict(reason="this delivery was already delivered")
    log.info(
        "web_delivery_retried", webhook_id=webhook_id, delivery_id=delivery_id, by=found.principal.token_id
    )
    raise web.HTTPSeeOther(f"{HOME}/webhooks/{webhook_id}#delivery-{delivery_id}")


def _id(request: web.Request, name: str) -> int:
    value = int(request.match_info[name])
    if not 1 <= value <= MAX_ID:
        raise web.HTTPNotFound()
    return value
