"""PostgreSQL stops answering while the service runs: first it hangs (the proxy in front of it accepts
connections and forwards nothing), then it is gone (the proxy refuses and resets connections; the real
server, shared with other tests, is never stopped). Throughout, the API answers 503 with Retry-After
instead of hanging or failing with a 500, /readyz says the database is what is down, and completed calls
keep reaching the spool; once the database is back every call is in it, once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url

from ami.capture_peer import PeerSession
from api.app import create_app
from api.status import ServiceStatus
from calltracking.access.tokens import Role
from calltracking.app.runtime import call_pipeline
from calltracking.calls.log import CallLog
from calltracking.config import Settings, load_settings
from tests.helpers.api import make_token
from tests.helpers.captures import capture, capture_names, truth
from tests.helpers.databases import fresh_database
from tests.helpers.listening import listening, running_peer, sessions_played, stored_calls, until
from tests.helpers.tcp_proxy import TcpProxy

# How long anything may take before the test calls it a hang: far above every timeout configured below.
HANG = 30.0


@pytest.fixture
async def proxied_postgresql(tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    async with fresh_database("postgresql", tmp_path) as url:
        proxy = TcpProxy("127.0.0.1", 5432)
        await proxy.start()
        try:
            yield make_url(url).set(port=proxy.port).render_as_string(hide_password=False), proxy
        finally:
            await proxy.cut()


def outage_settings(url: str, tmp_path: Path) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "database": {
                "url": url,
                "spool_dir": str(tmp_path / "spool"),
                "connect_timeout_seconds": 0.5,
                "statement_timeout_seconds": 0.5,
                "pool_timeout_seconds": 0.5,
                "transaction_timeout_seconds": 1.0,
                "retry_initial_seconds": 0.05,
                "retry_max_seconds": 0.2,
            },
            "api": {
                "token_cache_seconds": 0,
                "database_timeout_seconds": 1.0,
                "readiness_timeout_seconds": 0.5,
                "retry_after_seconds": 7,
            },
        },
    )


async def test_the_api_and_the_call_log_ride_out_a_database_that_hangs_then_stops(
    proxied_postgresql: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    url, proxy = proxied_postgresql
    settings = outage_settings(url, tmp_path)
    names = capture_names()
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    async with call_pipeline(settings.database) as pipeline:
        call_log = pipeline.call_log
        status = ServiceStatus(
            pbx_connected=lambda: {"office": True}, spool_depth=lambda: call_log.spool_depth
        )
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_app(settings, pipeline.sessionmaker, status))
        )
        await client.start_server()
        try:
            await asyncio.wait_for(call_log.flush(), HANG)  # migrated
            token = {"Authorization": f"Bearer {await make_token(pipeline.sessionmaker, Role.ADMIN)}"}
            assert (await client.get("/api/v1/calls", headers=token)).status == 200

            await proxy.hang()
            await _calls_reach_the_spool(call_log, halves[0], expected_depth=len(halves[0]))
            await _the_api_says_the_database_is_down(client, token, spooled=len(halves[0]))

            await proxy.cut()
            await _calls_reach_the_spool(call_log, halves[1], expected_depth=len(names))
            await _the_api_says_the_database_is_down(client, token, spooled=len(names))

            await proxy.start()
            await asyncio.wait_for(call_log.flush(), HANG)
            ready = await client.get("/readyz")
            listed = await client.get("/api/v1/calls", params={"limit": 500}, headers=token)
            assert (ready.status, (await ready.json())["database"]) == (200, True)
            assert (listed.status, len((await listed.json())["items"])) == (200, len(names))
        finally:
            await client.close()

    stored = sorted(await stored_calls(url), key=lambda s: s.id)
    # Every call once, in the order they completed (the captures were played in this order).
    assert [(s.call.caller, s.call.status.value) for s in stored] == [
        (truth(n)[0]["caller"], truth(n)[0]["status"]) for n in names
    ]


async def _calls_reach_the_spool(call_log: CallLog, names: list[str], expected_depth: int) -> None:
    sessions = [PeerSession.from_capture(capture(name)) for name in names]
    async with running_peer(sessions) as peer, listening(peer, call_log) as listener:
        await sessions_played(listener, len(names), timeout=HANG)
    # Journaled, not written: the writer's attempts on the dead database end and are retried.
    await until(lambda: call_log.spool_depth == expected_depth and not call_log.is_database_up, HANG)


async def _the_api_says_the_database_is_down(
    client: TestClient[Any, Any], token: dict[str, str], spooled: int
) -> None:
    async with asyncio.timeout(HANG):  # bounded by the API's own timeouts, far below this
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
        history = await client.get("/api/v1/calls", headers=token)
        lookup = await client.get("/api/v1/lookup", params={"number": "+79161234567"}, headers=token)
        dial = await client.post(
            "/api/v1/calls/originate", json={"extension": "101", "number": "89161234567"}, headers=token
        )
    # Which dependency is down, and how many calls wait in the spool for it.
    assert (ready.status, await ready.json()) == (
        503,
        {
            "ready": False,
            "database": False,
            "pbxs": [{"name": "office", "connected": True, "listening": True}],
            "spool_depth": spooled,
        },
    )
    assert health.status == 200
    for refused in (history, lookup, dial):
        body = await refused.json()
        assert (refused.status, body["error"]["code"], refused.headers["Retry-After"]) == (
            503,
            "database_unavailable",
            "7",
        )
