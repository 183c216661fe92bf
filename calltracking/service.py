"""`calltracking serve`: the long-running service for every configured PBX, and the REST API."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web

from ami.listener import PbxListener
from api.app import create_app
from api.status import ServiceStatus
from calltracking.runtime import call_pipeline
from calltracking.settings import Settings

log = structlog.get_logger(__name__)
SHUTDOWN_FLUSH_SECONDS = 10.0


async def run_service(settings: Settings, stop: asyncio.Event) -> None:
    async with call_pipeline(settings.database) as pipeline:
        spool_dir = settings.database.spool_dir
        listeners = [
            PbxListener(pbx, pipeline.call_log, checkpoint_path=spool_dir / f"live-calls-{pbx.name}.json")
            for pbx in settings.pbxs
        ]
        status = ServiceStatus(
            pbx_connected=lambda: {listener.pbx.name: listener.connection.is_ready for listener in listeners},
            spool_depth=lambda: pipeline.call_log.spool_depth,
        )
        runner = web.AppRunner(create_app(settings, pipeline.sessionmaker, status), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings.api.host, settings.api.port)
        await site.start()
        for listener in listeners:
            listener.start()
        log.info(
            "service_started",
            pbxs=[pbx.name for pbx in settings.pbxs],
            api=f"http://{settings.api.host}:{settings.api.port}",
        )
        try:
            await stop.wait()
        finally:
            log.info("service_stopping")
            await runner.cleanup()
            for listener in listeners:
                await listener.close()
            try:
                await asyncio.wait_for(pipeline.call_log.flush(), SHUTDOWN_FLUSH_SECONDS)
            except TimeoutError:
                log.warning("shutdown_with_spooled_calls", spool_depth=pipeline.call_log.spool_depth)
