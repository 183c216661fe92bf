"""The admin pages' forms over real HTTP, on both databases: a POST without this session's CSRF secret,
with another's, or from another origin changes nothing; only an admin may use them; a created token's
secret is shown once and works; a revoked one is refused by the API and ends the browser sessions signed
in with it; a dead webhook delivery is requeued by the retry button."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.web.i18n import load_catalogs
from calltracking.access.repository import TokenInfo, list_tokens
from calltracking.webhooks import repository as webhook_repository
from calltracking.webhooks.subscription import DeliveryStatus
from tests.helpers.api import ApiHarness, running_api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'id="new-secret"[^>]*value="(ct_[^"]+)"')
TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "web" / "templates"


async def sign_in(client: TestClient[Any, Any] | ClientSession, token: str) -> str:
    """Sign in as the browser does (the sign-in form's secret from its cookie and hidden field); the
    session's CSRF secret, as the admin page's forms carry it."""
    page = await client.get("/ui/signin")
    form_secret = _first(CSRF, await page.text())
    answer = await client.post(
        "/ui/signin",
        data={"csrf_token": form_secret, "token": token, "next": "/ui/"},
        allow_redirects=False,
    )
    assert answer.status == 303, await answer.text()
    return await csrf_of(client)


async def csrf_of(client: TestClient[Any, Any] | ClientSession) -> str:
    page = await client.get("/ui/")
    assert page.status == 200
    return _first(CSRF, await page.text())


def _first(pattern: re.Pattern[str], text: str) -> str:
    found = pattern.search(text)
    assert found is not None, text[:2000]
    return html.unescape(found.group(1))


async def tokens(sessions: async_sessionmaker[AsyncSession]) -> list[TokenInfo]:
    async with sessions() as session:
        return await list_tokens(session)


@asynccontextmanager
async def another_browser(api: ApiHarness) -> AsyncIterator[ClientSession]:
    """A second browser: its own cookie jar, the same server."""
    base = str(api.client.make_url("/"))
    async with ClientSession(base_url=base, cookie_jar=CookieJar(unsafe=True)) as browser:
        yield browser


async def test_a_form_without_this_sessions_secret_or_from_another_site_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path) as api:
        csrf = await sign_in(api.client, api.tokens["admin"])
        before = await tokens(api.sessions)
        wanted = {"name": "CRM staging", "role": "integration", "manager": ""}
        missing = await api.client.post("/ui/admin/tokens", data=wanted, allow_redirects=False)
        assert missing.status == 403
        wrong = await api.client.post(
            "/ui/admin/tokens", data=wanted | {"csrf_token": csrf[:-2] + "xx"}, allow_redirects=False
        )
        assert wrong.status == 403
        foreign = await api.client.post(
            "/ui/admin/tokens",
            data=wanted | {"csrf_token": csrf},
            headers={"Origin": "https://elsewhere.example"},
            allow_redirects=False,
        )
        assert foreign.status == 403
        assert "ct_" not in await foreign.text()
        revoke = await api.client.post(
            f"/ui/admin/tokens/{before[0].id}/revoke", data={}, allow_redirects=False
        )
        assert revoke.status == 403
        assert await tokens(api.sessions) == before  # nothing created, nothing revoked


async def test_only_an_admin_sees_the_admin_pages(database_url: str, tmp_path: Path) -> None:
    async with running_api(database_url, tmp_path) as api:
        csrf = await sign_in(api.client, api.tokens["supervisor"])
        before = await tokens(api.sessions)
        page = await api.client.get("/ui/admin", allow_redirects=False)
        assert page.status == 403
        assert "Not allowed" in await page.text()
        assert 'href="/ui/admin"' not in await (await api.client.get("/ui/")).text()
        for path, data in [
            ("/ui/admin/tokens", {"name": "mine now", "role": "admin", "manager": ""}),
            (f"/ui/admin/tokens/{before[0].id}/revoke", {}),
            ("/ui/admin/webhooks", {"url": "https://crm.example/hook", "events": "call.completed"}),
            ("/ui/admin/webhooks/1/deliveries/1/retry", {}),
        ]:
            refused = await api.client.post(path, data=data | {"csrf_token": csrf}, allow_redirects=False)
            assert refused.status == 403, path
        assert (await api.client.get("/ui/admin/webhooks/1", allow_redirects=False)).status == 403
        assert await tokens(api.sessions) == before


async def test_a_created_token_is_shown_once_works_and_revoking_it_ends_its_sessions(
    database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path) as api:
        csrf = await sign_in(api.client, api.tokens["admin"])
        created = await api.client.post(
            "/ui/admin/tokens",
            data={"csrf_token": csrf, "name": "Wallboard", "role": "supervisor", "manager": ""},
            allow_redirects=False,
        )
        assert created.status == 200
        assert created.headers["Cache-Control"] == "no-store"
        body = await created.text()
        secret = _first(SECRET, body)
        assert body.count(secret) == 1
        new = [token for token in await tokens(api.sessions) if token.name == "Wallboard"]
        assert len(new) == 1 and new[0].role.value == "supervisor" and new[0].manager is None
        assert secret.startswith(new[0].prefix)
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await api.client.get("/api/v1/calls", headers=bearer)).status == 200
        # The admin page afterwards lists the token but never shows its secret again.
        listing = await (await api.client.get("/ui/admin")).text()
        assert "Wallboard" in listing and new[0].prefix in listing and secret not in listing

        async with another_browser(api) as browser:
            await sign_in(browser, secret)
            assert (await browser.get("/ui/", allow_redirects=False)).status == 200
            revoked = await api.client.post(
                f"/ui/admin/tokens/{new[0].id}/revoke", data={"csrf_token": csrf}, allow_redirects=False
            )
            assert revoked.status == 303
            assert revoked.headers["Location"].startswith("/ui/admin")
            assert (await api.client.get("/api/v1/calls", headers=bearer)).status == 401
            ended = await browser.get("/ui/calls", allow_redirects=False)
            assert ended.status == 302
            assert ended.headers["Location"].startswith("/ui/signin")
        after = [token for token in await tokens(api.sessions) if token.id == new[0].id]
        assert after[0].revoked_at is not None
        # The admin's own session goes on.
        assert (await api.client.get("/ui/admin", allow_redirects=False)).status == 200


async def test_a_manager_token_is_tied_to_a_valid_extension(database_url: str, tmp_path: Path) -> None:
    async with running_api(database_url, tmp_path) as api:
        csrf = await sign_in(api.client, api.tokens["admin"])
        before = await tokens(api.sessions)
        for wanted, field in [
            ({"name": "Anna", "role": "manager", "manager": ""}, "token-manager"),
            ({"name": "Anna", "role": "manager", "manager": "10 1; drop"}, "token-manager"),
            ({"name": "Anna", "role": "supervisor", "manager": "101"}, "token-manager"),
            ({"name": "", "role": "manager", "manager": "101"}, "token-name"),
            ({"name": "x" * 200, "role": "manager", "manager": "101"}, "token-name"),
            ({"name": "Anna", "role": "root", "manager": ""}, "token-role"),
        ]:
            refused = await api.client.post(
                "/ui/admin/tokens", data=wanted | {"csrf_token": csrf}, allow_redirects=False
            )
            assert refused.status == 422, wanted
            body = await refused.text()
            assert 'id="token-form-error"' in body
            assert f'id="{field}-problem"' in body, wanted
            assert 'id="new-secret"' not in body
        assert await tokens(api.sessions) == before
        created = await api.client.post(
            "/ui/admin/tokens",
            data={"csrf_token": csrf, "name": "Anna", "role": "manager", "manager": "101"},
            allow_redirects=False,
        )
        assert created.status == 200
        secret = _first(SECRET, await created.text())
        anna = [token for token in await tokens(api.sessions) if token.name == "Anna"]
        assert [(token.role.value, token.manager) for token in anna] == [("manager", "101")]
        assert (
            await api.client.get("/api/v1/calls", headers={"Authorization": f"Bearer {secret}"})
        ).status == 200


async def test_retry_requeues_a_dead_delivery(database_url: str, tmp_path: Path) -> None:
    async with running_api(database_url, tmp_path) as api:
        now = datetime.now(UTC)
        async with api.sessions.begin() as session:
            webhook = await webhook_repository.create_webhook(
                session,
                url="https://crm.example/hook",
                events=["call.completed"],
                secret="s3cret-signing-key",
                description="CRM",
                now=now,
            )
            for event in ("e-dead", "e-delivered"):
                await webhook_repository.queue_deliveries(
                    session, event_id=event, event_type="call.completed", payload={"id": event}, now=now
                )
        async with api.sessions.begin() as session:
            dead, delivered = sorted(
                await webhook_repository.list_deliveries(session, webhook.id), key=lambda d: d.event_id
            )
            await webhook_repository.mark_failed(
                session, dead.id, attempts=10, error="HTTP 502 from receiver", status_code=502, retry_at=None
            )
            await webhook_repository.mark_delivered(
                session, delivered.id, attempts=1, status_code=200, at=now
            )
        csrf = await sign_in(api.client, api.tokens["admin"])
        log = await api.client.get(f"/ui/admin/webhooks/{webhook.id}")
        assert log.status == 200
        body = await log.text()
        assert "HTTP 502 from receiver" in body
        assert f'id="retry-{dead.id}"' in body and f'id="retry-{delivered.id}"' not in body
        assert "s3cret-signing-key" not in body

        retried = await api.client.post(
            f"/ui/admin/webhooks/{webhook.id}/deliveries/{dead.id}/retry",
            data={"csrf_token": csrf},
            allow_redirects=False,
        )
        assert retried.status == 303
        assert retried.headers["Location"].startswith(f"/ui/admin/webhooks/{webhook.id}")
        async with api.sessions() as session:
            requeued = await webhook_repository.get_delivery(session, webhook.id, dead.id)
        assert requeued is not None
        assert requeued.status is DeliveryStatus.PENDING and requeued.attempts == 0
        assert requeued.next_attempt_at <= datetime.now(UTC)

        again = await api.client.post(
            f"/ui/admin/webhooks/{webhook.id}/deliveries/{delivered.id}/retry",
            data={"csrf_token": csrf},
            allow_redirects=False,
        )
        assert again.status == 409
        missing = await api.client.post(
            f"/ui/admin/webhooks/{webhook.id}/deliveries/999999/retry",
            data={"csrf_token": csrf},
            allow_redirects=False,
        )
        assert missing.status == 404


async def test_webhooks_are_created_with_a_secret_shown_once_and_deleted(
    database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path) as api:
        csrf = await sign_in(api.client, api.tokens["admin"])
        refused = await api.client.post(
            "/ui/admin/webhooks",
            data={"csrf_token": csrf, "url": "ftp://crm.example/hook", "description": "CRM"},
            allow_redirects=False,
        )
        assert refused.status == 422
        body = await refused.text()
        assert 'id="webhook-url-problem"' in body and 'id="webhook-events-problem"' in body
        created = await api.client.post(
            "/ui/admin/webhooks",
            data=[
                ("csrf_token", csrf),
                ("url", "https://crm.example/hook"),
                ("events", "call.completed"),
                ("events", "lead.created"),
                ("description", "CRM"),
            ],
            allow_redirects=False,
        )
        assert created.status == 200
        async with api.sessions() as session:
            (webhook,) = await webhook_repository.list_webhooks(session)
        assert webhook.events == ("call.completed", "lead.created")
        assert (await created.text()).count(webhook.secret) == 1
        assert webhook.secret not in await (await api.client.get("/ui/admin")).text()
        deleted = await api.client.post(
            f"/ui/admin/webhooks/{webhook.id}/deactivate", data={"csrf_token": csrf}, allow_redirects=False
        )
        assert deleted.status == 303
        async with api.sessions() as session:
            assert await webhook_repository.list_webhooks(session) == []
        page = await (await api.client.get(f"/ui/admin/webhooks/{webhook.id}")).text()
        assert 'id="webhook-deactivate"' not in page  # its log is still there, without the button


def test_every_admin_message_has_a_russian_translation() -> None:
    russian = load_catalogs()["ru"]
    found = {
        match.group(2)
        for path in TEMPLATES.glob("admin*.html")
        for match in re.finditer(r"""_\(\s*(["'])(.*?)\1""", path.read_text())
    }
    assert found
    untranslated = sorted(message for message in found if russian.gettext(message) == message)
    assert untranslated == ["ID", "URL"]  # the same in both languages
