"""What was said in a call: utterances per side with word timings. Pure; written by `transcription/`
(vosk), read by the quality reports (`calltracking/quality/`) and the API.

Times are seconds from the start of the recording. A split recording gives the customer's and the
manager's utterances; a mono one gives speaker `unknown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Speaker(StrEnum):
    CUSTOMER = "customer"
    MANAGER = "manager"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    start: float
    end: float
    # The recognizer's confidence, 0-1.
    confidence: float

    def view(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "confidence": self.confidence}


@dataclass(frozen=True, slots=True)
class Utterance:
    speaker: Speaker
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()

    def view(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker.value,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "words": [word.view() for word in self.words],
        }


@dataclass(frozen=True, slots=True)
class Transcript:
    """Utterances in time order, both sides interleaved."""

    language: str
    utterances: tuple[Utterance, ...]

    @property
    def text(self) -> str:
        return " ".join(utterance.text for utterance in self.utterances if utterance.text)

    def view(self) -> dict[str, Any]:
        return {"language": self.language, "utterances": [u.view() for u in self.utterances]}

    @classmethod
    def from_view(cls, data: dict[str, Any]) -> Transcript:
        """The inverse of `view`, for transcripts read back from the database."""
        return cls(
            language=str(data["language"]),
            utterances=tuple(
                Utterance(
                    speaker=Speaker(u["speaker"]),
                    start=float(u["start"]),
                    end=float(u["end"]),
                    text=str(u["text"]),
                    words=tuple(
                        Word(str(w["text"]), float(w["start"]), float(w["end"]), float(w["confidence"]))
                        for w in u["words"]
                    ),
                )
                for u in data["utterances"]
            ),
        )
