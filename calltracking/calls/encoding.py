"""JSON for calls: lossless (the spool: what is written must read back as the same call), and a plain
public view for call webhooks queued without the API's payload (`serve`, the CLI and the API all use
`api.schemas.CallOut`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from calltracking.calls.record import (
    CallLeg,
    CallOrigin,
    CallRecord,
    CallStatus,
    Direction,
    LegKind,
    StoredCall,
)

_TIMES = ("started_at", "answered_at", "ended_at")
_LEG_TIMES = ("created_at", "answered_at", "ended_at")


def encode_call(call: CallRecord) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(call, name) for name in CallRecord.__slots__}
    for name in ("direction", "status", "origin"):
        data[name] = data[name].value
    for name in _TIMES:
        data[name] = _time(data[name])
    data["rang"] = list(call.rang)
    data["transferred_to"] = list(call.transferred_to)
    data["legs"] = [_encode_leg(leg) for leg in call.legs]
    return data


def decode_call(data: dict[str, Any]) -> CallRecord:
    values = dict(data)
    values["direction"] = Direction(values["direction"])
    values["status"] = CallStatus(values["status"])
    values["origin"] = CallOrigin(values["origin"])
    for name in _TIMES:
        values[name] = _parse_time(values[name])
    values["rang"] = tuple(values["rang"])
    values["transferred_to"] = tuple(values["transferred_to"])
    values["legs"] = tuple(_decode_leg(leg) for leg in values["legs"])
    return CallRecord(**values)


def _encode_leg(leg: CallLeg) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(leg, name) for name in CallLeg.__slots__}
    data["kind"] = leg.kind.value
    for name in _LEG_TIMES:
        data[name] = _time(data[name])
    return data


def _decode_leg(data: dict[str, Any]) -> CallLeg:
    values = dict(data)
    values["kind"] = LegKind(values["kind"])
    for name in _LEG_TIMES:
        values[name] = _parse_time(values[name])
    return CallLeg(**values)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def call_view(stored: StoredCall) -> dict[str, Any]:
    """The public shape of a call: the record's fields, times in ISO 8601 UTC, Asterisk's Linkedid under
    its own name, without the per-channel legs."""
    fields = encode_call(stored.call)
    del fields["legs"]
    return {"id": stored.id, "pbx": fields.pop("pbx"), "linkedid": fields.pop("pbx_call_id"), **fields}
