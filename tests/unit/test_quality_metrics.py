"""Per-call quality metrics on constructed two-sided transcripts whose answers are worked out by hand."""

from __future__ import annotations

from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from calltracking.quality.metrics import (
    Hesitations,
    MetricSettings,
    Monologue,
    SideFigures,
    measure_call,
    normalize_text,
)

M, C = Speaker.MANAGER, Speaker.CUSTOMER


def said(speaker: Speaker, *words: tuple[str, float, float]) -> Utterance:
    """An utterance spanning its words, as the recognizer gives it."""
    return Utterance(
        speaker=speaker,
        start=words[0][1],
        end=words[-1][2],
        text=" ".join(text for text, _, _ in words),
        words=tuple(Word(text, start, end, 1.0) for text, start, end in words),
    )


def call(*utterances: Utterance) -> Transcript:
    return Transcript(language="ru", utterances=tuple(sorted(utterances, key=lambda u: u.start)))


def test_words_overlapping_by_half_a_second_are_half_a_second_of_overtalk() -> None:
    transcript = call(said(M, ("алло", 1.0, 2.0)), said(C, ("да", 1.5, 2.5)))

    assert measure_call(transcript, talk_seconds=3.0).overtalk_seconds == 0.5


def test_words_of_one_side_never_overtalk_each_other() -> None:
    # The recognizer's words of one side may touch or overlap; only the other side's words count.
    transcript = call(said(M, ("добрый", 0.0, 1.0), ("день", 0.8, 1.5)), said(C, ("да", 3.0, 3.5)))

    assert measure_call(transcript, talk_seconds=4.0).overtalk_seconds == 0.0


def test_a_four_second_gap_over_a_two_second_threshold_is_silence_and_a_one_second_gap_is_not() -> None:
    transcript = call(
        said(M, ("здравствуйте", 0.0, 1.0)),
        said(C, ("да", 5.0, 6.0)),  # 4 s after the manager's word: silence
        said(M, ("слушаю", 7.0, 8.0)),  # 1 s after: an ordinary pause
    )

    metrics = measure_call(
        transcript, talk_seconds=8.0, settings=MetricSettings(silence_threshold_seconds=2.0)
    )

    assert (metrics.silence_seconds, metrics.silence_share) == (4.0, 0.5)


def test_dead_air_before_the_first_word_is_silence_and_the_wait_for_the_manager() -> None:
    transcript = call(said(C, ("алло", 3.0, 4.0)), said(M, ("да", 5.5, 6.0), ("слушаю", 6.0, 10.0)))

    metrics = measure_call(transcript, talk_seconds=10.0)

    # 0-3 s nobody (over 2 s); 4-5.5 s is a 1.5 s pause.
    assert (metrics.silence_seconds, metrics.silence_share) == (3.0, 0.3)
    assert metrics.manager_first_word_seconds == 5.5


def test_a_manager_who_never_speaks_has_no_first_word_rate_or_hesitations() -> None:
    metrics = measure_call(call(said(C, ("алло", 0.0, 1.0), ("алло", 1.5, 2.0))), talk_seconds=5.0)

    assert metrics.manager_first_word_seconds is None
    assert metrics.manager == SideFigures(
        speaking_seconds=0.0, talk_share=0.0, words=0, words_per_minute=None
    )
    assert metrics.hesitations == Hesitations(fillers=0, repeats=0, per_minute=None)


def test_the_longest_monologue_ends_at_the_other_sides_word_and_at_a_long_pause() -> None:
    transcript = call(
        said(M, ("мы", 0.0, 1.0), ("работаем", 1.5, 2.5), ("давно", 3.0, 4.0)),  # 0-4 s: 4.0 s
        said(C, ("угу", 4.5, 5.0)),  # ends the manager's run
        said(M, ("и", 5.5, 6.5)),
        # 2.5 s pause, longer than the 2 s threshold: a new run (unbroken, 5.5-11.0 would be 5.5 s)
        said(M, ("вот", 9.0, 10.0), ("так", 10.5, 11.0)),
    )

    metrics = measure_call(
        transcript, talk_seconds=11.0, settings=MetricSettings(silence_threshold_seconds=2.0)
    )

    assert metrics.longest_monologue == Monologue(speaker=M, start=0.0, seconds=4.0)


def test_speech_rate_is_over_each_sides_own_speaking_time_and_talk_share_over_both() -> None:
    greeting = ("добрый", "день", "компания", "ромашка", "меня", "зовут", "анна")
    transcript = call(
        # 7 words over 0-3.5 s, the pauses between them included
        said(
            M, *((word, i * 0.5, i * 0.5 + 0.4) for i, word in enumerate(greeting[:-1])), ("анна", 3.0, 3.5)
        ),
        # 3 words over 4.0-6.0 s
        said(C, ("да", 4.0, 4.5), ("слушаю", 4.6, 5.5), ("вас", 5.6, 6.0)),
    )

    metrics = measure_call(transcript, talk_seconds=6.0)

    # 7 words / 3.5 s = 120 per minute; 3 / 2.0 s = 90; shares 3.5 / 5.5 and 2.0 / 5.5
    assert metrics.manager == SideFigures(
        speaking_seconds=3.5, talk_share=0.636, words=7, words_per_minute=120.0
    )
    assert metrics.customer == SideFigures(
        speaking_seconds=2.0, talk_share=0.364, words=3, words_per_minute=90.0
    )


def test_hesitations_count_the_managers_fillers_and_repeats_per_minute_of_his_speech() -> None:
    first = ["ну", "э", "я", "я", "думаю", "что", "как", "бы", "это", "вот", "хорошо"]
    transcript = call(
        # fillers: ну, э, как бы, вот (4); repeats: я я (1)
        said(
            M, *((word, i * 2.0, i * 2.0 + 1.0) for i, word in enumerate(first[:-1])), ("хорошо", 19.0, 20.0)
        ),
        # fillers: ну, ну (2, not a filler and a repeat); repeats: ёлки ёлки (1, punctuation and ё aside)
        said(M, ("Ну,", 20.0, 21.0), ("ну", 21.0, 22.0), ("Ёлки", 22.0, 23.0), ("ёлки!", 29.0, 30.0)),
        said(C, ("ну", 31.0, 31.5), ("э", 31.5, 32.0), ("да", 32.0, 32.5), ("да", 32.5, 33.0)),  # not his
    )

    metrics = measure_call(transcript, talk_seconds=33.0)

    # 6 fillers + 2 repeats over 30 s of the manager's speech: 16 per minute
    assert metrics.hesitations == Hesitations(fillers=6, repeats=2, per_minute=16.0)


def test_the_filler_list_is_configurable() -> None:
    transcript = call(said(M, ("типа", 0.0, 1.0), ("ну", 1.0, 2.0), ("значит", 2.0, 3.0), ("да", 3.0, 6.0)))

    metrics = measure_call(transcript, talk_seconds=6.0, settings=MetricSettings(fillers=("значит",)))

    # 1 filler over 6 s: 10 per minute
    assert metrics.hesitations == Hesitations(fillers=1, repeats=0, per_minute=10.0)


def test_a_mono_transcript_counts_for_silence_and_for_neither_side() -> None:
    mono = Transcript(
        language="ru",
        utterances=(Utterance(Speaker.UNKNOWN, 3.0, 5.0, "алло алло"),),
    )

    metrics = measure_call(mono, talk_seconds=10.0)

    # 0-3 s and 5-10 s nobody
    assert (metrics.silence_seconds, metrics.silence_share) == (8.0, 0.8)
    assert metrics.manager.talk_share is None
    assert metrics.longest_monologue is None


def test_text_is_normalized_to_lower_case_without_yo_or_punctuation() -> None:
    assert normalize_text("  Всё, ЁЖИК — «ёлки-палки»!  ") == "все ежик елки палки"
