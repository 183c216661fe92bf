"""The API served from a background thread with its own event loop, for synchronous HTTP clients
(schemathesis): a real socket on loopback, a real database seeded from the captures, a token per role, and
a connected PBX (a loopback AMI peer that accepts every Originate), so a healthy service is what is tested."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ami.capture_peer import CapturePeer, PeerSession, frame, greeting_frames
from ami.listener import PbxListener
from api.app import create_app
from api.status import ServiceStatus
from calltracking.access.tokens import Role
from calltracking.app.replay import replay_captures
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import PbxSettings, load_settings
from calltracking.store.engine import create_engine, create_sessionmaker, migrate
from tests.helpers.api import make_token
from tests.helpers.captures import capture, story_captures
from tests.helpers.databases import fresh_database
from tests.helpers.listening import CollectingSink, database_settings


def accepting_pbx() -> PeerSession:
    def accept(action: dict[str, str]) -> list[bytes]:
        return [
            frame(
                {
                    "Response": "Success",
                    "ActionID": action["actionid"],
                    "Message": "Originate successfully queued",
                }
            )
        ]

    return PeerSession(greeting=greeting_frames(), close_at_end=False, action_replies={"originate": accept})


@dataclass
class ThreadedApi:
    url: str = ""
    backend: str = ""
    tokens: dict[str, str] = field(default_factory=dict)


@contextmanager
def threaded_api(backend: str, tmp_path: Path) -> Iterator[ThreadedApi]:
    served = ThreadedApi(backend=backend)
    ready = threading.Event()
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        async with fresh_database(backend, tmp_path) as url:
            await replay_captures(
                [capture(name) for name in story_captures()],
                PbxSettings(name="office"),
                database_settings(url, tmp_path),
                tmp_path / "spool",
            )
            engine = create_engine(url)
            await migrate(engine)
            sessions = create_sessionmaker(engine)
            settings = load_settings(
                environ={},
                overrides={
                    "database": {"url": url},
                    "api": {"rate_limit_per_minute": 1_000_000},
                    # The PBX its calls come from: the only `pbx` the reports are asked for.
                    "pbxs": [{"name": "office"}],
                },
            )
            for role in Role:
                served.tokens[role.value] = await make_token(
                    sessions, role, "101" if role is Role.MANAGER else None
                )
            peer = CapturePeer([accepting_pbx()])
            port = await peer.start()
            pbx = PbxSettings(name="office", port=port)
            listener = PbxListener(pbx, CollectingSink())
            listener.start()
            async with asyncio.timeout(30):
                while not listener.connection.is_ready:
                    await asyncio.sleep(0.01)
            click_to_call = ClickToCallService(sessions, [pbx], {"office": listener.connection})
            status = ServiceStatus(pbx_connected=lambda: {"office": listener.connection.is_ready})
            app = create_app(settings, sessions, status, click_to_call=click_to_call)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            api_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            served.url = f"http://127.0.0.1:{api_port}"
            ready.set()
            await stop.wait()
            await runner.cleanup()
            await listener.close()
            await peer.stop()
            await engine.dispose()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported to the test thread below
            failure.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="threaded-api", daemon=True)
    thread.start()
    ready.wait(timeout=120)
    if failure or not served.url:
        raise RuntimeError(f"the API did not start: {failure!r}")
    try:
        yield served
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)
