"""The supervisor's checklist: phrases found despite recognition errors, forbidden words with their time,
the score from the file's weights, and a bad file refused with what is wrong named."""

from __future__ import annotations

from pathlib import Path

import pytest

from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from calltracking.errors import QualityConfigInvalid
from calltracking.quality.checklist import (
    BoundCheck,
    PhraseHit,
    example_checklist,
    load_checklist,
    match_phrase,
    parse_checklist,
    score_call,
)

M, C = Speaker.MANAGER, Speaker.CUSTOMER


def said(speaker: Speaker, start: float, end: float, text: str) -> Utterance:
    """An utterance whose words share its time evenly."""
    words = text.split()
    step = (end - start) / len(words)
    return Utterance(
        speaker=speaker,
        start=start,
        end=end,
        text=text,
        words=tuple(Word(w, start + i * step, start + (i + 1) * step, 0.9) for i, w in enumerate(words)),
    )


def call(*utterances: Utterance) -> Transcript:
    return Transcript(language="ru", utterances=utterances)


SALES_CALL = call(
    said(M, 0.0, 3.0, "добрый ден компания ромашка"),  # "день" misheard
    said(C, 3.5, 4.5, "да здравствуйте"),
    said(M, 5.0, 7.0, "меня завут анна"),  # "зовут" misheard
    said(M, 8.0, 11.0, "мы можем предложить вам скидку"),
    said(C, 11.5, 12.5, "хорошо"),
    said(M, 13.0, 15.0, "тогда договорились я перезвоню завтра"),  # another form of "договоримся"
    said(C, 15.5, 16.0, "до свидания"),  # the customer's goodbye is not the manager's
    said(M, 16.5, 17.5, "всего вам доброго"),
)


def test_the_example_checklist_finds_every_required_phrase_despite_recognition_errors() -> None:
    quality = score_call(SALES_CALL, talk_seconds=18.0, checklist=example_checklist())

    hits = {check.name: check.hits for check in quality.required}
    assert hits == {
        "greeting": (PhraseHit("добрый день компания Ромашка", 0.0, "добрый ден компания ромашка", 96.4),),
        "own_name": (PhraseHit("меня зовут", 5.0, "меня завут", 90.0),),
        "offer": (PhraseHit("можем предложить", 8.0, "можем предложить", 100.0),),
        "next_step": (PhraseHit("договоримся", 13.0, "договорились", 100.0),),
        "goodbye": (PhraseHit("всего доброго", 16.5, "всего вам доброго", 100.0),),
    }
    assert all(check.passed for check in quality.required)
    assert [check.passed for check in quality.forbidden] == [True, True, True]


def test_forbidden_words_are_reported_with_when_the_manager_said_them() -> None:
    transcript = call(
        said(M, 20.0, 21.0, "я не знаю"),
        said(C, 25.0, 26.0, "не знаю"),  # the customer may not know
        said(M, 30.0, 32.0, "ну это не ко мне вопрос"),
        said(M, 40.0, 41.0, "да я знаю"),  # knowing is not "не знаю"
        said(M, 45.0, 46.0, "это ко мне"),
    )

    quality = score_call(transcript, talk_seconds=50.0, checklist=example_checklist())

    forbidden = {check.name: (check.passed, check.hits) for check in quality.forbidden}
    assert forbidden == {
        "dont_know": (False, (PhraseHit("не знаю", 20.0, "не знаю", 100.0),)),
        "cannot": (True, ()),
        "not_my_job": (False, (PhraseHit("это не ко мне", 30.0, "это не ко мне", 100.0),)),
    }


def test_the_score_is_the_weight_of_what_passed_over_the_weight_of_everything() -> None:
    checklist = parse_checklist(
        """
        required:
          - {name: greeting, phrases: ["добрый день"], weight: 30}
          - {name: goodbye, phrases: ["до свидания"], weight: 20}
        forbidden:
          - {name: dont_know, phrases: "не знаю", weight: 10}
        thresholds:
          - {metric: manager_talk_share, min: 0.4, max: 0.6, weight: 25}
          - {metric: manager_hesitations_per_minute, max: 5, weight: 15}
        """
    )
    transcript = call(
        said(M, 0.0, 2.0, "добрый день"),
        said(C, 2.5, 6.5, "здравствуйте я не знаю"),  # the customer's, not counted against the manager
        said(M, 7.0, 9.0, "ну хорошо"),
    )

    quality = score_call(transcript, talk_seconds=10.0, checklist=checklist)

    # passed: greeting 30, dont_know 10, talk share 4 s / 8 s = 0.5 (25); failed: goodbye 20,
    # hesitations 1 filler over 4 s = 15 per minute (15). 65 of 100.
    assert quality.bounds == (
        BoundCheck(metric="manager_talk_share", value=0.5, weight=25.0, passed=True),
        BoundCheck(metric="manager_hesitations_per_minute", value=15.0, weight=15.0, passed=False),
    )
    assert [(c.name, c.passed) for c in (*quality.required, *quality.forbidden)] == [
        ("greeting", True),
        ("goodbye", False),
        ("dont_know", True),
    ]
    assert quality.score == 65.0


def test_a_metric_the_call_has_no_value_for_does_not_pass() -> None:
    checklist = parse_checklist(
        "thresholds: [{metric: manager_first_word_seconds, max: 5, weight: 1}]\n"
        "required: [{name: greeting, phrases: [алло], side: customer, weight: 1}]"
    )

    quality = score_call(call(said(C, 0.0, 1.0, "алло")), talk_seconds=3.0, checklist=checklist)

    assert quality.bounds == (BoundCheck("manager_first_word_seconds", None, 1.0, False),)
    assert quality.score == 50.0


@pytest.mark.parametrize(
    ("phrase", "text", "expected"),
    [
        ("до свидания", "досвидания", (100.0, "досвидания")),  # run together by the recognizer
        ("не могу", "я немогу", (100.0, "немогу")),
        ("предлагаем", "мы предлагаю вам", (100.0, "предлагаю")),  # a word form
        ("отправлю", "я Отправлю, вам.", (100.0, "отправлю")),
    ],
)
def test_phrases_match_run_together_and_in_other_forms(
    phrase: str, text: str, expected: tuple[float, str]
) -> None:
    assert match_phrase(phrase, text) == expected


@pytest.mark.parametrize(
    ("phrase", "text"),
    [
        ("до свидания", "да"),  # a short answer is not found inside a longer phrase
        ("не могу", "немного"),
        ("не знаю", "да я знаю"),
        ("это не ко мне", "это ко мне"),
        ("это не ко мне", "это и ко мне"),
    ],
)
def test_a_missing_word_is_not_papered_over_by_fuzzy_letters(phrase: str, text: str) -> None:
    match = match_phrase(phrase, text)

    assert match is None or match[0] < 80


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("required: [", "is not valid YAML: line 1, column 12: expected the node content"),
        ("- greeting\n- goodbye\n", "must be a mapping"),
        ("required:\n  - {name: greeting, weight: 10}\n", r"required\[0\]\.phrases: Field required"),
        (
            "required:\n  - {name: a, phrases: [x], weight: 1}\n  - {name: b, phrases: [y], weight: -5}\n",
            r"required\[1\]\.weight: Input should be greater than or equal to 0",
        ),
        ("thresholds: [{metric: charm, max: 1, weight: 1}]\n", r"thresholds\[0\]\.metric: Input should be"),
        (
            "thresholds: [{metric: silence_share, weight: 1}]\n",
            r"thresholds\[0\]: Value error, give min, max",
        ),
        ("forbidden: [{name: x, phrases: ['!'], weight: 1}]\n", r"forbidden\[0\]\.phrases: Value error"),
        ("match_threshold: 120\nrequired: [{name: a, phrases: [x], weight: 1}]\n", "match_threshold: Input"),
        ("colour: red\nrequired: [{name: a, phrases: [x], weight: 1}]\n", "colour: Extra inputs"),
        ("required: [{name: a, phrases: [x], weight: 0}]\n", "add up to 0: nothing to score"),
    ],
)
def test_a_bad_checklist_is_one_error_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(QualityConfigInvalid, match=named):
        parse_checklist(text)


def test_a_checklist_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "checklist.yaml"

    with pytest.raises(QualityConfigInvalid, match=f"checklist {missing} cannot be read"):
        load_checklist(missing)


def test_a_checklist_file_is_read_and_its_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "checklist.yaml"
    path.write_text("required: [{name: hello, phrases: [алло], weight: 2}]\n", encoding="utf-8")
    bad = tmp_path / "bad.yaml"
    bad.write_text("required: [{name: hello, weight: 2}]\n", encoding="utf-8")

    assert [item.name for item in load_checklist(path).required] == ["hello"]
    with pytest.raises(QualityConfigInvalid, match=rf"checklist {bad}: required\[0\]\.phrases"):
        load_checklist(bad)
