from __future__ import annotations

import json

from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from transcription.assembly import merge_sides, utterance_of, words_of


def vosk_result(*words: tuple[str, float, float, float]) -> str:
    """A result as vosk prints it with SetWords(True)."""
    items = [{"conf": conf, "end": end, "start": start, "word": word} for word, start, end, conf in words]
    return json.dumps({"result": items, "text": " ".join(w[0] for w in words)}, indent=2)


def said(speaker: Speaker, start: float, end: float, text: str) -> Utterance:
    return Utterance(speaker, start, end, text, (Word(text, start, end, 1.0),))


def test_a_vosk_result_is_one_utterance_with_its_words_timed_to_the_millisecond() -> None:
    raw = vosk_result(("안녕", 0.127351, 0.81, 0.998765), ("하세요", 0.93, 1.2, 1.0))

    utterance = utterance_of(Speaker.CUSTOMER, raw)

    assert utterance == Utterance(
        speaker=Speaker.CUSTOMER,
        start=0.127,
        end=1.2,
        text="안녕 하세요",
        words=(Word("안녕", 0.127, 0.81, 0.999), Word("하세요", 0.93, 1.2, 1.0)),
    )


def test_a_result_of_silence_is_no_utterance() -> None:
    assert utterance_of(Speaker.MANAGER, '{\n  "text" : ""\n}') is None
    assert utterance_of(Speaker.MANAGER, json.dumps({"result": [], "text": ""})) is None


def test_words_keep_vosks_order() -> None:
    raw = json.loads(vosk_result(("a", 0.0, 0.1, 0.5), ("b", 0.1, 0.3, 0.25)))
    assert [w.text for w in words_of(raw)] == ["a", "b"]


def test_sides_merge_in_the_order_they_were_said() -> None:
    customer = [said(Speaker.CUSTOMER, 0.5, 2.0, "hello"), said(Speaker.CUSTOMER, 6.0, 7.0, "bye")]
    manager = [said(Speaker.MANAGER, 2.5, 5.0, "company"), said(Speaker.MANAGER, 6.0, 6.5, "thanks")]

    transcript = merge_sides("ru", {Speaker.MANAGER: manager, Speaker.CUSTOMER: customer})

    assert transcript == Transcript(
        language="ru", utterances=(customer[0], manager[0], manager[1], customer[1])
    )
    assert transcript.text == "hello company thanks bye"


def test_at_the_same_moment_the_customer_comes_first() -> None:
    customer = said(Speaker.CUSTOMER, 1.0, 2.0, "alo")
    manager = said(Speaker.MANAGER, 1.0, 2.0, "da")
    transcript = merge_sides("ru", {Speaker.MANAGER: [manager], Speaker.CUSTOMER: [customer]})
    assert transcript.utterances == (customer, manager)


def test_no_speech_is_an_empty_transcript() -> None:
    assert merge_sides("ko", {Speaker.UNKNOWN: []}) == Transcript(language="ko", utterances=())
