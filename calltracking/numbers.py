"""Phone numbers: one customer, one string. `8 916 ...`, `+7 916 ...` and `9161234567` are the same number
for a PBX in Russia, so every comparison in the service is made on the E.164 form computed here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

_NOISE = str.maketrans("", "", " ()-./\t")
# The last-digits fallback compares at least this many digits (CrmSettings.tail_digits >= 6), so phones are
# indexed by their last six: every candidate of any configured length shares them.
TAIL_KEY_DIGITS = 6
# Numbers normalised lately: a caller's raw forms within a call, repeat callers, extensions. Each call from
# a new customer added two entries, ~270 bytes with their strings (tracemalloc, bench/memory.py): 65,536 of
# them were ~9 MB held for good after ~33,000 such calls.
NORMALIZED_CACHE_SIZE = 4096


@lru_cache(maxsize=NORMALIZED_CACHE_SIZE)
def normalize_number(raw: str, default_country: str) -> str | None:
    """E.164 for a dialable number, None when the input is not a valid phone number.

    `00` as an international prefix is accepted everywhere (phonenumbers only knows each country's own
    prefix, e.g. 810 for Russia), because CRMs and carriers hand out `007 916 ...` forms. Cached: the
    same few thousand customers call again and again, and phonenumbers is the slow part of a call.
    """
    text = raw.strip().translate(_NOISE)
    if not text or len(text) > 32:
        return None
    if text.startswith("00") and text[2:].isdigit():
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, default_country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def is_e164(number: str) -> bool:
    """`+` and 1 to 15 digits: what `normalize_number` gives, and nothing an extension looks like."""
    return len(number) <= 16 and number[:1] == "+" and number[1:].isdigit() and number[1:].isascii()


def party_number(raw: str, default_country: str, is_extension: bool) -> str | None:
    """The comparable form of one side of a call: an extension stays an extension."""
    if is_extension:
        return raw or None
    return normalize_number(raw, default_country)


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number as the CRM gave it. An invalid one is kept (raw, flagged) and still matches calls
    by its last digits: CRMs hold numbers with extensions, typos and odd formats."""

    raw: str
    e164: str | None
    digits_reversed: str

    @property
    def tail_key(self) -> str:
        return self.digits_reversed[:TAIL_KEY_DIGITS]

    @property
    def is_valid(self) -> bool:
        return self.e164 is not None


def parse_phone(raw: str, default_country: str) -> Phone:
    text = raw.strip()
    e164 = normalize_number(text, default_country)
    return Phone(raw=text, e164=e164, digits_reversed=reversed_digits(e164 or text))


def reversed_digits(number: str) -> str:
    """`+7 916 123-45-67` -> `76543216197`: "ends with" becomes "starts with", an index range scan."""
    return "".join(c for c in reversed(number) if c.isdigit())


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """The half-open range [low, high) of digit strings that start with `prefix` (digits only), by
    incrementing its last digit that is not a 9; `high` is None when every digit is a 9."""
    stripped = prefix.rstrip("9")
    if not stripped:
        return prefix, None
    return prefix, stripped[:-1] + str(int(stripped[-1]) + 1)


def is_same_line(configured: str, dialed: str) -> bool:
    """Whether a number as the carrier delivers it (`74951110001`, `+7 495 111-00-01`) is one configured
    in another format: the same digits, or the same last ten (a national prefix added or dropped)."""
    ours = "".join(c for c in configured if c.isdigit())
    theirs = "".join(c for c in dialed if c.isdigit())
    if not ours or not theirs:
        return False
    return ours == theirs or (min(len(ours), len(theirs)) >= 10 and ours[-10:] == theirs[-10:])
