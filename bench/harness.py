"""What the benchmark scripts share: how a run is declared broken, the parent/child pipe of the load
process, serving an app on loopback, a token for the service, percentiles, and the script's entry."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.access.repository import create_token
from calltracking.access.tokens import Role, new_token
from calltracking.config import LogSettings
from calltracking.logs import configure_logging


class BenchmarkBroken(Exception):
    """The run did not do what it measures (an error answer, a wrong or missing result, a stalled
    stream): its figures mean nothing."""


def emit(message: dict[str, Any]) -> None:
    """One JSON line to the other process."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def stdin_lines() -> asyncio.StreamReader:
    """The other process's JSON lines (a line may carry thousands of latencies)."""
    reader = asyncio.StreamReader(limit=2**26)
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    return reader


@contextlib.asynccontextmanager
async def served(app: web.Application) -> AsyncIterator[str]:
    """The app on a real loopback socket, as `calltracking serve` runs it (no access log)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def integration_token(sessions: async_sessionmaker[AsyncSession]) -> str:
    token = new_token()
    async with sessions.begin() as session:
        await create_token(session, token, "bench", Role.INTEGRATION, None)
    return token.secret


def percentile(ordered: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    return ordered[max(1, math.ceil(len(ordered) * p / 100)) - 1]


def run_script(
    args: argparse.Namespace,
    run_load: Callable[[], Awaitable[None]],
    serve_and_measure: Callable[[argparse.Namespace], Awaitable[None]],
) -> int:
    """The entry of a script whose load runs in a child process (the same script with `--load`): exit 0
    whatever the figures, 1 when the run itself was broken."""
    if args.load:
        asyncio.run(run_load())
        return 0
    configure_logging(LogSettings(level="warning"))
    try:
        asyncio.run(serve_and_measure(args))
    except BenchmarkBroken as exc:
        print(f"BROKEN: {exc}", file=sys.stderr)
        return 1
    return 0
