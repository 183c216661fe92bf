from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from calltracking.numbers import normalize_number, party_number


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
