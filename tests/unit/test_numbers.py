from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltracking.numbers import (
    Phone,
    is_e164,
    normalize_number,
    parse_phone,
    party_number,
    prefix_range,
    reversed_digits,
)
from tests.helpers.factories import make_call


@pytest.mark.parametrize(
    "raw",
    ["8 (916) 123-45-67", "+7 916 1234567", "9161234567", "007 916 123 45 67", "+79161234567", "89161234567"],
)
def test_russian_formats_are_one_number(raw: str) -> None:
    assert normalize_number(raw, "RU") == "+79161234567"


@pytest.mark.parametrize("raw", ["", "abc", "101", "+1", "1" * 40, "<unknown>", "anonymous"])
def test_not_a_phone_number(raw: str) -> None:
    assert normalize_number(raw, "RU") is None


def test_extensions_stay_extensions() -> None:
    assert party_number("101", "RU", is_extension=True) == "101"
    assert party_number("", "RU", is_extension=True) is None


NOISE = st.sampled_from([" ", "-", "(", ")", ".", "  "])


@given(
    subscriber=st.integers(min_value=0, max_value=9_999_999),
    area=st.sampled_from(["916", "903", "495", "812", "926"]),
    prefix=st.sampled_from(["+7", "8", "007", "7"]),
    noise=st.lists(NOISE, min_size=12, max_size=12),
)
def test_formatting_noise_never_changes_the_e164_result(
    subscriber: int, area: str, prefix: str, noise: list[str]
) -> None:
    digits = prefix + area + f"{subscriber:07d}"
    clean = normalize_number(digits, "RU")
    noisy = "".join(ch + noise[i % len(noise)] for i, ch in enumerate(digits))
    assert normalize_number(noisy, "RU") == clean
    if clean is not None:
        assert clean == f"+7{area}{subscriber:07d}"


# Russian mobile numbers: 9XX and seven digits. 930 is excluded because part of its range is unallocated
# (phonenumbers rightly calls those invalid), which is not what these properties are about.
MOBILE_CODES = st.integers(min_value=900, max_value=999).filter(lambda code: code != 930)
SUBSCRIBERS = st.integers(min_value=0, max_value=9_999_999)
SEPARATORS = st.sampled_from(["", "", " ", "-", ".", "(", ")", "  ", " - "])
EDGE_SPACE = st.sampled_from(["", " ", "  ", "\t", "\n", " \t "])


def _groups(code: int, subscriber: int) -> tuple[str, str, str, str]:
    local = f"{subscriber:07d}"
    return str(code), local[:3], local[3:5], local[5:]


# The ways people, CRMs and carriers write one Russian mobile number.
RENDERINGS = {
    "international spaced": lambda c, a, b, d: f"+7 {c} {a}-{b}-{d}",
    "trunk prefix with parentheses": lambda c, a, b, d: f"8 ({c}) {a}-{b}-{d}",
    "ten digits": lambda c, a, b, d: f"{c}{a}{b}{d}",
    "double zero": lambda c, a, b, d: f"007 {c} {a} {b} {d}",
    "international compact": lambda c, a, b, d: f"+7({c}){a}{b}{d}",
    "trunk prefix compact": lambda c, a, b, d: f"8{c}{a}{b}{d}",
    "dotted": lambda c, a, b, d: f"+7.{c}.{a}.{b}.{d}",
    "country code without plus": lambda c, a, b, d: f"7 {c} {a}{b}{d}",
}


@given(
    code=MOBILE_CODES,
    subscriber=SUBSCRIBERS,
    rendering=st.sampled_from(sorted(RENDERINGS)),
    before=EDGE_SPACE,
    after=EDGE_SPACE,
)
def test_every_usual_rendering_of_a_mobile_number_gives_its_e164(
    code: int, subscriber: int, rendering: str, before: str, after: str
) -> None:
    text = before + RENDERINGS[rendering](*_groups(code, subscriber)) + after
    assert normalize_number(text, "RU") == f"+7{code}{subscriber:07d}"


@given(
    code=MOBILE_CODES,
    subscriber=SUBSCRIBERS,
    prefix=st.sampled_from(["+7", "8", "007", "7", ""]),
    data=st.data(),
    before=EDGE_SPACE,
    after=EDGE_SPACE,
)
def test_separators_anywhere_between_the_digits_never_change_the_e164(
    code: int, subscriber: int, prefix: str, data: st.DataObject, before: str, after: str
) -> None:
    characters = prefix + f"{code}{subscriber:07d}"
    separators = data.draw(st.lists(SEPARATORS, min_size=len(characters), max_size=len(characters)))
    noisy = before + "".join(ch + sep for ch, sep in zip(characters, separators, strict=True)) + after
    assert normalize_number(noisy, "RU") == f"+7{code}{subscriber:07d}"


PHONE_LIKE = st.text(alphabet="0123456789+()-. \t", max_size=40)


@given(raw=st.one_of(st.text(max_size=60), PHONE_LIKE))
def test_normalizing_any_text_never_raises_and_gives_none_or_plus_digits(raw: str) -> None:
    result = normalize_number(raw, "RU")
    if result is not None:
        assert result.startswith("+")
        assert result[1:].isascii() and result[1:].isdigit()
        assert normalize_number(result, "RU") == result


@given(raw=st.one_of(st.text(max_size=60), PHONE_LIKE))
def test_parse_phone_keeps_the_text_of_an_invalid_number_and_flags_it(raw: str) -> None:
    phone = parse_phone(raw, "RU")
    if normalize_number(raw, "RU") is None:
        assert phone.raw == raw.strip()
        assert phone.e164 is None
        assert not phone.is_valid
        assert phone.digits_reversed == reversed_digits(raw.strip())
    else:
        assert phone.is_valid
        assert phone.e164 is not None
        assert phone.digits_reversed == phone.e164[:0:-1]


@pytest.mark.parametrize("raw", ["8 916 123-45-6", "+7 916", "12345", "n/a", "8 (800) 00"])
def test_an_invalid_crm_number_keeps_its_raw_text_and_its_digits(raw: str) -> None:
    phone = parse_phone(f"  {raw} ", "RU")
    assert (phone.raw, phone.e164, phone.is_valid) == (raw, None, False)
    assert phone.digits_reversed == "".join(c for c in reversed(raw) if c.isdigit())


def test_a_number_with_an_extension_is_its_main_number() -> None:
    assert parse_phone("8 916 123-45-67 ext. 12", "RU").e164 == "+79161234567"


def test_a_valid_number_is_kept_as_typed_and_matched_by_its_e164_digits() -> None:
    phone = parse_phone(" 8 (916) 123-45-67 ", "RU")
    assert phone == Phone(raw="8 (916) 123-45-67", e164="+79161234567", digits_reversed="76543216197")


DIGITS = st.text(alphabet="0123456789", max_size=12)


@st.composite
def strings_and_prefixes(draw: st.DrawFn) -> tuple[str, str]:
    """A digit string and a prefix that is often really its prefix, often one digit off, often anything."""
    s = draw(DIGITS)
    how = draw(st.sampled_from(["own", "changed", "any"]))
    if how == "any" or not s:
        return s, draw(DIGITS)
    p = s[: draw(st.integers(min_value=0, max_value=len(s)))]
    if how == "changed" and p:
        position = draw(st.integers(min_value=0, max_value=len(p) - 1))
        p = p[:position] + draw(st.sampled_from("0123456789")) + p[position + 1 :]
    return s, p


@given(pair=strings_and_prefixes())
def test_prefix_range_holds_exactly_the_strings_with_that_prefix(pair: tuple[str, str]) -> None:
    s, p = pair
    low, high = prefix_range(p)
    in_range = low <= s and (high is None or s < high)
    assert in_range == s.startswith(p)


@given(number=DIGITS, tail=DIGITS)
def test_reversed_digits_turn_ends_with_into_starts_with(number: str, tail: str) -> None:
    assert reversed_digits(number).startswith(reversed_digits(tail)) == number.endswith(tail)


@given(raw=st.text(max_size=40))
def test_reversed_digits_keep_only_the_digits_last_first(raw: str) -> None:
    digits = reversed_digits(raw)
    assert all(c.isdigit() for c in digits)
    assert digits == "".join(c for c in raw if c.isdigit())[::-1]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+79161234567", True),
        ("+1", True),
        ("101", False),
        ("+", False),
        ("+7916abc", False),
        ("+٧٩١٦", False),
        ("+1234567890123456", False),
        ("anonymous", False),
    ],
)
def test_only_e164_numbers_are_customers_numbers(number: str, expected: bool) -> None:
    assert is_e164(number) is expected
    assert make_call(caller_number=number).customer_number == (number if expected else None)
