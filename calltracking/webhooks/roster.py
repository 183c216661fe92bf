"""Which event types some active webhook subscribes to, held in memory, so that a fact nobody subscribed
to (a ringing call, most of the time) costs no database round trip.

The roster is refilled by whoever reads the webhooks table anyway (queuing deliveries reads it in the
transaction that queues them), and is stale, so asks again, when:
- this process committed a change to the webhooks (the API or the admin pages created or deleted one):
  the repository counts those commits (`note_change`), so a webhook created through the API gets the
  very next event;
- it is older than `max_age_seconds` (5 s): a change made by another process (`calltracking` CLI, a
  second `serve`) is seen within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

ROSTER_MAX_AGE_SECONDS = 5.0


class _ChangeCount:
    """Webhook changes this process committed: one number for the whole process, since every engine and
    roster in it must see them (a test may run several; `serve` runs one)."""

    def __init__(self) -> None:
        self.value = 0

    def bump(self, _session: Session) -> None:
        self.value += 1


CHANGES = _ChangeCount()


def note_change(session: AsyncSession) -> None:
    """Count a change to the webhooks once the caller's transaction commits (a rollback changed nothing)."""
    event.listen(session.sync_session, "after_commit", CHANGES.bump, once=True)


class WebhookRoster:
    def __init__(
        self, *, max_age_seconds: float = ROSTER_MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._max_age = max_age_seconds
        self._clock = clock
        self._types: frozenset[str] = frozenset()
        self._version: int | None = None  # None: never filled
        self._filled_at = 0.0

    @property
    def is_stale(self) -> bool:
        return (
            self._version is None
            or self._version != CHANGES.value
            or self._clock() - self._filled_at >= self._max_age
        )

    def may_want(self, event_type: str) -> bool:
        """False only when the roster is fresh and no active webhook subscribes to the type: then
        nothing needs queuing. True means: ask the database (it refills the roster)."""
        return self.is_stale or event_type in self._types

    def reading(self) -> int:
        """Call just before reading the webhooks table; pass the result to `fill`. A change committed
        meanwhile leaves the roster stale."""
        return CHANGES.value

    def fill(self, version: int, subscriptions: Iterable[Sequence[str]]) -> None:
        """The event types of every active webhook, as read after `reading()` returned `version`."""
        self._types = frozenset(kind for events in subscriptions for kind in events)
        self._version = version
        self._filled_at = self._clock()
