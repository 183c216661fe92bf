"""The CRM hears about calls by webhook: a real captured call, a real receiver, signed deliveries."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from calltracking.webhooks.delivery import WebhookDeliverer
from calltracking.webhooks.subscription import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.helpers.listening import until
from tests.helpers.service_stack import originate_answered_by, stack
from tests.helpers.webhook_receiver import running_receiver


async def test_a_click_to_call_is_told_to_the_crm_as_ringing_answered_completed(
    database_url: str, tmp_path: Path
) -> None:
    session, _ = originate_answered_by("click_to_call")
    async with running_receiver() as receiver, stack(database_url, tmp_path, [session]) as s:
        await until(lambda: s.listener.connection.is_ready)
        headers = {"Authorization": f"Bearer {s.token}"}
        response = await s.client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url, "events": ["call.ringing", "call.answered", "call.completed"]},
            headers=headers,
        )
        assert response.status == 201
        secret = (await response.json())["secret"]

        await s.post({"extension": "101", "number": "89161234567", "request_id": "req-42"})
        await until(lambda: bool(s.history) and s.history[-1].call_id is not None)
        await s.hub.drain()
        async with WebhookDeliverer(s.sessions, poll_seconds=0.01) as deliverer:
            while await deliverer.deliver_due():
                pass
        received = await receiver.wait_for(3)

    # Deliveries carry no order guarantee (here the whole call took milliseconds): occurred_at orders them.
    bodies = sorted((request.json() for request in received), key=lambda body: body["occurred_at"])
    assert [body["type"] for body in bodies] == ["call.ringing", "call.answered", "call.completed"]
    assert bodies[0]["data"]["extension"] == "101" and bodies[0]["data"]["request_id"] == "req-42"
    completed = bodies[2]["data"]
    assert (completed["status"], completed["callee"], completed["request_id"]) == (
        "answered",
        "89161234567",
        "req-42",
    )
    for request in received:
        expected = hmac.new(
            secret.encode(), request.headers[TIMESTAMP_HEADER].encode() + b"." + request.body, hashlib.sha256
        ).hexdigest()
        assert request.headers[SIGNATURE_HEADER] == f"sha256={expected}"
