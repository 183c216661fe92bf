"""Rendering a page: the template, plus what every page shows (who is signed in, the language switch,
the navigation, the PBX's time zone) and the form secret its forms must send back."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from api.keys import SETTINGS
from api.web.i18n import LANGUAGES, current_language
from api.web.keys import ASSET_VERSIONS, FORMATS, WEB_SESSION
from api.web.session import CSRF_FIELD, SIGNIN_COOKIE, same_secret
from calltracking.access.session_repository import WebSession
from calltracking.access.tokens import Role

STATIC_PREFIX = "/ui/static/"


def web_session(request: web.Request) -> WebSession:
    found = request.get(WEB_SESSION)
    if not isinstance(found, WebSession):
        raise web.HTTPFound("/ui/signin")
    return found


def render(request: web.Request, template: str, context: dict[str, Any], status: int = 200) -> web.Response:
    return aiohttp_jinja2.render_template(template, request, _common(request) | context, status=status)


def render_error(request: web.Request, status: int, message: str | None = None) -> web.Response:
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def _common(request: web.Request) -> dict[str, Any]:
    found = request.get(WEB_SESSION)
    versions: dict[str, str] = request.app[ASSET_VERSIONS]
    settings = request.config_dict[SETTINGS]
    return {
        "signed_in": found,
        "is_admin": isinstance(found, WebSession) and found.principal.role is Role.ADMIN,
        "is_manager": isinstance(found, WebSession) and found.principal.is_manager,
        "csrf_field": CSRF_FIELD,
        "csrf_token": found.csrf_token if isinstance(found, WebSession) else "",
        "lang": current_language(),
        "languages": LANGUAGES,
        "fmt": request.app[FORMATS],
        "zone": settings.report_timezone,
        "path": request.path,
        "here": request.path_qs,
        "export_href": lambda wanted: str(request.rel_url.update_query(format=wanted)),
        "static": lambda name: f"{STATIC_PREFIX}{name}?v={versions.get(name, '0')}",
    }


async def checked_form(request: web.Request) -> dict[str, str]:
    """A signed-in page's form, refused (403) unless it carries this session's CSRF secret and comes
    from this origin."""
    found = web_session(request)
    _same_origin(request)
    form = await request.post()
    if not same_secret(found.csrf_token, form.get(CSRF_FIELD)):
        raise web.HTTPForbidden(reason="the form has expired; reload the page and try again")
    return {name: value for name, value in form.items() if isinstance(value, str)}


async def checked_signin_form(request: web.Request) -> dict[str, str]:
    """The sign-in form: checked against the sign-in cookie set when the form was shown."""
    _same_origin(request)
    form = await request.post()
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not same_secret(expected, form.get(CSRF_FIELD)):
        raise web.HTTPForbidden(reason="the form has expired; reload the page and try again")
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _same_origin(request: web.Request) -> None:
    """Browsers send Origin with every POST; any other than this one (a privacy-stripped "null"
    included) is another site's form."""
    origin = request.headers.get("Origin")
    if origin is not None and origin != f"{request.scheme}://{request.host}":
        raise web.HTTPForbidden(reason="a form from another site")


def is_supervisor(found: WebSession) -> bool:
    return found.principal.role in (Role.ADMIN, Role.SUPERVISOR, Role.INTEGRATION)
