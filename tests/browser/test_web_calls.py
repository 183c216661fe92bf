"""The call history page in Chromium: filters, paging links, exports, language, a phone-sized screen."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser

from tests.helpers.api import running_api
from tests.helpers.browser import PHONE, browser_page, screenshot, sign_in


def backend_of(database_url: str) -> str:
    return database_url.split(":", 1)[0].split("+", 1)[0]


async def test_filtering_the_calls_shows_what_the_api_finds_and_opens_a_call(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = backend_of(database_url)
    async with running_api(database_url, tmp_path) as api:
        expected = await api.client.get(
            "/api/v1/calls", params={"status": "missed", "limit": 500}, headers=api.auth("supervisor")
        )
        missed_ids = [item["id"] for item in (await expected.json())["items"]]
        assert missed_ids
        async with browser_page(browser, str(api.client.make_url("/"))) as (page, console):
            await sign_in(page, api.tokens["supervisor"], then="/ui/calls")
            everything = await page.locator("#calls tbody tr[data-call-id]").count()
            await page.select_option("select[name=status]", "missed")
            await page.click("#apply-filters")
            await page.wait_for_url("**/ui/calls?*status=missed*")
            shown = [
                int(v)
                for v in await page.eval_on_selector_all(
                    "#calls tbody tr[data-call-id]", "rows => rows.map(row => row.dataset.callId)"
                )
            ]
            assert shown == missed_ids  # the same calls, newest first, as the API lists them
            assert len(shown) < everything
            await screenshot(page, f"calls-{backend}")
            export = await api.client.get(
                "/ui/calls", params={"status": "missed", "format": "csv"}, cookies=await _cookies(page)
            )
            assert export.status == 200
            lines = (await export.text()).strip().splitlines()
            assert len(lines) == 1 + len(missed_ids)
            assert console.errors == []
            await page.click(f"#calls tbody tr[data-call-id='{shown[0]}'] a")
            await page.wait_for_url(f"**/ui/calls/{shown[0]}")


async def test_a_bad_filter_is_a_message_on_the_page_not_an_error(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    async with (
        running_api(database_url, tmp_path) as api,
        browser_page(browser, str(api.client.make_url("/"))) as (page, _),
    ):
        await sign_in(page, api.tokens["supervisor"], then="/ui/calls")
        response = await page.goto("/ui/calls?from=2026-13-45&number=%3Cscript%3E")
        assert response is not None and response.status == 422
        assert await page.locator("p.error[role=alert]").count() == 1
        assert await page.locator("script:not([src])").count() == 0


async def test_the_language_switch_translates_the_page_and_its_formats(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = backend_of(database_url)
    async with (
        running_api(database_url, tmp_path) as api,
        browser_page(browser, str(api.client.make_url("/")), viewport=PHONE) as (page, console),
    ):
        await sign_in(page, api.tokens["manager"], then="/ui/calls")
        assert await page.locator("h1").inner_text() == "Calls"
        english_date = await page.locator("#calls tbody tr td a").first.inner_text()
        await page.click("a[hreflang=ru]")
        await page.wait_for_url("**/ui/calls")
        assert await page.locator("h1").inner_text() == "Звонки"
        assert await page.locator("html").get_attribute("lang") == "ru"
        russian_date = await page.locator("#calls tbody tr td a").first.inner_text()
        assert russian_date != english_date  # 11/22/26, 12:19 PM -> 22.11.2026, 12:19
        assert "." in russian_date
        # A manager sees only the calls whose manager is their own extension.
        managers = await page.eval_on_selector_all(
            "#calls tbody tr[data-call-id] td:nth-child(6)",
            "cells => cells.map(cell => cell.textContent)",
        )
        assert managers and set(managers) == {"101"}
        await screenshot(page, f"calls-phone-ru-{backend}")
        assert console.errors == []


async def _cookies(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {cookie["name"]: cookie["value"] for cookie in await page.context.cookies()}
