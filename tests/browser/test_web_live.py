"""The live panel in Chromium: a call that a TCP AMI peer starts and ends while the page is open appears
ringing, then talking, then ended, without a reload; a manager's panel shows nothing of other phones."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from calltracking.access.tokens import Role
from tests.helpers.api import make_token
from tests.helpers.browser import browser_page, screenshot, sign_in
from tests.helpers.listening import until
from tests.helpers.service_stack import originate_answered_by, stack


async def test_the_live_panel_follows_a_call_from_the_pbx_without_reloading(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        supervisor = await make_token(s.sessions, Role.SUPERVISOR)
        stranger = await make_token(s.sessions, Role.MANAGER, "103")
        base = str(s.client.make_url("/"))
        async with (
            browser_page(browser, base) as (page, console),
            browser_page(browser, base) as (other_page, other_console),
        ):
            await sign_in(page, supervisor, then="/ui/live")
            await sign_in(other_page, stranger, then="/ui/live")
            for opened in (page, other_page):
                await opened.wait_for_selector("#live-status[data-state=connected]")
            loads = []
            page.on("load", lambda _: loads.append(1))

            status, _ = await s.post({"extension": "101", "number": "89161234567", "request_id": "req-42"})
            assert status == 202
            ended = page.locator("#ended-calls li[data-state=completed]")
            await ended.wait_for(timeout=10_000)
            seen = (await ended.get_attribute("data-seen") or "").split()
            assert seen[0] == "ringing" and "answered" in seen and seen[-1] == "completed"
            assert "89161234567" in await ended.inner_text()
            assert await page.locator("#live-calls li").count() == 0
            assert loads == []  # updated in place
            call_link = await ended.locator("a").get_attribute("href")
            assert call_link is not None and call_link.startswith("/ui/calls/")
            await screenshot(page, f"live-{backend}")
            # Extension 103 neither rang nor talked: its manager's panel learned nothing of the call.
            assert await other_page.locator("#ended-calls li, #live-calls li").count() == 0
            assert console.errors == [] and other_console.errors == []


async def test_the_event_socket_refuses_a_session_cookie_from_another_origin(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    async with stack(database_url, tmp_path, []) as s:
        supervisor = await make_token(s.sessions, Role.SUPERVISOR)
        async with browser_page(browser, str(s.client.make_url("/"))) as (page, _):
            await sign_in(page, supervisor, then="/ui/live")
            cookies = {c["name"]: c["value"] for c in await page.context.cookies()}
        headers = {"Origin": "http://evil.example"}
        response = await s.client.get(
            "/api/v1/events",
            cookies=cookies,
            headers=headers
            | {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        assert response.status == 403
