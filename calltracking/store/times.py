"""Times in and out of the database. Every stored time is UTC; SQLite keeps only the wall time (no zone),
so times are normalised to UTC going in and given their zone back coming out."""

from __future__ import annotations

from datetime import UTC, datetime

EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    """`value` in UTC (a naive one is taken as UTC). The few instants a datetime cannot hold in UTC (the
    first day of year 1 ahead of UTC, the last of year 9999 behind it) become its first or last instant,
    rather than an error from whoever sent them."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return EARLIEST if value.year == 1 else LATEST


def to_db(value: datetime) -> datetime:
    """A time to store: a naive one is taken as UTC; any other zone is converted, so stored times sort."""
    return as_utc(value)


def from_db(value: datetime) -> datetime:
    """A stored time, zone-aware (UTC) whatever the backend."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
