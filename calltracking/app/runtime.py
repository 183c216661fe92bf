"""Process wiring shared by `serve` and `replay`: one engine, migrations, the spool and the call log."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from calltracking.calls.log import CallLog
from calltracking.calls.spool import CallSpool
from calltracking.calls.spool_lock import spool_held
from calltracking.config import CrmSettings, DatabaseSettings, RecordingSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.store.engine import create_sessionmaker, engine_for, migrate_database
from calltracking.tracking.attributor import CallAttributor
from calltracking.webhooks.roster import WebhookRoster
from recordings.service import recording_queuer


@dataclass
class CallPipeline:
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    call_log: CallLog
    # Which webhook events anyone subscribes to: the process's one roster, so that facts nobody wants
    # (lead.created, callback.opened, call.ringing, ...) cost no read of the webhooks table.
    roster: WebhookRoster


@contextlib.asynccontextmanager
async def call_pipeline(
    settings: DatabaseSettings,
    spool_dir: Path | None = None,
    crm: CrmSettings | None = None,
    tracking: TrackingSettings | None = None,
    recordings: RecordingSettings | None = None,
) -> AsyncIterator[CallPipeline]:
    """Engine + spool + the call log's writer task (which migrates before its first write), torn down in
    reverse order. The database may be down at start: calls are spooled until it comes up. Every call is
    attributed (`CallAttributor`) and matched to the CRM mirror (`CallMatcher`) in the transaction that
    writes it, here, so `serve` and `replay` treat calls alike; so is each announced recording's job
    (`recording_queuer`). The spool directory is this process's alone meanwhile (`spool_held`)."""
    directory = spool_dir or settings.spool_dir
    with spool_held(directory):
        async with _pipeline_on(settings, directory, crm, tracking, recordings) as pipeline:
            yield pipeline


@contextlib.asynccontextmanager
async def _pipeline_on(
    settings: DatabaseSettings,
    spool_dir: Path,
    crm: CrmSettings | None,
    tracking: TrackingSettings | None,
    recordings: RecordingSettings | None,
) -> AsyncIterator[CallPipeline]:
    engine = engine_for(settings)
    spool = await asyncio.to_thread(CallSpool, spool_dir)
    # Every transaction is bounded, the call writer's included: a database that hangs fails the write
    # (the calls stay journaled, the write is retried) instead of stopping the writer.
    sessionmaker = create_sessionmaker(engine, settings.transaction_timeout_seconds)
    call_log = CallLog(sessionmaker, spool, settings, prepare=lambda: migrate_database(settings))
    tracking = tracking or TrackingSettings()
    # Attribution first: the matcher's leads and the rollups take the source it stamps on each call.
    call_log.add_enricher(CallAttributor(tracking))
    roster = WebhookRoster()
    call_log.add_stored_hook(CallMatcher(crm or CrmSettings(), tracking, roster=roster))
    call_log.add_stored_hook(recording_queuer(recordings or RecordingSettings()))
    writer = asyncio.create_task(call_log.run())
    try:
        yield CallPipeline(engine=engine, sessionmaker=sessionmaker, call_log=call_log, roster=roster)
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        spool.close()
        await engine.dispose()
