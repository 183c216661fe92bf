"""`calltracking serve` killed with SIGKILL and started again: spooled calls are written, once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from ami.capture_peer import CapturePeer, PeerSession, greeting_frames
from calltracking.spool import JOURNAL
from tests.helpers.captures import capture, capture_names
from tests.helpers.listening import running_peer, stored_calls, until
from tests.helpers.outage import Outage, migrated
from tests.helpers.process import serving


def service_environment(database_url: str, spool: Path, peer: CapturePeer) -> dict[str, str]:
    pbx = {
        "name": "office",
        "port": peer.port,
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
    }
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLTRACKING_")},
        "CALLTRACKING_DATABASE__URL": database_url,
        "CALLTRACKING_DATABASE__SPOOL_DIR": str(spool),
        "CALLTRACKING_DATABASE__RETRY_INITIAL_SECONDS": "0.05",
        "CALLTRACKING_DATABASE__RETRY_MAX_SECONDS": "0.2",
        "CALLTRACKING_DATABASE__BUSY_TIMEOUT_SECONDS": "0.1",
        "CALLTRACKING_PBXS": json.dumps([pbx]),
        "CALLTRACKING_LOG__FORMAT": "json",
        "CALLTRACKING_API__PORT": "0",
    }


def journal_lines(spool: Path) -> int:
    try:
        return (spool / JOURNAL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


async def test_killed_while_the_database_is_down_then_restarted_writes_every_spooled_call_once(
    outage: Outage, tmp_path: Path
) -> None:
    names = capture_names()[:6]
    spool = tmp_path / "spool"
    await migrated(outage.url)
    await outage.begin()
    try:
        async with running_peer([PeerSession.from_capture(capture(n)) for n in names]) as peer:
            env = service_environment(outage.url, spool, peer)
            async with serving(env, tmp_path / "first.log") as first:
                await until(lambda: journal_lines(spool) == len(names), timeout=60)
                first.send_signal(signal.SIGKILL)
                await first.wait()
        await outage.end()
        async with running_peer([]) as idle_peer:
            env = service_environment(outage.url, spool, idle_peer)
            async with serving(env, tmp_path / "second.log") as second:
                await until_stored(outage.url, len(names))
                second.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(second.wait(), 30) == 0
    finally:
        await outage.end()

    stored = await stored_calls(outage.url)
    assert len(stored) == len(names)
    assert len({s.call.pbx_call_id for s in stored}) == len(names)
    assert b"spool_recovered" in (tmp_path / "second.log").read_bytes()


async def test_killed_right_after_calls_completed_loses_none(database_url: str, tmp_path: Path) -> None:
    names = capture_names()
    spool = tmp_path / "spool"
    async with running_peer([PeerSession.from_capture(capture(n)) for n in names]) as peer:
        env = service_environment(database_url, spool, peer)
        async with serving(env, tmp_path / "first.log") as first:
            # Kill the moment the last call is durable, whether or not the database has it yet.
            await until(lambda: journal_lines(spool) == len(names), timeout=60)
            first.send_signal(signal.SIGKILL)
            await first.wait()
    async with (
        running_peer([]) as idle_peer,
        serving(service_environment(database_url, spool, idle_peer), tmp_path / "second.log") as second,
    ):
        await until_stored(database_url, len(names))
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)

    stored = await stored_calls(database_url)
    assert sorted(s.call.pbx_call_id for s in stored) == sorted({s.call.pbx_call_id for s in stored})
    assert len(stored) == len(names)


async def until_stored(url: str, count: int, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                if len(await stored_calls(url)) >= count:
                    return
            except Exception:  # the service may still be creating the schema
                pass
            await asyncio.sleep(0.1)


async def test_killed_mid_call_the_call_is_not_forgotten(database_url: str, tmp_path: Path) -> None:
    """The call is in flight when the process dies and ends before it is back: it is logged, reconciled."""
    data = capture("inbound_single_answered")
    mid_call = data[: data.index(b"Event: RTCPSent")]
    spool = tmp_path / "spool"
    checkpoint = spool / "live-calls-office.json"
    talking = PeerSession(*_split(mid_call), close_at_end=False)
    async with (
        running_peer([talking]) as peer,
        serving(service_environment(database_url, spool, peer), tmp_path / "first.log") as first,
    ):
        await until(lambda: checkpoint.exists() and b"1795349935.0" in checkpoint.read_bytes(), timeout=60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    empty_pbx = PeerSession(greeting=greeting_frames(), close_at_end=False)
    async with (
        running_peer([empty_pbx]) as peer,
        serving(service_environment(database_url, spool, peer), tmp_path / "second.log") as second,
    ):
        await until_stored(database_url, 1)
        second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 30)

    [stored] = await stored_calls(database_url)
    assert (stored.call.status.value, stored.call.answered_by, stored.call.reconciled) == (
        "answered",
        "101",
        True,
    )


def _split(data: bytes) -> tuple[bytes, bytes]:
    session = PeerSession.from_capture(data)
    return session.greeting, session.body
