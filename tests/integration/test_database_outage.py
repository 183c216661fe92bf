"""The database goes away while calls complete, then comes back: every call is logged, once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ami.capture_peer import PeerSession
from calltracking.app.runtime import call_pipeline
from calltracking.calls.spool import JOURNAL
from tests.helpers.captures import capture, capture_names, truth
from tests.helpers.listening import (
    database_settings,
    listening,
    running_peer,
    sessions_played,
    stored_calls,
    until,
)
from tests.helpers.outage import Outage, migrated


async def test_calls_completed_during_an_outage_are_all_logged_once(outage: Outage, tmp_path: Path) -> None:
    names = capture_names()
    await migrated(outage.url)
    settings = database_settings(
        outage.url, tmp_path, retry_initial_seconds=0.05, retry_max_seconds=0.2, busy_timeout_seconds=0.1
    )
    await outage.begin()
    try:
        async with call_pipeline(settings) as pipeline:
            call_log = pipeline.call_log
            sessions = [PeerSession.from_capture(capture(name)) for name in names]
            async with running_peer(sessions) as peer, listening(peer, call_log) as listener:
                await sessions_played(listener, len(names))
                await until(lambda: call_log.spool_depth == len(names) and not call_log.is_database_up)
                journal = (tmp_path / "spool" / JOURNAL).read_bytes()
                assert journal.count(b"\n") == len(names)

                await outage.end()
                await asyncio.wait_for(call_log.flush(), 30)
    finally:
        await outage.end()

    stored = sorted(await stored_calls(outage.url), key=lambda s: s.id)
    # Once each, and written in the order the calls completed (the captures were played in this order).
    assert [(s.call.caller, s.call.status.value) for s in stored] == [
        (truth(n)[0]["caller"], truth(n)[0]["status"]) for n in names
    ]


async def test_database_down_at_start_delays_writes_not_the_service(outage: Outage, tmp_path: Path) -> None:
    settings = database_settings(
        outage.url, tmp_path, retry_initial_seconds=0.05, retry_max_seconds=0.2, busy_timeout_seconds=0.1
    )
    if outage.proxy is None:
        await migrated(outage.url)  # a locked SQLite file still has to exist to be locked
    await outage.begin()
    try:
        async with call_pipeline(settings) as pipeline:
            sessions = [PeerSession.from_capture(capture("inbound_single_answered"))]
            async with running_peer(sessions) as peer, listening(peer, pipeline.call_log) as listener:
                await sessions_played(listener, 1)
                await until(
                    lambda: pipeline.call_log.spool_depth == 1 and not pipeline.call_log.is_database_up
                )
                await outage.end()
                await asyncio.wait_for(pipeline.call_log.flush(), 30)
    finally:
        await outage.end()

    [stored] = await stored_calls(outage.url)
    assert stored.call.answered_by == "101"
