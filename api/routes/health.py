"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.keys import METRICS, PROBES, SESSIONS, SETTINGS, STATUS
from api.operations import Api, Context
from api.schemas import HealthOut, PbxReadiness, ReadyOut
from calltracking.access.tokens import Role

api = Api()


@api.route(
    "GET", "/healthz", summary="The process is up", tag="operations", public=True, responses={200: HealthOut}
)
async def healthz(request: web.Request, ctx: Context) -> web.StreamResponse:
    return web.json_response(HealthOut(status="ok").model_dump())


@api.route(
    "GET",
    "/readyz",
    summary="The database and every PBX link are up",
    tag="operations",
    public=True,
    responses={200: ReadyOut, 503: ReadyOut},
    description="Needs no token (load balancers and orchestrators probe it) and no database: it answers "
    "within `[api] readiness_timeout_seconds` whatever state the database is in, and says which "
    "dependency is down. A hot-standby process (another `serve` listens to the PBX) answers 503 with "
    "`listening: false` for that PBX, so a load balancer sends click-to-call to the process that listens.",
)
async def readyz(request: web.Request, ctx: Context) -> web.StreamResponse:
    status = request.app[STATUS]
    database = await _database_answers(request.app)
    standing_by = status.pbx_standing_by()
    pbxs = [
        PbxReadiness(name=name, connected=up, listening=name not in standing_by)
        for name, up in status.pbx_connected().items()
    ]
    ready = database and all(p.connected for p in pbxs)
    body = ReadyOut(ready=ready, database=database, pbxs=pbxs, spool_depth=status.spool_depth())
    return web.json_response(body.model_dump(), status=200 if ready else 503)


async def _database_answers(app: web.Application) -> bool:
    """Whether the database answers a trivial query within the readiness timeout. The probe runs on its
    own: when time is up the answer is given at once, and the probe's cleanup (closing a connection to a
    server that hangs) finishes in the background."""
    probe = asyncio.create_task(_select_one(app[SESSIONS]))
    app[PROBES].add(probe)
    probe.add_done_callback(_forget(app[PROBES]))
    done, _ = await asyncio.wait({probe}, timeout=app[SETTINGS].api.readiness_timeout_seconds)
    if not done:
        probe.cancel()
        return False
    return not probe.cancelled() and probe.exception() is None


async def _select_one(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        await session.execute(text("SELECT 1"))


def _forget(probes: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def forget(probe: asyncio.Task[None]) -> None:
        probes.discard(probe)
        if not probe.cancelled():
            probe.exception()  # a failed probe is the answer, not an error to report again

    return forget


@api.route(
    "GET",
    "/metrics",
    summary="Prometheus metrics",
    tag="operations",
    roles=[Role.ADMIN, Role.SUPERVISOR],
    responses={200: None},
    extra_content={200: {"text/plain": {"schema": {"type": "string"}}}},
)
async def metrics(request: web.Request, ctx: Context) -> web.StreamResponse:
    collected = request.app[METRICS]
    status = request.app[STATUS]
    collected.spool_depth.set(status.spool_depth())
    standing_by = status.pbx_standing_by()
    for name, up in status.pbx_connected().items():
        collected.pbx_connected.labels(pbx=name).set(1 if up else 0)
        collected.pbx_listening.labels(pbx=name).set(0 if name in standing_by else 1)
    response = web.Response(body=generate_latest(collected.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
