"""choose_match: the rules of the module docstring, each one deciding only when the ones before it tie."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from calltracking.crm.matching import NO_MATCH, Candidate, MatchedBy, choose_match
from calltracking.crm.mirror import EntityKind

DEFAULT_PRIORITY = (EntityKind.CONTACT, EntityKind.COMPANY, EntityKind.LEAD)
EARLIER = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
LATER = EARLIER + timedelta(days=1)


def candidate(entity_id: int, **fields: Any) -> Candidate:
    values: dict[str, Any] = {
        "entity_id": entity_id,
        "kind": EntityKind.CONTACT,
        "external_id": f"e-{entity_id}",
        "name": None,
        "owner": None,
        "matched_by": MatchedBy.NUMBER,
    }
    values.update(fields)
    return Candidate(**values)


def ranked_ids(
    *candidates: Candidate, priority: tuple[EntityKind | str, ...] = DEFAULT_PRIORITY
) -> list[int]:
    match = choose_match(candidates, priority)
    return [c.entity_id for c in match.candidates]


def test_no_candidates_is_no_match() -> None:
    match = choose_match([], DEFAULT_PRIORITY)
    assert match == NO_MATCH
    assert match.is_unknown
    assert match.entity is None and match.candidates == ()


def test_one_candidate_is_the_match() -> None:
    only = candidate(7)
    match = choose_match([only], DEFAULT_PRIORITY)
    assert not match.is_unknown
    assert (match.entity, match.candidates) == (only, (only,))


def test_an_exact_number_beats_a_tail_hit_whatever_else_the_tail_hit_has() -> None:
    exact = candidate(9, kind=EntityKind.LEAD)
    tail = candidate(
        1, kind=EntityKind.CONTACT, matched_by=MatchedBy.TAIL, has_open_deal=True, last_activity_at=LATER
    )
    assert ranked_ids(tail, exact) == [9, 1]


def test_the_default_priority_is_contact_then_company_then_lead() -> None:
    lead = candidate(1, kind=EntityKind.LEAD, has_open_deal=True, last_activity_at=LATER)
    company = candidate(2, kind=EntityKind.COMPANY, has_open_deal=True)
    contact = candidate(3, kind=EntityKind.CONTACT)
    assert ranked_ids(lead, company, contact) == [3, 2, 1]


def test_a_configured_priority_reorders_the_kinds() -> None:
    lead = candidate(1, kind=EntityKind.LEAD)
    company = candidate(2, kind=EntityKind.COMPANY)
    contact = candidate(3, kind=EntityKind.CONTACT)
    assert ranked_ids(contact, company, lead, priority=("lead", "company", "contact")) == [1, 2, 3]
    assert ranked_ids(
        contact, company, lead, priority=(EntityKind.COMPANY, EntityKind.LEAD, EntityKind.CONTACT)
    ) == [
        2,
        1,
        3,
    ]


def test_within_a_kind_an_open_deal_wins() -> None:
    without = candidate(1, last_activity_at=LATER)
    with_deal = candidate(2, has_open_deal=True, last_activity_at=EARLIER)
    assert ranked_ids(without, with_deal) == [2, 1]


def test_an_open_deal_does_not_beat_a_higher_kind() -> None:
    company_with_deal = candidate(1, kind=EntityKind.COMPANY, has_open_deal=True)
    contact = candidate(2, kind=EntityKind.CONTACT)
    assert ranked_ids(company_with_deal, contact) == [2, 1]


def test_then_the_most_recently_active_wins_and_never_active_comes_last() -> None:
    never = candidate(1)
    earlier = candidate(2, last_activity_at=EARLIER)
    later = candidate(3, last_activity_at=LATER)
    assert ranked_ids(never, earlier, later) == [3, 2, 1]


def test_activity_in_other_zones_compares_as_instants() -> None:
    moscow_time = (LATER + timedelta(minutes=1)).astimezone(timezone(timedelta(hours=3)))
    moscow = candidate(1, last_activity_at=moscow_time)
    utc = candidate(2, last_activity_at=LATER)
    assert ranked_ids(utc, moscow) == [1, 2]


def test_on_a_full_tie_the_lowest_id_wins_whatever_the_input_order() -> None:
    tied = [candidate(i, last_activity_at=EARLIER) for i in (5, 3, 8)]
    assert ranked_ids(*tied) == [3, 5, 8]
    assert ranked_ids(*reversed(tied)) == [3, 5, 8]


def test_every_candidate_is_kept_in_rank_order() -> None:
    tail_contact = candidate(1, matched_by=MatchedBy.TAIL)
    lead = candidate(2, kind=EntityKind.LEAD)
    company_active = candidate(3, kind=EntityKind.COMPANY, last_activity_at=LATER)
    company_with_deal = candidate(4, kind=EntityKind.COMPANY, has_open_deal=True)
    contact_late = candidate(5, last_activity_at=LATER)
    contact_early = candidate(6, last_activity_at=EARLIER)
    contact_idle_high = candidate(8)
    contact_idle_low = candidate(7)
    everyone = [
        tail_contact,
        lead,
        company_active,
        company_with_deal,
        contact_late,
        contact_early,
        contact_idle_high,
        contact_idle_low,
    ]
    match = choose_match(everyone, DEFAULT_PRIORITY)
    assert [c.entity_id for c in match.candidates] == [5, 6, 7, 8, 4, 3, 2, 1]
    assert match.entity == contact_late


def test_the_same_entity_found_twice_is_one_candidate() -> None:
    contact = candidate(4)
    other = candidate(2, kind=EntityKind.LEAD)
    match = choose_match([contact, other, contact, replace(contact)], DEFAULT_PRIORITY)
    assert [c.entity_id for c in match.candidates] == [4, 2]


def test_candidates_may_come_from_any_iterable_once() -> None:
    match = choose_match((candidate(i) for i in (2, 1)), DEFAULT_PRIORITY)
    assert [c.entity_id for c in match.candidates] == [1, 2]
