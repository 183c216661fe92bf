"""A real HTTP receiver on loopback standing in for the CRM: it records every request, answers 500 to the
first N (or to all), and can hold requests open to play a receiver that hangs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    url: str = ""
    fail_first: int = 0
    always_fail: bool = False
    requests: list[ReceivedRequest] = field(default_factory=list)
    # While cleared, requests wait (after being recorded) without an answer.
    answering: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self.answering.set()

    async def handle(self, request: web.Request) -> web.Response:
        received = ReceivedRequest(request.path, dict(request.headers), await request.read())
        async with self._arrived:
            self.requests.append(received)
            number = len(self.requests)
            self._arrived.notify_all()
        await self.answering.wait()
        if self.always_fail or number <= self.fail_first:
            return web.Response(status=500, text="receiver is down")
        return web.Response(status=204)

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedRequest]:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)


@asynccontextmanager
async def running_receiver(fail_first: int = 0, always_fail: bool = False) -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=fail_first, always_fail=always_fail)
    app = web.Application()
    app.router.add_post("/{tail:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}/hooks/crm"
    try:
        yield receiver
    finally:
        receiver.answering.set()
        await runner.cleanup()
