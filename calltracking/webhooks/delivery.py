"""The webhook outbox: events are queued in the database inside the transaction that records the fact,
and one worker drains the queue over HTTP.

Nothing lives only in memory, so a restart loses nothing: what was pending is sent by the next process.
Delivery is at least once. A delivery in flight when the process dies stays pending (its claim lapses
after the lease) and is sent again, so a receiver may see an event twice and deduplicates by its id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.metrics import ApiMetrics
from calltracking.webhooks.repository import (
    claim_due_deliveries,
    mark_delivered,
    mark_failed,
    queue_deliveries,
    queue_events,
)
from calltracking.webhooks.roster import WebhookRoster
from calltracking.webhooks.subscription import (
    DEFAULT_MAX_ATTEMPTS,
    ClaimedDelivery,
    WebhookEvent,
    encode_body,
    retry_delay,
    signed_headers,
)

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
USER_AGENT = "calltracking-webhooks/1"
# How long a claimed delivery is left alone beyond the request timeout before another attempt may take
# it: only matters when the process died mid-attempt.
LEASE_MARGIN = timedelta(seconds=60)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def enqueue(session: AsyncSession, event: WebhookEvent, *, now: datetime | None = None) -> int:
    """Queue the event for every active webhook subscribed to its type, in the caller's transaction
    (it is delivered only if that transaction commits). Queuing an event id a second time adds
    nothing. Returns how many deliveries were queued."""
    return await queue_deliveries(
        session,
        event_id=event.event_id,
        event_type=event.type,
        payload=event.body(),
        now=now or utc_now(),
    )


async def enqueue_many(
    session: AsyncSession,
    events: Sequence[WebhookEvent],
    *,
    roster: WebhookRoster | None = None,
    now: datetime | None = None,
) -> int:
    """`enqueue` for several events in one read of the webhooks and one insert (a burst of calls must
    not cost a round trip per event). The roster, when given, is refilled from that read."""
    return await queue_events(session, events, now=now or utc_now(), roster=roster)


class WebhookDeliverer:
    """Sends due deliveries: a 2xx answer marks one delivered; anything else (another status, a
    refused connection, a timeout) schedules the next attempt after a growing delay, and after
    `max_attempts` the delivery is dead. Redirects are not followed: a 3xx is a failure.

    `run()` polls every `poll_seconds` until cancelled; `deliver_due()` is one pass. One HTTP client
    session serves every attempt; it is opened on first use and closed by `aclose()` (or on leaving
    `async with`, or when `run()` ends)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = utc_now,
        timeout_seconds: float = 10.0,
        poll_seconds: float = 1.0,
        batch_size: int = 50,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        metrics: ApiMetrics | None = None,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._lease = timedelta(seconds=timeout_seconds) + LEASE_MARGIN
        self._poll_seconds = poll_seconds
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> WebhookDeliverer:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def run(self) -> None:
        """Deliver until cancelled. A failing pass (database down, a bug) is logged and retried at the
        next poll; it never ends the loop."""
        try:
            while True:
                try:
                    attempted = await self.deliver_due()
                except Exception:
                    log.exception("webhook_pass_failed")
                    attempted = 0
                if attempted < self._batch_size:
                    await asyncio.sleep(self._poll_seconds)
        finally:
            await self.aclose()

    async def deliver_due(self) -> int:
        """Claim one batch of due deliveries, send them concurrently, record each outcome. Returns how
        many were attempted."""
        now = self._clock()
        async with self._sessions.begin() as session:
            batch = await claim_due_deliveries(
                session, now=now, lease_until=now + self._lease, limit=self._batch_size
            )
        if batch:
            async with asyncio.TaskGroup() as group:
                for claimed in batch:
                    group.create_task(self._attempt_logged(claimed))
        return len(batch)

    async def _attempt_logged(self, claimed: ClaimedDelivery) -> None:
        try:
            await self._attempt(claimed)
        except Exception:  # the claim lapses and the delivery is tried again
            log.exception("webhook_attempt_not_recorded", delivery_id=claimed.delivery.id)

    async def _attempt(self, claimed: ClaimedDelivery) -> None:
        delivery = claimed.delivery
        attempts = delivery.attempts + 1
        status_code, error = await self._post(claimed)
        done = self._clock()
        context = {
            "delivery_id": delivery.id,
            "webhook_id": delivery.webhook_id,
            "event_id": delivery.event_id,
            "attempts": attempts,
            "status_code": status_code,
        }
        if error is None and status_code is not None:
            async with self._sessions.begin() as session:
                await mark_delivered(
                    session, delivery.id, attempts=attempts, status_code=status_code, at=done
                )
            log.info("webhook_delivered", **context)
            return
        error = error or "no answer"
        retry_at = None if attempts >= self._max_attempts else done + retry_delay(attempts)
        async with self._sessions.begin() as session:
            await mark_failed(
                session,
                delivery.id,
                attempts=attempts,
                error=error,
                status_code=status_code,
                retry_at=retry_at,
            )
        if self._metrics is not None:
            self._metrics.webhook_failures.inc()
        if retry_at is None:
            log.error("webhook_delivery_dead", error=error, **context)
        else:
            log.warning("webhook_attempt_failed", error=error, retry_at=retry_at.isoformat(), **context)

    async def _post(self, claimed: ClaimedDelivery) -> tuple[int | None, str | None]:
        """Send one attempt: (status code, None) on a 2xx, else (status code or None, what went wrong)."""
        body = encode_body(claimed.delivery.payload)
        timestamp = int(self._clock().timestamp())
        headers = signed_headers(claimed.delivery, claimed.secret, timestamp, body)
        try:
            async with self._client().post(
                claimed.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                if 200 <= response.status < 300:
                    return response.status, None
                answer = (await response.content.read(200)).decode("utf-8", "replace")
                return response.status, f"HTTP {response.status}: {answer}".strip()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}".strip()

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            # No cookie jar: one receiver's cookies must never reach another.
            self._http = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"User-Agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http
