"""The AMI framing in front of panoramisk, fed bytes in chosen chunks (no socket needed to choose them)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from panoramisk.message import Message

from ami.events import is_worth_parsing
from ami.protocol import MAX_FRAME_BYTES, FramedAmiProtocol
from tests.helpers.captures import capture


class RecordingFactory:
    forgetable_actions = ()
    awaiting_actions: list[Any] = []

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def dispatch(self, message: Message) -> None:
        self.messages.append(message)

    def connection_lost(self, exc: object) -> None:
        pass


class NullTransport:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def protocol() -> tuple[FramedAmiProtocol, RecordingFactory]:
    proto = FramedAmiProtocol()
    proto.connection_made(NullTransport())
    factory = RecordingFactory()
    proto.factory = factory
    return proto, factory


def test_a_utf8_character_split_across_two_reads_is_decoded_whole() -> None:
    frame = "Event: Newchannel\r\nCallerIDName: \u0410\u043d\u043d\u0430\r\n\r\n".encode()
    split = frame.index(b"\xd0") + 1
    proto, factory = protocol()

    proto.data_received(frame[:split])
    proto.data_received(frame[split:])

    assert [m["CallerIDName"] for m in factory.messages] == ["\u0410\u043d\u043d\u0430"]


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_a_capture_fed_in_any_chunking_gives_the_same_events(chunk: int) -> None:
    data = capture("inbound_queue_answered")
    whole, whole_factory = protocol()
    whole.data_received(data)
    pieces, pieces_factory = protocol()
    for start in range(0, len(data), chunk):
        pieces.data_received(data[start : start + chunk])

    assert [dict(m.items()) for m in pieces_factory.messages] == [
        dict(m.items()) for m in whole_factory.messages
    ]
    assert whole.version == "11.0.0"
    wanted = [f for f in data.split(b"\r\n\r\n") if f.startswith(b"Event: ") and is_worth_parsing(f)]
    assert len(whole_factory.messages) == len(wanted)
    assert whole.ignored_frames == data.count(b"Event: ") - len(wanted) > 0


def test_an_endless_frame_is_dropped_without_holding_it_in_memory() -> None:
    proto, factory = protocol()
    proto.data_received(b"Event: Newchannel\r\nX: ")
    for _ in range(40):
        proto.data_received(b"A" * 65536)
    assert len(proto._buffer) <= MAX_FRAME_BYTES
    proto.data_received(b"\r\n\r\nEvent: FullyBooted\r\nStatus: ok\r\n\r\n")

    assert [m["Event"] for m in factory.messages] == ["FullyBooted"]
    assert proto.skipped_frames == 1


async def test_bytes_that_arrive_before_the_manager_attaches_are_not_lost() -> None:
    proto = FramedAmiProtocol()
    proto.connection_made(NullTransport())
    proto.data_received(
        b"Asterisk Call Manager/11.0.0\r\nResponse: Success\r\n\r\nEvent: FullyBooted\r\n\r\n"
    )
    factory = RecordingFactory()

    proto.factory = factory
    assert factory.messages == []  # framed on the next loop turn, once the Manager is set up
    await asyncio.sleep(0)

    assert [m["Event"] for m in factory.messages] == ["FullyBooted"]
