"""The spool's journal refusing a completed call (disk full, I/O error): the call is kept, not dropped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from ami.capture_peer import PeerSession, greeting_frames
from ami.listener import PbxListener
from calltracking.calls.record import CallRecord
from calltracking.errors import CallNotJournaled
from tests.helpers.captures import capture
from tests.helpers.listening import pbx_for, running_peer, until

CALL_ID = "1795349935.0"


@dataclass
class FailingJournal:
    """A sink whose journal cannot be written until `is_failing` is cleared."""

    is_failing: bool = True
    calls: list[CallRecord] = field(default_factory=list)

    def submit(self, call: CallRecord) -> None:
        if self.is_failing:
            raise CallNotJournaled(f"call {call.pbx_call_id} not journaled: No space left on device")
        self.calls.append(call)


async def test_call_the_journal_refuses_stays_in_the_checkpoint_until_the_journal_takes_it(
    tmp_path: Path,
) -> None:
    """The call is in the checkpoint while it is live; it ends (closed as reconciled after a reconnect)
    while the journal fails. The checkpoint is not rewritten without it until the journal takes it."""
    data = capture("inbound_single_answered")
    mid_call = data[: data.index(b"Event: RTCPSent")]
    checkpoint = tmp_path / "live-calls-office.json"
    journal = FailingJournal()
    async with running_peer([PeerSession.from_capture(mid_call)]) as peer:
        listener = PbxListener(pbx_for(peer), journal, checkpoint_path=checkpoint)
        with capture_logs() as logs:
            listener.start()
            try:
                await until(lambda: checkpoint.exists() and CALL_ID in checkpoint.read_text())
                # The PBX comes back without the call: it ended while nobody listened.
                peer.add_session(PeerSession(greeting=greeting_frames(), close_at_end=False))
                await until(lambda: logged(logs, "live_calls_checkpoint_held"))
                held = checkpoint.read_text()
                journal.is_failing = False
                await until(lambda: bool(journal.calls))
            finally:
                await listener.close()

    assert CALL_ID in held
    assert logged(logs, "call_not_journaled")
    assert [(call.pbx_call_id, call.reconciled) for call in journal.calls] == [(CALL_ID, True)]


def logged(logs: Sequence[Mapping[str, Any]], event: str) -> bool:
    return any(entry["event"] == event for entry in logs)
