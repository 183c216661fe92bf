"""The aiohttp application factory. Everything a handler needs is passed in here, nothing is global."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import docs
from api.access import RateLimiter, TokenAuthority
from api.errors import RETRY_AFTER, error_middleware
from api.keys import (
    AUTHORITY,
    CLICK_TO_CALL,
    HUB,
    LOOKUP,
    METRICS,
    NUMBER_POOL,
    POOL_LIMITER,
    PROBES,
    RECORDING_WORKER,
    SESSIONS,
    SETTINGS,
    STATUS,
)
from api.operations import Api, Operation
from api.routes import (
    callbacks,
    calls,
    crm,
    duplicates,
    events,
    health,
    lookup,
    manager_stats,
    originate,
    quality_report,
    queue_stats,
    recordings,
    tracking,
    transcripts,
    webhooks,
)
from api.status import ServiceStatus
from api.web.app import mount_web, session_lifetime
from api.web.browser_access import browser_principal
from api.web.session import SESSION_COOKIE, SessionKeeper
from calltracking.access.tokens import Principal
from calltracking.calls.hub import CallEventHub
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import Settings
from calltracking.crm.lookup_repository import open_lookup_reader
from calltracking.metrics import ApiMetrics
from calltracking.store.engine import with_deadline
from calltracking.tracking.service import NumberPool
from recordings.service import RecordingWorker

API_VERSION = "1.0.0"
DESCRIPTION = (
    "Calls from the PBX as CRM facts: call history, click-to-call, real-time events and webhooks. "
    "Every endpoint but /healthz, /readyz (and this documentation) requires an API token."
)
MODULES = (
    health.api,
    calls.api,
    originate.api,
    events.api,
    webhooks.api,
    crm.api,
    lookup.api,
    callbacks.api,
    duplicates.api,
    recordings.api,
    transcripts.api,
    queue_stats.api,
    manager_stats.api,
    quality_report.api,
    tracking.api,
)


def all_operations() -> Api:
    merged = Api()
    for module in MODULES:
        merged.operations.extend(module.operations)
    return merged


def create_app(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    status: ServiceStatus | None = None,
    metrics: ApiMetrics | None = None,
    click_to_call: ClickToCallService | None = None,
    hub: CallEventHub | None = None,
    recording_worker: RecordingWorker | None = None,
    clock: Callable[[], float] = time.monotonic,
    number_pool: NumberPool | None = None,
) -> web.Application:
    # aiohttp's own limit is the largest any operation takes; each operation holds its body to its own.
    largest = max(settings.api.max_body_bytes, settings.api.max_bulk_body_bytes)
    app = web.Application(middlewares=[error_middleware], client_max_size=largest)
    # A request waits on the database for at most this long, then is answered 503 (with Retry-After).
    sessions = with_deadline(sessions, settings.api.database_timeout_seconds)
    app[SETTINGS] = settings
    app[RETRY_AFTER] = settings.api.retry_after_seconds
    app[SESSIONS] = sessions
    app[STATUS] = status or ServiceStatus()
    app[METRICS] = metrics or ApiMetrics()
    app[CLICK_TO_CALL] = click_to_call or ClickToCallService(sessions, settings.pbxs, connections={})
    app[HUB] = hub or CallEventHub()
    if recording_worker is not None:
        app[RECORDING_WORKER] = recording_worker
    app[NUMBER_POOL] = number_pool or NumberPool(
        sessions, settings.tracking.pool, on_exhausted=app[METRICS].tracking_pool_exhausted.inc
    )
    app[POOL_LIMITER] = RateLimiter(settings.tracking.pool.sessions_per_minute, clock)
    app[AUTHORITY] = TokenAuthority(
        sessions, settings.api.token_cache_seconds, settings.api.rate_limit_per_minute, clock=clock
    )
    operations = all_operations()

    async def lookup_reader(app: web.Application) -> AsyncIterator[None]:
        app[LOOKUP] = await open_lookup_reader(sessions)
        yield
        await app[LOOKUP].close()

    app.cleanup_ctx.append(lookup_reader)
    app[PROBES] = set()

    async def finish_probes(app: web.Application) -> None:
        for probe in app[PROBES]:
            probe.cancel()
        await asyncio.gather(*app[PROBES], return_exceptions=True)

    app.on_cleanup.append(finish_probes)

    keeper = SessionKeeper(sessions, session_lifetime(settings), settings.api.token_cache_seconds, clock)

    async def authenticate(request: web.Request) -> Principal:
        header = request.headers.get("Authorization")
        websocket = request.headers.get("Upgrade", "").lower() == "websocket"
        if header is None and websocket and "access_token" in request.query:
            # Browsers cannot set headers on a WebSocket; the token may come in the query instead.
            query_token = request.query.get("access_token")
            header = f"Bearer {query_token}" if query_token else None
        if header is None and SESSION_COOKIE in request.cookies:
            return await browser_principal(request, keeper, websocket)
        return await request.app[AUTHORITY].authenticate(header)

    def observe(operation: Operation, status_code: int, seconds: float) -> None:
        app[METRICS].requests.labels(operation.method, operation.path, str(status_code)).observe(seconds)

    pbx_names = frozenset(pbx.name for pbx in settings.pbxs)
    operations.install(
        app,
        authenticate,
        observe,
        (settings.api.max_body_bytes, settings.api.max_bulk_body_bytes),
        pbx_names=pbx_names,
    )
    app[docs.DOCS_KEY] = operations.openapi("calltracking", API_VERSION, DESCRIPTION, pbx_names)
    app.router.add_get("/api/v1/openapi.json", docs.openapi_json)
    app.router.add_get("/api/docs", docs.docs_page)
    if settings.web.enabled:
        mount_web(app, settings, keeper)
    return app
