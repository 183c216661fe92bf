"""Signing in to the web interface over HTTP, on both databases: the cookie's flags, a refused token, the
sign-in form's own CSRF check, sign-out, the CSP on every page, and what a session cookie may do to the
JSON API (read, never write)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.helpers.api import ApiHarness, running_api

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def signin_form(client: TestClient[Any, Any]) -> str:
    page = await client.get("/ui/signin")
    assert page.status == 200
    match = CSRF.search(await page.text())
    assert match is not None
    return match.group(1)


async def signed_in(api: ApiHarness, role: str = "supervisor") -> TestClient[Any, Any]:
    secret = await signin_form(api.client)
    response = await api.client.post(
        "/ui/signin",
        data={"csrf_token": secret, "token": api.tokens[role], "next": "/ui/calls"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/ui/calls"
    return api.client


async def test_the_session_cookie_is_httponly_samesite_and_ends_on_sign_out(
    database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path, seed=False) as api:
        secret = await signin_form(api.client)
        response = await api.client.post(
            "/ui/signin",
            data={"csrf_token": secret, "token": api.tokens["supervisor"]},
            allow_redirects=False,
        )
        cookie = response.cookies["ct_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        page = await api.client.get("/ui/calls", allow_redirects=False)
        assert page.status == 200
        csrf = CSRF.search(await page.text())
        assert csrf is not None
        out = await api.client.post("/ui/signout", data={"csrf_token": csrf.group(1)}, allow_redirects=False)
        assert out.status == 303
        # The same cookie, replayed after sign-out, no longer opens anything.
        again = await api.client.get("/ui/calls", allow_redirects=False, cookies={"ct_session": cookie.value})
        assert again.status == 302 and again.headers["Location"].startswith("/ui/signin")


async def test_a_wrong_token_or_a_forged_form_does_not_sign_in(database_url: str, tmp_path: Path) -> None:
    async with running_api(database_url, tmp_path, seed=False) as api:
        secret = await signin_form(api.client)
        wrong = await api.client.post(
            "/ui/signin", data={"csrf_token": secret, "token": "ct_not-a-token"}, allow_redirects=False
        )
        assert wrong.status == 401 and "ct_session" not in wrong.cookies
        assert "not valid" in await wrong.text()
        # Another site posting its visitor's sign-in: no form secret matching the cookie.
        api.client.session.cookie_jar.clear()
        forged = await api.client.post(
            "/ui/signin", data={"csrf_token": "guess", "token": api.tokens["admin"]}, allow_redirects=False
        )
        assert forged.status == 403 and "ct_session" not in forged.cookies
        secret = await signin_form(api.client)
        cross = await api.client.post(
            "/ui/signin",
            data={"csrf_token": secret, "token": api.tokens["admin"]},
            headers={"Origin": "http://evil.example"},
            allow_redirects=False,
        )
        assert cross.status == 403


async def test_every_page_has_a_strict_content_security_policy(database_url: str, tmp_path: Path) -> None:
    async with running_api(database_url, tmp_path, seed=False) as api:
        client = await signed_in(api)
        for path in ("/ui/", "/ui/calls", "/ui/quality", "/ui/live", "/ui/signin", "/ui/no-such-page"):
            response = await client.get(path, allow_redirects=False)
            policy = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in policy and "style-src 'self'" in policy
            assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            body = await response.text()
            assert "<script>" not in body and " style=" not in body
        missing = await client.get("/ui/no-such-page")
        assert missing.status == 404 and "text/html" in missing.headers["Content-Type"]


async def test_a_session_cookie_reads_the_api_but_never_writes(database_url: str, tmp_path: Path) -> None:
    async with running_api(database_url, tmp_path, seed=False) as api:
        client = await signed_in(api, "admin")
        listed = await client.get("/api/v1/calls")
        assert listed.status == 200
        write = await client.post(
            "/api/v1/webhooks", json={"url": "https://crm.example/hook", "events": ["call.completed"]}
        )
        assert write.status == 401
        api.client.session.cookie_jar.clear()
        assert (await api.client.get("/api/v1/calls")).status == 401


async def test_a_managers_session_sees_its_own_calls_only_in_the_api_too(
    database_url: str, tmp_path: Path
) -> None:
    async with running_api(database_url, tmp_path) as api:
        client = await signed_in(api, "manager")
        items = (await (await client.get("/api/v1/calls", params={"limit": 500})).json())["items"]
        assert items and {item["manager"] for item in items} == {"101"}
