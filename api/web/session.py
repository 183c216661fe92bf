"""Signing in to the web interface with an API token: a server-side session behind an HttpOnly,
SameSite cookie, a CSRF secret per session for its forms, and a short cache so a page's many requests
(an audio player's Range requests) do not each ask the database."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.access import MAX_TOKEN_LENGTH
from calltracking.access.repository import principal_for
from calltracking.access.session_repository import (
    WebSession,
    create_web_session,
    end_expired_web_sessions,
    end_web_session,
    web_session_for,
)
from calltracking.access.tokens import TOKEN_PREFIX, hash_secret

SESSION_COOKIE = "ct_session"
# Before sign-in there is no session to hold a CSRF secret: the sign-in form is checked against this
# cookie instead (double submit), so another site cannot sign a browser in as someone else.
SIGNIN_COOKIE = "ct_signin"
LANGUAGE_COOKIE = "ct_lang"
CSRF_FIELD = "csrf_token"
MAX_COOKIE_LENGTH = 128


class SessionKeeper:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        lifetime: timedelta,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._lifetime = lifetime
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, WebSession | None]] = {}

    async def sign_in(self, token_secret: str) -> tuple[str, WebSession] | None:
        """A new session for the token's holder (the cookie's value and the session), or None for a
        token that is not valid."""
        token_secret = token_secret.strip()
        if not token_secret.startswith(TOKEN_PREFIX) or len(token_secret) > MAX_TOKEN_LENGTH:
            return None
        cookie = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            principal = await principal_for(session, hash_secret(token_secret))
            if principal is None:
                return None
            await end_expired_web_sessions(session, now)
            await create_web_session(
                session,
                hash_secret(cookie),
                principal.token_id,
                secrets.token_urlsafe(32),
                now,
                now + self._lifetime,
            )
            found = await web_session_for(session, hash_secret(cookie), now)
        if found is None:
            return None
        return cookie, found

    async def find(self, cookie: str | None) -> WebSession | None:
        """The live session behind a cookie. Sign-out ends it at once; a revoked token within the
        cache's seconds."""
        if not cookie or len(cookie) > MAX_COOKIE_LENGTH or not cookie.isascii():
            return None
        digest = hash_secret(cookie)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._cache_seconds:
            found = cached[1]
        else:
            async with self._sessions() as session:
                found = await web_session_for(session, digest, datetime.now(UTC))
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, found)
        if found is not None and found.expires_at.replace(
            tzinfo=found.expires_at.tzinfo or UTC
        ) <= datetime.now(UTC):
            return None
        return found

    async def sign_out(self, cookie: str) -> None:
        digest = hash_secret(cookie)
        self._cache.pop(digest, None)
        async with self._sessions.begin() as session:
            await end_web_session(session, digest)


def same_secret(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


def set_session_cookie(response: web.StreamResponse, value: str, lifetime: timedelta, secure: bool) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
