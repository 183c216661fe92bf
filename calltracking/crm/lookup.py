"""Caller-ID lookup for the dialplan: who is calling and which extension should ring first.

The dialplan asks before it dials anyone, so this sits on the path of every inbound call: one indexed
query for the exact number (a second only for the last-digits fallback or a tie), no ORM, no writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.hub import BatchEnricher
from calltracking.calls.record import (
    CallCompleted,
    CallProgress,
    Direction,
    EntityRef,
    LiveEvent,
    ProgressKind,
)
from calltracking.config import CrmSettings, Settings
from calltracking.crm.lookup_repository import LookupHit, LookupReader
from calltracking.crm.match_repository import entity_refs
from calltracking.crm.matching import choose_match
from calltracking.numbers import normalize_number

log = structlog.get_logger(__name__)

# CALLERID(name) is shown on a phone's small screen; Asterisk keeps at most 80 bytes of it.
MAX_DISPLAY_NAME = 40


@dataclass(frozen=True, slots=True)
class CallerInfo:
    number: str
    e164: str | None
    hit: LookupHit | None

    @property
    def display_name(self) -> str:
        return display_name(self.hit) if self.hit else ""

    @property
    def extension(self) -> str:
        """The responsible manager's first extension, empty when the owner is unknown or inactive."""
        if self.hit is None or not self.hit.manager_active or not self.hit.manager_extensions:
            return ""
        return self.hit.manager_extensions[0]


def display_name(hit: LookupHit) -> str:
    """`Ivan Orlov (Orlov & Sons)`; a nameless entity shows its kind and CRM id. Characters that would
    break the text format or a SIP header (`|`, quotes, line breaks) are dropped."""
    name = hit.candidate.name or f"{hit.candidate.kind.value} {hit.candidate.external_id}"
    if hit.company_name and hit.company_name != name:
        name = f"{name} ({hit.company_name})"
    cleaned = "".join(c for c in name if c.isprintable() and c not in '|"\\')
    return cleaned[:MAX_DISPLAY_NAME].strip()


async def look_up_caller(reader: LookupReader, number: str, crm: CrmSettings) -> CallerInfo:
    e164 = normalize_number(number, crm.default_country)
    if e164 is None:
        return CallerInfo(number=number, e164=None, hit=None)
    return CallerInfo(number=number, e164=e164, hit=chosen_hit(await reader.hits(e164, crm.tail_digits), crm))


def chosen_hit(hits: Sequence[LookupHit], crm: CrmSettings) -> LookupHit | None:
    """The hit the matcher's priority picks among a number's hits, None when it finds none."""
    if not hits:
        return None
    by_id = {hit.candidate.entity_id: hit for hit in hits}
    chosen = choose_match([hit.candidate for hit in hits], crm.match_priority).entity
    return by_id[chosen.entity_id] if chosen else None


SCREEN_POP_KINDS = frozenset({ProgressKind.RINGING, ProgressKind.ANSWERED})
# A number's CRM entity, once looked up, serves the screen pops of the next seconds (a ring group rings
# several phones for one call; a caller who hangs up and calls back): a CRM change shows within that time.
SCREEN_POP_CACHE_SECONDS = 5.0
SCREEN_POP_CACHE_SIZE = 10_000


class RecentLookups:
    """The CRM entity of numbers looked up in the last `ttl_seconds`, at most `size` of them."""

    def __init__(
        self,
        ttl_seconds: float = SCREEN_POP_CACHE_SECONDS,
        size: int = SCREEN_POP_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._size = size
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, EntityRef | None]] = {}

    def get(self, key: tuple[str, str]) -> tuple[bool, EntityRef | None]:
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self._clock():
            return False, None
        return True, entry[1]

    def put(self, key: tuple[str, str], entity: EntityRef | None) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self._ttl, entity)
        while len(self._entries) > self._size:  # the oldest first (dicts keep insertion order)
            del self._entries[next(iter(self._entries))]


def screen_pop_enricher(
    reader: LookupReader,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    recent: RecentLookups | None = None,
) -> BatchEnricher:
    """The call hub's enricher: a ringing or answered call names the customer's CRM entity, so a screen
    pop (WebSocket, call.ringing webhook) shows who it is before anyone picks up; a completed call names
    the entity it was matched to when it was written.

    A batch costs one query for its completed calls and one for the numbers not looked up in the last
    seconds, whatever their count (a burst of new customers is one round trip, not one each)."""

    # A PBX's own numbers are read in its own country (the dialplan gives them as the carrier sent them).
    crm_of_pbx = {
        pbx.name: settings.crm.model_copy(update={"default_country": pbx.default_country})
        for pbx in settings.pbxs
    }
    cache = recent if recent is not None else RecentLookups()

    async def entities_of(keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], EntityRef | None]:
        numbers = {
            key: normalize_number(key[1], crm_of_pbx.get(key[0], settings.crm).default_country)
            for key in keys
        }
        e164s = sorted({e164 for e164 in numbers.values() if e164 is not None})
        try:
            hits = await reader.hits_many(e164s, settings.crm.tail_digits)
        except Exception:  # the screen pops still go out, without the entity
            log.exception("screen_pop_lookup_failed", numbers=len(e164s))
            return {}
        found: dict[tuple[str, str], EntityRef | None] = {}
        for key, e164 in numbers.items():
            hit = chosen_hit(hits.get(e164, []), crm_of_pbx.get(key[0], settings.crm)) if e164 else None
            found[key] = None if hit is None else _entity_ref(hit)
            cache.put(key, found[key])
        return found

    async def enrich(events: Sequence[LiveEvent]) -> list[LiveEvent]:
        keys = {i: key for i, event in enumerate(events) if (key := _lookup_key(event)) is not None}
        known: dict[tuple[str, str], EntityRef | None] = {}
        missing: set[tuple[str, str]] = set()
        for key in keys.values():
            found, entity = cache.get(key)
            if found:
                known[key] = entity
            else:
                missing.add(key)
        completed_ids = [event.call_id for event in events if isinstance(event, CallCompleted)]
        entities: dict[int, EntityRef] = {}
        if completed_ids and missing:
            entities, looked_up = await asyncio.gather(
                _entity_refs(completed_ids), entities_of(sorted(missing))
            )
            known.update(looked_up)
        elif completed_ids:
            entities = await _entity_refs(completed_ids)
        elif missing:
            known.update(await entities_of(sorted(missing)))
        enriched: list[LiveEvent] = []
        for i, event in enumerate(events):
            if isinstance(event, CallCompleted):
                enriched.append(replace(event, entity=entities.get(event.call_id)))
            elif i in keys and (entity := known.get(keys[i])) is not None:
                enriched.append(replace(event, entity=entity))
            else:
                enriched.append(event)
        return enriched

    async def _entity_refs(call_ids: list[int]) -> dict[int, EntityRef]:
        async with sessions() as session:
            return await entity_refs(session, call_ids)

    def at_once(event: LiveEvent) -> LiveEvent | None:
        """The event as `enrich` would make it, when that needs no query: nothing to look up, or a number
        looked up in the last seconds. None when it needs one."""
        if isinstance(event, CallCompleted):
            return None
        key = _lookup_key(event)
        if key is None:
            return event
        found, entity = cache.get(key)
        if not found:
            return None
        return event if entity is None else replace(event, entity=entity)

    return BatchEnricher(enrich, at_once)


def _entity_ref(hit: LookupHit) -> EntityRef:
    candidate = hit.candidate
    return EntityRef(candidate.entity_id, candidate.kind, candidate.external_id, candidate.name)


def _lookup_key(event: LiveEvent) -> tuple[str, str] | None:
    """(pbx, the customer's number) of a screen pop worth a lookup."""
    if not isinstance(event, CallProgress) or event.kind not in SCREEN_POP_KINDS:
        return None
    if event.direction is Direction.INTERNAL:
        return None
    number = event.caller if event.direction is Direction.INBOUND else event.callee
    return (event.pbx, number) if number else None
