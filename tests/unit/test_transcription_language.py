"""Which language a call is transcribed in: its PBX's, else the default one, else none (not queued)."""

from __future__ import annotations

from typing import Any

from calltracking.config import Settings, load_settings
from transcription.service import call_language


def settings(**transcription: Any) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "pbxs": [{"name": "seoul", "language": "ko"}, {"name": "office"}],
            "tracking": {"dids": {"74951110009": {"language": "ko"}}},
            "transcription": {"models": {"ko": "/opt/vosk/ko", "ru": "/opt/vosk/ru"}, **transcription},
        },
    )


def test_a_pbx_with_a_language_has_its_calls_in_it() -> None:
    assert call_language(settings(default_language="ru"), "seoul") == "ko"


def test_a_did_with_a_language_has_its_calls_in_it_on_any_pbx() -> None:
    assert call_language(settings(default_language="ru"), "office", "+7 495 111-00-09") == "ko"
    assert call_language(settings(default_language="ru"), "office", "74951110001") == "ru"


def test_a_pbx_without_one_takes_the_default_language() -> None:
    assert call_language(settings(default_language="ru"), "office") == "ru"


def test_a_pbx_no_longer_configured_takes_the_default_language() -> None:
    assert call_language(settings(default_language="ru"), "closed-branch") == "ru"


def test_no_language_applies_without_a_default() -> None:
    assert call_language(settings(), "office") is None


def test_nothing_applies_when_no_model_is_configured() -> None:
    bare = load_settings(environ={}, overrides={"pbxs": [{"name": "office"}]})
    assert call_language(bare, "office") is None
