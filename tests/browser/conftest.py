"""One Chromium per test process (per xdist worker), launched by the first browser test and shared by all
of them: launching it cost each test about as much as the test itself. Every test still opens its pages
in a browser context of its own (`browser_page`): cookies, storage and cache are never shared.

Playwright's async objects belong to the event loop that made them, so the browser tests run in the
session's event loop (pytest-asyncio's `loop_scope="session"`), and so do the database fixtures they take:
an engine made in one loop cannot be used from another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser
from pytest_asyncio import is_async_test
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.helpers.browser import chromium
from tests.helpers.databases import BACKENDS, database_for_test, sessions_on

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    in_session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if is_async_test(item) and HERE in item.path.parents:
            item.add_marker(in_session_loop, append=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


@pytest_asyncio.fixture(loop_scope="session", params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """tests/conftest.py's `database_url`, in the session's loop."""
    async with database_for_test(request.param, tmp_path, migrated="sessions" in request.fixturenames) as url:
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """tests/conftest.py's `sessions`, in the session's loop."""
    async with sessions_on(database_url) as made:
        yield made
