"""A long AMI stream of overlapping calls made from real captures, and a peer that plays it across restarts.

Each call is a copy of a real capture (`inbound_single_answered`, `outbound_answered`, alternately) with
its own Uniqueids, Linkedid, channel names and bridge id, and its Timestamps shifted so that a new call
starts every `spacing` seconds of PBX time: at any point of the stream some thirty calls are in flight.
The copies' frames are merged in PBX time, as one Asterisk would send them. Recording announcements are
left out: the stream is about call records, and a thousand recording jobs would only add load.

`StreamPeer` is that Asterisk over TCP for a service that is killed and started again: every connection
answers CoreShowChannels with the channels alive at the point the stream resumes from (what a real PBX
would list there), then plays the frames from that point on, and stays connected at the end. It plays
them `speed` times faster than PBX time (about 150 calls a second at the default 40 and 0.25 s spacing):
a busy PBX, not a file dumped as fast as TCP goes, so the service ingests and writes to its database at
the same time, as it does in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ami.capture_peer import FRAME_END, PeerSession, frame, greeting_frames
from tests.helpers.captures import capture

SHAPES = ("inbound_single_answered", "outbound_answered")
LEFT_OUT_EVENTS = (b"Event: SuccessfulAuth\r\n", b"Event: MixMonitorStart\r\n")
LEFT_OUT_VARIABLES = (b"\r\nVariable: MIXMONITOR_FILENAME\r\n",)
UNIQUEID_KEYS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid")
CHANNEL_KEYS = ("Channel", "DestChannel")
STREAM_START = 1_800_000_000.0
BRIDGE_NAMESPACE = uuid.UUID("0d7f4a52-9a43-4c61-8d6b-6b0f3c1e2a90")
# The events after which CoreShowChannels would show a channel differently; the others leave it as it was.
CHANNEL_EVENTS = frozenset(
    {b"Newchannel", b"Newstate", b"Newexten", b"BridgeEnter", b"BridgeLeave", b"Hangup"}
)
CHANNEL_FIELDS = (
    "ChannelState",
    "ChannelStateDesc",
    "CallerIDNum",
    "CallerIDName",
    "ConnectedLineNum",
    "ConnectedLineName",
    "Language",
    "AccountCode",
    "Context",
    "Exten",
    "Priority",
)


@dataclass(frozen=True)
class _Shape:
    """One capture cut into frames, each a template: literal bytes, and the identities and the Timestamp
    (`float`) a copy rewrites."""

    frames: list[list[bytes | str | float]]
    times: list[float]
    uniqueids: list[str]
    channels: list[str]
    bridges: list[str]
    linkedid: str


@dataclass
class CallStream:
    frames: list[bytes]
    # pbx_call_id (the Linkedid) -> index of the frame whose Hangup ends the call.
    ends: dict[str, int]
    # (frame index, event name, fields) of the frames that change what CoreShowChannels would list.
    channel_updates: list[tuple[int, bytes, dict[str, str]]]
    times: list[float]

    @property
    def call_ids(self) -> set[str]:
        return set(self.ends)

    def channels_alive_at(self, position: int) -> list[dict[str, str]]:
        """CoreShowChannel items for the channels alive once the frames before `position` happened."""
        alive: dict[str, dict[str, str]] = {}
        for index, event, fields in self.channel_updates:
            if index >= position:
                break
            uniqueid = fields["Uniqueid"]
            if event == b"Hangup":
                alive.pop(uniqueid, None)
                continue
            if event == b"Newchannel":
                alive[uniqueid] = {
                    "Channel": fields["Channel"],
                    "BridgeId": "",
                    "_created": fields["Timestamp"],
                }
            channel = alive.get(uniqueid)
            if channel is None:
                continue
            channel.update({key: fields[key] for key in CHANNEL_FIELDS if key in fields})
            channel.update(Uniqueid=uniqueid, Linkedid=fields["Linkedid"])
            if event == b"Newexten":
                channel.update(
                    Application=fields.get("Application", ""), ApplicationData=fields.get("AppData", "")
                )
            elif event == b"BridgeEnter":
                channel["BridgeId"] = fields["BridgeUniqueid"]
            elif event == b"BridgeLeave":
                channel["BridgeId"] = ""
        now = self.time_at(position)
        listed = []
        for channel in alive.values():
            item = {key: value for key, value in channel.items() if not key.startswith("_")}
            item["Duration"] = _hhmmss(now - float(channel["_created"]))
            item["Timestamp"] = f"{now:.6f}"
            listed.append(item)
        return listed

    def tally(self, stored_ids: list[str]) -> dict[str, int]:
        """How the calls stored compare with the stream's: every call once is rows = distinct = the
        stream's calls, none lost, none unknown (`once_each`)."""
        stored = set(stored_ids)
        return {
            "rows": len(stored_ids),
            "distinct": len(stored),
            "lost": len(self.call_ids - stored),
            "unknown": len(stored - self.call_ids),
        }

    def time_at(self, position: int) -> float:
        return self.times[position - 1] if position > 0 else STREAM_START


def once_each(calls: int) -> dict[str, int]:
    """The `CallStream.tally` of a database holding each of `calls` calls exactly once."""
    return {"rows": calls, "distinct": calls, "lost": 0, "unknown": 0}


def build_call_stream(calls: int, spacing: float = 0.25) -> CallStream:
    shapes = [_shape(name) for name in SHAPES]
    counters = {"uniqueid": 0, "channel": 0}
    timed: list[tuple[float, int, int, bytes]] = []
    linkedids: list[str] = []
    for number in range(calls):
        shape = shapes[number % len(shapes)]
        start = STREAM_START + number * spacing
        names = _rename(shape, number, int(start), counters)
        linkedids.append(names[shape.linkedid].decode())
        shift = start - shape.times[0]
        for index, template in enumerate(shape.frames):
            rendered = b"".join(
                piece
                if isinstance(piece, bytes)
                else names[piece]
                if isinstance(piece, str)
                else b"%.6f" % (piece + shift)
                for piece in template
            )
            timed.append((shape.times[index] + shift, number, index, rendered))
    timed.sort()
    ends: dict[str, int] = {}
    updates: list[tuple[int, bytes, dict[str, str]]] = []
    for position, (_at, number, _index, raw) in enumerate(timed):
        event = raw[len(b"Event: ") : raw.index(b"\r\n")]
        if event not in CHANNEL_EVENTS:
            continue
        updates.append((position, event, _fields(raw)))
        if event == b"Hangup":
            ends[linkedids[number]] = position
    return CallStream(
        frames=[raw for *_, raw in timed], ends=ends, channel_updates=updates, times=[t[0] for t in timed]
    )


def _shape(name: str) -> _Shape:
    body = PeerSession.from_capture(capture(name)).body
    frames = [
        raw + FRAME_END
        for raw in body.split(FRAME_END)[:-1]
        if not raw.startswith(LEFT_OUT_EVENTS) and not any(v in raw for v in LEFT_OUT_VARIABLES)
    ]
    uniqueids: set[str] = set()
    channels: set[str] = set()
    bridges: set[str] = set()
    for raw in frames:
        fields = _fields(raw)
        uniqueids.update(fields[key] for key in UNIQUEID_KEYS if key in fields)
        channels.update(fields[key].split(";")[0] for key in CHANNEL_KEYS if key in fields)
        if "BridgeUniqueid" in fields:
            bridges.add(fields["BridgeUniqueid"])
    names = sorted(uniqueids | channels | bridges, key=len, reverse=True)
    identity = re.compile(
        r"(?<![0-9A-Za-z.])("
        + "|".join(map(re.escape, names))
        + r")(?![0-9A-Za-z])|^Timestamp: (\d+\.\d+)\r$",
        re.MULTILINE,
    )
    templates: list[list[bytes | str | float]] = []
    times: list[float] = []
    for raw in frames:
        text = raw.decode()
        template: list[bytes | str | float] = []
        done = 0
        for found in identity.finditer(text):
            if found.group(1):
                template += [text[done : found.start(1)].encode(), found.group(1)]
                done = found.end(1)
            else:
                template += [text[done : found.start(2)].encode(), float(found.group(2))]
                times.append(float(found.group(2)))
                done = found.end(2)
        template.append(text[done:].encode())
        templates.append(template)
    if len(times) != len(templates):
        raise ValueError(f"{name}: every frame after FullyBooted must carry one Timestamp")
    first = _fields(next(raw for raw in frames if raw.startswith(b"Event: Newchannel")))
    return _Shape(
        frames=templates,
        times=times,
        uniqueids=sorted(uniqueids),
        channels=sorted(channels),
        bridges=sorted(bridges),
        linkedid=first["Linkedid"],
    )


def _rename(shape: _Shape, number: int, epoch: int, counters: dict[str, int]) -> dict[str, bytes]:
    """Fresh identities for one copy, from counters shared by all copies (as Asterisk's own are)."""
    names: dict[str, bytes] = {}
    for uniqueid in sorted(shape.uniqueids, key=lambda u: int(u.partition(".")[2])):
        counters["uniqueid"] += 1
        names[uniqueid] = b"%d.%d" % (epoch, counters["uniqueid"])
    for channel in shape.channels:
        counters["channel"] += 1
        names[channel] = channel.rpartition("-")[0].encode() + b"-%08x" % counters["channel"]
    for bridge in shape.bridges:
        names[bridge] = str(uuid.uuid5(BRIDGE_NAMESPACE, f"{number}:{bridge}")).encode()
    return names


def _fields(raw: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in raw[: -len(FRAME_END)].decode().split("\r\n"):
        key, _, value = line.partition(": ")
        fields.setdefault(key, value)
    return fields


def _hhmmss(seconds: float) -> str:
    whole = max(int(seconds), 0)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


# --- the peer ------------------------------------------------------------------------------------


@dataclass
class StreamPeer:
    """Plays `stream` to one client at a time, each connection from `position` on (see `resume`)."""

    stream: CallStream
    speed: float = 40.0
    position: int = 0
    connections: int = 0
    # Awaited between the CoreShowChannels answer and the first frame of the body.
    _before_body: Callable[[], Awaitable[None]] | None = None
    _server: asyncio.Server | None = None
    # Cleared by `hold`: a new connection waits for the next `resume` before it is answered.
    _open: asyncio.Event = field(default_factory=asyncio.Event)
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("peer not started")
        return int(self._server.sockets[0].getsockname()[1])

    def resume(self, position: int, before_body: Callable[[], Awaitable[None]] | None = None) -> None:
        """The next connection lists the channels alive at `position`, awaits `before_body`, then plays
        the stream from there."""
        self.position = position
        self._before_body = before_body
        self._open.set()

    def hold(self) -> None:
        """Keep the next connection waiting (greeted by nothing) until `resume` says where it starts."""
        self._open.clear()

    async def start(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._writers):
            writer.transport.abort()
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=5.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        await self._open.wait()
        self.connections += 1
        position, before_body = self.position, self._before_body
        listed = asyncio.Event()
        reading = asyncio.create_task(self._answer(reader, writer, position, listed))
        try:
            writer.write(greeting_frames())
            await writer.drain()
            await _first_done(listed.wait(), reading)
            if before_body is not None:
                await _first_done(before_body(), reading)
            loop = asyncio.get_running_loop()
            began = loop.time()
            for start in range(position, len(self.stream.frames), 256):
                if reading.done():
                    return
                due = (self.stream.times[start] - self.stream.time_at(position)) / self.speed
                # Pacing, not synchronization: nothing waits on this but the next frames.
                await asyncio.sleep(max(due - (loop.time() - began), 0.0))
                writer.write(b"".join(self.stream.frames[start : start + 256]))
                await writer.drain()
            await reading
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reading
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, position: int, listed: asyncio.Event
    ) -> None:
        """Answer the client's actions until it hangs up: CoreShowChannels as Asterisk would at `position`."""
        buffer = b""
        while chunk := await reader.read(65536):
            buffer += chunk
            while FRAME_END in buffer:
                raw, buffer = buffer.split(FRAME_END, 1)
                action = _fields(raw + FRAME_END)
                name = action.get("Action", "").lower()
                action_id = action.get("ActionID", "")
                if name == "coreshowchannels":
                    writer.write(_channel_listing(action_id, self.stream.channels_alive_at(position)))
                    listed.set()
                elif name == "ping":
                    writer.write(frame({"Response": "Success", "ActionID": action_id, "Ping": "Pong"}))
                elif name != "login":
                    writer.write(
                        frame({"Response": "Error", "ActionID": action_id, "Message": "unsupported"})
                    )


def _channel_listing(action_id: str, channels: list[dict[str, str]]) -> bytes:
    start = {
        "Response": "Success",
        "ActionID": action_id,
        "EventList": "start",
        "Message": "Channels will follow",
    }
    items = [frame({"Event": "CoreShowChannel", "ActionID": action_id, **channel}) for channel in channels]
    complete = {
        "Event": "CoreShowChannelsComplete",
        "ActionID": action_id,
        "EventList": "Complete",
        "ListItems": str(len(items)),
    }
    return frame(start) + b"".join(items) + frame(complete)


async def _first_done(wanted: Awaitable[object], reading: asyncio.Task[None]) -> None:
    """Wait for `wanted`; if the client hangs up first, raise ConnectionError."""
    waiting = asyncio.ensure_future(wanted)
    try:
        await asyncio.wait([waiting, reading], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not waiting.done():
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
    if not waiting.done() or waiting.cancelled():
        raise ConnectionError("the client hung up")
    waiting.result()


@asynccontextmanager
async def running_stream_peer(stream: CallStream, speed: float = 40.0) -> AsyncIterator[StreamPeer]:
    peer = StreamPeer(stream, speed)
    await peer.start()
    try:
        yield peer
    finally:
        await peer.stop()
