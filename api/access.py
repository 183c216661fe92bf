"""Who is asking (bearer tokens, cached briefly) and whether they may ask this often (a token bucket)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import TooManyRequests, Unauthorized
from calltracking.access.repository import principal_for
from calltracking.access.tokens import TOKEN_PREFIX, Principal, hash_secret

MAX_TOKEN_LENGTH = 128


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per key (a token's id): `rate_per_minute` on average, in bursts of up to a sixth of
    it (at least 10). Over the limit: 429, saying when the next request would be taken."""

    def __init__(self, rate_per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_minute / 60.0
        self._burst = float(max(rate_per_minute // 6, 10))
        self._clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def take(self, key: int) -> None:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise TooManyRequests(
                "too many requests for this token",
                {"retry_after_seconds": round((1 - bucket.tokens) / self._rate, 2)},
            )
        bucket.tokens -= 1.0


class TokenAuthority:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cache_seconds: float,
        rate_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._limiter = RateLimiter(rate_per_minute, clock)

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal behind an `Authorization: Bearer ...` header, or 401. A revoked token stops
        working within `cache_seconds`."""
        if not authorization:
            raise Unauthorized("an API token is required: Authorization: Bearer <token>")
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if (
            scheme.lower() != "bearer"
            or not secret.startswith(TOKEN_PREFIX)
            or len(secret) > MAX_TOKEN_LENGTH
        ):
            raise Unauthorized("the API token is not valid")
        digest = hash_secret(secret)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < self._cache_seconds:
            principal = cached[1]
        else:
            async with self._sessions() as session:
                principal = await principal_for(session, digest)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, principal)
        if principal is None:
            raise Unauthorized("the API token is not valid")
        self._limiter.take(principal.token_id)
        return principal
