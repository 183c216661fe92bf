"""Signing in and the dashboard, in real headless Chromium over the replayed captures."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.helpers.api import running_api
from tests.helpers.browser import browser_page, screenshot, sign_in


async def test_sign_in_and_the_dashboard_draws_its_charts_from_the_captures(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    async with running_api(database_url, tmp_path) as api:
        base = str(api.client.make_url("/"))
        async with browser_page(browser, base) as (page, console):
            await page.goto("/ui/calls")
            assert "/ui/signin" in page.url  # no session: the sign-in page, remembering where to go
            await sign_in(page, api.tokens["supervisor"], then="/ui/")
            await page.goto("/ui/?from=2026-11-15&to=2026-11-30")
            # The two slow tables arrive after the page, from their fragments.
            for section in ("#managers-section", "#sources-section"):
                await page.wait_for_selector(f"{section}[data-loaded=true]")
            assert await page.locator("#managers tbody tr[data-key]").count() >= 3
            assert await page.locator("#sources tbody tr").count() >= 1
            drawn = await page.eval_on_selector_all(
                "#chart-days rect[data-value]", "bars => bars.map(bar => Number(bar.dataset.value))"
            )
            response = await api.client.get(
                "/api/v1/calls",
                params={"from": "2026-11-15T00:00:00Z", "limit": 500},
                headers=api.auth("supervisor"),
            )
            calls = (await response.json())["items"]
            assert calls
            assert sum(drawn) == len(calls)  # every call of the history is drawn, once
            await screenshot(page, f"dashboard-{backend}")
            assert console.errors == []
