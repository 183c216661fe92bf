"""Duplicate contacts and leads, and merging them: the repository and service on both databases, then the
endpoints over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import MODULES
from api.routes import duplicates as duplicates_routes
from calltracking.access.repository import principal_for
from calltracking.access.tokens import hash_secret
from calltracking.calls.record import CallStatus
from calltracking.calls.repository import save_calls
from calltracking.config import CrmSettings, TrackingSettings
from calltracking.crm.call_matching import CallMatcher
from calltracking.crm.duplicate_repository import list_duplicate_groups
from calltracking.crm.merge_service import merge_entities
from calltracking.crm.merging import MergeConflict, MergeEntityNotFound, Moved
from calltracking.crm.mirror import CompanyIn, DealIn, EntityKind
from calltracking.crm.repository import get_deal, get_parties_by_id, get_party, upsert_deals, upsert_parties
from calltracking.store.tables import CallbackRow, CallMatchRow, MergeRow
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.crm import SEEDED_AT, make_contact, make_lead
from tests.helpers.factories import make_call

MATCHES = cast(Table, CallMatchRow.__table__)
CALLBACKS = cast(Table, CallbackRow.__table__)
MERGES = cast(Table, MergeRow.__table__)
NUMBER = "+79161234567"
MERGED_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
# The calls land on the lead although contacts share its number: that is the history a merge must move.
LEAD_FIRST = CrmSettings.model_validate({"match_priority": ["lead", "contact", "company"]})
CALLS = (
    make_call(1),
    make_call(2, status=CallStatus.MISSED, answered_at=None, answered_by=None, talk_seconds=0.0),
    make_call(3, caller="+79031112233", caller_number="+79031112233"),
)


@dataclass(frozen=True)
class Seeded:
    contact: int
    other_contact: int
    lead: int
    stranger: int
    company: int
    call_ids: tuple[int, ...]


async def seed_duplicates(sessions: async_sessionmaker[AsyncSession]) -> Seeded:
    """Two contacts and a lead with the same number written three ways, a company with it too, a
    contact with another number; deals on the lead and the second contact; calls matched to the lead."""
    async with sessions.begin() as session:
        await upsert_parties(
            session,
            [
                make_contact("c-1", "+7 (916) 123-45-67", name="Ivan Orlov"),
                make_contact("c-2", "8-916-123-45-67", name="I. Orlov"),
                make_lead("l-1", "8 (916) 123 45 67", "+7 903 111-22-33", name="Orlov?"),
                make_contact("c-4", "+7 926 555-44-33"),
                CompanyIn(external_id="co-9", phones=[NUMBER]),
            ],
            "RU",
            SEEDED_AT,
        )
        await upsert_deals(
            session,
            [
                DealIn(external_id="d-lead", lead="l-1"),
                DealIn(external_id="d-c2", contact="c-2"),
                DealIn(external_id="d-c4", contact="c-4"),
            ],
            SEEDED_AT,
        )
        call_ids = await save_calls(session, CALLS)
        await CallMatcher(LEAD_FIRST, TrackingSettings())(session, CALLS, call_ids)
    async with sessions() as session:
        ids = {}
        for kind, external_id in [
            (EntityKind.CONTACT, "c-1"),
            (EntityKind.CONTACT, "c-2"),
            (EntityKind.LEAD, "l-1"),
            (EntityKind.CONTACT, "c-4"),
            (EntityKind.COMPANY, "co-9"),
        ]:
            entity = await get_party(session, kind, external_id)
            assert entity is not None
            ids[external_id] = entity.id
    return Seeded(
        contact=ids["c-1"],
        other_contact=ids["c-2"],
        lead=ids["l-1"],
        stranger=ids["c-4"],
        company=ids["co-9"],
        call_ids=tuple(call_ids),
    )


async def test_contacts_and_a_lead_sharing_a_number_form_one_group(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seeded = await seed_duplicates(sessions)

    async with sessions() as session:
        groups = await list_duplicate_groups(session, None, 50)

    assert [group.number for group in groups] == [NUMBER]
    members = [(member.id, member.kind, member.external_id) for member in groups[0].members]
    assert members == sorted(
        [
            (seeded.contact, EntityKind.CONTACT, "c-1"),
            (seeded.other_contact, EntityKind.CONTACT, "c-2"),
            (seeded.lead, EntityKind.LEAD, "l-1"),
        ]
    )


async def test_the_calls_start_on_the_lead(sessions: async_sessionmaker[AsyncSession]) -> None:
    seeded = await seed_duplicates(sessions)

    async with sessions() as session:
        on_lead = (await session.execute(select(MATCHES.c.entity_id))).scalars().all()
        callback_entities = (await session.execute(select(CALLBACKS.c.entity_id))).scalars().all()

    assert list(on_lead) == [seeded.lead] * len(CALLS)
    assert list(callback_entities) == [seeded.lead]


async def test_merging_a_lead_and_a_contact_into_a_contact_moves_their_history(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seeded = await seed_duplicates(sessions)

    result = await merge_entities(
        sessions, seeded.contact, [seeded.lead, seeded.other_contact], 7, LEAD_FIRST, MERGED_AT
    )

    assert result.moved == Moved(calls=3, callbacks=1, deals=2, phones=1)
    assert result.merged_ids == (seeded.lead, seeded.other_contact)
    assert [phone.e164 for phone in result.survivor.phones] == [NUMBER, "+79031112233"]
    assert result.survivor.last_activity_at == CALLS[2].ended_at
    async with sessions() as session:
        matches = (await session.execute(select(MATCHES.c.entity_id, MATCHES.c.candidates))).all()
        callback_entities = (await session.execute(select(CALLBACKS.c.entity_id))).scalars().all()
        lead_deal, c2_deal, c4_deal = [await get_deal(session, d) for d in ("d-lead", "d-c2", "d-c4")]
        entities = await get_parties_by_id(session, [seeded.lead, seeded.other_contact])
        merges = (await session.execute(select(MERGES))).all()
        groups = await list_duplicate_groups(session, None, 50)
    assert [entity_id for entity_id, _ in matches] == [seeded.contact] * len(CALLS)
    candidate_ids = {candidate["id"] for _, candidates in matches for candidate in candidates}
    assert candidate_ids == {seeded.contact, seeded.company}
    assert list(callback_entities) == [seeded.contact]
    assert lead_deal is not None and (lead_deal.contact, lead_deal.lead) == ("c-1", None)
    assert c2_deal is not None and c2_deal.contact == "c-1"
    assert c4_deal is not None and c4_deal.contact == "c-4"
    for merged in entities.values():
        assert (merged.is_active, merged.merged_into_id) == (False, seeded.contact)
    [merge] = merges
    assert (merge.id, merge.token_id, merge.kind, merge.survivor_id) == (
        result.merge_id,
        7,
        "contact",
        seeded.contact,
    )
    assert merge.merged_ids == [seeded.lead, seeded.other_contact]
    assert merge.moved == {"calls": 3, "callbacks": 1, "deals": 2, "phones": 1}
    assert groups == []


async def test_merging_a_contact_into_a_lead_moves_deals_to_the_lead_column(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seeded = await seed_duplicates(sessions)

    await merge_entities(sessions, seeded.lead, [seeded.other_contact], None, LEAD_FIRST, MERGED_AT)

    async with sessions() as session:
        deal = await get_deal(session, "d-c2")
    assert deal is not None and (deal.contact, deal.lead) == (None, "l-1")


async def test_merging_the_same_ids_twice_is_a_conflict_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seeded = await seed_duplicates(sessions)
    await merge_entities(sessions, seeded.contact, [seeded.lead], None, LEAD_FIRST, MERGED_AT)

    with pytest.raises(MergeConflict, match=f"already merged into {seeded.contact}"):
        await merge_entities(sessions, seeded.contact, [seeded.lead], None, LEAD_FIRST, MERGED_AT)

    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(MERGES))).scalar_one() == 1


async def test_a_refused_merge_leaves_the_entities_untouched(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seeded = await seed_duplicates(sessions)

    with pytest.raises(MergeEntityNotFound):
        await merge_entities(sessions, seeded.contact, [seeded.lead, 999_999], None, LEAD_FIRST, MERGED_AT)
    with pytest.raises(MergeConflict):
        await merge_entities(sessions, seeded.contact, [seeded.company], None, LEAD_FIRST, MERGED_AT)

    async with sessions() as session:
        lead = (await get_parties_by_id(session, [seeded.lead]))[seeded.lead]
        merges = (await session.execute(select(func.count()).select_from(MERGES))).scalar_one()
    assert (lead.is_active, lead.merged_into_id, merges) == (True, None, 0)


# Over HTTP.


@pytest.fixture
async def api(database_url: str, tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        yield harness


async def merge(api: ApiHarness, body: dict[str, Any], role: str = "integration") -> tuple[int, Any]:
    response = await api.client.post("/api/v1/duplicates/merge", json=body, headers=api.auth(role))
    return response.status, await response.json()


async def duplicates(api: ApiHarness, role: str = "supervisor", **params: Any) -> tuple[int, Any]:
    response = await api.client.get("/api/v1/duplicates", params=params, headers=api.auth(role))
    return response.status, await response.json()


def test_the_duplicates_endpoints_are_registered() -> None:
    assert duplicates_routes.api in MODULES


async def test_duplicates_are_listed_a_page_at_a_time_by_number(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)
    async with api.sessions.begin() as session:
        await upsert_parties(session, [make_lead("l-2", "+7 903 111 22 33")], "RU", SEEDED_AT)

    status, first = await duplicates(api, limit=1)
    assert status == 200
    assert [group["number"] for group in first["items"]] == ["+79031112233"]
    assert first["next_cursor"] == "79031112233"
    status, second = await duplicates(api, limit=1, cursor=first["next_cursor"])
    assert status == 200
    assert [group["number"] for group in second["items"]] == [NUMBER]
    assert [member["id"] for member in second["items"][0]["members"]] == sorted(
        [seeded.contact, seeded.other_contact, seeded.lead]
    )
    assert second["next_cursor"] is None


async def test_merge_over_http_moves_the_lead_and_logs_the_caller(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)

    status, body = await merge(
        api, {"survivor_id": seeded.contact, "merged_ids": [seeded.lead, seeded.other_contact]}
    )

    assert status == 200, body
    assert body["survivor"]["id"] == seeded.contact
    assert body["survivor"]["is_active"] is True
    assert body["merged_ids"] == [seeded.lead, seeded.other_contact]
    assert body["moved"] == {"calls": 3, "callbacks": 1, "deals": 2, "phones": 1}
    async with api.sessions() as session:
        caller = await principal_for(session, hash_secret(api.tokens["integration"]))
        merge_row = (await session.execute(select(MERGES))).one()
        lead = (await get_parties_by_id(session, [seeded.lead]))[seeded.lead]
        on_calls = (await session.execute(select(MATCHES.c.entity_id))).scalars().all()
    assert caller is not None and merge_row.token_id == caller.token_id
    assert merge_row.id == body["merge_id"]
    assert (lead.is_active, lead.merged_into_id) == (False, seeded.contact)
    assert set(on_calls) == {seeded.contact}


async def test_merging_twice_over_http_is_a_409(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)
    request = {"survivor_id": seeded.contact, "merged_ids": [seeded.lead]}
    assert (await merge(api, request))[0] == 200

    status, body = await merge(api, request)

    assert (status, body["error"]["code"]) == (409, "conflict")
    assert body["error"]["message"] == f"entity {seeded.lead} was already merged into {seeded.contact}"


async def test_merging_an_unknown_id_is_a_404(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)

    status, body = await merge(api, {"survivor_id": seeded.contact, "merged_ids": [seeded.lead, 424242]})

    assert (status, body["error"]["code"], body["error"]["details"]) == (404, "not_found", {"ids": [424242]})


async def test_a_survivor_among_the_merged_is_a_409(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)

    status, body = await merge(
        api, {"survivor_id": seeded.contact, "merged_ids": [seeded.lead, seeded.contact]}
    )

    # A body the schema allows (it cannot say "not the survivor"), refused for what the ids name.
    assert (status, body["error"]["code"]) == (409, "conflict")
    async with api.sessions() as session:
        lead = (await get_parties_by_id(session, [seeded.lead]))[seeded.lead]
    assert lead.is_active is True


@pytest.mark.parametrize(
    "body",
    [
        {"survivor_id": 1, "merged_ids": []},
        {"survivor_id": 1, "merged_ids": list(range(2, 103))},
        {"survivor_id": "1", "merged_ids": [2]},
        {"survivor_id": 1, "merged_ids": [True]},
        {"survivor_id": 1, "merged_ids": [2], "extra": 1},
    ],
)
async def test_a_malformed_merge_body_is_a_422(api: ApiHarness, body: dict[str, Any]) -> None:
    status, answer = await merge(api, body)
    assert (status, answer["error"]["code"]) == (422, "invalid_request")


async def test_a_manager_may_neither_list_nor_merge(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)

    listed, _ = await duplicates(api, role="manager")
    merged, body = await merge(
        api, {"survivor_id": seeded.contact, "merged_ids": [seeded.lead]}, role="manager"
    )

    assert (listed, merged, body["error"]["code"]) == (403, 403, "forbidden")


async def test_a_supervisor_may_list_but_not_merge(api: ApiHarness) -> None:
    seeded = await seed_duplicates(api.sessions)

    listed, _ = await duplicates(api, role="supervisor")
    merged, _ = await merge(
        api, {"survivor_id": seeded.contact, "merged_ids": [seeded.lead]}, role="supervisor"
    )

    assert (listed, merged) == (200, 403)


async def test_a_cursor_that_is_not_a_number_is_a_422(api: ApiHarness) -> None:
    status, body = await duplicates(api, cursor="abc")
    assert (status, body["error"]["code"]) == (422, "invalid_request")
