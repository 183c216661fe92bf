"""The journal's JSON for a call: what is written reads back as the same call."""

from __future__ import annotations

import json

from calltracking.calls.encoding import decode_call, encode_call
from tests.helpers.factories import make_call


def test_queued_call_round_trips_with_its_queue_wait() -> None:
    call = make_call(queue="sales", queue_wait_seconds=7.993)

    decoded = decode_call(json.loads(json.dumps(encode_call(call))))

    assert decoded == call
    assert decoded.queue_wait_seconds == 7.993


def test_call_journaled_before_queue_waits_existed_reads_back_without_one() -> None:
    data = encode_call(make_call(queue="sales"))
    del data["queue_wait_seconds"]

    assert decode_call(data) == make_call(queue="sales")
