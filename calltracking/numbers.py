"""Phone numbers: one customer, one string. `8 916 ...`, `+7 916 ...` and `9161234567` are the same number
for a PBX in Russia, so every comparison in the service is made on the E.164 form computed here."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

_NOISE = str.maketrans("", "", " ()-./\t")


@lru_cache(maxsize=65536)
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


def party_number(raw: str, default_country: str, is_extension: bool) -> str | None:
    """The comparable form of one side of a call: an extension stays an extension."""
    if is_extension:
        return raw or None
    return normalize_number(raw, default_country)
