"""The quality page in Chromium: the per-manager table and the worst calls, as the API reports them; a
manager's page shows their own line only."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from playwright.async_api import Browser

from calltracking.crm.mirror import ManagerIn
from calltracking.crm.repository import upsert_managers
from calltracking.quality.checklist import checklist_in_force
from tests.helpers.api import running_api
from tests.helpers.browser import browser_page, screenshot, sign_in
from tests.helpers.factories import make_call
from tests.helpers.quality import BAD, GOOD, NOW, store_scored

EXAMPLE = checklist_in_force(None)


async def test_the_quality_page_lists_managers_and_the_worst_calls(
    browser: Browser, database_url: str, tmp_path: Path
) -> None:
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    async with running_api(database_url, tmp_path, seed=False) as api:
        async with api.sessions.begin() as session:
            await upsert_managers(
                session,
                [
                    ManagerIn(external_id="m-anna", name="Anna", extensions=["101"], team="north"),
                    ManagerIn(external_id="m-boris", name="Boris", extensions=["103"], team="south"),
                ],
                NOW,
            )
        good = await store_scored(
            api.sessions,
            make_call(1, manager="101", started_at=datetime(2026, 10, 2, 9, tzinfo=UTC)),
            GOOD,
            EXAMPLE,
        )
        bad = await store_scored(
            api.sessions,
            make_call(2, manager="101", started_at=datetime(2026, 10, 3, 9, tzinfo=UTC)),
            BAD,
            EXAMPLE,
        )
        boris = await store_scored(
            api.sessions,
            make_call(3, manager="103", started_at=datetime(2026, 10, 4, 9, tzinfo=UTC)),
            BAD,
            EXAMPLE,
        )
        period = "from=2026-10-01&to=2026-10-31"
        async with browser_page(browser, str(api.client.make_url("/"))) as (page, console):
            await sign_in(page, api.tokens["supervisor"], then="/ui/quality")
            await page.goto(f"/ui/quality?{period}")
            rows = await page.eval_on_selector_all(
                "#quality-managers tbody tr[data-key]", "rows => rows.map(row => row.dataset.key)"
            )
            assert sorted(rows) == ["m-anna", "m-boris"]
            anna = page.locator("#quality-managers tr[data-key=m-anna] td")
            assert await anna.nth(0).inner_text() == "2"  # calls scored
            assert await anna.nth(1).inner_text() == "62.5"  # (100 + 25) / 2
            worst = await page.eval_on_selector_all(
                "#worst-calls tbody tr[data-call-id]", "rows => rows.map(row => Number(row.dataset.callId))"
            )
            assert set(worst) == {bad, boris} | ({good} if good in worst else set())
            assert worst.index(bad) < (worst.index(good) if good in worst else len(worst))
            await screenshot(page, f"quality-{backend}")
            assert console.errors == []
        async with browser_page(browser, str(api.client.make_url("/"))) as (page, console):
            await sign_in(page, api.tokens["manager"], then="/ui/quality")
            await page.goto(f"/ui/quality?{period}")
            rows = await page.eval_on_selector_all(
                "#quality-managers tbody tr[data-key]", "rows => rows.map(row => row.dataset.key)"
            )
            assert rows == ["m-anna"]
            worst = await page.eval_on_selector_all(
                "#worst-calls tbody tr[data-call-id]", "rows => rows.map(row => Number(row.dataset.callId))"
            )
            assert boris not in worst
