"""An AMI peer on loopback that plays back raw captures, byte for byte, to a real AMI client.

It is how `calltracking replay` feeds a site's capture through the very code that listens to a live PBX,
and how the tests prove that code against real Asterisk traffic. Each connection plays the next
`PeerSession`: its greeting (banner, login response, FullyBooted), then, once the client has asked for
CoreShowChannels and been answered with the session's snapshot, the rest of the capture. Client actions
are answered between frames (Ping, CoreShowChannels; anything else gets an AMI error, or the session's
scripted reply).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger(__name__)

FRAME_END = b"\r\n\r\n"
SNAPSHOT_WAIT_SECONDS = 5.0
ActionReply = Callable[[Mapping[str, str]], list[bytes]]


@dataclass
class PeerSession:
    """What one connection gets: `greeting` first, then `body` after the snapshot exchange."""

    greeting: bytes
    body: bytes = b""
    snapshot: Sequence[Mapping[str, str]] = ()
    close_at_end: bool = True
    action_replies: dict[str, ActionReply] = field(default_factory=dict)
    # Actions (lower-case names) on which the peer drops the connection without answering.
    hang_up_on: frozenset[str] = frozenset()

    @classmethod
    def from_capture(cls, data: bytes, snapshot: Sequence[Mapping[str, str]] = ()) -> PeerSession:
        """Split a raw capture after its FullyBooted event; without one, all of it is greeting."""
        marker = data.find(b"Event: FullyBooted\r\n")
        if marker < 0:
            return cls(greeting=data, snapshot=snapshot)
        end = data.find(FRAME_END, marker)
        if end < 0:
            return cls(greeting=data, snapshot=snapshot)
        split = end + len(FRAME_END)
        return cls(greeting=data[:split], body=data[split:], snapshot=snapshot)


def greeting_frames(version: str = "11.0.0") -> bytes:
    """The start of a session from a PBX that logged us in, for sessions made up by tests."""
    return (
        f"Asterisk Call Manager/{version}\r\n".encode()
        + b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n"
        + b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 10\r\nLastReload: 10\r\n"
        + b"Status: Fully Booted\r\n\r\n"
    )


def frame(fields: Mapping[str, str]) -> bytes:
    return b"".join(f"{key}: {value}\r\n".encode() for key, value in fields.items()) + b"\r\n"


class CapturePeer:
    def __init__(self, sessions: Sequence[PeerSession], host: str = "127.0.0.1") -> None:
        self._sessions = list(sessions)
        self._host = host
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.actions: list[dict[str, str]] = []
        self.connections = 0
        self.finished = asyncio.Event()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("peer not started")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self._host, 0)
        return self.port

    async def stop(self) -> None:
        """Hang up on every client (closing the sockets lets each handler finish on its own)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        while self._handlers:
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.wait(list(self._handlers), timeout=5.0)

    def add_session(self, session: PeerSession) -> None:
        self._sessions.append(session)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._writers.add(writer)
        try:
            if not self._sessions:
                # Nothing left to play: behave like a PBX that is down (accept, then hang up).
                return
            session = self._sessions.pop(0)
            self.connections += 1
            await self._play(session, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Torn down with the event loop. Python 3.11's stream server reports a handler that ends
            # cancelled as an unhandled error, so end it normally: there is nobody left to tell.
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._handlers.discard(task)
            if not self._sessions:
                self.finished.set()

    async def _play(
        self, session: PeerSession, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        answered_snapshot = asyncio.Event()
        replies: asyncio.Queue[bytes] = asyncio.Queue()

        async def read_actions() -> None:
            buffer = b""
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                buffer += chunk
                while FRAME_END in buffer:
                    raw, buffer = buffer.split(FRAME_END, 1)
                    action = _parse_fields(raw)
                    self.actions.append(action)
                    name = action.get("action", "").lower()
                    if name in session.hang_up_on:
                        writer.transport.abort()
                        return
                    for reply in self._reply(session, name, action):
                        replies.put_nowait(reply)
                    if name == "coreshowchannels":
                        answered_snapshot.set()

        reading = asyncio.create_task(read_actions())
        snapshot_asked = asyncio.create_task(answered_snapshot.wait())
        try:
            writer.write(session.greeting)
            await writer.drain()
            if session.body or not session.close_at_end:
                await self._answer_until([snapshot_asked, reading], replies, writer, SNAPSHOT_WAIT_SECONDS)
                for chunk in _frame_batches(session.body):
                    writer.write(chunk)
                    if chunk.endswith(FRAME_END):
                        await self._flush(replies, writer)
            if not session.body or session.body.endswith(FRAME_END):
                await self._flush(replies, writer)
            if not session.close_at_end:
                await self._answer_until([reading], replies, writer)
        finally:
            for task in (reading, snapshot_asked):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @staticmethod
    async def _answer_until(
        stops: list[asyncio.Task[Any]],
        replies: asyncio.Queue[bytes],
        writer: asyncio.StreamWriter,
        timeout: float | None = None,
    ) -> None:
        """Answer actions as they arrive (no capture frame is in flight) until one of `stops` is done."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not any(stop.done() for stop in stops):
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            reply = asyncio.ensure_future(replies.get())
            await asyncio.wait([reply, *stops], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if reply.done():
                writer.write(reply.result())
                await writer.drain()
            else:
                reply.cancel()

    @staticmethod
    async def _flush(replies: asyncio.Queue[bytes], writer: asyncio.StreamWriter) -> None:
        # Give the client's pending actions a chance to arrive and be answered between frames.
        await asyncio.sleep(0)
        while not replies.empty():
            writer.write(replies.get_nowait())
        await writer.drain()

    def _reply(self, session: PeerSession, name: str, action: Mapping[str, str]) -> list[bytes]:
        action_id = action.get("actionid", "")
        scripted = session.action_replies.get(name)
        if scripted is not None:
            return scripted(action)
        if name == "login":
            return []  # the greeting carries the PBX's own answer to the Login
        if name == "ping":
            return [
                frame(
                    {
                        "Response": "Success",
                        "ActionID": action_id,
                        "Ping": "Pong",
                        "Timestamp": f"{time.time():.6f}",
                    }
                )
            ]
        if name == "coreshowchannels":
            items = [
                frame({"Event": "CoreShowChannel", "ActionID": action_id, **channel})
                for channel in session.snapshot
            ]
            return [
                frame(
                    {
                        "Response": "Success",
                        "ActionID": action_id,
                        "EventList": "start",
                        "Message": "Channels will follow",
                    }
                ),
                *items,
                frame(
                    {
                        "Event": "CoreShowChannelsComplete",
                        "ActionID": action_id,
                        "EventList": "Complete",
                        "ListItems": str(len(items)),
                    }
                ),
            ]
        return [frame({"Response": "Error", "ActionID": action_id, "Message": "Invalid/unknown command"})]


def _frame_batches(body: bytes, batch_bytes: int = 64 * 1024) -> list[bytes]:
    """Cut a capture into runs of whole frames of about `batch_bytes` (replies go between runs); a cut-off
    tail stays as the last piece."""
    pieces = []
    start = 0
    while start < len(body):
        end = body.find(FRAME_END, max(start, min(start + batch_bytes, len(body)) - len(FRAME_END)))
        if end < 0:
            pieces.append(body[start:])
            break
        pieces.append(body[start : end + len(FRAME_END)])
        start = end + len(FRAME_END)
    return pieces


def _parse_fields(raw: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip().lower(), value.strip())
    return fields
