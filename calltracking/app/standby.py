"""Hot standby: listen to a PBX only while this process holds its lease, and take over when the holder dies.

Every `serve` process runs one `StandbyListener` per PBX. The one that claims the PBX's lease starts a
`PbxListener` (which restores its own live-call checkpoint and reconciles it with `CoreShowChannels`); the
others wait and claim again every `check_seconds`. A call is one row per PBX and Linkedid, upserted, so
the short overlap a broken lock connection can cause, or a returning process's journal, never logs a call
twice.

When the database cannot say who holds the lease (it is down, or not up yet), a process listens: its calls
are journaled and wait for the database. A PBX heard twice costs duplicate work that the upsert absorbs; a
PBX heard by nobody loses calls. So a process stops listening only when the database says another process
holds the lease, and with the database down both processes of a pair listen until it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence

import structlog

from ami.connection import AmiConnection
from ami.listener import PbxListener
from calltracking.config import PbxSettings
from calltracking.store.pbx_lease import LeaseState, PbxLease

log = structlog.get_logger(__name__)


class StandbyListener:
    def __init__(
        self,
        pbx: PbxSettings,
        lease: PbxLease,
        make_listener: Callable[[], PbxListener],
        check_seconds: float = 2.0,
    ) -> None:
        self.pbx = pbx
        self._lease = lease
        self._make_listener = make_listener
        self._check_seconds = check_seconds
        self.listener: PbxListener | None = None
        self._events_before = 0
        self.terms = 0
        self.lease_state: LeaseState | None = None

    @property
    def connection(self) -> AmiConnection | None:
        return self.listener.connection if self.listener is not None else None

    @property
    def is_ready(self) -> bool:
        return self.listener is not None and self.listener.connection.is_ready

    @property
    def is_standing_by(self) -> bool:
        """Another process listens to this PBX (not: this one lost its link, or has not asked yet)."""
        return self.listener is None and self.lease_state is LeaseState.HELD_ELSEWHERE

    @property
    def events_received(self) -> int:
        """Counted across every term this process listened, for a counter that never goes back."""
        current = self.listener.connection.events_received if self.listener is not None else 0
        return self._events_before + current

    async def run(self) -> None:
        """Claim, listen, hand over; until cancelled, when the listener closes and the lease is released."""
        try:
            while True:
                state = await self._lease.claim()
                if state is not self.lease_state:
                    listening = self.listener is not None
                    log.info("pbx_lease", pbx=self.pbx.name, state=state.value, listening=listening)
                    self.lease_state = state
                if state is not LeaseState.HELD_ELSEWHERE and self.listener is None:
                    self._listen()
                elif state is LeaseState.HELD_ELSEWHERE and self.listener is not None:
                    log.warning("pbx_lease_taken_over", pbx=self.pbx.name)
                    await self._stop_listening()
                await asyncio.sleep(self._check_seconds)
        finally:
            await self._stop_listening()
            await self._lease.release()

    def _listen(self) -> None:
        self.terms += 1
        self.listener = self._make_listener()
        self.listener.start()
        log.info("pbx_listening", pbx=self.pbx.name, term=self.terms)

    async def _stop_listening(self) -> None:
        listener, self.listener = self.listener, None
        if listener is None:
            return
        self._events_before += listener.connection.events_received
        await listener.close()
        log.info("pbx_stopped_listening", pbx=self.pbx.name)


class ListeningConnections(Mapping[str, AmiConnection]):
    """The AMI connection each PBX is listened on by this process now: click-to-call originates on it, and
    a PBX this process stands by for has none (the request is refused as the PBX being unreachable)."""

    def __init__(self, standbys: Sequence[StandbyListener]) -> None:
        self._by_name = {standby.pbx.name: standby for standby in standbys}

    def __getitem__(self, name: str) -> AmiConnection:
        connection = self._by_name[name].connection
        if connection is None:
            raise KeyError(name)
        return connection

    def __iter__(self) -> Iterator[str]:
        return (name for name, standby in self._by_name.items() if standby.connection is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)
