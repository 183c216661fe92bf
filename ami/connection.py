"""One AMI connection per PBX: login, reconnect with backoff, a Ping whose reply is checked, and a guarded
dispatcher. No call logic lives here: each event goes to `on_event`, and each new session (after login)
to `on_session`, which the listener uses to rebuild calls with CoreShowChannels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from panoramisk import Manager
from panoramisk.message import Message

from ami.events import AmiEvent, ChannelSnapshot, FullyBooted, MalformedEvent, event_time, parse_event
from ami.protocol import FramedAmiProtocol
from calltracking.config import PbxSettings
from calltracking.errors import CalltrackingError

log = structlog.get_logger(__name__)

# panoramisk re-sends actions left unanswered by a dropped connection when the next one comes up. For a
# call tracker that is wrong for every action: an Originate re-sent would dial the customer twice, and a
# CoreShowChannels or Ping belongs to the connection it was sent on. So nothing is ever re-sent.
NEVER_RESEND = type("NeverResend", (), {"__contains__": lambda self, item: True})()
DISABLED_PANORAMISK_PING = 10**9


class AmiUnavailable(CalltrackingError):
    """The PBX is not connected (or the link dropped while an action was in flight)."""


class AmiActionFailed(CalltrackingError):
    """The PBX answered an action with an error."""


EventHandler = Callable[[AmiEvent], None]
SessionHandler = Callable[[], Awaitable[None]]
LostHandler = Callable[[], None]


class _PbxManager(Manager):  # type: ignore[misc]
    """panoramisk's Manager with exponential backoff and a way to stop reconnecting."""

    pinger: asyncio.TimerHandle | None

    def __init__(self, owner: AmiConnection, **config: Any) -> None:
        super().__init__(**config)
        self._owner = owner

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            self._connected = False
            error = None if future.cancelled() else future.exception()
            self._owner._connect_failed(error)
            return
        if self._owner.is_closing:
            transport, _ = future.result()
            transport.close()
            return
        super().connection_made(future)
        self._owner._connected()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connected = False
        if self.pinger:
            self.pinger.cancel()
            self.pinger = None
        self._owner._lost(exc)


class AmiConnection:
    def __init__(
        self,
        pbx: PbxSettings,
        on_event: EventHandler,
        on_session: SessionHandler,
        on_lost: LostHandler,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.pbx = pbx
        self._on_event = on_event
        self._on_session = on_session
        self._on_lost = on_lost
        self._clock = clock
        self._manager = _PbxManager(
            self,
            host=pbx.host,
            port=pbx.port,
            username=pbx.username,
            secret=pbx.secret,
            events="on",
            ping_delay=DISABLED_PANORAMISK_PING,
            ping_interval=DISABLED_PANORAMISK_PING,
            reconnect_timeout=pbx.reconnect_initial_seconds,
            protocol_factory=FramedAmiProtocol,
            forgetable_actions=NEVER_RESEND,
        )
        self._manager.register_event("*", self._dispatch)
        self._backoff = pbx.reconnect_initial_seconds
        self._session_ready = False
        self._session_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warned_no_timestamp = False
        self._login_deadline: asyncio.TimerHandle | None = None
        self._reconnect: asyncio.TimerHandle | None = None
        self._in_flight: set[asyncio.Future[Any]] = set()
        self.is_closing = False
        self.sessions = 0
        self.disconnects = 0
        self.events_received = 0
        self.state_changed = asyncio.Event()

    @property
    def is_ready(self) -> bool:
        return self._session_ready

    def start(self) -> None:
        self._manager.loop = asyncio.get_running_loop()
        log.info("ami_connecting", pbx=self.pbx.name, host=self.pbx.host, port=self.pbx.port)
        self._manager.connect()
        self._spawn(self._keep_alive())

    async def close(self) -> None:
        self.is_closing = True
        if self._reconnect is not None:
            self._reconnect.cancel()
        self._cancel_login_deadline()
        self._manager.close()
        self._fail_in_flight()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def send(self, action: dict[str, Any], timeout: float, as_list: bool | None = None) -> Any:
        """Send an action on the current session and wait for its answer, or fail fast.

        Never queued for a later connection: when the link is down this raises at once, and when it
        drops while the action is in flight the waiting caller gets `AmiUnavailable`.
        """
        if not self._session_ready or self._manager.protocol is None:
            raise AmiUnavailable(f"PBX {self.pbx.name} is not connected")
        future = self._manager.send_action(dict(action), as_list=as_list)
        self._in_flight.add(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError as exc:
            raise AmiUnavailable(f"PBX {self.pbx.name} did not answer {action.get('Action')}") from exc
        finally:
            self._in_flight.discard(future)

    async def list_channels(self, timeout: float = 10.0) -> tuple[list[ChannelSnapshot], float]:
        """CoreShowChannels: the channels alive now, and the PBX time of the listing."""
        replies = await self.send({"Action": "CoreShowChannels"}, timeout, as_list=True)
        if not isinstance(replies, list):
            replies = [replies]
        snapshot: list[ChannelSnapshot] = []
        taken_at = self._clock()
        for reply in replies:
            if not isinstance(reply, Message):
                continue
            if reply.get("Response", "").lower() == "error":
                raise AmiActionFailed(str(reply.get("Message", "CoreShowChannels refused")))
            at = event_time(reply)
            if at is not None:
                taken_at = at
            if reply.get("Event") == "CoreShowChannel":
                try:
                    parsed = parse_event(reply, at if at is not None else taken_at)
                except MalformedEvent as exc:
                    log.warning("ami_snapshot_line_skipped", pbx=self.pbx.name, error=str(exc))
                    continue
                if isinstance(parsed, ChannelSnapshot):
                    snapshot.append(parsed)
        return snapshot, taken_at

    # --- panoramisk callbacks ----------------------------------------------------------------

    def _dispatch(self, _manager: Manager, message: Message) -> None:
        """Every event passes here. Nothing raised below may reach panoramisk (it would drop the link)."""
        try:
            self.events_received += 1
            at = event_time(message)
            event = parse_event(message, self._clock() if at is None else at)
            if event is None:
                return
            if isinstance(event, FullyBooted):
                self._begin_session()
            elif at is None and not self._warned_no_timestamp:
                self._warned_no_timestamp = True
                log.error(
                    "ami_events_without_timestamp",
                    pbx=self.pbx.name,
                    hint="set timestampevents = yes in manager.conf; call times now use receive time",
                )
            self._on_event(event)
        except MalformedEvent as exc:
            log.warning("ami_event_malformed", pbx=self.pbx.name, error=str(exc))
        except Exception:
            log.exception(
                "ami_event_handler_failed", pbx=self.pbx.name, ami_event=str(message.get("Event"))[:64]
            )

    def _connected(self) -> None:
        log.info("ami_connected", pbx=self.pbx.name)
        self._warned_no_timestamp = False
        loop = asyncio.get_running_loop()
        self._login_deadline = loop.call_later(self.pbx.login_timeout_seconds, self._login_timed_out)
        future = self._manager.authenticated_future
        if future is not None:
            future.add_done_callback(self._login_answered)

    def _login_answered(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        reply = future.result()
        if getattr(reply, "success", False):
            self._begin_session()
        else:
            log.error("ami_login_failed", pbx=self.pbx.name, message=str(reply.get("Message", ""))[:200])
            self._drop_link()

    def _login_timed_out(self) -> None:
        self._login_deadline = None
        if not self._session_ready:
            log.error("ami_login_timeout", pbx=self.pbx.name, seconds=self.pbx.login_timeout_seconds)
            self._drop_link()

    def _begin_session(self) -> None:
        if self._session_ready:
            return
        self._session_ready = True
        self._cancel_login_deadline()
        self._backoff = self.pbx.reconnect_initial_seconds
        self.sessions += 1
        log.info("ami_session_started", pbx=self.pbx.name, session=self.sessions)
        self._signal()
        self._session_task = self._spawn(self._run_session_start())

    async def _run_session_start(self) -> None:
        try:
            await self._on_session()
        except AmiUnavailable as exc:
            log.warning("ami_session_start_incomplete", pbx=self.pbx.name, error=str(exc))
        except Exception:
            log.exception("ami_session_start_failed", pbx=self.pbx.name)

    def _connect_failed(self, error: BaseException | None) -> None:
        log.warning(
            "ami_connect_failed",
            pbx=self.pbx.name,
            error=str(error),
            retry_in_seconds=round(self._backoff, 2),
        )
        self._schedule_reconnect()

    def _lost(self, exc: BaseException | None) -> None:
        was_ready = self._session_ready
        self._session_ready = False
        self._cancel_login_deadline()
        self._fail_in_flight()
        self.disconnects += 1
        log.warning(
            "ami_connection_lost",
            pbx=self.pbx.name,
            error=str(exc) if exc else None,
            had_session=was_ready,
            retry_in_seconds=None if self.is_closing else round(self._backoff, 2),
        )
        try:
            self._on_lost()
        except Exception:
            log.exception("ami_lost_handler_failed", pbx=self.pbx.name)
        self._signal()
        self._schedule_reconnect()

    # --- internals ------------------------------------------------------------------------

    def _schedule_reconnect(self) -> None:
        if self.is_closing:
            return
        delay = self._backoff
        self._backoff = min(self._backoff * 2, self.pbx.reconnect_max_seconds)
        self._reconnect = asyncio.get_running_loop().call_later(delay, self._reconnect_now)

    def _reconnect_now(self) -> None:
        self._reconnect = None
        if not self.is_closing:
            self._manager.connect()

    def _drop_link(self) -> None:
        protocol = self._manager.protocol
        if protocol is not None and getattr(protocol, "transport", None) is not None:
            protocol.transport.abort()

    def _fail_in_flight(self) -> None:
        for future in list(self._in_flight):
            if not future.done():
                future.set_exception(AmiUnavailable(f"connection to PBX {self.pbx.name} lost"))
        self._in_flight.clear()

    def _cancel_login_deadline(self) -> None:
        if self._login_deadline is not None:
            self._login_deadline.cancel()
            self._login_deadline = None

    async def _keep_alive(self) -> None:
        """A Ping every interval; no answer in time means the link is dead even if TCP has not noticed."""
        while True:
            await asyncio.sleep(self.pbx.ping_interval_seconds)
            if not self._session_ready:
                continue
            try:
                await self.send({"Action": "Ping"}, self.pbx.ping_timeout_seconds)
            except AmiUnavailable:
                if self._session_ready:
                    log.error("ami_ping_unanswered", pbx=self.pbx.name, timeout=self.pbx.ping_timeout_seconds)
                    self._drop_link()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _signal(self) -> None:
        self.state_changed.set()
        self.state_changed = asyncio.Event()
