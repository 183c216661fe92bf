"""Sign-in with an API token, sign-out, and the language switch."""

from __future__ import annotations

import secrets
from datetime import timedelta
from urllib.parse import quote

import structlog
from aiohttp import web

from api.keys import SETTINGS
from api.web.i18n import LANGUAGES
from api.web.keys import KEEPER
from api.web.render import checked_form, checked_signin_form, render
from api.web.session import LANGUAGE_COOKIE, SESSION_COOKIE, SIGNIN_COOKIE, set_session_cookie

log = structlog.get_logger(__name__)
HOME = "/ui/"


def install(app: web.Application) -> None:
    app.router.add_get("/signin", show_signin)
    app.router.add_post("/signin", sign_in)
    app.router.add_post("/signout", sign_out)
    app.router.add_get("/language", switch_language)


def signin_url(target: str) -> str:
    return "/ui/signin" if target in (HOME, "/ui") else f"/ui/signin?next={quote(target, safe='')}"


def local_target(value: str | None) -> str:
    """Where to go after sign-in or a language switch: a page of this interface, never another site."""
    if not value or not value.startswith("/ui/") or value.startswith("//") or "\\" in value:
        return HOME
    if any(ord(c) < 0x20 for c in value):
        return HOME
    return value


async def show_signin(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    form_secret = secrets.token_urlsafe(24)
    response = render(
        request,
        "signin.html",
        {"form_secret": form_secret, "next": local_target(request.query.get("next")), "error": error},
        status=status,
    )
    response.set_cookie(
        SIGNIN_COOKIE, form_secret, path="/ui/signin", httponly=True, samesite="Strict", max_age=3600
    )
    return response


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await checked_signin_form(request)
    started = await request.app[KEEPER].sign_in(form.get("token", ""))
    if started is None:
        log.info("web_signin_refused", remote=request.remote)
        return await show_signin(request, error="invalid_token", status=401)
    cookie, found = started
    log.info("web_signin", token_id=found.principal.token_id, role=found.principal.role.value)
    response = web.HTTPSeeOther(local_target(form.get("next")))
    settings = request.config_dict[SETTINGS]
    set_session_cookie(
        response, cookie, timedelta(hours=settings.web.session_hours), settings.web.secure_cookies
    )
    response.del_cookie(SIGNIN_COOKIE, path="/ui/signin")
    raise response


async def sign_out(request: web.Request) -> web.StreamResponse:
    await checked_form(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await request.app[KEEPER].sign_out(cookie)
    response = web.HTTPSeeOther("/ui/signin")
    response.del_cookie(SESSION_COOKIE, path="/")
    raise response


async def switch_language(request: web.Request) -> web.StreamResponse:
    language = request.query.get("lang", "")
    response = web.HTTPSeeOther(local_target(request.query.get("next")))
    if language in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE, language, path="/", max_age=365 * 24 * 3600, samesite="Lax", httponly=True
        )
    raise response
