"""A running API over real HTTP on loopback, its database seeded from the real captures, and a token
for every role."""

from __future__ import annotations

import shutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.status import ServiceStatus
from calltracking.access.repository import create_token
from calltracking.access.tokens import Role, new_token
from calltracking.app.replay import replay_captures
from calltracking.config import PbxSettings, RecordingSettings, Settings, load_settings
from calltracking.store.engine import create_engine, create_sessionmaker, migrate
from tests.helpers.captures import TRACES, capture, story_captures
from tests.helpers.databases import TEMPLATES, fill_from_template, fill_migrated, is_empty
from tests.helpers.listening import database_settings

MANAGER = "101"


@dataclass
class ApiHarness:
    client: TestClient[Any, Any]
    sessions: async_sessionmaker[AsyncSession]
    tokens: dict[str, str]
    settings: Settings

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


async def make_token(
    sessions: async_sessionmaker[AsyncSession], role: Role, manager: str | None = None
) -> str:
    token = new_token()
    async with sessions.begin() as session:
        await create_token(session, token, f"test {role.value}", role, manager)
    return token.secret


async def tokens_for_every_role(sessions: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    """A token per role, the manager's for extension 101, and `other_manager` for 103."""
    tokens = {role.value: await make_token(sessions, role) for role in Role if role is not Role.MANAGER}
    tokens["manager"] = await make_token(sessions, Role.MANAGER, MANAGER)
    tokens["other_manager"] = await make_token(sessions, Role.MANAGER, "103")
    return tokens


async def replay_story_captures(database_url: str, directory: Path) -> None:
    """The story captures with their recordings, as `replay --recordings-dir` takes them; the recordings
    are stored under `directory / "recordings"`."""
    settings = load_settings(
        environ={}, overrides={"recordings": {"storage_dir": str(directory / "recordings")}}
    )
    await replay_captures(
        [capture(name) for name in story_captures()],
        PbxSettings(name="office", recordings_dir=TRACES / "recordings"),
        database_settings(database_url, directory),
        directory / "s",
        recordings=settings.recordings,
    )


async def seed_from_template(database_url: str, tmp_path: Path, recordings: RecordingSettings) -> None:
    """The empty database at `database_url` becomes a copy of one that `replay_story_captures` filled
    once per test session, and `recordings.storage_dir` a copy of its stored recordings."""
    backend = make_url(database_url).get_backend_name()
    template = await TEMPLATES.get(backend, "story_captures", replay_story_captures)
    await fill_from_template(database_url, backend, template)
    stored = TEMPLATES.files(backend, "story_captures") / "recordings"
    if stored.exists():
        shutil.copytree(stored, recordings.storage_dir)


@asynccontextmanager
async def running_api(
    database_url: str,
    tmp_path: Path,
    seed: bool = True,
    clock: Callable[[], float] = time.monotonic,
    pbxs: Sequence[str] = (),
    **api_settings: Any,
) -> AsyncIterator[ApiHarness]:
    """`clock` is the one the token authority (rate limit, token cache) reads; `pbxs` the PBXs configured
    (default: the settings' default one), the names a `pbx` filter may ask for."""
    settings = load_settings(
        environ={},
        overrides={
            **({"pbxs": [{"name": name} for name in pbxs]} if pbxs else {}),
            "database": {"url": database_url},
            "api": {"token_cache_seconds": 0, **api_settings},
            "recordings": {"storage_dir": str(tmp_path / "recordings")},
        },
    )
    if seed:
        await seed_from_template(database_url, tmp_path, settings.recordings)
    elif await is_empty(database_url):
        await fill_migrated(database_url)  # not a test of migrating: that is test_migrations.py's
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = create_sessionmaker(engine)
    tokens = await tokens_for_every_role(sessions)
    app = create_app(settings, sessions, ServiceStatus(pbx_connected=lambda: {"office": True}), clock=clock)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield ApiHarness(client=client, sessions=sessions, tokens=tokens, settings=settings)
    finally:
        await client.close()
        await engine.dispose()
