"""Who listens to a PBX, decided from what the lease says: `StandbyListener` against a scripted lease."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from ami.listener import PbxListener
from calltracking.app.standby import ListeningConnections, StandbyListener
from calltracking.config import PbxSettings
from calltracking.store.pbx_lease import LeaseState


class ScriptedLease:
    """Answers each claim with the next state of a script, then the last one for ever."""

    def __init__(self, states: list[LeaseState]) -> None:
        self._states: Iterator[LeaseState] = iter(states)
        self._last = states[-1]
        self.claims = 0
        self.released = False

    async def claim(self) -> LeaseState:
        self.claims += 1
        self._last = next(self._states, self._last)
        return self._last

    async def release(self) -> None:
        self.released = True


@dataclass
class StubConnection:
    events_received: int = 0
    is_ready: bool = True


@dataclass
class StubListener:
    connection: StubConnection = field(default_factory=StubConnection)
    started: bool = False
    closed: bool = False

    def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True


@dataclass
class Run:
    standby: StandbyListener
    lease: ScriptedLease
    made: list[StubListener]
    # After each claim: whether a listener was listening.
    listening: list[bool]


async def run_claims(states: list[LeaseState], claims: int) -> Run:
    """Let the listener make `claims` claims of the script, recording after each whether it listened."""
    made: list[StubListener] = []

    def make() -> PbxListener:
        made.append(StubListener())
        return cast(PbxListener, made[-1])

    lease = ScriptedLease(states)
    standby = StandbyListener(PbxSettings(name="office"), lease, make, check_seconds=0.001)
    listening: list[bool] = []
    task = asyncio.create_task(standby.run())
    try:
        async with asyncio.timeout(10):
            while lease.claims < claims:
                await asyncio.sleep(0)
                if len(listening) < lease.claims:
                    listening.append(standby.listener is not None)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return Run(standby, lease, made, listening)


async def test_a_process_listens_when_the_database_cannot_say_who_holds_the_lease() -> None:
    """Database down at start: nobody can prove another process listens, and a PBX heard by nobody loses
    calls; once the database says another process holds the lease, this one stops."""
    run = await run_claims(
        [LeaseState.UNKNOWN, LeaseState.UNKNOWN, LeaseState.HELD_ELSEWHERE, LeaseState.HELD_ELSEWHERE], 4
    )
    assert run.listening[:2] == [True, True]
    assert run.listening[-1] is False
    assert [(m.started, m.closed) for m in run.made] == [(True, True)]
    assert run.lease.released


async def test_a_standby_listens_once_the_lease_is_free_and_stops_when_it_is_taken() -> None:
    run = await run_claims(
        [LeaseState.HELD_ELSEWHERE, LeaseState.HELD, LeaseState.HELD_ELSEWHERE, LeaseState.HELD], 5
    )
    assert run.listening[:4] == [False, True, False, True]
    assert [(m.started, m.closed) for m in run.made] == [(True, True), (True, True)]
    assert run.standby.terms == 2


async def test_click_to_call_sees_only_the_pbxs_this_process_listens_to() -> None:
    standing_by = StandbyListener(
        PbxSettings(name="branch"), ScriptedLease([LeaseState.HELD_ELSEWHERE]), list
    )
    listening = StandbyListener(PbxSettings(name="office"), ScriptedLease([LeaseState.HELD]), list)
    listening.listener = cast(PbxListener, StubListener())
    connections = ListeningConnections([standing_by, listening])

    assert list(connections) == ["office"] and len(connections) == 1
    assert connections.get("branch") is None
    assert connections["office"] is listening.listener.connection
