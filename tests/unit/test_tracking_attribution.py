"""Attribution's rules, pure: where an inbound call came from, first-time callers, target calls."""

from __future__ import annotations

from datetime import timedelta

from calltracking.calls.record import CallStatus, Direction
from calltracking.config import TrackingSettings
from calltracking.numbers import is_same_line
from calltracking.tracking.attribution import (
    VisitWindow,
    attribute,
    first_times,
    numbers_to_demote,
    pool_number,
    visit_at,
)
from tests.helpers.factories import T0, make_call

TRACKING = TrackingSettings.model_validate(
    {
        "dids": {"74951110001": {"source": "google", "medium": "cpc", "campaign": "winter"}},
        "pool": {"numbers": ["+7 495 222-00-01", "+74952220002"], "fallback_number": "74952229999"},
        "target_talk_seconds": 30,
    }
)


def window(session_id: int, number: str, start_minute: int, end_minute: int, source: str) -> VisitWindow:
    return VisitWindow(
        session_id=session_id,
        number=number,
        created_at=T0 + timedelta(minutes=start_minute),
        expires_at=T0 + timedelta(minutes=end_minute),
        source=source,
        medium="cpc",
        campaign=None,
    )


def test_a_carrier_format_of_a_pool_number_is_that_number() -> None:
    assert pool_number("74952220001", TRACKING.pool.numbers) == "+7 495 222-00-01"
    assert pool_number("84952220002", TRACKING.pool.numbers) == "+74952220002"
    assert pool_number("74951110001", TRACKING.pool.numbers) is None
    assert is_same_line("+7 (495) 111-00-01", "4951110001")
    assert not is_same_line("101", "")


def test_the_visit_holding_the_number_at_the_call_wins() -> None:
    first = window(1, "+74952220002", 0, 30, "google")
    second = window(2, "+74952220002", 31, 60, "yandex")
    assert visit_at([first, second], "+74952220002", T0 + timedelta(minutes=30)) == first
    assert visit_at([first, second], "+74952220002", T0 + timedelta(minutes=45)) == second
    assert visit_at([first, second], "+74952220002", T0 + timedelta(minutes=61)) is None


def test_a_pool_call_takes_the_visit_else_the_did_else_nothing() -> None:
    windows = [window(7, "+74952220002", 0, 30, "yandex")]
    in_visit = make_call(1, did="74952220002")
    after_visit = make_call(40, did="74952220002")
    on_did = make_call(2, did="74951110001")
    unknown = make_call(3, did="74950000000")
    outbound = make_call(4, direction=Direction.OUTBOUND, did=None)
    stamped = attribute([in_visit, after_visit, on_did, unknown, outbound], TRACKING, windows, {})
    assert [(c.source, c.medium, c.campaign, c.tracking_session_id) for c in stamped] == [
        ("yandex", "cpc", None, 7),
        (None, None, None, None),
        ("google", "cpc", "winter", None),
        (None, None, None, None),
        (None, None, None, None),
    ]
    assert stamped[4].first_time_caller is None and stamped[4].is_target is None


def test_target_calls_are_answered_and_talk_past_the_threshold() -> None:
    calls = [
        make_call(1, talk_seconds=30.0),
        make_call(2, talk_seconds=30.5),
        make_call(3, status=CallStatus.MISSED, talk_seconds=0.0),
    ]
    assert [c.is_target for c in attribute(calls, TRACKING, [], {})] == [False, True, False]


def test_first_time_callers_look_at_stored_calls_and_the_batch() -> None:
    ivan, olga = "+79161234567", "+79035550101"
    calls = [
        make_call(5, caller_number=ivan),
        make_call(3, caller_number=ivan),
        make_call(4, caller_number=olga),
        make_call(6, caller_number=None),
    ]
    assert first_times(calls, {}) == [False, True, True, None]
    stored = {olga: T0 + timedelta(minutes=1)}
    assert first_times(calls, stored) == [False, True, False, None]
    # The same call twice in a batch (a replay) is not earlier than itself.
    assert first_times([calls[1], calls[1]], {}) == [True, True]


def test_a_late_earlier_call_demotes_the_stored_first_one() -> None:
    ivan = "+79161234567"
    stored = {ivan: T0 + timedelta(minutes=10)}
    assert numbers_to_demote([make_call(5, caller_number=ivan)], stored) == {ivan}
    assert numbers_to_demote([make_call(10, caller_number=ivan)], stored) == set()
    assert numbers_to_demote([make_call(15, caller_number=ivan)], stored) == set()
