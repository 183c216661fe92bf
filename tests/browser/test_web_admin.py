"""The admin pages in real headless Chromium: a manager token created and revoked with the keyboard
alone, the PBX links, a webhook's delivery log, and how the pages look on a desktop and on a phone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Browser, Page

from calltracking.access.repository import list_tokens
from calltracking.webhooks import repository as webhook_repository
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.browser import PHONE, browser_page, screenshot, sign_in

MOST_TABS = 80


async def tab_to(page: Page, element_id: str) -> None:
    """Press Tab until the element has the focus, as a keyboard user would reach it."""
    for _ in range(MOST_TABS):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with Tab")


async def a_failed_delivery(api: ApiHarness) -> int:
    """A webhook with one dead delivery and one delivered, for its log to show both."""
    now = datetime.now(UTC)
    async with api.sessions.begin() as session:
        webhook = await webhook_repository.create_webhook(
            session,
            url="https://crm.example/calltracking/hook",
            events=["call.completed", "lead.created"],
            secret="signing-key",
            description="CRM production",
            now=now,
        )
        for event in ("evt-1", "evt-2"):
            await webhook_repository.queue_deliveries(
                session, event_id=event, event_type="call.completed", payload={"id": event}, now=now
            )
    async with api.sessions.begin() as session:
        first, second = sorted(
            await webhook_repository.list_deliveries(session, webhook.id), key=lambda d: d.event_id
        )
        await webhook_repository.mark_failed(
            session, first.id, attempts=10, error="connection refused", status_code=None, retry_at=None
        )
        await webhook_repository.mark_delivered(session, second.id, attempts=2, status_code=200, at=now)
    return webhook.id


async def test_an_admin_creates_and_revokes_a_manager_token_with_the_keyboard(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    async with running_api(database_url, tmp_path) as api:
        webhook_id = await a_failed_delivery(api)
        base = str(api.client.make_url("/"))
        async with browser_page(browser, base) as (page, console):
            await sign_in(page, api.tokens["admin"], then="/ui/admin")
            office = page.locator('#pbx li[data-pbx="office"]')
            assert "connected" in (await office.inner_text())
            assert await office.locator(".status-dot.up").count() == 1
            assert "0" in await page.locator("#spool-depth").inner_text()

            await tab_to(page, "token-name")
            await page.keyboard.type("Anna, sales desk")
            await page.keyboard.press("Tab")
            await page.keyboard.press("ArrowDown")
            assert await page.input_value("#token-role") == "supervisor"
            await page.keyboard.press("Home")
            assert await page.input_value("#token-role") == "manager"
            await page.keyboard.press("Tab")
            await page.keyboard.type("101")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")

            secret = await page.input_value("#new-secret")
            assert secret.startswith("ct_")
            assert await page.evaluate("() => document.activeElement.id") == "new-secret"
            bearer = {"Authorization": f"Bearer {secret}"}
            assert (await api.client.get("/api/v1/calls", headers=bearer)).status == 200
            async with api.sessions() as session:
                (anna,) = [token for token in await list_tokens(session) if token.name == "Anna, sales desk"]
            assert (anna.role.value, anna.manager) == ("manager", "101")
            row = page.locator(f"#token-{anna.id}")
            assert "101" in await row.inner_text()
            await screenshot(page, f"admin-{backend}")

            await tab_to(page, f"revoke-{anna.id}")
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert await page.locator(f"#token-{anna.id}.revoked").count() == 1
            assert await page.locator(f"#revoke-{anna.id}").count() == 0
            assert await page.locator("#new-secret").count() == 0  # shown that once only
            assert (await api.client.get("/api/v1/calls", headers=bearer)).status == 401

            await page.click(f"#webhook-{webhook_id} a")
            await page.wait_for_url(f"**/ui/admin/webhooks/{webhook_id}")
            assert await page.locator("#deliveries tr[data-status='dead']").count() == 1
            dead_row = await page.get_attribute("#deliveries tr[data-status='dead']", "id")
            assert dead_row is not None
            await tab_to(page, dead_row.replace("delivery-", "retry-"))
            async with page.expect_navigation():
                await page.keyboard.press("Enter")
            assert await page.locator("#deliveries tr[data-status='dead']").count() == 0
            assert await page.locator("#deliveries tr[data-status='pending']").count() == 1
            await screenshot(page, f"admin-webhook-{backend}")
            assert console.errors == []

        async with browser_page(browser, base, viewport=PHONE, locale="ru-RU") as (page, console):
            await sign_in(page, api.tokens["admin"], then="/ui/admin")
            assert await page.locator("h1").inner_text() == "Администрирование"
            wide = await page.evaluate("() => document.documentElement.scrollWidth")
            assert wide <= PHONE["width"]  # wide tables scroll in their own box, the page does not
            await screenshot(page, f"admin-phone-{backend}")
            async with page.expect_navigation():
                await page.click("#token-create")  # nothing filled in: the form comes back, marked
            assert await page.locator("#token-form-error").is_visible()
            assert await page.get_attribute("#token-name", "aria-invalid") == "true"
            # Chromium reports the page's own 422 status on the console; that one is meant, nothing else.
            console.errors.remove(
                "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
            )
            await screenshot(page, f"admin-phone-invalid-{backend}")
            await page.goto(f"/ui/admin/webhooks/{webhook_id}")
            await screenshot(page, f"admin-phone-webhook-{backend}")
            assert await page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
            assert console.errors == []
