"""All SQL about webhooks and their delivery log (which is also the outbox the delivery worker drains).

Times are stored in UTC; SQLite hands them back without a zone, so every read puts UTC back on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, case, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from calltracking.store.leases import lease_due_rows
from calltracking.store.tables import WebhookDeliveryRow, WebhookRow
from calltracking.store.times import from_db, to_db
from calltracking.store.upserts import insert_for
from calltracking.webhooks.roster import WebhookRoster, note_change
from calltracking.webhooks.subscription import (
    ClaimedDelivery,
    DeliveryStatus,
    Webhook,
    WebhookDelivery,
    WebhookEvent,
)

HOOKS = cast(Table, WebhookRow.__table__)
DELIVERIES = cast(Table, WebhookDeliveryRow.__table__)
WEBHOOK_DELETED = "webhook deleted"


async def create_webhook(
    session: AsyncSession,
    *,
    url: str,
    events: Sequence[str],
    secret: str,
    description: str | None,
    now: datetime,
) -> Webhook:
    result = await session.execute(
        insert(HOOKS).returning(*HOOKS.c),
        [
            {
                "url": url,
                "events": list(events),
                "secret": secret,
                "description": description,
                "is_active": True,
                "created_at": to_db(now),
            }
        ],
    )
    note_change(session)
    return _webhook(result.one())


async def list_webhooks(session: AsyncSession, with_deleted: bool = False) -> list[Webhook]:
    """The active webhooks, oldest first. Deleted ones are kept only for their delivery log:
    `with_deleted` lists them too (an admin reaches a deleted webhook's log through them)."""
    statement = select(HOOKS).order_by(HOOKS.c.id)
    if not with_deleted:
        statement = statement.where(HOOKS.c.is_active.is_(True))
    rows = await session.execute(statement)
    return [_webhook(row) for row in rows.all()]


async def get_webhook(session: AsyncSession, webhook_id: int, with_deleted: bool = False) -> Webhook | None:
    statement = select(HOOKS).where(HOOKS.c.id == webhook_id)
    if not with_deleted:
        statement = statement.where(HOOKS.c.is_active.is_(True))
    row = (await session.execute(statement)).one_or_none()
    return None if row is None else _webhook(row)


async def deactivate_webhook(session: AsyncSession, webhook_id: int) -> bool:
    """Delete a webhook for every purpose but its delivery log: it gets no new deliveries and what it
    was still owed becomes dead. False when there is no such active webhook."""
    result = await session.execute(
        update(HOOKS)
        .where(HOOKS.c.id == webhook_id, HOOKS.c.is_active.is_(True))
        .values(is_active=False)
        .returning(HOOKS.c.id)
    )
    if result.one_or_none() is None:
        return False
    note_change(session)
    await session.execute(
        update(DELIVERIES)
        .where(
            DELIVERIES.c.webhook_id == webhook_id,
            DELIVERIES.c.status == DeliveryStatus.PENDING.value,
        )
        .values(status=DeliveryStatus.DEAD.value, last_error=WEBHOOK_DELETED)
    )
    return True


async def queue_deliveries(
    session: AsyncSession, *, event_id: str, event_type: str, payload: dict[str, Any], now: datetime
) -> int:
    """One pending delivery, due now, per active webhook subscribed to the event type. A (webhook,
    event) pair already queued is left alone. Returns how many deliveries were added."""
    event = _Queued(event_id, event_type, payload)
    return await _queue(session, [event], now=now, roster=None)


async def queue_events(
    session: AsyncSession,
    events: Sequence[WebhookEvent],
    *,
    now: datetime,
    roster: WebhookRoster | None = None,
) -> int:
    """`queue_deliveries` for several events at once: one read of the webhooks, one insert. The roster,
    when given, is refilled from that read."""
    queued = [_Queued(event.event_id, event.type, event.body()) for event in events]
    return await _queue(session, queued, now=now, roster=roster)


@dataclass(frozen=True, slots=True)
class _Queued:
    event_id: str
    event_type: str
    payload: dict[str, Any]


async def _queue(
    session: AsyncSession, events: Sequence[_Queued], *, now: datetime, roster: WebhookRoster | None
) -> int:
    if roster is not None:
        # Facts no active webhook subscribes to (the roster is fresh and says so) cost no read at all.
        events = [event for event in events if roster.may_want(event.event_type)]
    if not events:
        return 0
    version = roster.reading() if roster is not None else 0
    subscribers = (
        await session.execute(select(HOOKS.c.id, HOOKS.c.events).where(HOOKS.c.is_active.is_(True)))
    ).all()
    if roster is not None:
        roster.fill(version, (row.events or () for row in subscribers))
    at = to_db(now)
    owed: dict[tuple[int, str], _Queued] = {}
    for event in events:  # the first of a fact repeated in the batch wins, as against the table
        for row in subscribers:
            if event.event_type in (row.events or ()):
                owed.setdefault((row.id, event.event_id), event)
    rows = [
        {
            "webhook_id": webhook_id,
            "event_id": event_id,
            "event_type": event.event_type,
            "payload": event.payload,
            "status": DeliveryStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": at,
            "last_error": None,
            "last_status_code": None,
            "created_at": at,
            "delivered_at": None,
        }
        for (webhook_id, event_id), event in owed.items()
    ]
    if not rows:
        return 0
    statement = (
        insert_for(session, DELIVERIES)
        .on_conflict_do_nothing(index_elements=["webhook_id", "event_id"])
        .returning(DELIVERIES.c.id)
    )
    return len((await session.execute(statement, rows)).all())


async def claim_due_deliveries(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[ClaimedDelivery]:
    """Take up to `limit` due deliveries of active webhooks, oldest due first, by pushing their next
    attempt to `lease_until`: another worker does not take them meanwhile, and if this one dies before
    recording the outcome they fall due again when the lease ends."""
    still_due = [
        DELIVERIES.c.status == DeliveryStatus.PENDING.value,
        DELIVERIES.c.next_attempt_at <= to_db(now),
    ]
    due = (
        select(DELIVERIES.c.id)
        .join(HOOKS, HOOKS.c.id == DELIVERIES.c.webhook_id)
        .where(*still_due, HOOKS.c.is_active.is_(True))
        .order_by(DELIVERIES.c.next_attempt_at, DELIVERIES.c.id)
        .limit(limit)
    )
    taken = await lease_due_rows(session, DELIVERIES, due, still_due, {"next_attempt_at": to_db(lease_until)})
    ids = [row.id for row in taken]
    if not ids:
        return []
    rows = await session.execute(
        select(DELIVERIES, HOOKS.c.url, HOOKS.c.secret)
        .join(HOOKS, HOOKS.c.id == DELIVERIES.c.webhook_id)
        .where(DELIVERIES.c.id.in_(ids))
        .order_by(DELIVERIES.c.id)
    )
    return [ClaimedDelivery(delivery=_delivery(row), url=row.url, secret=row.secret) for row in rows.all()]


async def mark_delivered(
    session: AsyncSession, delivery_id: int, *, attempts: int, status_code: int, at: datetime
) -> None:
    await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id)
        .values(
            status=DeliveryStatus.DELIVERED.value,
            attempts=attempts,
            last_status_code=status_code,
            delivered_at=to_db(at),
        )
    )


async def mark_failed(
    session: AsyncSession,
    delivery_id: int,
    *,
    attempts: int,
    error: str,
    status_code: int | None,
    retry_at: datetime | None,
) -> None:
    """Record a failed attempt: pending again at `retry_at`, or dead when `retry_at` is None. A delivery
    no longer pending (its webhook was deleted meanwhile) keeps its state."""
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_error": _text(error, 512),
        "last_status_code": status_code,
    }
    if retry_at is None:
        values["status"] = DeliveryStatus.DEAD.value
    else:
        values["next_attempt_at"] = to_db(retry_at)
    await session.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.status == DeliveryStatus.PENDING.value)
        .values(**values)
    )


async def list_deliveries(
    session: AsyncSession, webhook_id: int, *, status: DeliveryStatus | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    """A webhook's delivery log, newest first."""
    statement = select(DELIVERIES).where(DELIVERIES.c.webhook_id == webhook_id)
    if status is not None:
        statement = statement.where(DELIVERIES.c.status == status.value)
    rows = await session.execute(statement.order_by(DELIVERIES.c.id.desc()).limit(limit))
    return [_delivery(row) for row in rows.all()]


async def get_delivery(session: AsyncSession, webhook_id: int, delivery_id: int) -> WebhookDelivery | None:
    row = (
        await session.execute(
            select(DELIVERIES).where(DELIVERIES.c.id == delivery_id, DELIVERIES.c.webhook_id == webhook_id)
        )
    ).one_or_none()
    return None if row is None else _delivery(row)


async def requeue_delivery(
    session: AsyncSession, webhook_id: int, delivery_id: int, *, now: datetime
) -> WebhookDelivery | None:
    """Make a pending or dead delivery due now; a dead one starts over with a full set of attempts.
    None when the delivery does not exist or was already delivered."""
    result = await session.execute(
        update(DELIVERIES)
        .where(
            DELIVERIES.c.id == delivery_id,
            DELIVERIES.c.webhook_id == webhook_id,
            DELIVERIES.c.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.DEAD.value]),
        )
        .values(
            attempts=case((DELIVERIES.c.status == DeliveryStatus.DEAD.value, 0), else_=DELIVERIES.c.attempts),
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=to_db(now),
        )
        .returning(*DELIVERIES.c)
    )
    row = result.one_or_none()
    return None if row is None else _delivery(row)


def _webhook(row: Row[Any]) -> Webhook:
    return Webhook(
        id=row.id,
        url=row.url,
        events=tuple(row.events or ()),
        secret=row.secret,
        description=row.description,
        is_active=row.is_active,
        created_at=from_db(row.created_at),
    )


def _delivery(row: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        payload=dict(row.payload),
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=from_db(row.next_attempt_at),
        last_error=row.last_error,
        last_status_code=row.last_status_code,
        created_at=from_db(row.created_at),
        delivered_at=from_db(row.delivered_at) if row.delivered_at else None,
    )


def _text(value: str, length: int) -> str:
    """Receiver-supplied text can carry NUL bytes, which PostgreSQL refuses, or run past the column."""
    return value.replace("\x00", "")[:length]
