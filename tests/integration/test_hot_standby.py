"""Hot standby: two `serve` processes on one PostgreSQL, one listening per PBX, the other taking over.

The lease is a PostgreSQL advisory lock per PBX, held on a connection of the listening process; these
tests use the real server, the real `serve` processes and a TCP AMI peer.
"""

from __future__ import annotations

import asyncio
import functools
import signal
import time
from datetime import datetime
from pathlib import Path

import aiohttp
from sqlalchemy import text

from calltracking.store.engine import create_engine
from calltracking.store.pbx_lease import AdvisoryLockLease, LeaseState, lock_key
from tests.helpers.call_stream import build_call_stream, once_each, running_stream_peer
from tests.helpers.databases import fresh_database
from tests.helpers.listening import until
from tests.helpers.outage import migrated
from tests.helpers.process import ServiceLog, serving
from tests.helpers.tcp_proxy import free_port
from tests.integration.test_kill_restart import (
    POLL_SECONDS,
    completed_ids,
    handled,
    service_environment,
    snapshot_applied,
    spool_drained,
    stored_call_ids,
    until_handled,
)

STREAM_CALLS = 300
# A standby asks for the lease this often here (2 s by default): the takeover bound below is this plus
# the time a new session takes.
LEASE_CHECK_SECONDS = 0.2
TAKEOVER_BOUND_SECONDS = 15.0
# PBX time runs this much faster than real time: ~40 new calls a second, so the kill falls mid-stream.
PEER_SPEED = 10.0


async def test_one_process_holds_a_pbx_lease_until_its_connection_goes(tmp_path: Path) -> None:
    async with fresh_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        first, second = AdvisoryLockLease(engine, "office"), AdvisoryLockLease(engine, "office")
        other_pbx = AdvisoryLockLease(engine, "branch")
        try:
            assert await first.claim() is LeaseState.HELD
            assert await first.claim() is LeaseState.HELD
            assert await second.claim() is LeaseState.HELD_ELSEWHERE
            assert await other_pbx.claim() is LeaseState.HELD

            # The holder's connection dies (a restarted server, a dropped link): the lock goes with it.
            async with engine.connect() as admin:
                await admin.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                        "AND ((classid::bigint << 32) | objid::bigint) = :key"
                    ),
                    {"key": lock_key("office")},
                )
                await admin.commit()
            assert await second.claim() is LeaseState.HELD
            assert await first.claim() is LeaseState.UNKNOWN
            assert await first.claim() is LeaseState.HELD_ELSEWHERE

            await second.release()
            assert await first.claim() is LeaseState.HELD
        finally:
            for lease in (first, second, other_pbx):
                await lease.release()
            await engine.dispose()


async def test_the_standby_takes_over_when_the_listener_is_killed_and_no_call_is_logged_twice_or_lost(
    tmp_path: Path,
) -> None:
    """A listens and B stands by; A is SIGKILLed mid-stream; B takes over within seconds and logs the
    rest; A comes back on its own disk, writes what its journal held (calls B never saw) and stands by;
    B stops cleanly and A takes over again from its old checkpoint. Every call is one row."""
    stream = build_call_stream(STREAM_CALLS)
    spool_a, spool_b = tmp_path / "a-spool", tmp_path / "b-spool"
    async with (
        fresh_database("postgresql", tmp_path) as url,
        running_stream_peer(stream, speed=PEER_SPEED) as peer,
    ):
        await migrated(url)

        def environment(spool: Path, api_port: int = 0) -> dict[str, str]:
            return {
                **service_environment(url, spool, peer, ping_interval_seconds=3600),
                "CALLTRACKING_API__PORT": str(api_port),
                "CALLTRACKING_DATABASE__LEASE_CHECK_SECONDS": str(LEASE_CHECK_SECONDS),
                "CALLTRACKING_RECORDINGS__STORAGE_DIR": str(tmp_path / "recordings"),
            }

        log_a, log_b, log_a_again = (ServiceLog(tmp_path / f"{name}.log") for name in ("a", "b", "a-again"))
        peer.hold()  # the stream starts once both processes are up
        async with serving(environment(spool_a), log_a.path) as a:
            await until(lambda: bool(log_a.named("pbx_listening")), timeout=60, interval=POLL_SECONDS)
            b_port = free_port()
            async with serving(environment(spool_b, b_port), log_b.path) as b:
                await until(lambda: standing_by(log_b), timeout=60, interval=POLL_SECONDS)
                b_readiness = await readiness(b_port)
                peer.resume(0, before_body=functools.partial(snapshot_applied, log_a))
                await until_handled(stream, log_a, len(stream.frames) // 3)
                peer.hold()
                a.send_signal(signal.SIGKILL)
                await a.wait()
                killed_at = asyncio.get_running_loop().time()
                killed_at_wall = time.time()
                resume_at = handled(stream, log_a)
                assert resume_at < len(stream.frames) * 2 // 3, "the kill fell after most of the stream"
                peer.resume(resume_at, before_body=functools.partial(snapshot_applied, log_b))
                await until(lambda: bool(log_b.named("pbx_listening")), timeout=60, interval=POLL_SECONDS)
                took_over = asyncio.get_running_loop().time() - killed_at
                owed = {call_id for call_id, end in stream.ends.items() if end >= resume_at}
                await until(lambda: owed <= completed_ids(log_b), timeout=120, interval=POLL_SECONDS)
                await until(lambda: spool_drained(spool_b), timeout=60, interval=POLL_SECONDS)

                async with serving(environment(spool_a), log_a_again.path) as a_again:
                    await until(lambda: standing_by(log_a_again), timeout=60, interval=POLL_SECONDS)
                    await until(lambda: spool_drained(spool_a), timeout=60, interval=POLL_SECONDS)
                    assert not log_a_again.named("pbx_listening")
                    before_handover = sorted(await stored_call_ids(url))

                    peer.resume(
                        len(stream.frames), before_body=functools.partial(snapshot_applied, log_a_again)
                    )
                    b.send_signal(signal.SIGTERM)
                    assert await asyncio.wait_for(b.wait(), 60) == 0
                    await until(lambda: bool(log_a_again.named("ami_channels_listed")), timeout=60)
                    await until(lambda: spool_drained(spool_a), timeout=60, interval=POLL_SECONDS)
                    a_again.send_signal(signal.SIGTERM)
                    assert await asyncio.wait_for(a_again.wait(), 60) == 0
        ids = await stored_call_ids(url)

    assert took_over < TAKEOVER_BOUND_SECONDS
    # The standby says so: not ready (a load balancer sends click-to-call elsewhere), not listening.
    assert b_readiness == (503, [{"name": "office", "connected": False, "listening": False}])
    # B listened once, from after the kill; A, back, only once B had stopped.
    [b_listening] = log_b.named("pbx_listening")
    assert datetime.fromisoformat(b_listening["timestamp"]).timestamp() >= killed_at_wall
    [a_listening_again] = log_a_again.named("pbx_listening")
    [b_stopped] = log_b.named("pbx_stopped_listening")
    assert a_listening_again["timestamp"] >= b_stopped["timestamp"]
    assert before_handover == sorted(ids)
    assert stream.tally(ids) == once_each(STREAM_CALLS)


async def readiness(port: int) -> tuple[int, list[dict[str, object]]]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/readyz") as response:
        return response.status, (await response.json())["pbxs"]


def standing_by(log: ServiceLog) -> bool:
    return any(line.get("state") == "held_elsewhere" for line in log.named("pbx_lease"))
