"""Webhook signing, retry schedule, events and the registration model: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.routes.webhooks import URL_PATTERN, WebhookIn
from calltracking.webhooks.subscription import (
    EVENT_TYPES,
    DeliveryStatus,
    WebhookDelivery,
    WebhookEvent,
    WebhookEventInvalid,
    encode_body,
    retry_delay,
    sign,
    signed_headers,
)

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_signature_matches_an_independent_hmac_sha256() -> None:
    # printf '%s' '1795349940.<body>' | openssl dgst -sha256 -hmac whsec-test
    body = b'{"id":"call.completed:office:1795349935.0","type":"call.completed"}'
    assert sign("whsec-test", 1795349940, body) == (
        "f70e40be26a0d8209fdedd8e0c26b3d733c1dac529a8acd5fcfaf648c8fb319a"
    )


def test_signature_changes_with_the_timestamp_the_body_and_the_secret() -> None:
    body = b'{"a":1}'
    signatures = {
        sign("secret", 1, body),
        sign("secret", 2, body),
        sign("secret", 1, b'{"a":2}'),
        sign("other", 1, body),
    }
    assert len(signatures) == 4


def test_headers_name_the_event_the_delivery_and_carry_the_signature() -> None:
    delivery = WebhookDelivery(
        id=42,
        webhook_id=1,
        event_id="lead.created:7",
        event_type="lead.created",
        payload={"id": "lead.created:7"},
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=AT,
        last_error=None,
        last_status_code=None,
        created_at=AT,
        delivered_at=None,
    )
    body = encode_body(delivery.payload)

    assert signed_headers(delivery, "k", 1795349940, body) == {
        "Content-Type": "application/json",
        "X-Calltracking-Event": "lead.created",
        "X-Calltracking-Delivery": "42",
        "X-Calltracking-Timestamp": "1795349940",
        "X-Calltracking-Signature": "sha256=" + sign("k", 1795349940, body),
    }


def test_retry_delays_grow_then_stay_at_the_cap() -> None:
    delays = [retry_delay(failed) for failed in range(1, 13)]

    assert delays[:6] == [
        timedelta(seconds=5),
        timedelta(seconds=30),
        timedelta(minutes=2),
        timedelta(minutes=10),
        timedelta(minutes=30),
        timedelta(hours=1),
    ]
    assert delays == sorted(delays)
    assert set(delays[8:]) == {timedelta(hours=6)}


def test_event_body_is_the_documented_document_in_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    event = WebhookEvent(
        "recording.ready:office:1.5", "recording.ready", datetime(2026, 11, 22, 15, 0, tzinfo=moscow)
    )

    assert event.body() == {
        "id": "recording.ready:office:1.5",
        "type": "recording.ready",
        "occurred_at": "2026-11-22T12:00:00+00:00",
        "data": {},
    }
    assert encode_body({"data": {"name": "Иван"}}) == '{"data":{"name":"Иван"}}'.encode()


@pytest.mark.parametrize(
    ("event_id", "event_type", "occurred_at"),
    [
        ("x:1", "call.exploded", AT),
        ("", "call.completed", AT),
        ("x" * 65, "call.completed", AT),
        ("x:1", "call.completed", datetime(2026, 11, 22, 12, 0)),
    ],
)
def test_an_event_that_cannot_be_delivered_is_refused(
    event_id: str, event_type: str, occurred_at: datetime
) -> None:
    with pytest.raises(WebhookEventInvalid):
        WebhookEvent(event_id, event_type, occurred_at)


def test_every_event_type_can_be_subscribed_to() -> None:
    assert len(EVENT_TYPES) == 7
    assert WebhookIn(url="https://crm.example/h", events=list(EVENT_TYPES)).events == list(EVENT_TYPES)


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example/hooks",
        "http://10.0.0.5:8080/calltracking?token=abc",
        "https://user:pass@crm.example/",
        "https://xn--e1afmkfd.xn--p1ai/%D1%85%D1%83%D0%BA",
        "http://crm_web:65535/#frag",
        "http://0",
    ],
)
def test_http_and_https_urls_are_accepted(url: str) -> None:
    assert WebhookIn(url=url, events=["call.completed"]).url == url


@pytest.mark.parametrize(
    "url",
    [
        "ftp://crm.example/",
        "file:///etc/passwd",
        "https//crm.example",
        "http://",
        "http:///path",
        "http://crm.example:99999/",
        "http://[::1/",
        "http://crm.example/a\tb",
        "http://crm.example/\x00",
        "HTTPS://crm.example/",
        "http://[::1]:8000/",
        "https://пример.рф/хук",
        "http://crm.example:65536/",
        "http://@crm.example/",
        "http://crm.example/\n",
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        WebhookIn(url=url, events=["call.completed"])


@pytest.mark.parametrize(
    "changes",
    [
        {"events": []},
        {"events": ["call.completed", "call.completed"]},
        {"events": ["call.*"]},
        {"description": "x" * 257},
        {"description": "lone \ud800 surrogate"},
        {"secret": "chosen-by-the-caller"},
    ],
)
def test_bad_registrations_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        WebhookIn.model_validate({"url": "https://crm.example/", "events": ["call.completed"], **changes})


def test_descriptions_are_made_storable_rather_than_refused() -> None:
    made = [
        WebhookIn(url="https://crm.example/", events=["lead.created"], description=text).description
        for text in ("a\x00b", "Сделки")
    ]
    assert made == ["ab", "Сделки"]


@settings(max_examples=300, deadline=None)
@given(st.from_regex(URL_PATTERN, fullmatch=True).filter(lambda url: len(url) <= 2048))
def test_every_url_the_documented_pattern_admits_is_accepted(url: str) -> None:
    assert WebhookIn(url=url, events=["call.completed"]).url == url
