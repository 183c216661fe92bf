"""The API as a signed-in browser reaches it: the audio player's Range requests, the live panel's
WebSocket, the pages' own reads. A session cookie authenticates reads only (GET and the WebSocket
handshake, from this origin); anything that changes state still needs a bearer token or a page's form
with its CSRF secret, so another site cannot act with a visitor's cookie."""

from __future__ import annotations

from aiohttp import web

from api.errors import Forbidden, Unauthorized
from api.web.session import SESSION_COOKIE, SessionKeeper
from calltracking.access.tokens import Principal


async def browser_principal(request: web.Request, keeper: SessionKeeper, websocket: bool) -> Principal:
    if request.method not in ("GET", "HEAD"):
        raise Unauthorized("a browser session may only read; send Authorization: Bearer <token>")
    origin = request.headers.get("Origin")
    if websocket and origin != f"{request.scheme}://{request.host}":
        # Cross-site WebSocket hijacking: a page elsewhere opening our socket with the visitor's cookie.
        raise Forbidden("a WebSocket from another origin may not use the session cookie")
    found = await keeper.find(request.cookies.get(SESSION_COOKIE))
    if found is None:
        raise Unauthorized("the session has ended; sign in again")
    return found.principal
