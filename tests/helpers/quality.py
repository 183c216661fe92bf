"""Constructed two-sided transcripts with known scores against the shipped example checklist, stored as
the transcription worker stores them: the transcript and its score in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallRecord
from calltracking.calls.repository import save_calls
from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from calltracking.quality.checklist import ChecklistInForce
from calltracking.quality.repository import score_transcript
from calltracking.store.tables import RecordingRow
from transcription.jobs import TranscriptionJob, save_transcript

NOW = datetime(2026, 11, 30, tzinfo=UTC)
M, C = Speaker.MANAGER, Speaker.CUSTOMER


def said(speaker: Speaker, start: float, end: float, text: str) -> Utterance:
    """An utterance whose words share its span evenly."""
    words = text.split()
    step = (end - start) / len(words)
    return Utterance(
        speaker,
        start,
        end,
        text,
        tuple(
            Word(w, round(start + i * step, 3), round(start + (i + 1) * step, 3), 1.0)
            for i, w in enumerate(words)
        ),
    )


# Every required phrase, nothing forbidden, manager 12.5 s of 19.5 s speaking (0.641), no hesitation:
# 100 with the example checklist, passed.
GOOD = Transcript(
    "ru",
    (
        said(M, 0.5, 4.0, "добрый день компания ромашка меня зовут анна"),
        said(C, 4.5, 8.0, "здравствуйте хочу узнать цену"),
        said(M, 8.5, 14.0, "мы предлагаем тариф за тысячу рублей"),
        said(C, 14.5, 18.0, "хорошо подходит"),
        said(M, 18.5, 22.0, "я отправлю договор всего доброго"),
    ),
)
# Only goodbye (10), "не знаю" said (loses 5, the other two forbidden keep 10), manager 3 s of 9.5 s
# (0.316, inside the band: 5), "ну" is 20 hesitations a minute (over 6): 25, failed.
BAD = Transcript(
    "ru",
    (
        said(C, 0.0, 3.0, "здравствуйте у вас есть доставка"),
        said(M, 3.5, 5.0, "ну не знаю"),
        said(C, 5.5, 9.0, "а кто знает"),
        said(M, 9.5, 11.0, "до свидания"),
    ),
)


async def store_scored(
    sessions: async_sessionmaker[AsyncSession],
    call: CallRecord,
    transcript: Transcript,
    checklist: ChecklistInForce,
    now: datetime = NOW,
) -> int:
    """The call, a stored recording, and its transcript with its score, as the worker writes them."""
    async with sessions.begin() as session:
        (call_id,) = await save_calls(session, [call])
        recording_id = (
            await session.execute(
                insert(RecordingRow)
                .values(
                    pbx=call.pbx,
                    pbx_call_id=call.pbx_call_id,
                    call_id=call_id,
                    state="ready",
                    attempts=1,
                    due_since=now,
                    next_attempt_at=now,
                    files={},
                    is_truncated=False,
                    created_at=now,
                    updated_at=now,
                )
                .returning(RecordingRow.id)
            )
        ).scalar_one()
        job = TranscriptionJob(0, recording_id, call_id, transcript.language, 0)
        await save_transcript(session, job, transcript, now)
        await score_transcript(session, call_id, transcript, checklist, now)
    return call_id
