"""Transcripts once stored: read over HTTP (JSON, text, WebVTT) by those who may hear the recording, every
read audited; found by full-text search; announced by `transcript.ready` (Bitrix24's shape too); deleted
by retention with the audio, kept under a legal hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.status import ServiceStatus
from calltracking.calls.transcript import Speaker, Transcript, Utterance, Word
from calltracking.store.tables import AuditRow, WebhookDeliveryRow
from calltracking.webhooks.repository import create_webhook
from recordings.repository import set_legal_hold
from recordings.retention import apply_retention
from recordings.storage import RecordingStore
from tests.helpers.api import tokens_for_every_role
from tests.helpers.audio_files import write_wav
from tests.helpers.factories import T0, make_call
from tests.helpers.recording_stack import RecordingStack, pbx_path, recording_stack
from transcription.jobs import TranscriptionJob, get_transcript, save_transcript

LATER = T0 + timedelta(days=200)


def two_sided(language: str, customer: str, manager: str) -> Transcript:
    return Transcript(
        language=language,
        utterances=(
            Utterance(Speaker.MANAGER, 0.5, 2.25, manager, (Word(manager.split()[0], 0.5, 1.0, 0.9),)),
            Utterance(Speaker.CUSTOMER, 2.5, 4.0, customer, (Word(customer.split()[0], 2.5, 3.0, 0.8),)),
        ),
    )


TRANSCRIPTS = {
    # call n: (manager, transcript)
    1: ("101", two_sided("ru", "хочу заказать доставку", "Добрый день, компания Ромашка")),
    2: ("103", two_sided("ru", "звоню по поводу счёта", "Здравствуйте, бухгалтерия")),
    3: ("101", two_sided("en", "I would like a refund <now> & soon", "Hello, this is support")),
}


@dataclass
class Transcripts:
    client: TestClient[Any, Any]
    stack: RecordingStack
    tokens: dict[str, str]
    ids: dict[int, int]  # call n -> call id

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def get(self, n: int, who: str = "admin", accept: str | None = None) -> Any:
        headers = self.auth(who) | ({"Accept": accept} if accept else {})
        return await self.client.get(f"/api/v1/calls/{self.ids[n]}/transcript", headers=headers)

    async def search(self, text: str, who: str = "admin") -> tuple[int, set[int]]:
        response = await self.client.get("/api/v1/calls", params={"text": text}, headers=self.auth(who))
        body = await response.json()
        if response.status != 200:
            return response.status, set()
        by_id = {call_id: n for n, call_id in self.ids.items()}
        return 200, {by_id[item["id"]] for item in body["items"]}

    async def audited(self) -> list[tuple[str, str]]:
        async with self.stack.sessions() as session:
            rows = await session.execute(
                select(AuditRow.resource_id, AuditRow.action).where(AuditRow.action == "transcript.read")
            )
            return [(row.resource_id, row.action) for row in rows.all()]

    async def payloads(self) -> list[dict[str, Any]]:
        async with self.stack.sessions() as session:
            rows = await session.execute(
                select(WebhookDeliveryRow.payload).where(WebhookDeliveryRow.event_type == "transcript.ready")
            )
            return [row.payload for row in rows.all()]


async def store_transcript(stack: RecordingStack, call_id: int, transcript: Transcript) -> None:
    recording = await stack.recording(call_id)
    job = TranscriptionJob(id=0, recording_id=recording.id, call_id=call_id, language=None, attempts=0)
    async with stack.sessions.begin() as session:
        await save_transcript(session, job, transcript, stack.clock())


@pytest.fixture
async def transcripts(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> AsyncIterator[Transcripts]:
    stack = recording_stack(sessions, database_url, tmp_path, retention_days=180)
    async with sessions.begin() as session:
        await create_webhook(
            session,
            url="http://crm.invalid/hook",
            events=["transcript.ready"],
            secret="s",
            description=None,
            now=stack.clock(),
        )
    ids = {}
    for n in (1, 2, 3, 4):
        write_wav(stack.monitor / f"call-{n}.wav", 1.0, frequency=300.0 + 100 * n)
        manager = TRANSCRIPTS[n][0] if n in TRANSCRIPTS else "101"
        started = {3: LATER - timedelta(days=1)}.get(n, T0 + timedelta(minutes=n))
        ids[n] = await stack.add_call(
            make_call(n, recording_file=pbx_path(f"call-{n}.wav"), manager=manager, started_at=started)
        )
    ids[5] = await stack.add_call(make_call(5))  # never recorded
    await stack.worker.process_due()
    for n, (_, transcript) in TRANSCRIPTS.items():
        await store_transcript(stack, ids[n], transcript)
    tokens = await tokens_for_every_role(sessions)
    app = create_app(stack.settings, sessions, ServiceStatus(), recording_worker=stack.worker)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Transcripts(client=client, stack=stack, tokens=tokens, ids=ids)
    finally:
        await client.close()


async def test_transcript_is_json_by_default_and_every_read_is_audited(transcripts: Transcripts) -> None:
    first = await transcripts.get(1, "supervisor")
    again = await transcripts.get(1, "admin", accept="text/plain")

    assert first.status == 200 and again.status == 200
    assert await first.json() == TRANSCRIPTS[1][1].view()
    assert first.headers["Cache-Control"] == "private, no-store"
    assert await transcripts.audited() == [(str(transcripts.ids[1]), "transcript.read")] * 2


async def test_plain_text_is_a_line_per_utterance(transcripts: Transcripts) -> None:
    response = await transcripts.get(1, accept="text/plain")

    assert response.headers["Content-Type"].startswith("text/plain")
    assert await response.text() == (
        "[00:00.5] manager: Добрый день, компания Ромашка\n[00:02.5] customer: хочу заказать доставку\n"
    )


async def test_webvtt_names_each_voice_and_escapes_markup(transcripts: Transcripts) -> None:
    response = await transcripts.get(3, accept="text/vtt")

    assert response.headers["Content-Type"].startswith("text/vtt")
    assert await response.text() == (
        "WEBVTT\n\n"
        "00:00:00.500 --> 00:00:02.250\n<v manager>Hello, this is support\n\n"
        "00:00:02.500 --> 00:00:04.000\n<v customer>I would like a refund &lt;now&gt; &amp; soon\n"
    )


async def test_a_manager_reads_only_its_own_calls_transcripts(transcripts: Transcripts) -> None:
    own = await transcripts.get(1, "manager")
    others = await transcripts.get(2, "manager")
    theirs = await transcripts.get(2, "other_manager")

    assert own.status == 200 and theirs.status == 200
    assert others.status == 404
    assert (await others.json())["error"]["code"] == "not_found"
    assert len(await transcripts.audited()) == 2  # the refused read saw nothing to audit


async def test_pending_missing_and_unknown_are_told_apart(transcripts: Transcripts) -> None:
    pending = await transcripts.get(4)
    unrecorded = await transcripts.get(5)
    unknown = await transcripts.client.get("/api/v1/calls/999/transcript", headers=transcripts.auth("admin"))

    assert pending.status == 404 and (await pending.json())["error"]["code"] == "transcript_pending"
    assert unrecorded.status == 404 and (await unrecorded.json())["error"]["code"] == "not_found"
    assert unknown.status == 404 and (await unknown.json())["error"]["code"] == "not_found"
    assert await transcripts.audited() == []


async def test_search_finds_calls_by_the_words_said(transcripts: Transcripts, database_url: str) -> None:
    assert await transcripts.search("доставку") == (200, {1})
    assert await transcripts.search("Ромашка ДОСТАВКУ") == (200, {1})  # every word, any case
    assert await transcripts.search("refund support") == (200, {3})
    assert await transcripts.search("ромашка счёта") == (200, set())  # words of two different calls
    assert await transcripts.search("самолёт") == (200, set())
    if database_url.startswith("postgresql"):
        # The transcript's language configuration: other forms of the same Russian and English words.
        assert await transcripts.search("доставка") == (200, {1})
        assert await transcripts.search("refunds") == (200, {3})


async def test_search_keeps_to_a_managers_own_calls(transcripts: Transcripts) -> None:
    assert await transcripts.search("здравствуйте", "manager") == (200, set())
    assert await transcripts.search("здравствуйте", "other_manager") == (200, {2})


@pytest.mark.parametrize(
    "hostile",
    [
        '"',
        '"доставку',
        "доставку OR самолёт",
        "NEAR(доставку самолёт)",
        "доставку*",
        "-доставку",
        "text:доставку",
        "!!! & | ( ) : ^",
        "'; DROP TABLE transcripts; --",
        "доставку " * 22,  # 198 characters, 22 words
        "🙂",
    ],
)
async def test_hostile_search_text_is_a_literal_search(transcripts: Transcripts, hostile: str) -> None:
    status, found = await transcripts.search(hostile)

    assert status == 200
    assert found <= {1}


@pytest.mark.parametrize("refused", ["доставку\x00", "a\x1fb", "x" * 201, ""])
async def test_search_text_with_control_characters_or_too_long_is_refused(
    transcripts: Transcripts, refused: str
) -> None:
    assert (await transcripts.search(refused))[0] == 422


async def test_transcript_ready_is_queued_with_the_bitrix24_shape(transcripts: Transcripts) -> None:
    payloads = {p["data"]["call_id"]: p for p in await transcripts.payloads()}
    call_id = transcripts.ids[1]

    assert set(payloads) == {transcripts.ids[n] for n in TRANSCRIPTS}
    assert payloads[call_id]["type"] == "transcript.ready"
    assert payloads[call_id]["data"] == {
        "call_id": call_id,
        "language": "ru",
        "utterances": [
            {"speaker": "manager", "start": 0.5, "end": 2.25, "text": "Добрый день, компания Ромашка"},
            {"speaker": "customer", "start": 2.5, "end": 4.0, "text": "хочу заказать доставку"},
        ],
        "bitrix24": [
            {"SIDE": "User", "START_TIME": 0, "STOP_TIME": 3, "MESSAGE": "Добрый день, компания Ромашка"},
            {"SIDE": "Client", "START_TIME": 2, "STOP_TIME": 4, "MESSAGE": "хочу заказать доставку"},
        ],
    }


async def test_a_mono_recordings_speaker_is_the_client_in_bitrix24(transcripts: Transcripts) -> None:
    mono = Transcript("ru", (Utterance(Speaker.UNKNOWN, 1.0, 2.0, "алло"),))
    await store_transcript(transcripts.stack, transcripts.ids[4], mono)

    [payload] = [p for p in await transcripts.payloads() if p["data"]["call_id"] == transcripts.ids[4]]
    assert payload["data"]["bitrix24"] == [
        {"SIDE": "Client", "START_TIME": 1, "STOP_TIME": 2, "MESSAGE": "алло"}
    ]
    assert payload["data"]["utterances"][0]["speaker"] == "unknown"


async def test_a_transcript_written_again_is_searched_by_its_new_words(transcripts: Transcripts) -> None:
    await store_transcript(
        transcripts.stack, transcripts.ids[1], two_sided("ru", "новые слова", "привет всем")
    )

    assert await transcripts.search("доставку") == (200, set())
    assert await transcripts.search("новые") == (200, {1})


async def test_retention_deletes_transcripts_with_the_audio_but_not_under_hold(
    transcripts: Transcripts,
) -> None:
    stack = transcripts.stack
    async with stack.sessions.begin() as session:
        await set_legal_hold(session, transcripts.ids[2], True)

    report = await apply_retention(stack.sessions, RecordingStore(stack.store_dir), 180, now=LATER)

    assert sorted(report.call_ids) == sorted([transcripts.ids[1], transcripts.ids[4]])
    async with stack.sessions() as session:
        kept = {n: await get_transcript(session, transcripts.ids[n]) is not None for n in (1, 2, 3)}
    assert kept == {1: False, 2: True, 3: True}  # 2 on hold, 3 younger than 180 days
    gone = await transcripts.get(1)
    assert gone.status == 410
    assert await transcripts.search("доставку") == (200, set())
    assert await transcripts.search("бухгалтерия") == (200, {2})
