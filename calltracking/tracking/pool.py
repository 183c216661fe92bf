"""The website's dynamic number pool: what a visit asks for and what it is given. Pure.

Rules (the SQL in `pool_repository.py` applies them under a lock):
- a number is held until its `reserved_until` (inclusive), then free;
- a visitor who still holds a number keeps it, and each request pushes its expiry to now + ttl;
- otherwise the free number reserved least recently is handed out (LRU: a number rests as long as
  possible before another visit gets it, so a late call is less likely to reach the wrong visit);
- none free: the fallback number, in a session of its own that attribution ignores.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# `reserved_until` and `last_reserved_at` of a number no visit has had yet: free, and first in line.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Visit:
    """A website visit asking for a number: who (the site's own visitor id) and where it came from."""

    visitor_id: str
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_content: str | None = None
    utm_term: str | None = None
    gclid: str | None = None
    yclid: str | None = None
    landing_page: str | None = None
    referrer: str | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """The number a visit is shown, until when, and the session that holds it."""

    session_id: int
    number: str
    expires_at: datetime
    is_fallback: bool


def expiry(now: datetime, ttl_seconds: float) -> datetime:
    return now + timedelta(seconds=ttl_seconds)
