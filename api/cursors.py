"""Page cursors: what `next_cursor` hands out and `cursor` takes back.

Each is plain text with a pattern the OpenAPI document states, and the pattern is exact: every text that
matches decodes to a typed position within range (a time Python and both databases hold, an id that fits
the 32-bit id columns), so nothing the document allows is refused, and nothing else is taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# Ids are 32-bit integer columns on PostgreSQL: a larger id names nothing.
MAX_ID = 2**31 - 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# The times a datetime holds, as microseconds from the epoch: years 1 to 9999, UTC.
EARLIEST_MICROS = (datetime.min.replace(tzinfo=UTC) - EPOCH) // _MICROSECOND
LATEST_MICROS = (datetime.max.replace(tzinfo=UTC) - EPOCH) // _MICROSECOND


def decimal_up_to(maximum: int) -> str:
    """A regular expression (ECMA-262 and Python alike) for the decimal numbers 0 to `maximum`, written
    without leading zeros."""
    digits = str(maximum)
    options = ["0"]
    if len(digits) > 1:
        options.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")  # every shorter number
    for position, digit in enumerate(map(int, digits)):
        lowest = 1 if position == 0 else 0
        if digit > lowest:  # the same length, smaller at this position, anything after it
            rest = len(digits) - position - 1
            smaller = str(lowest) if digit - 1 == lowest else f"[{lowest}-{digit - 1}]"
            tail = "" if rest == 0 else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"
            options.append(digits[:position] + smaller + tail)
    options.append(digits)
    return "(?:" + "|".join(dict.fromkeys(options)) + ")"


ID_CURSOR_PATTERN = f"^{decimal_up_to(MAX_ID)}$"
CALL_CURSOR_PATTERN = (
    f"^(?:-{decimal_up_to(-EARLIEST_MICROS)}|{decimal_up_to(LATEST_MICROS)})_{decimal_up_to(MAX_ID)}$"
)
_CALL_CURSOR = re.compile(CALL_CURSOR_PATTERN.removesuffix("$") + r"\Z")


class CursorInvalid(ValueError):
    """Text that is not a cursor of this kind."""


@dataclass(frozen=True, slots=True)
class CallCursor:
    """A position in the call history: the last call of a page, by start time then id. Written
    `<microseconds since 1970-01-01T00:00:00Z>_<id>`."""

    started_at: datetime
    call_id: int

    def encode(self) -> str:
        return f"{(self.started_at - EPOCH) // _MICROSECOND}_{self.call_id}"

    @classmethod
    def decode(cls, text: str) -> CallCursor:
        if _CALL_CURSOR.match(text) is None:
            raise CursorInvalid("not a call history cursor")
        micros, call_id = text.split("_")
        return cls(EPOCH + int(micros) * _MICROSECOND, int(call_id))
