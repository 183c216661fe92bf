"""Pages as people use them in Chromium: by keyboard alone, as a manager on a phone-sized screen, and
the sign-in and error pages."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from playwright.async_api import Browser

from tests.helpers.api import running_api
from tests.helpers.browser import PHONE, browser_page, screenshot, sign_in


def backend_of(database_url: str) -> str:
    return database_url.split(":", 1)[0].split("+", 1)[0]


async def test_signing_in_and_moving_between_pages_by_keyboard_alone(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = backend_of(database_url)
    async with (
        running_api(database_url, tmp_path, seed=False) as api,
        browser_page(browser, str(api.client.make_url("/"))) as (page, console),
    ):
        await page.goto("/ui/signin")
        await screenshot(page, f"signin-{backend}")
        # The token field has the focus as the page opens: type, Enter.
        await page.keyboard.type(api.tokens["supervisor"])
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*/ui/$"))
        # The first Tab reaches the skip link, which moves the focus to the content.
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.className") == "skip"
        for _ in range(12):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.textContent") == "Calls":
                break
        else:
            raise AssertionError("the Calls link cannot be reached by Tab")
        focus = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert focus != "none"  # the focused link shows it
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r".*/ui/calls$"))
        assert console.errors == []


async def test_a_managers_dashboard_on_a_phone_shows_their_own_line_only(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = backend_of(database_url)
    async with (
        running_api(database_url, tmp_path) as api,
        browser_page(browser, str(api.client.make_url("/")), viewport=PHONE) as (page, console),
    ):
        await sign_in(page, api.tokens["manager"], then="/ui/")
        await page.goto("/ui/?from=2026-11-01&to=2026-11-30")
        await page.wait_for_selector("#managers-section[data-loaded=true]")
        keys = await page.eval_on_selector_all(
            "#managers tbody tr[data-key]", "rows => rows.map(r => r.dataset.key)"
        )
        assert keys == ["ext:101"]
        assert await page.locator("#queues, #sources").count() == 0  # supervisors' reports
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # nothing wider than the screen; wide tables scroll inside
        await screenshot(page, f"dashboard-phone-{backend}")
        response = await api.client.get(
            "/ui/",
            params={"from": "2026-11-01", "to": "2026-11-30", "format": "csv"},
            cookies={c["name"]: c["value"] for c in await page.context.cookies()},
        )
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        assert [row["key"] for row in rows] == ["ext:101"]  # the export is what the screen shows
        assert console.errors == []


async def test_a_page_that_does_not_exist_is_a_page_not_a_stack_trace(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = backend_of(database_url)
    async with (
        running_api(database_url, tmp_path, seed=False) as api,
        browser_page(browser, str(api.client.make_url("/"))) as (page, _),
    ):
        await sign_in(page, api.tokens["supervisor"], then="/ui/")
        response = await page.goto("/ui/calls/999999")
        assert response is not None and response.status == 404
        assert await page.locator("h1").inner_text() == "Not found"
        await screenshot(page, f"error-{backend}")
