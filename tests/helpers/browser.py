"""Debian's headless Chromium driven by Playwright, against the real service on loopback: every page
opened records its console errors and CSP violations, and screenshots land in tests/artifacts/."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

CHROMIUM = os.environ.get("CALLTRACKING_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@dataclass
class Console:
    """What the pages printed to the console: any error (a CSP violation is one) fails a test."""

    errors: list[str] = field(default_factory=list)

    def take(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # Root in a container has no user namespaces for the sandbox; audio plays without a gesture.
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def browser_page(
    browser: Browser, base_url: str, viewport: dict[str, int] | None = None, locale: str = "en-US"
) -> AsyncIterator[tuple[Page, Console]]:
    context: BrowserContext = await browser.new_context(
        base_url=base_url,
        viewport=viewport or DESKTOP,
        locale=locale,  # type: ignore[arg-type]
    )
    page = await context.new_page()
    console = Console()
    page.on("console", console.take)
    page.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    try:
        yield page, console
    finally:
        await context.close()


async def sign_in(page: Page, token: str, then: str = "/ui/") -> None:
    await page.goto(f"/ui/signin?next={then}")
    await page.fill("#token", token)
    await page.click("#signin-submit")
    await page.wait_for_url(re.compile(".*" + re.escape(then) + r"(\?.*)?$"))


async def screenshot(page: Page, name: str) -> Path:
    """A full-page picture under tests/artifacts/ (kept out of git), to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
