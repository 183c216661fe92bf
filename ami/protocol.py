"""Framing of the AMI byte stream, hardened for hostile input, in front of panoramisk's message handling.

panoramisk's own framing decodes each TCP chunk separately (a UTF-8 character split across two reads is
lost), re-splits its whole buffer on every read (quadratic on a large frame), keeps an unterminated frame
in memory without limit, drops unparsable frames silently and lets an exception from a callback close
the connection. This subclass frames bytes itself, caps a frame's size, logs what it skips, and hands
every parsed message to panoramisk's `handle_message` (responses to actions, events to `dispatch`).
Events no parser wants are recognised from their first bytes and dropped before any decoding.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from ami.events import is_worth_parsing

log = structlog.get_logger(__name__)

FRAME_END = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
MAX_FRAME_BYTES = 256 * 1024
# After this many skipped frames on one connection, only every SKIP_LOG_EVERY-th is logged.
SKIP_LOG_FIRST = 20
SKIP_LOG_EVERY = 1000


class FramedAmiProtocol(AMIProtocol):  # type: ignore[misc]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._buffer = bytearray()
        self._discarding = False
        self._banner_seen = False
        self.skipped_frames = 0
        self.ignored_frames = 0
        super().connection_made(transport)

    @property
    def factory(self) -> Any:
        return getattr(self, "_factory", None)

    @factory.setter
    def factory(self, manager: Any) -> None:
        # A PBX may send its banner (a replayed capture: everything) the moment TCP connects, before
        # panoramisk's Manager has attached this protocol. Bytes wait until it has, then are framed on the
        # next loop turn, once the Manager has finished setting the connection up.
        self._factory = manager
        if manager is not None and getattr(self, "_buffer", None):
            asyncio.get_running_loop().call_soon(self._consume)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self.factory is not None:
            self._consume()

    def _consume(self) -> None:
        buffer = self._buffer
        start = 0
        if self._discarding:
            # Inside a frame already reported as too large: hunt for its end, keep nothing of it.
            end = buffer.find(FRAME_END)
            if end < 0:
                del buffer[: len(buffer) - (len(FRAME_END) - 1)]
                return
            start = end + len(FRAME_END)
            self._discarding = False
        elif not self._banner_seen:
            start = self._strip_banner(buffer)
        while True:
            end = buffer.find(FRAME_END, start)
            if end < 0:
                break
            self._handle_frame(bytes(buffer[start:end]))
            start = end + len(FRAME_END)
        if start:
            del buffer[:start]
        if len(buffer) > MAX_FRAME_BYTES:
            self._skip("frame_too_large", bytes(buffer[:80]), size=len(buffer))
            del buffer[: len(buffer) - (len(FRAME_END) - 1)]
            self._discarding = True

    def connection_lost(self, exc: Exception | None) -> None:
        if self.factory is None:
            # A connection that arrived after the listener was closed: nobody to tell.
            self.closed = True
            return
        super().connection_lost(exc)

    def _strip_banner(self, buffer: bytearray) -> int:
        line_end = buffer.find(b"\r\n")
        if line_end < 0:
            return 0
        self._banner_seen = True
        if not buffer.startswith(BANNER_PREFIX):
            return 0
        self.version = buffer[len(BANNER_PREFIX) : line_end].decode("ascii", "replace").strip()
        log.info("ami_banner", version=self.version)
        return line_end + 2

    def _handle_frame(self, frame: bytes) -> None:
        if len(frame) > MAX_FRAME_BYTES:
            self._skip("frame_too_large", frame[:80], size=len(frame))
            return
        if not is_worth_parsing(frame):
            self.ignored_frames += 1
            return
        text = frame.decode("utf-8", "replace").strip()
        if not text:
            return
        message = Message.from_line(text)
        if message is None:
            self._skip("frame_unparsable", frame[:80])
            return
        try:
            self.handle_message(message)
        except Exception:  # panoramisk's response matching can trip on odd frames; never drop the link
            log.exception("ami_frame_handling_failed", frame=frame[:200].decode("utf-8", "replace"))

    def _skip(self, reason: str, sample: bytes, **extra: Any) -> None:
        self.skipped_frames += 1
        count = self.skipped_frames
        if count <= SKIP_LOG_FIRST or count % SKIP_LOG_EVERY == 0:
            log.warning(
                "ami_frame_skipped",
                reason=reason,
                sample=sample.decode("utf-8", "replace"),
                skipped_so_far=count,
                **extra,
            )
