"""The rules of a merge, before anything is read or moved: pure, no I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from calltracking.calls.record import EntityKind
from calltracking.crm.merging import (
    MAX_MERGED,
    DealMove,
    MergeConflict,
    MergeEntityNotFound,
    MergeInvalid,
    check_mergeable,
    checked_ids,
    deal_moves,
    latest_activity,
    phones_to_add,
)
from calltracking.crm.mirror import Entity, EntityOrigin
from calltracking.numbers import parse_phone

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def entity(entity_id: int, kind: EntityKind = EntityKind.CONTACT, *phones: str, **changes: Any) -> Entity:
    made = Entity(
        id=entity_id,
        kind=kind,
        external_id=f"{kind.value}-{entity_id}",
        name=None,
        owner=None,
        phones=tuple(parse_phone(raw, "RU") for raw in phones),
        origin=EntityOrigin.CRM,
        is_active=True,
        created_at=AT,
        updated_at=AT,
    )
    return replace(made, **changes)


def test_survivor_listed_among_merged_is_a_conflict() -> None:
    with pytest.raises(MergeConflict) as refused:
        checked_ids(1, [2, 1])
    assert refused.value.ids == (1,)


def test_repeated_merged_id_is_invalid() -> None:
    with pytest.raises(MergeInvalid) as refused:
        checked_ids(1, [2, 3, 2])
    assert refused.value.ids == (2,)


@pytest.mark.parametrize("count", [0, MAX_MERGED + 1])
def test_merged_ids_outside_one_to_a_hundred_are_invalid(count: int) -> None:
    with pytest.raises(MergeInvalid):
        checked_ids(1, list(range(2, 2 + count)))


def test_well_formed_ids_are_kept_in_order() -> None:
    assert checked_ids(1, [5, 3, 4]) == (5, 3, 4)


def test_unknown_id_is_not_found() -> None:
    found = {1: entity(1), 2: entity(2, EntityKind.LEAD)}
    with pytest.raises(MergeEntityNotFound) as refused:
        check_mergeable(1, [2, 9], found)
    assert refused.value.ids == (9,)


def test_company_is_not_merged() -> None:
    found = {1: entity(1), 2: entity(2, EntityKind.COMPANY)}
    with pytest.raises(MergeConflict) as refused:
        check_mergeable(1, [2], found)
    assert refused.value.ids == (2,)


def test_already_merged_entity_is_a_conflict_naming_its_survivor() -> None:
    found = {1: entity(1), 2: entity(2, EntityKind.LEAD, is_active=False, merged_into_id=1)}
    with pytest.raises(MergeConflict, match="already merged into 1"):
        check_mergeable(1, [2], found)


def test_inactive_survivor_is_a_conflict() -> None:
    found = {1: entity(1, is_active=False), 2: entity(2, EntityKind.LEAD)}
    with pytest.raises(MergeConflict, match="entity 1 is not active"):
        check_mergeable(1, [2], found)


def test_active_contacts_and_leads_are_mergeable() -> None:
    found = {1: entity(1), 2: entity(2, EntityKind.LEAD), 3: entity(3)}
    check_mergeable(1, [2, 3], found)


def test_phones_the_survivor_has_in_another_format_are_not_added() -> None:
    survivor = entity(1, EntityKind.CONTACT, "+7 916 123-45-67")
    lead = entity(2, EntityKind.LEAD, "8 (916) 123 45 67", "8 903 111 22 33", "ext 12")
    other = entity(3, EntityKind.CONTACT, "+79031112233", "ext 12")
    added = phones_to_add(survivor.phones, [*lead.phones, *other.phones])
    assert [(phone.raw, phone.e164) for phone in added] == [
        ("8 903 111 22 33", "+79031112233"),
        ("ext 12", None),
    ]


def test_deals_of_a_lead_merged_into_a_contact_move_to_the_contact_column() -> None:
    survivor = entity(1, EntityKind.CONTACT)
    moves = deal_moves(survivor, [entity(2, EntityKind.LEAD), entity(3, EntityKind.CONTACT)])
    assert moves == [
        DealMove(EntityKind.CONTACT, ("contact-3",), EntityKind.CONTACT, "contact-1"),
        DealMove(EntityKind.LEAD, ("lead-2",), EntityKind.CONTACT, "contact-1"),
    ]
    assert [move.clears_column for move in moves] == [False, True]


def test_latest_activity_is_the_newest_of_all() -> None:
    later = datetime(2026, 11, 23, tzinfo=UTC)
    entities = [entity(1), entity(2, last_activity_at=AT), entity(3, last_activity_at=later)]
    assert latest_activity(entities) == later
    assert latest_activity([entity(1)]) is None
