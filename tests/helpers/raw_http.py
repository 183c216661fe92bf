"""HTTP as bytes on a socket, for requests no client library will send (non-UTF-8 headers, NUL bytes,
request lines over the server's limit)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def send_raw(host: str, port: int, request: bytes) -> RawResponse:
    """Send `request` as is (it should ask for `Connection: close`) and read the whole answer."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(30):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(status_line.split()[1]), headers, body)


def request_bytes(
    method: str, target: bytes, headers: dict[bytes, bytes], body: bytes = b"", http: bytes = b"HTTP/1.1"
) -> bytes:
    lines = [method.encode() + b" " + target + b" " + http, b"Host: localhost", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers.items()]
    if body:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
