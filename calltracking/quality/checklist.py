"""The supervisor's checklist for a call, and the call's 0-100 score.

The checklist is a YAML file a supervisor edits (`checklist.example.yaml` shows every field): phrases a
side must say (a greeting with the company's name, the manager's own name, an offer, a next step,
goodbye), words it must not say, bounds on the metrics of `metrics.py`, and a weight for each. Reading
the file is the only I/O here; checking a transcript against it is pure, so stored transcripts can be
scored again whenever the file changes.

Phrases are matched word by word against each utterance of the side, after `normalize_text`, because
the words are what a recognizer gets wrong one at a time: "добрый ден компания ромашка" still greets,
"меня завут анна" still names herself. Two words match when their rapidfuzz similarity is high enough,
or when they share a stem (all but the last three letters, at least four), so Russian word forms match:
"договорились" for "договоримся", "предлагаю" for "предлагаем". Matching whole words keeps a short
word from vanishing inside a longer one: "не знаю" is not found in "да я знаю", where a character-level
partial match would find it. One extra word inside the phrase is allowed ("всего вам доброго"), and a
phrase the recognizer ran together ("досвидания") matches by its letters alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from rapidfuzz import fuzz

from calltracking.calls.transcript import Speaker, Transcript
from calltracking.errors import QualityConfigInvalid
from calltracking.quality.metrics import (
    DEFAULT_FILLERS,
    CallMetrics,
    MetricSettings,
    measure_call,
    normalize_text,
)

EXAMPLE_CHECKLIST = "checklist.example.yaml"
# A word's stem for matching word forms: all but its last letters (Russian endings are up to three).
STEM_ENDING = 3
STEM_MIN = 4

Metric = Literal[
    "manager_talk_share",
    "customer_talk_share",
    "silence_share",
    "longest_monologue_seconds",
    "overtalk_seconds",
    "manager_words_per_minute",
    "customer_words_per_minute",
    "manager_first_word_seconds",
    "manager_hesitations_per_minute",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PhraseItem(_Frozen):
    """A required phrase (or a forbidden one): any of its variants, said by `side`."""

    name: str = Field(min_length=1)
    side: Literal["manager", "customer"] = "manager"
    phrases: tuple[str, ...] = Field(min_length=1)
    weight: float = Field(ge=0)

    @field_validator("phrases", mode="before")
    @classmethod
    def _one_phrase_is_a_list_of_one(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("phrases")
    @classmethod
    def _phrases_have_words(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for phrase in value:
            if not normalize_text(phrase):
                raise ValueError(f"phrase {phrase!r} has no words")
        return value


class MetricBound(_Frozen):
    """A metric that passes within [min, max]; a metric the call has no value for (the manager never
    spoke) does not pass."""

    metric: Metric
    min: float | None = None
    max: float | None = None
    weight: float = Field(ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> MetricBound:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Checklist(_Frozen):
    # Lowest similarity (0-100) at which a phrase counts as said.
    match_threshold: float = Field(default=80.0, ge=0, le=100)
    silence_threshold_seconds: float = Field(default=2.0, gt=0)
    fillers: tuple[str, ...] = DEFAULT_FILLERS
    required: tuple[PhraseItem, ...] = ()
    forbidden: tuple[PhraseItem, ...] = ()
    thresholds: tuple[MetricBound, ...] = ()

    @model_validator(mode="after")
    def _something_to_score(self) -> Checklist:
        items: list[PhraseItem | MetricBound] = [*self.required, *self.forbidden, *self.thresholds]
        if sum(item.weight for item in items) <= 0:
            raise ValueError(
                "the weights of required, forbidden and thresholds add up to 0: nothing to score"
            )
        return self

    @property
    def metric_settings(self) -> MetricSettings:
        return MetricSettings(silence_threshold_seconds=self.silence_threshold_seconds, fillers=self.fillers)


@dataclass(frozen=True, slots=True)
class PhraseHit:
    """Where a phrase was said: the utterance's start and the words that matched."""

    phrase: str
    said_at: float
    text: str
    similarity: float


@dataclass(frozen=True, slots=True)
class PhraseCheck:
    """A required phrase passes when it has a hit; a forbidden one when it has none."""

    name: str
    side: Speaker
    weight: float
    hits: tuple[PhraseHit, ...]
    passed: bool


@dataclass(frozen=True, slots=True)
class BoundCheck:
    metric: str
    value: float | None
    weight: float
    passed: bool


@dataclass(frozen=True, slots=True)
class CallQuality:
    """One call against the checklist. `score` is the weight of what passed over the weight of
    everything, 0-100: a supervisor says what matters by its weight, and a checklist that grows does not
    change the scale."""

    metrics: CallMetrics
    required: tuple[PhraseCheck, ...]
    forbidden: tuple[PhraseCheck, ...]
    bounds: tuple[BoundCheck, ...]
    score: float


def parse_checklist(text: str, source: str = "checklist") -> Checklist:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise QualityConfigInvalid(f"{source} is not valid YAML: {_yaml_problem(exc)}") from exc
    if not isinstance(data, dict):
        raise QualityConfigInvalid(
            f"{source} must be a mapping of fields (required, forbidden, thresholds...)"
        )
    try:
        return Checklist.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(error['loc'])}: {error['msg']}" for error in exc.errors())
        raise QualityConfigInvalid(f"{source}: {problems}") from exc


def load_checklist(path: Path) -> Checklist:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QualityConfigInvalid(f"checklist {path} cannot be read: {exc}") from exc
    return parse_checklist(text, source=f"checklist {path}")


def example_checklist() -> Checklist:
    """The checklist shipped with the package: a Russian sales call."""
    text = resources.files("calltracking.quality").joinpath(EXAMPLE_CHECKLIST).read_text(encoding="utf-8")
    return parse_checklist(text, source=EXAMPLE_CHECKLIST)


@dataclass(frozen=True, slots=True)
class ChecklistInForce:
    """The checklist scores are counted against, and the sha256 of its file's bytes: stored with each
    score, so a report can tell scores of an older checklist (and `quality rescore` what it replaced)."""

    checklist: Checklist
    sha256: str
    source: str


def checklist_in_force(path: Path | None) -> ChecklistInForce:
    """The `[quality] checklist` file, or the shipped example when unset; `QualityConfigInvalid` names
    what is wrong with a bad file. Read once per process, at start."""
    if path is None:
        data = resources.files("calltracking.quality").joinpath(EXAMPLE_CHECKLIST).read_bytes()
        source = EXAMPLE_CHECKLIST
    else:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise QualityConfigInvalid(f"checklist {path} cannot be read: {exc}") from exc
        source = f"checklist {path}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise QualityConfigInvalid(f"{source} is not UTF-8 text: {exc}") from exc
    return ChecklistInForce(parse_checklist(text, source), hashlib.sha256(data).hexdigest(), source)


def score_call(transcript: Transcript, talk_seconds: float, checklist: Checklist) -> CallQuality:
    metrics = measure_call(transcript, talk_seconds, checklist.metric_settings)
    required = tuple(
        _check(transcript, item, checklist.match_threshold, is_required=True) for item in checklist.required
    )
    forbidden = tuple(
        _check(transcript, item, checklist.match_threshold, is_required=False) for item in checklist.forbidden
    )
    bounds = tuple(_bound(metrics, bound) for bound in checklist.thresholds)
    checks: list[PhraseCheck | BoundCheck] = [*required, *forbidden, *bounds]
    total = sum(check.weight for check in checks)
    passed = sum(check.weight for check in checks if check.passed)
    return CallQuality(
        metrics=metrics,
        required=required,
        forbidden=forbidden,
        bounds=bounds,
        score=round(100 * passed / total, 1),
    )


def match_phrase(phrase: str, text: str) -> tuple[float, str] | None:
    """The best match of `phrase` in `text`: its similarity (0-100) and the words of `text` it matched."""
    wanted = normalize_text(phrase).split()
    words = normalize_text(text).split()
    best: tuple[float, str] | None = None
    for size in (len(wanted) - 1, len(wanted), len(wanted) + 1):
        for start in range(len(words) - size + 1 if size > 0 else 0):
            window = words[start : start + size]
            similarity = _similarity(wanted, window)
            if best is None or similarity > best[0]:
                best = (similarity, " ".join(window))
    return best


def _similarity(wanted: Sequence[str], window: Sequence[str]) -> float:
    if len(window) == len(wanted):
        return _mean_word_similarity(wanted, window)
    best = 0.0
    if len(window) == len(wanted) + 1 and len(wanted) > 1:
        # One extra word inside the phrase ("всего вам доброго"): leave each inner word out in turn.
        best = max(
            _mean_word_similarity(wanted, [*window[:skip], *window[skip + 1 :]])
            for skip in range(1, len(window) - 1)
        )
    # A phrase the recognizer ran together or split ("досвидания") has the same letters, give or take
    # one; a word missing ("это ко мне" for "это не ко мне") has fewer, and must not match by its letters.
    wanted_letters, said_letters = "".join(wanted), "".join(window)
    if abs(len(wanted_letters) - len(said_letters)) <= 1:
        best = max(best, fuzz.ratio(wanted_letters, said_letters))
    return best


def _mean_word_similarity(wanted: Sequence[str], said: Sequence[str]) -> float:
    return sum(_word_similarity(w, s) for w, s in zip(wanted, said, strict=True)) / len(wanted)


def _word_similarity(wanted: str, said: str) -> float:
    stem = max(STEM_MIN, len(wanted) - STEM_ENDING)
    same_stem = len(wanted) > STEM_MIN and len(said) >= stem and wanted[:stem] == said[:stem]
    return 100.0 if same_stem else fuzz.ratio(wanted, said)


def _check(transcript: Transcript, item: PhraseItem, threshold: float, *, is_required: bool) -> PhraseCheck:
    side = Speaker(item.side)
    hits: list[PhraseHit] = []
    for utterance in transcript.utterances:
        if utterance.speaker != side:
            continue
        text = utterance.text or " ".join(word.text for word in utterance.words)
        matches = [(match, phrase) for phrase in item.phrases if (match := match_phrase(phrase, text))]
        if not matches:
            continue
        (similarity, matched), phrase = max(matches, key=lambda m: m[0][0])
        if similarity >= threshold:
            hits.append(
                PhraseHit(
                    phrase=phrase, said_at=utterance.start, text=matched, similarity=round(similarity, 1)
                )
            )
    return PhraseCheck(
        name=item.name,
        side=side,
        weight=item.weight,
        hits=tuple(hits),
        passed=bool(hits) if is_required else not hits,
    )


def _bound(metrics: CallMetrics, bound: MetricBound) -> BoundCheck:
    value = _metric_value(metrics, bound.metric)
    passed = (
        value is not None
        and (bound.min is None or value >= bound.min)
        and (bound.max is None or value <= bound.max)
    )
    return BoundCheck(metric=bound.metric, value=value, weight=bound.weight, passed=passed)


def _metric_value(metrics: CallMetrics, metric: Metric) -> float | None:
    return metric_values(metrics)[metric]


def metric_values(metrics: CallMetrics) -> dict[str, float | None]:
    """The call's figures by the names a checklist's bounds (and the quality report) use."""
    monologue = metrics.longest_monologue
    return {
        "manager_talk_share": metrics.manager.talk_share,
        "customer_talk_share": metrics.customer.talk_share,
        "silence_share": metrics.silence_share,
        "longest_monologue_seconds": monologue.seconds if monologue else 0.0,
        "overtalk_seconds": metrics.overtalk_seconds,
        "manager_words_per_minute": metrics.manager.words_per_minute,
        "customer_words_per_minute": metrics.customer.words_per_minute,
        "manager_first_word_seconds": metrics.manager_first_word_seconds,
        "manager_hesitations_per_minute": metrics.hesitations.per_minute,
    }


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the file is broken, in the supervisor's lines and columns, without the parser's stack."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return str(exc)


def _where(loc: tuple[int | str, ...]) -> str:
    """A pydantic location as a supervisor reads the file: `required[1].weight`."""
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "checklist"
