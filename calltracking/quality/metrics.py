"""How a call sounded, measured from its two-sided transcript. Pure: a `Transcript` and the call's talk
time in, frozen figures out; no clock, no files, no database.

Times are seconds from the start of the recording, as in the transcript. Figures are rounded to the
millisecond: word timings are no finer, and rounded figures compare equal however they were summed.
Utterances of speaker `unknown` (a mono recording) count as speech for silence and nothing else: who
said them is not known, so they belong to neither side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from calltracking.calls.transcript import Speaker, Transcript, Utterance

DIGITS = 3

# Words a speaker fills a pause with instead of saying something: Russian and English. A filler of
# several words ("как бы") is matched as that sequence of words.
DEFAULT_FILLERS: tuple[str, ...] = ("э", "ээ", "эээ", "эм", "ну", "как бы", "типа", "вот", "uh", "um", "uhm")

_PUNCTUATION = re.compile(r"[^\w\s]|_")


@dataclass(frozen=True, slots=True)
class MetricSettings:
    # A pause longer than this, with nobody speaking, is silence; shorter ones are the ordinary pauses
    # of turn-taking and breathing. It also ends a monologue: a speaker who stops for this long has given
    # up the floor, whether or not the other side takes it.
    silence_threshold_seconds: float = 2.0
    fillers: tuple[str, ...] = DEFAULT_FILLERS


@dataclass(frozen=True, slots=True)
class SideFigures:
    """One side of the call.

    `speaking_seconds` is the time covered by the side's utterances (their union, so an utterance the
    recognizer split in two is not counted twice): an utterance spans the short pauses inside a phrase,
    which belong to speaking, where bare word times would leave them out and make everyone a fast talker.

    `talk_share` is the side's speaking time over both sides' speaking time, not over the call: a
    supervisor's band ("the manager talks 40-60%") then means the same on a call with a long hold as on
    one without; the hold shows in the silence share instead. None when neither side spoke.

    `words_per_minute` is over the side's own speaking time, not the call's, so listening does not make
    a speaker look slow. None when the side never spoke.
    """

    speaking_seconds: float
    talk_share: float | None
    words: int
    words_per_minute: float | None


@dataclass(frozen=True, slots=True)
class Monologue:
    """The longest stretch one side held the floor: from its first word to its last, with no word of the
    other side in between and no pause longer than the silence threshold. Any word of the other side
    ends it, a short "угу" included: that is the customer getting a word in."""

    speaker: Speaker
    start: float
    seconds: float


@dataclass(frozen=True, slots=True)
class Hesitations:
    """The manager's fillers and immediate repeats ("я я"), per minute of the manager's speaking time.

    Counted because hesitant speech costs sales: a manager whose conversion was far below the others'
    turned out to have a speech problem no other figure showed. A word that is a filler counts as a filler
    even when repeated ("ну ну" is two fillers, not a filler and a repeat), so nothing counts twice.
    `per_minute` is None when the manager never spoke.
    """

    fillers: int
    repeats: int
    per_minute: float | None


@dataclass(frozen=True, slots=True)
class CallMetrics:
    """One call's figures.

    `silence_seconds` adds up the gaps longer than the silence threshold in which no word was heard from
    anyone, over the call from the start of the recording to the end of the talk (or of the last word,
    if later): the dead air the customer sat through, including before the first and after the last word.
    `silence_share` is it over that length; None for a call of no length.

    `overtalk_seconds` is the time both sides' words overlap, from word times (utterance spans are too
    coarse: two utterances overlap whenever one side says "угу" during the other's phrase).

    `manager_first_word_seconds` is when the manager's first word started: how long the customer waited
    to hear someone after the recording began. None when the manager never spoke.
    """

    talk_seconds: float
    manager: SideFigures
    customer: SideFigures
    silence_seconds: float
    silence_share: float | None
    longest_monologue: Monologue | None
    overtalk_seconds: float
    manager_first_word_seconds: float | None
    hesitations: Hesitations


def normalize_text(text: str) -> str:
    """Lower case, ё as е, punctuation gone, single spaces: how recognizers and people differ least."""
    text = text.lower().replace("ё", "е")
    return " ".join(_PUNCTUATION.sub(" ", text).split())


def measure_call(
    transcript: Transcript, talk_seconds: float, settings: MetricSettings | None = None
) -> CallMetrics:
    settings = settings or MetricSettings()
    manager_utterances = _of(transcript, Speaker.MANAGER)
    customer_utterances = _of(transcript, Speaker.CUSTOMER)
    manager_speaking = _length(_union(_spans(manager_utterances)))
    customer_speaking = _length(_union(_spans(customer_utterances)))

    heard = _union(_word_spans(transcript.utterances))
    call_end = max([talk_seconds, *(end for _, end in heard)])
    silence = _silence(heard, call_end, settings.silence_threshold_seconds)

    return CallMetrics(
        talk_seconds=talk_seconds,
        manager=_side(manager_utterances, manager_speaking, manager_speaking + customer_speaking),
        customer=_side(customer_utterances, customer_speaking, manager_speaking + customer_speaking),
        silence_seconds=round(silence, DIGITS),
        silence_share=round(silence / call_end, DIGITS) if call_end > 0 else None,
        longest_monologue=_longest_monologue(transcript, settings.silence_threshold_seconds),
        overtalk_seconds=round(
            _overlap(_union(_word_spans(manager_utterances)), _union(_word_spans(customer_utterances))),
            DIGITS,
        ),
        manager_first_word_seconds=_first_word(manager_utterances),
        hesitations=_hesitations(manager_utterances, manager_speaking, settings.fillers),
    )


Span = tuple[float, float]


def _of(transcript: Transcript, speaker: Speaker) -> list[Utterance]:
    return [u for u in transcript.utterances if u.speaker == speaker]


def _spans(utterances: Iterable[Utterance]) -> list[Span]:
    return [(u.start, u.end) for u in utterances if u.end > u.start]


def _word_spans(utterances: Iterable[Utterance]) -> list[Span]:
    """Each word's span; an utterance the recognizer gave no words for counts as one word."""
    spans: list[Span] = []
    for utterance in utterances:
        if utterance.words:
            spans.extend((w.start, w.end) for w in utterance.words if w.end > w.start)
        elif utterance.end > utterance.start:
            spans.append((utterance.start, utterance.end))
    return spans


def _union(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _length(spans: Sequence[Span]) -> float:
    return sum(end - start for start, end in spans)


def _overlap(first: Sequence[Span], second: Sequence[Span]) -> float:
    """Time covered by both lists of disjoint, sorted spans."""
    total, i, j = 0.0, 0, 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if end > start:
            total += end - start
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return total


def _silence(heard: Sequence[Span], call_end: float, threshold: float) -> float:
    total, previous_end = 0.0, 0.0
    for start, end in [*heard, (call_end, call_end)]:
        gap = start - previous_end
        if gap > threshold:
            total += gap
        previous_end = max(previous_end, end)
    return total


def _side(utterances: Sequence[Utterance], speaking: float, both_speaking: float) -> SideFigures:
    words = sum(_word_count(u) for u in utterances)
    return SideFigures(
        speaking_seconds=round(speaking, DIGITS),
        talk_share=round(speaking / both_speaking, DIGITS) if both_speaking > 0 else None,
        words=words,
        words_per_minute=round(words * 60 / speaking, DIGITS) if speaking > 0 else None,
    )


def _word_count(utterance: Utterance) -> int:
    return len(utterance.words) if utterance.words else len(normalize_text(utterance.text).split())


def _longest_monologue(transcript: Transcript, threshold: float) -> Monologue | None:
    words = sorted(
        (start, end, u.speaker)
        for u in transcript.utterances
        if u.speaker != Speaker.UNKNOWN
        for start, end in _word_spans([u])
    )
    longest: Monologue | None = None
    run: tuple[Speaker, float, float] | None = None
    for start, end, speaker in [*words, (float("inf"), float("inf"), Speaker.UNKNOWN)]:
        if run is not None and speaker == run[0] and start - run[2] <= threshold:
            run = (speaker, run[1], max(run[2], end))
            continue
        if run is not None and (longest is None or run[2] - run[1] > longest.seconds):
            longest = Monologue(speaker=run[0], start=run[1], seconds=round(run[2] - run[1], DIGITS))
        run = (speaker, start, end)
    return longest


def _first_word(utterances: Sequence[Utterance]) -> float | None:
    starts = [w.start for u in utterances for w in u.words] or [u.start for u in utterances]
    return round(min(starts), DIGITS) if starts else None


def _hesitations(utterances: Sequence[Utterance], speaking: float, fillers: Sequence[str]) -> Hesitations:
    filler_words = sorted({tuple(normalize_text(f).split()) for f in fillers} - {()}, key=len, reverse=True)
    filler_count = repeat_count = 0
    for utterance in utterances:
        tokens = normalize_text(" ".join(w.text for w in utterance.words) or utterance.text).split()
        i = 0
        while i < len(tokens):
            filler = next((f for f in filler_words if tuple(tokens[i : i + len(f)]) == f), None)
            if filler is not None:
                filler_count += 1
                i += len(filler)
                continue
            if i > 0 and tokens[i] == tokens[i - 1]:
                repeat_count += 1
            i += 1
    return Hesitations(
        fillers=filler_count,
        repeats=repeat_count,
        per_minute=round((filler_count + repeat_count) * 60 / speaking, DIGITS) if speaking > 0 else None,
    )
