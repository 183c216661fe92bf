from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog

from calltracking.logs import configure_logging
from calltracking.settings import LogSettings
from tests.helpers.databases import BACKENDS, fresh_database


@pytest.fixture(autouse=True)
def quiet_logs() -> None:
    configure_logging(LogSettings(level="warning", format="json"))
    structlog.contextvars.clear_contextvars()


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Every database test runs on the embedded SQLite and on the local PostgreSQL."""
    async with fresh_database(request.param, tmp_path) as url:
        yield url
