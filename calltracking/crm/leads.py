"""Leads for unknown numbers: when a call creates one, and who is responsible for it. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from calltracking.calls.record import CallRecord, CallStatus, Direction
from calltracking.config import AutoLeadSettings, DidSettings
from calltracking.crm.mirror import Manager


@dataclass(frozen=True, slots=True)
class ManagerDirectory:
    """Active managers by extension, and in a stable order for round-robin."""

    by_extension: dict[str, Manager]
    by_external_id: dict[str, Manager]
    rotation: tuple[Manager, ...]

    @classmethod
    def of(cls, managers: Iterable[Manager]) -> ManagerDirectory:
        active = sorted((m for m in managers if m.is_active), key=lambda m: m.id)
        return cls(
            by_extension={ext: m for m in active for ext in m.extensions},
            by_external_id={m.external_id: m for m in active},
            rotation=tuple(active),
        )

    def at_extension(self, extension: str | None) -> str | None:
        """The CRM id of the active manager at a PBX extension."""
        manager = self.by_extension.get(extension) if extension else None
        return manager.external_id if manager else None

    def is_active(self, external_id: str | None) -> bool:
        return external_id is not None and external_id in self.by_external_id


def wants_lead(call: CallRecord, switches: AutoLeadSettings) -> bool:
    """Whether this call, from or to a number nobody in the CRM has, creates a lead (by the switches)."""
    if call.external_number is None:
        return False
    if call.direction is Direction.INBOUND:
        if call.status is CallStatus.ANSWERED:
            return switches.answered_inbound
        return switches.missed_inbound
    if call.direction is Direction.OUTBOUND:
        return switches.outbound_unknown
    return False


def lead_owner(call: CallRecord, directory: ManagerDirectory, did: DidSettings | None) -> str | None:
    """Who answered (or placed the call), else the DID's default manager; None means round-robin."""
    person = call.answered_by if call.direction is Direction.INBOUND else call.manager
    owner = directory.at_extension(person)
    if owner is not None:
        return owner
    if did is not None and directory.is_active(did.default_manager):
        return did.default_manager
    return None


def lead_origin(call: CallRecord, did: DidSettings | None) -> tuple[str | None, str | None, str | None]:
    """The lead's source, medium and campaign: what call tracking stamped on the call (a website visit's
    utm), else the DID's."""
    if call.source or call.medium or call.campaign:
        return call.source, call.medium, call.campaign
    return (did.source, did.medium, did.campaign) if did else (None, None, None)


def lead_name(number: str, did: DidSettings | None) -> str:
    source = f" ({did.source})" if did is not None and did.source else ""
    return f"Call from {number}{source}"
