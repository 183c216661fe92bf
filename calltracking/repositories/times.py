"""Times in and out of the database. Every stored time is UTC; SQLite keeps only the wall time (no zone),
so times are normalised to UTC going in and given their zone back coming out."""

from __future__ import annotations

from datetime import UTC, datetime


def to_db(value: datetime) -> datetime:
    """A time to store: a naive one is taken as UTC; any other zone is converted, so stored times sort."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_db(value: datetime) -> datetime:
    """A stored time, zone-aware (UTC) whatever the backend."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
