"""Seeking in a long recording on the call page asks the server for the part sought to: a Range request
starting past what the player had, answered 206 — the player never downloads the whole file first."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.status import ServiceStatus
from calltracking.access.tokens import Role
from calltracking.calls.recording import RecordingState
from tests.helpers.api import make_token
from tests.helpers.browser import browser_page, sign_in
from tests.helpers.factories import make_call
from tests.helpers.recording_stack import pbx_path, recording_stack
from tests.integration.test_long_recording import write_long_wav

MINUTES = 12
RANGE = re.compile(r"bytes=(\d+)-")


async def until_true(page: Page, expression: str, seconds: float = 15.0) -> None:
    """Polls with `evaluate` (the page's CSP forbids the eval that `wait_for_function` needs)."""
    for _ in range(int(seconds * 10)):
        if await page.evaluate(expression):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never true: {expression}")


async def test_a_seek_far_into_a_long_recording_is_a_range_request(
    browser: Browser, sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    # A high bitrate makes a file larger than the player buffers ahead on its own (a few MB).
    stack = recording_stack(sessions, database_url, tmp_path, bitrate=256_000)
    write_long_wav(stack.monitor / "long.wav", MINUTES * 60)
    call_id = await stack.add_call(make_call(1, manager="101", recording_file=pbx_path("long.wav")))
    await stack.worker.process_due()
    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    token = await make_token(sessions, Role.SUPERVISOR)
    app = create_app(stack.settings, sessions, ServiceStatus())
    server = TestServer(app)
    await server.start_server()
    try:
        async with browser_page(browser, str(server.make_url("/"))) as (page, console):
            asked: list[int] = []

            def note(request: Request) -> None:
                if f"/calls/{call_id}/recording" in request.url:
                    match = RANGE.match(request.headers.get("range", ""))
                    assert match is not None, "the player asked without a Range"
                    asked.append(int(match.group(1)))

            page.on("request", note)
            await sign_in(page, token, then=f"/ui/calls/{call_id}")
            await until_true(page, "document.querySelector('audio').duration > 60")
            size = (stack.stored_files()[0]).stat().st_size
            before = await page.evaluate(
                "(() => { const b = document.querySelector('audio').buffered;"
                " return b.length ? b.end(b.length - 1) : 0; })()"
            )
            duration = await page.evaluate("document.querySelector('audio').duration")
            assert before < duration * 0.5  # it did not fetch the whole file to show the player
            seen = len(asked)
            await page.evaluate(f"document.querySelector('audio').currentTime = {duration - 60}")
            await until_true(
                page,
                f"document.querySelector('audio').currentTime > {duration - 61}"
                " && document.querySelector('audio').readyState >= 2",
            )
            for _ in range(50):
                if any(start > size // 2 for start in asked[seen:]):
                    break
                await asyncio.sleep(0.1)
            assert any(start > size // 2 for start in asked[seen:]), (asked, size)
            assert console.errors == []
    finally:
        await server.close()
