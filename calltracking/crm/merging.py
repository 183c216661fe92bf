"""Duplicate contacts and leads, and the rules for merging them into one. Pure: no I/O.

A merge names a survivor and the entities folded into it, by internal id. What is refused is refused
before anything moves: a malformed request, an id that names nothing, a company (only contacts and leads
are merged), and an entity that is no longer active — most often one merged already, so merging the same
ids twice is a clear conflict, never a second move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from calltracking.calls.record import EntityKind
from calltracking.crm.mirror import Entity, EntityOrigin
from calltracking.errors import CalltrackingError
from calltracking.numbers import Phone

MAX_MERGED = 100
MERGEABLE_KINDS = frozenset({EntityKind.CONTACT, EntityKind.LEAD})


class MergeRefused(CalltrackingError):
    """A merge that cannot be done; nothing was changed."""

    def __init__(self, message: str, ids: Sequence[int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.ids = tuple(ids)


class MergeInvalid(MergeRefused):
    """The request's shape is wrong (no ids, too many, an id repeated): the API's schema says so too."""


class MergeEntityNotFound(MergeRefused):
    """An id names no entity."""


class MergeConflict(MergeRefused):
    """The entities named cannot be merged as asked: the survivor is also among the merged, one is a
    company, or one is no longer active (merged already, or deleted in the CRM). Which ids a request
    names is a matter of what they are, not of the request's shape."""


@dataclass(frozen=True, slots=True)
class DuplicateMember:
    id: int
    kind: EntityKind
    external_id: str
    name: str | None
    owner: str | None
    origin: EntityOrigin
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DuplicateGroup:
    """Active contacts and leads that share one number."""

    number: str
    members: tuple[DuplicateMember, ...]


@dataclass(frozen=True, slots=True)
class Moved:
    calls: int = 0
    callbacks: int = 0
    deals: int = 0
    phones: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "callbacks": self.callbacks, "deals": self.deals, "phones": self.phones}


@dataclass(frozen=True, slots=True)
class MergeResult:
    merge_id: int
    survivor: Entity
    merged_ids: tuple[int, ...]
    moved: Moved


@dataclass(frozen=True, slots=True)
class DealMove:
    """Deals whose `column` names one of `external_ids` follow the survivor: `set_column` takes the
    survivor's id, and `column` is cleared when it is another kind's (a lead folded into a contact)."""

    column: EntityKind
    external_ids: tuple[str, ...]
    set_column: EntityKind
    survivor_external_id: str

    @property
    def clears_column(self) -> bool:
        return self.column is not self.set_column


def checked_ids(survivor_id: int, merged_ids: Sequence[int]) -> tuple[int, ...]:
    """The ids to merge, once the request's shape holds (nothing read yet)."""
    if not merged_ids:
        raise MergeInvalid("merged_ids must name at least one entity")
    if len(merged_ids) > MAX_MERGED:
        raise MergeInvalid(f"at most {MAX_MERGED} entities are merged at once")
    if survivor_id in merged_ids:
        raise MergeConflict(f"the survivor {survivor_id} cannot also be merged into itself", [survivor_id])
    repeated = sorted({i for i in merged_ids if merged_ids.count(i) > 1})
    if repeated:
        raise MergeInvalid("each id may be listed once in merged_ids", repeated)
    return tuple(merged_ids)


def check_mergeable(survivor_id: int, merged_ids: Sequence[int], found: Mapping[int, Entity]) -> None:
    """Every named entity exists (else 404), is a contact or lead and is still active (else a conflict:
    a company, or one merged or deleted meanwhile)."""
    named = [survivor_id, *merged_ids]
    missing = [i for i in named if i not in found]
    if missing:
        raise MergeEntityNotFound(f"no contact or lead with id {_listed(missing)}", missing)
    wrong_kind = [i for i in named if found[i].kind not in MERGEABLE_KINDS]
    if wrong_kind:
        raise MergeConflict(
            f"only contacts and leads are merged; {_listed(wrong_kind)} is not one", wrong_kind
        )
    for entity_id in named:
        entity = found[entity_id]
        if entity.merged_into_id is not None:
            raise MergeConflict(
                f"entity {entity_id} was already merged into {entity.merged_into_id}", [entity_id]
            )
        if not entity.is_active:
            raise MergeConflict(f"entity {entity_id} is not active", [entity_id])


def phones_to_add(survivor: Iterable[Phone], merged: Iterable[Phone]) -> list[Phone]:
    """The merged entities' numbers the survivor lacks, each once; the same number in another format
    (`8 916...` vs `+7 916...`) is the same number."""
    have = {_phone_key(phone) for phone in survivor}
    added: list[Phone] = []
    for phone in merged:
        key = _phone_key(phone)
        if key not in have:
            have.add(key)
            added.append(phone)
    return added


def deal_moves(survivor: Entity, merged: Iterable[Entity]) -> list[DealMove]:
    """One move per kind among the merged entities (deals refer to contacts and leads by CRM id)."""
    by_kind: dict[EntityKind, list[str]] = {}
    for entity in merged:
        by_kind.setdefault(entity.kind, []).append(entity.external_id)
    return [
        DealMove(
            column=kind,
            external_ids=tuple(sorted(set(ids))),
            set_column=survivor.kind,
            survivor_external_id=survivor.external_id,
        )
        for kind, ids in sorted(by_kind.items())
    ]


def latest_activity(entities: Iterable[Entity]) -> datetime | None:
    times = [entity.last_activity_at for entity in entities if entity.last_activity_at is not None]
    return max(times) if times else None


def _phone_key(phone: Phone) -> str:
    return phone.e164 or phone.raw


def _listed(ids: Sequence[int]) -> str:
    return ", ".join(str(i) for i in ids)
