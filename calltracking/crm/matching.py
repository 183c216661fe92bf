"""Which CRM entity a call's number belongs to. Pure: candidates in, a decision out.

The rule, in order (the first difference decides):
1. an exact E.164 hit beats a last-N-digits hit; tail hits are considered only when there is no exact one;
2. the kind, by the configured priority (default contact > company > lead);
3. an entity with an open deal beats one without;
4. the most recently active (the latest call matched to it) wins;
5. the lowest internal id (the one mirrored first) wins, so the same data always gives the same answer.

Every candidate is kept on the call in that order, for the CRM to show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from calltracking.calls.record import EntityKind


class MatchedBy(StrEnum):
    NUMBER = "number"  # same E.164 number
    TAIL = "tail"  # same last N digits only


@dataclass(frozen=True, slots=True)
class Candidate:
    entity_id: int
    kind: EntityKind
    external_id: str
    name: str | None
    owner: str | None
    matched_by: MatchedBy
    has_open_deal: bool = False
    last_activity_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Match:
    entity: Candidate | None
    candidates: tuple[Candidate, ...]

    @property
    def is_unknown(self) -> bool:
        return self.entity is None


NO_MATCH = Match(entity=None, candidates=())


def choose_match(candidates: Iterable[Candidate], priority: Sequence[EntityKind | str]) -> Match:
    order = [EntityKind(kind) for kind in priority]

    def rank(candidate: Candidate) -> tuple[int, int, int, float, int]:
        return (
            0 if candidate.matched_by is MatchedBy.NUMBER else 1,
            order.index(candidate.kind) if candidate.kind in order else len(order),
            0 if candidate.has_open_deal else 1,
            -candidate.last_activity_at.timestamp() if candidate.last_activity_at else float("inf"),
            candidate.entity_id,
        )

    # An entity found twice (by two of its phones) keeps its best-ranked hit.
    best: dict[int, Candidate] = {}
    for candidate in sorted(candidates, key=rank):
        best.setdefault(candidate.entity_id, candidate)
    if not best:
        return NO_MATCH
    ranked = tuple(best.values())
    return Match(entity=ranked[0], candidates=ranked)
