"""`calltracking serve`: the long-running service for every configured PBX."""

from __future__ import annotations

import asyncio

import structlog

from ami.listener import PbxListener
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
        for listener in listeners:
            listener.start()
        log.info("service_started", pbxs=[pbx.name for pbx in settings.pbxs])
        try:
            await stop.wait()
        finally:
            log.info("service_stopping")
            for listener in listeners:
                await listener.close()
            try:
                await asyncio.wait_for(pipeline.call_log.flush(), SHUTDOWN_FLUSH_SECONDS)
            except TimeoutError:
                log.warning("shutdown_with_spooled_calls", spool_depth=pipeline.call_log.spool_depth)
