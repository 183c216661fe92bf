"""Typed keys for what the web interface's app shares with its pages."""

from __future__ import annotations

from aiohttp import web

from api.web.i18n import Formats
from api.web.session import SessionKeeper
from calltracking.access.session_repository import WebSession

KEEPER = web.AppKey("web_session_keeper", SessionKeeper)
FORMATS = web.AppKey("web_formats", Formats)
# A short hash of each static file's content, appended to its URL so a new release is never served from
# a browser's stale cache.
ASSET_VERSIONS = web.AppKey("web_asset_versions", dict)
# The signed-in session of the request being answered (set by the page middleware).
WEB_SESSION = web.RequestKey("web_session", WebSession)
