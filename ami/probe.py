"""One short AMI session that looks at a PBX the way `calltracking doctor` needs: can it be reached, does
it take our login, which actions may we send, which events reach us and whether they carry a Timestamp.

It speaks AMI over a plain asyncio stream, not through panoramisk, because the doctor wants the raw
frames: a Login refused with its message, the `Privilege` header of each event (the read class it was
sent under), the presence of `Timestamp`. Nothing here changes the PBX: it sends Login, ListCommands,
CoreShowChannels, PJSIPShowEndpoints and Logoff, and listens in between.

What real Asterisk does that shapes the checks (see `../shared/ami-traces/`, Asterisk 22):
- the FullyBooted sent right after a Login is written straight to the session, outside the event path,
  so it never has a Timestamp, even with `timestampevents = yes`: only events that went through the
  event path (Newchannel, Newexten, ...) tell whether timestamps are on;
- an action is allowed by the user's *write* classes (CoreShowChannels: system or reporting;
  Originate: originate), and ListCommands answers with every action the user may send;
- the events answering an action (CoreShowChannel items) come whatever the read classes; only
  spontaneous events are filtered by them. So the only proof that the read classes let call events
  through is a channel that appeared while we listened, with its Newchannel among what arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from ami.events import channel_endpoint
from calltracking.config import PbxSettings

BANNER_PREFIX = "Asterisk Call Manager/"
FRAME_END = b"\r\n\r\n"
MAX_FRAME_BYTES = 1024 * 1024

Frame = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class ObservedEvent:
    """A spontaneous event as it arrived: its name, the classes of its `Privilege` header, whether it
    carried a Timestamp."""

    name: str
    classes: frozenset[str]
    has_timestamp: bool


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """An action's answer: allowed or not, the PBX's message, and its list items (if a list action)."""

    is_allowed: bool
    message: str = ""
    items: tuple[Frame, ...] = ()


@dataclass(frozen=True, slots=True)
class PbxProbe:
    """What one session showed. `unreachable` / `login_refused` say why the rest is empty."""

    unreachable: str | None = None
    login_refused: str | None = None
    banner: str = ""
    allowed_actions: frozenset[str] | None = None
    channels_before: ActionOutcome | None = None
    channels_after: ActionOutcome | None = None
    endpoints: ActionOutcome | None = None
    events: tuple[ObservedEvent, ...] = ()
    listened_seconds: float = 0.0

    @property
    def new_channels(self) -> list[str]:
        """Channels up at the end of the listening window that were not up at its start."""
        if self.channels_before is None or self.channels_after is None:
            return []
        before = {item.get("Channel", "") for item in self.channels_before.items}
        return [
            name
            for item in self.channels_after.items
            if (name := item.get("Channel", "")) and name not in before
        ]

    @property
    def channel_endpoints(self) -> set[str]:
        """Endpoints of every channel seen up in either listing (`PJSIP/provider-0000001` -> provider)."""
        seen: set[str] = set()
        for outcome in (self.channels_before, self.channels_after):
            for item in outcome.items if outcome else ():
                seen.add(channel_endpoint(item.get("Channel", ""))[1])
        return seen - {""}


class _AmiStream:
    """Frames in, actions out, on one connection; spontaneous events are kept as they pass."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._ids = itertools.count(1)
        self.events: list[ObservedEvent] = []

    async def banner(self) -> str:
        line = await asyncio.wait_for(self._reader.readuntil(b"\r\n"), self._timeout)
        return line.decode("utf-8", "replace").strip()

    async def frame(self, timeout: float | None = None) -> dict[str, str]:
        raw = await asyncio.wait_for(self._reader.readuntil(FRAME_END), timeout or self._timeout)
        fields: dict[str, str] = {}
        for line in raw[: -len(FRAME_END)].decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
        return fields

    def _keep(self, fields: Mapping[str, str]) -> None:
        if "Event" in fields and "ActionID" not in fields:
            privilege = {part.strip() for part in fields.get("Privilege", "").split(",")}
            self.events.append(
                ObservedEvent(
                    name=fields["Event"],
                    classes=frozenset(privilege - {"", "all"}),
                    has_timestamp="Timestamp" in fields,
                )
            )

    async def send(self, action: str, **fields: str) -> ActionOutcome:
        """Send `action` and read until its answer (and, for a list, its last item)."""
        action_id = f"doctor-{next(self._ids)}"
        lines = [f"Action: {action}", f"ActionID: {action_id}", *(f"{k}: {v}" for k, v in fields.items())]
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self._writer.drain()
        response: dict[str, str] | None = None
        items: list[Frame] = []
        while True:
            fields_in = await self.frame()
            reply_id = fields_in.get("ActionID")
            if response is None and "Response" in fields_in and reply_id in (None, action_id):
                response = fields_in
                is_list = fields_in.get("EventList", "").lower() == "start"
                if fields_in["Response"].lower() != "success" or not is_list:
                    return ActionOutcome(
                        is_allowed=fields_in["Response"].lower() == "success",
                        message=fields_in.get("Message", ""),
                        items=(fields_in,),
                    )
                continue
            if reply_id == action_id and "Event" in fields_in:
                if fields_in.get("EventList", "").lower() == "complete":
                    return ActionOutcome(
                        is_allowed=True,
                        message=response.get("Message", "") if response else "",
                        items=tuple(items),
                    )
                items.append(fields_in)
                continue
            self._keep(fields_in)

    async def listen(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (remaining := deadline - loop.time()) > 0:
            try:
                self._keep(await self.frame(remaining))
            except TimeoutError:
                return


async def probe_pbx(pbx: PbxSettings, listen_seconds: float) -> PbxProbe:
    """Log in to `pbx`, ask what the doctor needs, listen `listen_seconds` for events, log off."""
    timeout = pbx.login_timeout_seconds
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(pbx.host, pbx.port, limit=MAX_FRAME_BYTES), timeout
        )
    except (OSError, TimeoutError) as exc:
        reason = (
            "no answer"
            if isinstance(exc, TimeoutError)
            else "connection refused (nothing listens there)"
            if isinstance(exc, ConnectionRefusedError)
            else exc.strerror or str(exc)
        )
        return PbxProbe(unreachable=f"cannot connect to {pbx.host}:{pbx.port}: {reason}")
    stream = _AmiStream(reader, writer, timeout)
    try:
        return await _session(stream, pbx, listen_seconds)
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        reason = "it stopped answering" if isinstance(exc, TimeoutError) else "it closed the connection"
        return PbxProbe(unreachable=f"{pbx.host}:{pbx.port} accepted the connection, then {reason}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _session(stream: _AmiStream, pbx: PbxSettings, listen_seconds: float) -> PbxProbe:
    banner = await stream.banner()
    if not banner.startswith(BANNER_PREFIX):
        return PbxProbe(unreachable=f"{pbx.host}:{pbx.port} is not Asterisk's AMI (it said {banner[:60]!r})")
    login = await stream.send("Login", Username=pbx.username, Secret=pbx.secret, Events="on")
    if not login.is_allowed:
        return PbxProbe(banner=banner, login_refused=login.message or "Authentication failed")
    commands = await stream.send("ListCommands")
    allowed = frozenset(key for key in commands.items[0] if key not in {"Response", "ActionID", "Message"})
    before = await stream.send("CoreShowChannels")
    endpoints = await stream.send("PJSIPShowEndpoints") if pbx.trunk_endpoints else None
    await stream.listen(listen_seconds)
    after = await stream.send("CoreShowChannels") if before.is_allowed else None
    with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
        await stream.send("Logoff")
    return PbxProbe(
        banner=banner,
        allowed_actions=allowed if commands.is_allowed else None,
        channels_before=before,
        channels_after=after,
        endpoints=endpoints,
        events=tuple(stream.events),
        listened_seconds=listen_seconds,
    )
