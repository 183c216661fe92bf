"""`calltracking serve`: the long-running service for every configured PBX, and the REST API."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Sequence

import structlog
from aiohttp import web
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ami.listener import PbxListener
from api.app import create_app
from api.schemas import call_payload
from api.status import ServiceStatus
from calltracking.app.memory import settle_heap, share_heap_arenas, trim_heap_periodically
from calltracking.app.runtime import call_pipeline
from calltracking.app.standby import ListeningConnections, StandbyListener
from calltracking.calls.hub import CallEventHub
from calltracking.calls.log import CallLog
from calltracking.calls.record import CallCompleted, CallRecord, LiveEvent
from calltracking.calls.recording import RecordingState
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import Settings
from calltracking.crm.call_webhooks import completed_queuer, progress_queuer, wants_progress
from calltracking.crm.lookup import screen_pop_enricher
from calltracking.crm.lookup_repository import open_lookup_reader
from calltracking.errors import ConfigError
from calltracking.metrics import ApiMetrics
from calltracking.store.engine import with_deadline
from calltracking.store.pbx_lease import lease_for
from calltracking.webhooks.delivery import WebhookDeliverer
from calltracking.webhooks.roster import WebhookRoster
from recordings.retention import run_retention
from recordings.service import RecordingWorker
from transcription.service import InProcessTranscription, transcription_queuer

log = structlog.get_logger(__name__)
SHUTDOWN_FLUSH_SECONDS = 10.0


async def run_service(settings: Settings, stop: asyncio.Event) -> None:
    share_heap_arenas()
    async with call_pipeline(
        settings.database, crm=settings.crm, tracking=settings.tracking, recordings=settings.recordings
    ) as pipeline:
        screen_pops = await open_lookup_reader(pipeline.sessionmaker)
        metrics = ApiMetrics()
        hub = CallEventHub(
            enrich=screen_pop_enricher(screen_pops, settings, pipeline.sessionmaker),
            on_dropped=_counting_drops(metrics),
        )
        spool_dir = settings.database.spool_dir
        standbys = [
            StandbyListener(
                pbx,
                lease_for(pipeline.engine, pbx.name),
                functools.partial(
                    PbxListener,
                    pbx,
                    pipeline.call_log,
                    checkpoint_path=spool_dir / f"live-calls-{pbx.name}.json",
                    progress_sink=hub.publish,
                ),
                check_seconds=settings.database.lease_check_seconds,
            )
            for pbx in settings.pbxs
        ]
        for standby in standbys:
            metrics.ami_events.watch(standby.pbx.name, _events_of(standby))
        click_to_call = ClickToCallService(
            # A click-to-call request waits on the database no longer than any other API request.
            with_deadline(pipeline.sessionmaker, settings.api.database_timeout_seconds),
            settings.pbxs,
            ListeningConnections(standbys),
        )
        wire_live_events(hub, pipeline.call_log, click_to_call)
        wire_webhooks(hub, pipeline.call_log, pipeline.sessionmaker, pipeline.roster)
        pipeline.call_log.add_commit_observer(lambda calls, _ids: _count_calls(metrics, calls))
        transcription = InProcessTranscription(pipeline.sessionmaker, settings, metrics)
        recording_worker = RecordingWorker(
            pipeline.sessionmaker,
            settings.recordings,
            settings.pbxs,
            observe=lambda pbx, state: _recording_done(metrics, transcription, pbx, state),
            on_ready=[transcription_queuer(settings)],
        )
        pipeline.call_log.add_commit_observer(
            lambda calls, _ids: recording_worker.wake() if any(c.recording_file for c in calls) else None
        )
        deliverer = WebhookDeliverer(pipeline.sessionmaker, metrics=metrics)
        status = ServiceStatus(
            pbx_connected=lambda: {standby.pbx.name: standby.is_ready for standby in standbys},
            pbx_standing_by=lambda: frozenset(s.pbx.name for s in standbys if s.is_standing_by),
            spool_depth=lambda: pipeline.call_log.spool_depth,
        )
        app = create_app(
            settings,
            pipeline.sessionmaker,
            status,
            metrics=metrics,
            click_to_call=click_to_call,
            hub=hub,
            recording_worker=recording_worker,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        settle_heap()
        site = web.TCPSite(runner, settings.api.host, settings.api.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                f"the API cannot listen on {settings.api.host}:{settings.api.port}: {exc.strerror or exc}"
            ) from exc
        migrated = pipeline.call_log.migrated
        workers = [
            asyncio.create_task(hub.run()),
            asyncio.create_task(trim_heap_periodically()),
            asyncio.create_task(_once(migrated, deliverer.run)),
            asyncio.create_task(_once(migrated, recording_worker.run)),
            asyncio.create_task(_once(migrated, transcription.run)),
            asyncio.create_task(
                _once(migrated, functools.partial(run_retention, pipeline.sessionmaker, settings.recordings))
            ),
        ]
        # Each PBX is listened to once its lease is held: at once on SQLite and on a PostgreSQL no other
        # `serve` shares, after the holder dies on a hot standby.
        listening = [asyncio.create_task(standby.run()) for standby in standbys]
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
            for task in listening:
                task.cancel()
            await asyncio.gather(*listening, return_exceptions=True)
            try:
                await asyncio.wait_for(pipeline.call_log.flush(), SHUTDOWN_FLUSH_SECONDS)
            except TimeoutError:
                log.warning("shutdown_with_spooled_calls", spool_depth=pipeline.call_log.spool_depth)
            try:  # the progress webhooks of the last events are queued before the hub stops
                await asyncio.wait_for(hub.drain(), SHUTDOWN_FLUSH_SECONDS)
            except TimeoutError:
                log.warning("shutdown_with_live_events_pending")
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await screen_pops.close()


async def _once(migrated: asyncio.Event, work: Callable[[], Awaitable[None]]) -> None:
    """Start a worker that reads the database once the schema is there (it may be down at start)."""
    await migrated.wait()
    await work()


def _events_of(standby: StandbyListener) -> Callable[[], int]:
    return lambda: standby.events_received


def _counting_drops(metrics: ApiMetrics) -> Callable[[LiveEvent], None]:
    dropped = Counter(
        "calltracking_live_events_dropped_total",
        "Live call events dropped because the event hub's queue was full (screen pops and progress "
        "webhooks lost; alert on any increase)",
        registry=metrics.registry,
    )
    return lambda _event: dropped.inc()


def _count_calls(metrics: ApiMetrics, calls: Sequence[CallRecord]) -> None:
    for call in calls:
        metrics.calls.labels(pbx=call.pbx, status=call.status.value).inc()


def _recording_done(
    metrics: ApiMetrics, transcription: InProcessTranscription, pbx: str, state: RecordingState
) -> None:
    _count_recording(metrics, pbx, state)
    if state is RecordingState.READY:
        transcription.wake()


def _count_recording(metrics: ApiMetrics, pbx: str, state: RecordingState) -> None:
    metrics.recordings.labels(pbx=pbx, state=state.value).inc()
    if state is RecordingState.MISSING:
        metrics.recordings_missing.labels(pbx=pbx).inc()


def wire_live_events(hub: CallEventHub, call_log: CallLog, click_to_call: ClickToCallService) -> None:
    """Who hears what: calls written to the database go out on the hub after the commit, behind the
    progress events of the same calls; click-to-call requests follow both, in that order."""

    def announce(calls: Sequence[CallRecord], ids: Sequence[int]) -> None:
        for call, call_id in zip(calls, ids, strict=True):
            hub.publish(CallCompleted(call_id=call_id, call=call))

    hub.add_handler(click_to_call.on_event)
    call_log.add_commit_observer(announce)


def wire_webhooks(
    hub: CallEventHub,
    call_log: CallLog,
    sessions: async_sessionmaker[AsyncSession],
    roster: WebhookRoster | None = None,
) -> WebhookRoster:
    """call.completed is owed in the transaction that writes the call, in the API's call shape; ringing and
    answered as they happen, in batches. One roster of subscriptions spares both (and the screen-pop
    lookup) the database when no webhook wants the event."""
    roster = roster or WebhookRoster()
    call_log.add_stored_hook(completed_queuer(call_payload, roster))
    hub.add_batch_handler(
        progress_queuer(sessions, roster), enriched_for=lambda event: wants_progress(event, roster)
    )
    return roster
