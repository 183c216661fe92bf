"""Call-quality scores on both databases: a transcript stored with its score in one transaction (also by
the transcription worker), `quality rescore` after the checklist changed (transcripts untouched,
idempotent, `--since`), and a bad checklist stopping the command with one message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.app.cli import main
from calltracking.calls.recording import Recording
from calltracking.calls.transcript import Speaker, Transcript
from calltracking.quality.checklist import checklist_in_force
from calltracking.quality.repository import score_of
from calltracking.quality.service import rescore_transcripts
from calltracking.store.tables import TranscriptRow
from recordings.service import RecordingWorker
from recordings.storage import RecordingStore
from tests.helpers.audio_files import write_silence, write_wav
from tests.helpers.factories import make_call
from tests.helpers.quality import BAD, GOOD, store_scored
from tests.helpers.recording_stack import pbx_path, recording_stack
from transcription.jobs import get_transcript, queue_transcription
from transcription.worker import TranscriptionWorker

TRUNK_CHANNEL = "PJSIP/provider-00000001"

EXAMPLE = checklist_in_force(None)
# Says goodbye, offers a discount: both calls have only the first (50), neither passes.
NEW_CHECKLIST = """
required:
  - name: goodbye
    phrases: ["до свидания", "всего доброго"]
    weight: 10
  - name: discount
    phrases: ["скидка"]
    weight: 10
"""


async def transcripts(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[int, object, datetime]]:
    async with sessions() as session:
        rows = await session.execute(
            select(TranscriptRow.call_id, TranscriptRow.utterances, TranscriptRow.created_at).order_by(
                TranscriptRow.call_id
            )
        )
        return [tuple(row) for row in rows.all()]  # type: ignore[misc]


async def test_a_stored_transcript_is_scored_with_the_calls_manager_and_start(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    good = await store_scored(sessions, make_call(1, manager="101", talk_seconds=25.0), GOOD, EXAMPLE)
    bad = await store_scored(sessions, make_call(2, manager="102", talk_seconds=12.0), BAD, EXAMPLE)
    async with sessions() as session:
        good_score, bad_score = await score_of(session, good), await score_of(session, bad)
    assert good_score is not None and bad_score is not None
    assert (good_score.score, good_score.passed, good_score.manager) == (100.0, True, "101")
    assert (bad_score.score, bad_score.passed, bad_score.manager) == (25.0, False, "102")
    assert good_score.started_at == make_call(1).started_at
    assert good_score.checklist_sha256 == EXAMPLE.sha256
    assert good_score.metrics["manager_talk_share"] == 0.641
    assert bad_score.metrics["manager_hesitations_per_minute"] == 20.0
    assert bad_score.metrics["talk_seconds"] == 12.0
    said = {item["name"]: item["passed"] for item in bad_score.checklist["required"]}
    assert said == {"greeting": False, "own_name": False, "offer": False, "next_step": False, "goodbye": True}
    (dont_know,) = [item for item in bad_score.checklist["forbidden"] if item["name"] == "dont_know"]
    assert (dont_know["passed"], dont_know["hits"][0]["said_at"]) == (False, 3.5)


async def test_rescore_with_a_changed_checklist_changes_scores_not_transcripts(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    good = await store_scored(sessions, make_call(1), GOOD, EXAMPLE)
    bad = await store_scored(sessions, make_call(2), BAD, EXAMPLE)
    before = await transcripts(sessions)
    path = tmp_path / "checklist.yaml"
    path.write_text(NEW_CHECKLIST, encoding="utf-8")
    changed = checklist_in_force(path)

    later = datetime(2026, 12, 1, tzinfo=UTC)
    summary = await rescore_transcripts(sessions, changed, later, batch_size=1)
    assert (summary.transcripts, summary.changed, summary.batches) == (2, 2, 2)
    async with sessions() as session:
        scores = [await score_of(session, call_id) for call_id in (good, bad)]
        assert await get_transcript(session, good) == GOOD
    assert [(s.score, s.passed, s.checklist_sha256, s.scored_at) for s in scores if s] == [
        (50.0, False, changed.sha256, later),
        (50.0, False, changed.sha256, later),
    ]
    assert await transcripts(sessions) == before

    again = await rescore_transcripts(sessions, changed, later)
    assert (again.transcripts, again.changed, again.batches) == (2, 0, 1)


async def test_cli_rescore_since_a_date_prints_a_summary(
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await store_scored(
        sessions, make_call(1, started_at=datetime(2026, 10, 5, 12, tzinfo=UTC)), GOOD, EXAMPLE
    )
    late = await store_scored(
        sessions, make_call(2, started_at=datetime(2026, 11, 5, 12, tzinfo=UTC)), GOOD, EXAMPLE
    )
    checklist = tmp_path / "checklist.yaml"
    checklist.write_text(NEW_CHECKLIST, encoding="utf-8")
    config = tmp_path / "calltracking.toml"
    config.write_text(f'[quality]\nchecklist = "{checklist}"\n', encoding="utf-8")

    args = [
        "--config",
        str(config),
        "quality",
        "rescore",
        "--since",
        "2026-11-01",
        "--database",
        database_url,
    ]
    # The command runs its own event loop, as from a shell.
    assert await asyncio.to_thread(main, args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["transcripts"] == summary["changed"] == 1
    assert summary["checklist_sha256"] == checklist_in_force(checklist).sha256
    assert summary["since"] == "2026-11-01T00:00:00+00:00"
    async with sessions() as session:
        scores = {call_id: await score_of(session, call_id) for call_id in (1, late)}
    assert [s.score for s in scores.values() if s] == [100.0, 50.0]


async def test_a_bad_checklist_is_one_clear_error(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checklist = tmp_path / "checklist.yaml"
    checklist.write_text("required:\n  - name: greeting\n    weight: -1\n", encoding="utf-8")
    config = tmp_path / "calltracking.toml"
    config.write_text(f'[quality]\nchecklist = "{checklist}"\n', encoding="utf-8")
    args = ["--config", str(config), "quality", "rescore", "--database", database_url]
    assert await asyncio.to_thread(main, args) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"calltracking: checklist {checklist}: required[0]")
    assert error.count("\n") == 1


def test_unscored_transcripts_read_back_equal() -> None:
    assert Transcript.from_view(GOOD.view()) == GOOD


async def test_the_transcription_worker_scores_what_it_stores(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path)

    def queue(session: AsyncSession, recording: Recording, call_id: int, now: datetime) -> Awaitable[None]:
        return queue_transcription(session, recording.id, call_id, "ru", now)

    stack.worker = RecordingWorker(
        sessions, stack.settings.recordings, stack.settings.pbxs, clock=stack.clock, on_ready=[queue]
    )
    folder = stack.monitor / "2026/11/22"
    folder.mkdir(parents=True, exist_ok=True)
    write_wav(folder / "in-1-rx.wav", 2.0, frequency=440.0, amplitude=0.5)
    write_silence(folder / "in-1-tx.wav", 2.0)
    write_wav(folder / "in-1.wav", 2.0, frequency=440.0, amplitude=0.5)
    call_id = await stack.add_call(
        make_call(1, recording_file=pbx_path("2026/11/22/in-1.wav"), recording_channel=TRUNK_CHANNEL)
    )
    await stack.worker.process_due()

    def transcribe(files: Mapping[Speaker, Path], language: str) -> Transcript:
        return BAD

    worker = TranscriptionWorker(
        sessions, RecordingStore(stack.settings.recordings.storage_dir), transcribe, clock=stack.clock
    )
    assert await worker.run_once() == 1
    async with sessions() as session:
        score = await score_of(session, call_id)
    assert score is not None
    assert (score.score, score.passed, score.checklist_sha256) == (25.0, False, EXAMPLE.sha256)
