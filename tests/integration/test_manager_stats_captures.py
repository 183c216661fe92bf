"""Every shared capture replayed through the real AMI client, then the per-manager report: each figure
equals the count made by hand from the captures' truth files (shared/ami-traces/*.truth.json)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from calltracking.app.replay import replay_captures
from calltracking.calls.repository import list_calls
from calltracking.config import PbxSettings
from calltracking.stats.manager_report import ReportScope, manager_report
from calltracking.stats.period import Period
from calltracking.store.engine import create_engine, create_sessionmaker
from tests.helpers.captures import capture, capture_names
from tests.helpers.listening import database_settings

# By hand, from the truth files (README "Stats" says who a call counts for):
# inbound (10): 101 answered attended_transfer and inbound_single_answered, rang unanswered in
# inbound_customer_cancel, inbound_single_busy, inbound_single_missed; 102 answered
# inbound_group_answered, rang in the abandoned queue call; 103 answered inbound_queue_answered, rang in
# the abandoned one; forward_to_mobile (answered by the mobile) and ivr_hangup (rang nobody) are in the
# total only. Outbound (5): 101 click_to_call, click_to_call_local, outbound_answered (all answered);
# 102 outbound_busy; 103 click_to_call_manager_no_answer. Internal (1): 101 called 102.
EXPECTED = {
    # (inbound received, answered, missed), (outbound made, answered), internal, unique customers
    "ext:101": ((5, 2, 3), (3, 3), 1, 3),
    "ext:102": ((2, 1, 1), (1, 0), 1, 1),
    "ext:103": ((2, 1, 1), (1, 0), 0, 1),
    "total": ((10, 5, 5), (5, 3), 1, 4),
}


async def test_the_captures_give_the_hand_count(database_url: str, tmp_path: Path) -> None:
    await replay_captures(
        [capture(name) for name in capture_names()],
        PbxSettings(name="office"),
        database_settings(database_url, tmp_path),
        tmp_path / "spool",
    )
    engine = create_engine(database_url)
    try:
        sessions = create_sessionmaker(engine)
        period = Period.parse("2026-11-01", "2026-11-30", "UTC", today=date(2026, 11, 30))
        async with sessions() as session:
            report = await manager_report(session, ReportScope(period=period))
            calls = await list_calls(session)
    finally:
        await engine.dispose()
    assert report.total is not None
    lines = {line.key: line for line in [*report.managers, report.total]}
    assert set(lines) == set(EXPECTED)
    for key, (inbound, outbound, internal, customers) in EXPECTED.items():
        line = lines[key]
        counts = line.calls
        assert (counts.inbound_received, counts.inbound_answered, counts.inbound_missed) == inbound, key
        assert (counts.outbound_made, counts.outbound_answered) == outbound, key
        assert (counts.internal_calls, line.unique_customers) == (internal, customers), key
    # Nine unknown inbound numbers got a lead each; five missed or busy numbers a callback task, none
    # returned (no later answered call reached them).
    assert (report.total.leads.created, report.total.callback_tasks, report.total.callbacks_returned) == (
        9,
        5,
        0,
    )
    customer_talk = sum(c.call.talk_seconds for c in calls if c.call.direction.value != "internal")
    assert abs(report.total.calls.talk_seconds - customer_talk) < 0.01
