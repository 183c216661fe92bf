"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.keys import METRICS, SESSIONS, STATUS
from api.operations import Api, Context
from api.schemas import HealthOut, PbxReadiness, ReadyOut
from calltracking.tokens import Role

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
    responses={200: ReadyOut, 503: ReadyOut},
)
async def readyz(request: web.Request, ctx: Context) -> web.StreamResponse:
    status = request.app[STATUS]
    try:
        async with request.app[SESSIONS]() as session:
            await session.execute(text("SELECT 1"))
        database = True
    except Exception:  # readiness reports the failure, it does not raise it
        database = False
    pbxs = [PbxReadiness(name=name, connected=up) for name, up in status.pbx_connected().items()]
    ready = database and all(p.connected for p in pbxs)
    body = ReadyOut(ready=ready, database=database, pbxs=pbxs, spool_depth=status.spool_depth())
    return web.json_response(body.model_dump(), status=200 if ready else 503)


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
    for name, up in status.pbx_connected().items():
        collected.pbx_connected.labels(pbx=name).set(1 if up else 0)
    response = web.Response(body=generate_latest(collected.registry))
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
