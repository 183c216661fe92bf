"""The API's edge, tried as a hostile client would: every input answered with a 4xx and the JSON error
body (never a 500, never a traceback in the log), idempotency keys that belong to one token, bulk counts
that add up, and a log that stays one JSON object per line whatever arrives on the socket."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from calltracking.config import LogSettings
from calltracking.logs import configure_logging
from tests.helpers.api import ApiHarness, running_api
from tests.helpers.raw_http import RawResponse, request_bytes, send_raw

ADMIN, INTEGRATION, MANAGER = "admin", "integration", "manager"
DEEP = 1000


@pytest.fixture
def log() -> Iterator[io.StringIO]:
    """Everything the service and its libraries log, as the operator would read it."""
    buffer = io.StringIO()
    configure_logging(LogSettings(level="info", format="json"), stream=buffer)
    yield buffer
    configure_logging(LogSettings(level="warning", format="json"))


@pytest.fixture
async def api(database_url: str, tmp_path: Path, log: io.StringIO) -> AsyncIterator[ApiHarness]:
    async with running_api(database_url, tmp_path, seed=False) as harness:
        yield harness


def log_records(log: io.StringIO) -> list[dict[str, Any]]:
    """Every line logged, each of which must be one JSON object."""
    return [json.loads(line) for line in log.getvalue().splitlines()]


def assert_no_server_error_logged(log: io.StringIO) -> None:
    records = log_records(log)
    assert [r for r in records if r["level"] in ("error", "critical") or "exception" in r] == []


async def raw(
    api: ApiHarness, method: str, target: bytes, headers: dict[bytes, bytes], body: bytes = b""
) -> RawResponse:
    server = api.client.server
    return await send_raw(
        str(server.host), int(server.port or 0), request_bytes(method, target, headers, body)
    )


def bearer(api: ApiHarness, role: str) -> dict[bytes, bytes]:
    return {b"Authorization": f"Bearer {api.tokens[role]}".encode()}


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("POST", "/api/v1/webhooks", INTEGRATION),
        ("POST", "/api/v1/calls/originate", INTEGRATION),
        ("POST", "/api/v1/duplicates/merge", INTEGRATION),
        ("PUT", "/api/v1/contacts", INTEGRATION),
        ("PUT", "/api/v1/deals/d-1", INTEGRATION),
        ("PUT", "/api/v1/calls/1/legal-hold", ADMIN),
    ],
)
async def test_json_nested_a_thousand_deep_is_refused_as_invalid(
    api: ApiHarness, log: io.StringIO, method: str, path: str, role: str
) -> None:
    bodies = [
        "[" * DEEP + "]" * DEEP,
        '{"items": [' + '{"a": ' * DEEP + "1" + "}" * DEEP + "]}",
        '{"a": "' + "[" * DEEP + '"}',  # brackets inside a string are text, not nesting
    ]
    answers = []
    for body in bodies:
        response = await api.client.request(
            method, path, data=body, headers={**api.auth(role), "Content-Type": "application/json"}
        )
        answers.append((response.status, (await response.json())["error"]["code"]))

    assert answers[:2] == [(422, "invalid_request")] * 2
    assert answers[2][0] in (404, 422)  # parsed, then refused by the model (or the call does not exist)
    assert_no_server_error_logged(log)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/contacts/c-1", b'{"external_id": "c-1", "name": "Ivan \\ud800"}'),
        ("/api/v1/contacts", b'{"items": [{"external_id": "c-1", "name": "\\udc00 Ivan"}]}'),
    ],
)
async def test_a_lone_surrogate_is_not_text(
    api: ApiHarness, log: io.StringIO, path: str, body: bytes
) -> None:
    response = await api.client.put(
        path, data=body, headers={**api.auth(INTEGRATION), "Content-Type": "application/json"}
    )

    assert (response.status, (await response.json())["error"]["code"]) == (422, "invalid_request")
    assert_no_server_error_logged(log)


@pytest.mark.parametrize(
    "cursor",
    [
        "1795349935000000_99999999999999999999",  # an id beyond int64
        "1795349935000000_2147483648",  # beyond the 32-bit id columns
        "-62135596800000001_1",  # a microsecond before year 1
        "253402300800000000_1",  # a microsecond after year 9999
        "01795349935000000_1",  # not as handed out
        base64.urlsafe_b64encode(json.dumps(["0001-01-01T00:00:00+14:00", 1]).encode()).decode(),
        "1795349935000000_1\n",
    ],
)
async def test_a_cursor_out_of_range_is_a_422(api: ApiHarness, log: io.StringIO, cursor: str) -> None:
    response = await api.client.get("/api/v1/calls", params={"cursor": cursor}, headers=api.auth(ADMIN))
    body = await response.json()

    assert (response.status, body["error"]["code"]) == (422, "invalid_request")
    assert body["error"]["details"][0]["location"] == ["query", "cursor"]
    assert_no_server_error_logged(log)


@pytest.mark.parametrize("path", ["/api/v1/callbacks", "/api/v1/leads"])
async def test_an_id_cursor_beyond_the_id_columns_is_a_422(api: ApiHarness, path: str) -> None:
    for cursor in ("2147483648", "99999999999999999999999"):
        response = await api.client.get(path, params={"cursor": cursor}, headers=api.auth(ADMIN))
        assert response.status == 422, cursor
    response = await api.client.get(path, params={"cursor": "2147483647"}, headers=api.auth(ADMIN))
    assert (response.status, (await response.json())["items"]) == (200, [])


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "-62135596800000000_0"},  # the earliest position there is
        {"cursor": "253402300799999999_2147483647", "sort": "started_at"},
        {"from": "0001-01-01T00:00:00+14:00"},  # before year 1 in UTC: from the beginning
        {"to": "9999-12-31T23:59:59-14:00"},  # after year 9999 in UTC: to the end
    ],
)
async def test_times_at_the_ends_of_the_range_are_answered(
    api: ApiHarness, log: io.StringIO, params: dict[str, str]
) -> None:
    response = await api.client.get("/api/v1/calls", params=params, headers=api.auth(ADMIN))

    assert (response.status, (await response.json())["items"]) == (200, [])
    assert_no_server_error_logged(log)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", b"/api/v1/calls/originate/%00"),
        ("GET", b"/api/v1/calls/originate/req%0A"),
        ("GET", b"/api/v1/contacts/c%001"),
        ("DELETE", b"/api/v1/leads/%00"),
        ("PUT", b"/api/v1/recordings/office/1795349935.0%00"),
        ("PUT", b"/api/v1/recordings/office/1795349935..0"),
        ("GET", b"/api/v1/calls/99999999999999999999"),
    ],
)
async def test_a_path_parameter_that_breaks_its_pattern_names_nothing(
    api: ApiHarness, log: io.StringIO, method: str, target: bytes
) -> None:
    body = b"audio" if method == "PUT" else b""
    response = await raw(api, method, target, bearer(api, ADMIN), body)

    assert (response.status, response.json()["error"]["code"]) == (404, "not_found")
    assert_no_server_error_logged(log)


@pytest.mark.parametrize(
    "headers",
    [
        {b"Idempotency-Key": b"\xff\xfe\xc3("},
        {b"Idempotency-Key": b"k\xe9y"},  # Latin-1, not UTF-8
        {b"X-Anything": b"\xc3\x28"},
    ],
)
async def test_a_header_that_is_not_text_is_a_400(
    api: ApiHarness, log: io.StringIO, headers: dict[bytes, bytes]
) -> None:
    body = json.dumps({"extension": "101", "number": "89161234567"}).encode()
    response = await raw(
        api,
        "POST",
        b"/api/v1/calls/originate",
        {**bearer(api, INTEGRATION), b"Content-Type": b"application/json", **headers},
        body,
    )

    assert (response.status, response.json()["error"]["code"]) == (400, "invalid_header")
    assert_no_server_error_logged(log)


async def test_an_idempotency_key_belongs_to_its_token(api: ApiHarness) -> None:
    async def place(role: str, number: str) -> tuple[int, str]:
        response = await api.client.post(
            "/api/v1/calls/originate",
            json={"extension": "101", "number": number},
            headers={**api.auth(role), "Idempotency-Key": "order-42"},
        )
        body = await response.json()
        # No PBX is connected here: the request is recorded, then answered 503 with its id.
        return response.status, (body.get("request_id") or body["error"]["details"]["request_id"])

    first_status, first = await place(INTEGRATION, "89161234567")
    other_status, other = await place(ADMIN, "89035550101")  # same key, another token, another call
    retry_status, retried = await place(INTEGRATION, "89161234567")

    assert (first_status, other_status) == (503, 503)
    assert other != first  # neither a conflict nor the first request's id
    assert retried == first and retry_status in (202, 503)


async def test_a_bulk_upsert_that_repeats_an_id_counts_every_item(api: ApiHarness) -> None:
    items = [
        {"external_id": "c-1", "name": "Ivan"},
        {"external_id": "c-1", "name": "Ivan Orlov"},
        {"external_id": "c-2"},
        {"external_id": "bad id"},
    ]
    response = await api.client.put("/api/v1/contacts", json={"items": items}, headers=api.auth(INTEGRATION))
    first = await response.json()
    response = await api.client.put("/api/v1/contacts", json={"items": items}, headers=api.auth(INTEGRATION))
    again = await response.json()

    counts = [(r["created"], r["updated"], r["rejected"]) for r in (first, again)]
    assert counts == [(2, 1, 1), (0, 3, 1)]
    named = await api.client.get("/api/v1/contacts/c-1", headers=api.auth(INTEGRATION))
    assert (await named.json())["name"] == "Ivan Orlov"  # the last one wins


@pytest.mark.parametrize(
    ("request_line", "headers"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1", b""),  # a request line over aiohttp's limit
        (b"GET /healthz HTTP/1.1", b"X-Long: " + b"b" * 9000 + b"\r\n"),  # a header over it
        (b"GET /healthz HTTP/1.1", b"X-Nul: a\x00b\r\n"),  # a NUL in a header
    ],
)
async def test_malformed_http_is_one_json_line_without_a_traceback(
    api: ApiHarness, log: io.StringIO, request_line: bytes, headers: bytes
) -> None:
    server = api.client.server
    request = request_line + b"\r\nHost: localhost\r\nConnection: close\r\n" + headers + b"\r\n"
    response = await send_raw(str(server.host), int(server.port or 0), request)

    assert response.status == 400
    records = log_records(log)  # every line parses as JSON
    malformed = [r for r in records if r["event"] == "http_request_malformed"]
    assert [(r["level"], r["logger"]) for r in malformed] == [("warning", "aiohttp.server")]
    assert "Traceback" not in log.getvalue()


def test_a_library_traceback_is_one_json_line(log: io.StringIO) -> None:
    try:
        raise RuntimeError("boom\nover two lines")
    except RuntimeError:
        logging.getLogger("asyncio").exception("Task exception was never retrieved")

    [line] = log.getvalue().splitlines()
    record = json.loads(line)
    assert (record["logger"], record["level"], record["event"]) == (
        "asyncio",
        "error",
        "Task exception was never retrieved",
    )
    assert "RuntimeError: boom" in record["exception"]
