"""Caller-ID lookup for the dialplan: who is calling and which extension should ring first.

The dialplan asks before it dials anyone, so this sits on the path of every inbound call: one indexed
query for the exact number (a second only for the last-digits fallback or a tie), no ORM, no writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.hub import Enricher
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
    hits = await reader.hits(e164, crm.tail_digits)
    if not hits:
        return CallerInfo(number=number, e164=e164, hit=None)
    by_id = {hit.candidate.entity_id: hit for hit in hits}
    chosen = choose_match([hit.candidate for hit in hits], crm.match_priority).entity
    return CallerInfo(number=number, e164=e164, hit=by_id[chosen.entity_id] if chosen else None)


SCREEN_POP_KINDS = frozenset({ProgressKind.RINGING, ProgressKind.ANSWERED})


def screen_pop_enricher(
    reader: LookupReader, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> Enricher:
    """The call hub's enricher: a ringing or answered call names the customer's CRM entity, so a screen
    pop (WebSocket, call.ringing webhook) shows who it is before anyone picks up; a completed call names
    the entity it was matched to when it was written."""

    # A PBX's own numbers are read in its own country (the dialplan gives them as the carrier sent them).
    crm_of_pbx = {
        pbx.name: settings.crm.model_copy(update={"default_country": pbx.default_country})
        for pbx in settings.pbxs
    }

    async def enrich(event: LiveEvent) -> LiveEvent:
        if isinstance(event, CallCompleted):
            async with sessions() as session:
                entities = await entity_refs(session, [event.call_id])
            return replace(event, entity=entities.get(event.call_id))
        if not isinstance(event, CallProgress) or event.kind not in SCREEN_POP_KINDS:
            return event
        number = event.caller if event.direction is Direction.INBOUND else event.callee
        if event.direction is Direction.INTERNAL or not number:
            return event
        info = await look_up_caller(reader, number, crm_of_pbx.get(event.pbx, settings.crm))
        if info.hit is None:
            return event
        candidate = info.hit.candidate
        entity = EntityRef(candidate.entity_id, candidate.kind, candidate.external_id, candidate.name)
        return replace(event, entity=entity)

    return enrich
