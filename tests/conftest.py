from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog
from hypothesis import settings
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.config import LogSettings
from calltracking.logs import configure_logging
from tests.helpers.databases import (
    BACKENDS,
    TEMPLATES,
    Templates,
    database_for_test,
    fresh_database,
    sessions_on,
)
from tests.helpers.outage import Outage
from tests.helpers.tcp_proxy import TcpProxy

# No test is timed: Hypothesis's per-example deadline (200 ms) failed property tests whenever the shared
# 2-core machine was busy (a 0.3 ms example took 417 ms once). Speed goals live in bench/.
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging(LogSettings(level="warning", format="json"))
    structlog.contextvars.clear_contextvars()


@pytest.fixture(scope="session", autouse=True)
def templates() -> Iterator[Templates]:
    """The template databases this session (this xdist worker) builds, removed at its end."""
    yield TEMPLATES
    TEMPLATES.remove_all()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every database test runs on the embedded SQLite and on the local PostgreSQL. The database is
    empty; for a test that also asks for `sessions`, it is a copy of a migrated template."""
    async with database_for_test(request.param, tmp_path, migrated="sessions" in request.fixturenames) as url:
        yield url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A migrated database on each backend, and sessions on it (migrating is a check: already at head)."""
    async with sessions_on(database_url) as made:
        yield made


@pytest.fixture(params=BACKENDS)
async def outage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Outage]:
    """A database that can be taken away: SQLite locked by another connection, or PostgreSQL behind a
    loopback proxy that refuses and cuts connections."""
    async with fresh_database(request.param, tmp_path) as url:
        if request.param == "sqlite":
            yield Outage(url)
            return
        proxy = TcpProxy("127.0.0.1", 5432)
        await proxy.start()
        proxied = make_url(url).set(port=proxy.port).render_as_string(hide_password=False)
        try:
            yield Outage(proxied, proxy=proxy)
        finally:
            await proxy.cut()
