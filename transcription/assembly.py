"""From vosk's results to a transcript. Pure: no audio, no vosk, no clock.

vosk's recognizer answers each stretch of speech it closes (`Result()`, and `FinalResult()` at the
end) with JSON: `{"text": "...", "result": [{"word", "start", "end", "conf"}, ...]}` (the word list
only with `SetWords(True)`; a stretch of silence gives `{"text": ""}`). Each such result is one
utterance; the sides of a split recording are transcribed apart and merged here in time order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word

# Times are kept to the millisecond, confidences to three places: vosk prints six, which say nothing more.
TIME_PLACES = 3
CONFIDENCE_PLACES = 3
# When two utterances start at once, the customer's comes first (the caller spoke first).
_SPEAKER_ORDER = {Speaker.CUSTOMER: 0, Speaker.MANAGER: 1, Speaker.UNKNOWN: 2}


def words_of(result: Mapping[str, Any]) -> tuple[Word, ...]:
    """The words of one decoded vosk result, in the order vosk gave them."""
    return tuple(
        Word(
            text=str(item["word"]),
            start=round(float(item["start"]), TIME_PLACES),
            end=round(float(item["end"]), TIME_PLACES),
            confidence=round(float(item["conf"]), CONFIDENCE_PLACES),
        )
        for item in result.get("result", ())
    )


def utterance_of(speaker: Speaker, raw_result: str) -> Utterance | None:
    """One vosk result (its JSON text) as an utterance of `speaker`; None when it holds no words."""
    words = words_of(json.loads(raw_result))
    if not words:
        return None
    return Utterance(
        speaker=speaker,
        start=words[0].start,
        end=max(word.end for word in words),
        text=" ".join(word.text for word in words),
        words=words,
    )


def merge_sides(language: str, sides: Mapping[Speaker, Iterable[Utterance]]) -> Transcript:
    """Every side's utterances in one transcript, in the order they were started."""
    utterances = sorted(
        (utterance for side in sides.values() for utterance in side),
        key=lambda u: (u.start, u.end, _SPEAKER_ORDER[u.speaker]),
    )
    return Transcript(language=language, utterances=tuple(utterances))


def shifted(utterance: Utterance, seconds: float) -> Utterance:
    """`utterance` as heard `seconds` later: a recognizer started partway through a file times its words
    from its own start."""
    if not seconds:
        return utterance
    return replace(
        utterance,
        start=round(utterance.start + seconds, TIME_PLACES),
        end=round(utterance.end + seconds, TIME_PLACES),
        words=tuple(
            replace(
                word,
                start=round(word.start + seconds, TIME_PLACES),
                end=round(word.end + seconds, TIME_PLACES),
            )
            for word in utterance.words
        ),
    )
