"""The live panel: calls ringing and in progress, fed by the API's WebSocket (`/api/v1/events`, which
the browser's session cookie opens), updated in place by `live.js` without reloading."""

from __future__ import annotations

from aiohttp import web

from api.web.render import render, web_session


def install(app: web.Application) -> None:
    app.router.add_get("/live", live_page)


async def live_page(request: web.Request) -> web.StreamResponse:
    web_session(request)
    return render(request, "live.html", {})
