"""What one call adds to the report rollups: counts per extension and per traffic source, in 15-minute
buckets and in UTC days. Pure; `rollup_repository.py` applies it in the transaction that writes the call.

A report reads whole UTC days inside its period from the daily rows (a month of 300 extensions is a
few thousand of them) and only the edges, where a local day starts or ends, from the quarter hours
(`period_cover`).

A call rewritten (a replay, a reconciled call later seen whole) changes the rollups by the difference
between its new and its old contribution, so every call counts once, as its latest version says.

Who a call counts for (README "Stats"):
- inbound answered: the extension that answered (received, answered, talk, ring before the answer);
- inbound not answered: every extension whose phone rang (received, missed); a phone that rang while a
  colleague answered neither received nor missed it;
- outbound: the extension that placed it (made; answered when the customer answered; talk);
- internal: the caller's extension and the one that answered.
The row with extension "" holds the PBX's totals, each call once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from calltracking.calls.record import CallRecord, CallStatus, Direction

BUCKET_SECONDS = 900
DAY_SECONDS = 86400
GRAINS = (BUCKET_SECONDS, DAY_SECONDS)
TOTAL = ""


def bucket_of(at: datetime) -> int:
    """The start of the UTC quarter hour `at` falls in, in seconds since 1970."""
    seconds = int(at.timestamp())
    return seconds - seconds % BUCKET_SECONDS


@dataclass(frozen=True, slots=True)
class ManagerCounts:
    inbound_received: int = 0
    inbound_answered: int = 0
    inbound_missed: int = 0
    outbound_made: int = 0
    outbound_answered: int = 0
    internal_calls: int = 0
    talk_seconds: float = 0.0
    ring_seconds_answered: float = 0.0

    def plus(self, other: ManagerCounts, sign: int = 1) -> ManagerCounts:
        return ManagerCounts(*(getattr(self, f.name) + sign * getattr(other, f.name) for f in fields(self)))

    @property
    def is_zero(self) -> bool:
        return all(abs(getattr(self, f.name)) < 1e-9 for f in fields(self))


@dataclass(frozen=True, slots=True)
class SourceCounts:
    calls: int = 0
    answered: int = 0
    missed: int = 0
    target: int = 0

    def plus(self, other: SourceCounts, sign: int = 1) -> SourceCounts:
        return SourceCounts(*(getattr(self, f.name) + sign * getattr(other, f.name) for f in fields(self)))

    @property
    def is_zero(self) -> bool:
        return all(getattr(self, f.name) == 0 for f in fields(self))


# pbx, grain (seconds), bucket (its start, seconds since 1970), extension ("" for the PBX's totals)
ManagerKey = tuple[str, int, int, str]
# pbx, grain, bucket, source, medium, campaign ("" when unknown)
SourceKey = tuple[str, int, int, str, str, str]


def ceil_to(seconds: int, grain: int) -> int:
    """The first `grain` boundary at or after `seconds` (since 1970)."""
    return -(-seconds // grain) * grain


def day_of(bucket: int) -> int:
    return bucket - bucket % DAY_SECONDS


def period_cover(first: int, last: int) -> list[tuple[int, int, int]]:
    """The buckets [first, last) (quarter-hour starts) as (grain, first, last) pieces: the whole UTC days
    inside from the daily rows, the rest from the quarter hours."""
    day_first = ceil_to(first, DAY_SECONDS)
    day_last = day_of(last)
    if day_first >= day_last:
        return [(BUCKET_SECONDS, first, last)] if first < last else []
    pieces = [(DAY_SECONDS, day_first, day_last)]
    if first < day_first:
        pieces.insert(0, (BUCKET_SECONDS, first, day_first))
    if day_last < last:
        pieces.append((BUCKET_SECONDS, day_last, last))
    return pieces


def manager_contribution(call: CallRecord) -> dict[ManagerKey, ManagerCounts]:
    bucket = bucket_of(call.started_at)
    answered = call.status is CallStatus.ANSWERED
    parts: dict[str, ManagerCounts] = {}
    if call.direction is Direction.INBOUND:
        if answered:
            counts = ManagerCounts(
                inbound_received=1,
                inbound_answered=1,
                talk_seconds=call.talk_seconds,
                ring_seconds_answered=call.ring_seconds,
            )
            if call.manager:
                parts[call.manager] = counts
            parts[TOTAL] = counts
        else:
            for extension in dict.fromkeys(call.rang):
                parts[extension] = ManagerCounts(inbound_received=1, inbound_missed=1)
            parts[TOTAL] = ManagerCounts(inbound_received=1, inbound_missed=1)
    elif call.direction is Direction.OUTBOUND:
        counts = ManagerCounts(
            outbound_made=1,
            outbound_answered=int(answered),
            talk_seconds=call.talk_seconds if answered else 0.0,
        )
        if call.manager:
            parts[call.manager] = counts
        parts[TOTAL] = counts
    else:
        for extension in dict.fromkeys(e for e in (call.caller, call.manager) if e):
            parts[extension] = ManagerCounts(internal_calls=1)
        parts[TOTAL] = ManagerCounts(internal_calls=1)
    return {(call.pbx, BUCKET_SECONDS, bucket, extension): counts for extension, counts in parts.items()}


def source_contribution(call: CallRecord) -> dict[SourceKey, SourceCounts]:
    if call.direction is not Direction.INBOUND:
        return {}
    answered = call.status is CallStatus.ANSWERED
    key = (
        call.pbx,
        BUCKET_SECONDS,
        bucket_of(call.started_at),
        call.source or "",
        call.medium or "",
        call.campaign or "",
    )
    return {
        key: SourceCounts(
            calls=1, answered=int(answered), missed=int(not answered), target=int(bool(call.is_target))
        )
    }


@dataclass
class RollupDelta:
    """What a batch of writes changes in the rollups, at both grains: summed per key, zero changes
    dropped."""

    managers: dict[ManagerKey, ManagerCounts]
    sources: dict[SourceKey, SourceCounts]

    @classmethod
    def empty(cls) -> RollupDelta:
        return cls(managers={}, sources={})

    def replace(self, old: CallRecord | None, new: CallRecord) -> None:
        """`new` replaces `old` (None: a call written for the first time)."""
        for sign, call in ((-1, old), (1, new)):
            if call is None:
                continue
            for (pbx, _, bucket, extension), counts in manager_contribution(call).items():
                for key in (
                    (pbx, BUCKET_SECONDS, bucket, extension),
                    (pbx, DAY_SECONDS, day_of(bucket), extension),
                ):
                    self.managers[key] = self.managers.get(key, ManagerCounts()).plus(counts, sign)
            for (pbx, _, bucket, source, medium, campaign), scounts in source_contribution(call).items():
                for skey in (
                    (pbx, BUCKET_SECONDS, bucket, source, medium, campaign),
                    (pbx, DAY_SECONDS, day_of(bucket), source, medium, campaign),
                ):
                    self.sources[skey] = self.sources.get(skey, SourceCounts()).plus(scounts, sign)

    def changes(self) -> tuple[dict[ManagerKey, ManagerCounts], dict[SourceKey, SourceCounts]]:
        return (
            {key: counts for key, counts in self.managers.items() if not counts.is_zero},
            {key: counts for key, counts in self.sources.items() if not counts.is_zero},
        )
