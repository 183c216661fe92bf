"""A loopback TCP proxy that can be cut or hung: a real outage of the database between the service and
PostgreSQL, either a server that is gone (connections refused and reset) or one that hangs (connections
accepted, nothing ever answered)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from pathlib import Path


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        # Cleared while the proxy hangs: bytes are taken in but neither forwarded nor answered.
        self._flowing = asyncio.Event()
        self._flowing.set()
        self.port = free_port()

    async def start(self) -> None:
        """Accept connections (again) on the same port, and forward everything (again)."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )
        self._flowing.set()

    async def hang(self) -> None:
        """Keep accepting connections but stop forwarding, both ways, on new and open connections alike:
        a server that is up at the TCP level and never answers. `start()` lets the held bytes through."""
        self._flowing.clear()
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, "127.0.0.1", self.port, reuse_address=True
            )

    async def cut(self) -> None:
        """Refuse new connections and break every open one, as a database host going down would."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        # Pumps held by a hang see their connections gone and end.
        self._flowing.set()
        if self._pipes:
            await asyncio.wait(list(self._pipes), timeout=5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        await self._flowing.wait()
        if self._server is None or writer.transport.is_closing():  # cut while held
            self._writers.discard(writer)
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            self._writers.discard(writer)
            writer.transport.abort()
            return
        if self._server is None:  # cut while connecting upstream
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()
            return
        self._writers.add(up_writer)
        pipes = [
            asyncio.create_task(_pump(reader, up_writer, self._flowing)),
            asyncio.create_task(_pump(up_reader, writer, self._flowing)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()
            for pipe in pipes:
                pipe.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pipe
                self._pipes.discard(pipe)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(65536):
            await flowing.wait()
            writer.write(data)
            await writer.drain()


def free_port() -> int:
    """A free port below the ephemeral range. While the proxy is cut, clients keep dialing its port; a port
    inside the ephemeral range can be handed to one of them as its own source port (TCP self-connect),
    and then the proxy cannot take its port back."""
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(max(1024, low - 10000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
