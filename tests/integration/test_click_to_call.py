"""Click-to-call end to end: HTTP API -> Originate over TCP to an AMI peer that answers with the real
capture's response and events -> status follows the call -> linked to the call record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallProgress, Direction, ProgressKind
from calltracking.clicktocall.service import ClickToCallService
from calltracking.config import PbxSettings
from tests.helpers.listening import until
from tests.helpers.service_stack import originate_answered_by, stack


async def test_click_to_call_rings_the_manager_then_the_customer_and_links_the_call(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)

        status, accepted = await s.post(
            {"extension": "101", "number": "8 916 123-45-67", "request_id": "req-42"}
        )
        assert (status, accepted["request_id"]) == (202, "req-42")
        assert accepted["status"] in ("queued", "ringing_manager", "ringing_customer", "answered")
        assert accepted["status_url"] == "/api/v1/calls/originate/req-42"
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)
        final = await s.status_of("req-42")

    assert [state.status.value for state in s.history] == [
        "queued",
        "ringing_manager",
        "ringing_customer",
        "answered",
        "answered",
    ]
    assert (final["status"], final["reason"], final["number"]) == ("answered", None, "89161234567")
    assert final["call_id"] == s.history[-1].call_id


async def test_manager_who_does_not_answer_fails_the_request_with_the_reason(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call_manager_no_answer")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        status, _ = await s.post({"manager": "103", "number": "89165550000", "request_id": "req-43"})
        assert status == 202
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)
        final = await s.status_of("req-43")

    assert [state.status.value for state in s.history] == ["queued", "ringing_manager", "failed", "failed"]
    assert (final["status"], final["reason"]) == ("failed", "manager_no_answer")


async def test_a_retry_with_the_same_key_returns_the_first_answer_and_never_dials_again(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        body = {"extension": "101", "number": "89161234567", "request_id": "req-42"}
        answers = await asyncio.gather(*(s.post(body, key="crm-7") for _ in range(5)))
        again = await s.post({"extension": "101", "number": "89161234567"}, key="crm-7")
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)

        conflict = await s.post({"extension": "102", "number": "89161234567", "request_id": "req-42"})
        assert s.originates_sent() == 1

    assert {(status, body["request_id"]) for status, body in answers} == {(202, "req-42")}
    assert again[1]["request_id"] == "req-42"
    assert conflict[0] == 409


async def test_link_dropped_while_the_originate_is_in_flight_dials_once(
    database_url: str, tmp_path: Path
) -> None:
    dropping, _ = originate_answered_by("click_to_call")
    dropping.hang_up_on = frozenset({"originate"})
    after_reconnect, _ = originate_answered_by("click_to_call")
    async with stack(database_url, tmp_path, [dropping, after_reconnect]) as s:
        await until(lambda: s.listener.connection.is_ready)

        status, accepted = await s.post({"extension": "101", "number": "89161234567"}, key="crm-8")
        await until(lambda: s.listener.connection.sessions == 2 and s.listener.connection.is_ready)
        retried = await s.post({"extension": "101", "number": "89161234567"}, key="crm-8")
        state = await s.status_of(accepted["request_id"])

        assert s.originates_sent() == 1
    assert status == 202
    assert (state["status"], state["reason"]) == ("failed", "pbx_connection_lost")
    assert retried == (202, accepted)


async def test_pbx_down_is_503_at_once_and_nothing_is_dialled(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path, []) as s:
        status, body = await s.post({"extension": "101", "number": "89161234567", "request_id": "req-9"})
        state = await s.status_of("req-9")
        # The answer did not wait for the link: no AMI session was ever up while the request was handled.
        sessions = s.listener.connection.sessions

    assert (status, body["error"]["code"]) == (503, "unavailable")
    assert sessions == 0
    assert [state.status.value for state in s.history] == ["queued", "failed"]
    assert (state["status"], state["reason"]) == ("failed", "pbx_unreachable")
    assert s.originates_sent() == 0


async def test_bad_requests_are_422(database_url: str, tmp_path: Path) -> None:
    async with stack(database_url, tmp_path, []) as s:
        for body in (
            {"number": "89161234567"},
            {"extension": "101", "manager": "101", "number": "89161234567"},
            {"extension": "101", "number": "call me"},
            {"extension": "101; Action: Hangup", "number": "89161234567"},
            {"extension": "101", "number": "89161234567\r\nAction: Originate"},
            {"extension": "101", "number": "89161234567", "request_id": "has spaces"},
        ):
            status, answer = await s.post(body)
            assert (status, answer["error"]["code"]) == (422, "invalid_request"), body
        # Well formed, but no PBX has that name.
        status, answer = await s.post({"extension": "101", "number": "89161234567", "pbx": "elsewhere"})
        assert (status, answer["error"]["code"]) == (404, "not_found")
        assert s.originates_sent() == 0


async def test_events_of_a_request_no_instance_made_cost_one_read_not_one_each(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A CRM_REQUEST_ID set by other dialplan (or a request long settled) must not cost every event of
    its call a database read: the id is looked up once."""
    service = ClickToCallService(sessions, [PbxSettings(name="office")], {})
    reads = 0

    def seen(*_args: object) -> None:
        nonlocal reads
        reads += 1

    event.listen(sessions.kw["bind"].sync_engine, "before_cursor_execute", seen)
    for kind in (ProgressKind.RINGING, ProgressKind.ANSWERED, ProgressKind.RINGING, ProgressKind.ANSWERED):
        await service.on_event(
            CallProgress(
                kind=kind,
                pbx="office",
                pbx_call_id="1795349935.1",
                at=datetime.now(UTC),
                direction=Direction.OUTBOUND,
                caller="101",
                callee="+79161234567",
                extension="101",
                request_id="not-ours-1",
            )
        )
    assert reads == 1
