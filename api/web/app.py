"""The web interface's application: mounted under /ui/ on the API's app, with its own middleware for
what every page needs (security headers, the language, the signed-in session) and its own error pages.
Pages read the parent app's database and settings through `request.config_dict`."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from api.errors import ApiError
from api.keys import SETTINGS
from api.web import admin, call_page, calls, dashboard, live, quality, signin
from api.web.i18n import Formats, Translator, load_catalogs, negotiate, set_language
from api.web.keys import ASSET_VERSIONS, FORMATS, KEEPER, WEB_SESSION
from api.web.render import STATIC_PREFIX, render_error
from api.web.session import LANGUAGE_COOKIE, SESSION_COOKIE, SessionKeeper
from calltracking.config import Settings
from calltracking.errors import DatabaseUnavailable

log = structlog.get_logger(__name__)
HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
# Scripts, styles, media and sockets from this origin only; no inline script or style anywhere.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# Pages a browser may open without a session.
PUBLIC = frozenset({"/ui/signin", "/ui/language"})

Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_web_app(settings: Settings, keeper: SessionKeeper) -> web.Application:
    app = web.Application(middlewares=[_page_middleware])
    app[KEEPER] = keeper
    app[FORMATS] = Formats(ZoneInfo(settings.report_timezone))
    app[ASSET_VERSIONS] = {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12] for path in STATIC_DIR.iterdir()
    }
    translator = Translator(load_catalogs())
    environment = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        context_processors=[],
    )
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        translator.gettext, translator.ngettext, newstyle=True
    )
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    signin.install(app)
    dashboard.install(app)
    calls.install(app)
    call_page.install(app)
    quality.install(app)
    live.install(app)
    admin.install(app)
    return app


def mount_web(parent: web.Application, settings: Settings, keeper: SessionKeeper) -> None:
    parent.add_subapp("/ui/", create_web_app(settings, keeper))

    async def to_dashboard(_: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/ui/")

    parent.router.add_get("/", to_dashboard)


@web.middleware
async def _page_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    settings: Settings = request.config_dict[SETTINGS]
    set_language(
        negotiate(
            request.cookies.get(LANGUAGE_COOKIE),
            request.headers.get("Accept-Language"),
            settings.web.default_language,
        )
    )
    try:
        response = await _signed_in(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = render_error(request, exc.status, exc.reason if exc.status == 403 else None)
    except ApiError as exc:
        response = render_error(request, exc.status, exc.message)
    except DatabaseUnavailable:
        response = render_error(request, 503)
        response.headers["Retry-After"] = "5"
    except Exception:
        log.exception("web_page_failed", method=request.method, path=request.path)
        response = render_error(request, 500)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith(STATIC_PREFIX):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _signed_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(STATIC_PREFIX) or request.path in PUBLIC:
        return await handler(request)
    found = await request.app[KEEPER].find(request.cookies.get(SESSION_COOKIE))
    if found is None:
        target = request.path_qs if request.method == "GET" else "/ui/"
        raise web.HTTPFound(signin.signin_url(target))
    request[WEB_SESSION] = found
    structlog.contextvars.bind_contextvars(token_id=found.principal.token_id)
    return await handler(request)


def session_lifetime(settings: Settings) -> timedelta:
    return timedelta(hours=settings.web.session_hours)
