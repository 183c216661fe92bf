"""Run `calltracking serve` as a real process, the way an admin does."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


@asynccontextmanager
async def serving(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with open(log, "ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "calltracking.cli", "serve", env=env, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
