"""The recording worker on real files and a real database: split halves and stereo raw kept as the two
sides, header-only and silent files give no recording, a truncated file keeps what it holds, garbage is
quarantined without stopping the worker, a late file is waited for, a file that never comes is missing,
and a path out of the monitor directory is refused."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.calls.record import CallLeg, Direction, LegKind
from calltracking.calls.recording import Outcome, Part, RecordingState, Side
from calltracking.webhooks.repository import create_webhook
from recordings import service
from recordings.repository import claim_due_recordings, finish_recording, register_push
from recordings.service import LEASE, RecordingWorker
from tests.helpers.audio_files import (
    decoded_peak_dbfs,
    silence,
    tone,
    write_garbage,
    write_silence,
    write_stereo_raw,
    write_truncated,
    write_wav,
)
from tests.helpers.factories import T0, make_call
from tests.helpers.recording_stack import (
    ANSWERED_BASE,
    HEADER_ONLY_BASE,
    RecordingStack,
    pbx_path,
    recording_stack,
)

TRUNK_CHANNEL = "PJSIP/provider-00000001"
DESK_CHANNEL = "PJSIP/101-00000002"


@pytest.fixture
def stack(sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path) -> RecordingStack:
    return recording_stack(sessions, database_url, tmp_path)


def split_call(n: int, base: str, channel: str = TRUNK_CHANNEL, **changes: object) -> object:
    return make_call(n, recording_file=pbx_path(f"{base}.wav"), recording_channel=channel, **changes)


def write_split(stack: RecordingStack, base: str, rx_amplitude: float, tx_amplitude: float) -> None:
    """A MixMonitor triple: rx a loud tone, tx a quiet one (or silence), and their mix."""
    folder = stack.monitor / Path(base).parent
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(base).name
    write_wav(folder / f"{name}-rx.wav", 2.0, frequency=440.0, amplitude=rx_amplitude)
    if tx_amplitude:
        write_wav(folder / f"{name}-tx.wav", 2.0, frequency=660.0, amplitude=tx_amplitude)
    else:
        write_silence(folder / f"{name}-tx.wav", 2.0)
    write_wav(folder / f"{name}.wav", 2.0, frequency=440.0, amplitude=rx_amplitude)


async def test_split_halves_become_customer_and_manager_sides(stack: RecordingStack) -> None:
    async with stack.sessions.begin() as session:
        await create_webhook(
            session,
            url="http://127.0.0.1:9/crm",
            events=["recording.ready"],
            secret="s" * 32,
            description=None,
            now=datetime.now(UTC),
        )
    write_split(stack, "2026/11/22/in-1", rx_amplitude=0.8, tx_amplitude=0.0)
    call_id = await stack.add_call(
        make_call(1, recording_file=pbx_path("2026/11/22/in-1.wav"), recording_channel=TRUNK_CHANNEL)
    )

    await stack.worker.process_due()

    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.sides == (Side.CUSTOMER, Side.MANAGER)
    assert recording.duration_seconds == pytest.approx(2.0, abs=0.01)
    assert recording.format == "ogg/opus"
    customer = stack.store_dir / recording.files["customer"].path
    manager = stack.store_dir / recording.files["manager"].path
    # MixMonitor ran on the carrier's channel: what it received (rx) is the customer.
    assert decoded_peak_dbfs(customer) > -6
    assert decoded_peak_dbfs(manager) < -60
    assert (stack.monitor / "2026/11/22/in-1.wav").exists()  # the PBX keeps its files by default
    assert await stack.queued_events() == [f"recording.ready:office:{recording.pbx_call_id}"]


async def test_outbound_recorded_on_the_desk_phone_has_the_manager_in_rx(stack: RecordingStack) -> None:
    write_split(stack, "2026/11/22/out-1", rx_amplitude=0.8, tx_amplitude=0.0)
    desk = CallLeg("1.2", DESK_CHANNEL, "101", LegKind.EXTENSION, T0, T0, None, 16)
    call = make_call(
        2,
        direction=Direction.OUTBOUND,
        recording_file=pbx_path("2026/11/22/out-1.wav"),
        recording_channel=DESK_CHANNEL,
        legs=(desk,),
    )
    call_id = await stack.add_call(call)

    await stack.worker.process_due()

    recording = await stack.recording(call_id)
    assert decoded_peak_dbfs(stack.store_dir / recording.files["manager"].path) > -6
    assert decoded_peak_dbfs(stack.store_dir / recording.files["customer"].path) < -60


async def test_stereo_raw_is_split_into_its_two_channels(stack: RecordingStack) -> None:
    (stack.monitor / "2026").mkdir()
    write_stereo_raw(stack.monitor / "2026/call.raw", tone(3.0, amplitude=0.7), silence(3.0))
    call_id = await stack.add_call(
        make_call(3, recording_file=pbx_path("2026/call.raw"), recording_channel=TRUNK_CHANNEL)
    )

    await stack.worker.process_due()

    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.duration_seconds == pytest.approx(3.0, abs=0.01)
    assert decoded_peak_dbfs(stack.store_dir / recording.files["customer"].path) > -6
    assert decoded_peak_dbfs(stack.store_dir / recording.files["manager"].path) < -60
    assert decoded_peak_dbfs(stack.store_dir / recording.files["mix"].path) > -12


async def test_header_only_and_silent_files_give_no_recording(stack: RecordingStack) -> None:
    stack.place_shared(HEADER_ONLY_BASE)  # the missed call of the real captures: 44-byte WAVs
    write_silence(stack.monitor / "silent.wav", 4.0)
    header_only = await stack.add_call(split_call(4, HEADER_ONLY_BASE))
    silent = await stack.add_call(make_call(5, recording_file=pbx_path("silent.wav")))

    await stack.worker.process_due()

    assert (await stack.recording(header_only)).state is RecordingState.EMPTY
    assert (await stack.recording(silent)).state is RecordingState.EMPTY
    assert (await stack.recording(silent)).duration_seconds == pytest.approx(4.0, abs=0.01)
    assert stack.stored_files() == []


async def test_truncated_wav_keeps_the_audio_it_holds(stack: RecordingStack) -> None:
    write_truncated(stack.monitor / "cut.wav", seconds=10.0, kept_seconds=1.5)
    call_id = await stack.add_call(make_call(6, recording_file=pbx_path("cut.wav")))

    await stack.worker.process_due()

    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.is_truncated is True
    assert recording.duration_seconds == pytest.approx(1.5, abs=0.01)


async def test_garbage_is_quarantined_and_the_next_recording_still_converts(stack: RecordingStack) -> None:
    write_garbage(stack.monitor / "garbage.wav")
    write_wav(stack.monitor / "good.wav", 1.0)
    bad = await stack.add_call(make_call(7, recording_file=pbx_path("garbage.wav")))
    good = await stack.add_call(make_call(8, recording_file=pbx_path("good.wav")))

    await stack.worker.process_due()

    quarantined = await stack.recording(bad)
    assert quarantined.state is RecordingState.QUARANTINED
    kept = stack.store_dir / quarantined.files["original-mix"].path
    assert kept.read_bytes() == (stack.monitor / "garbage.wav").read_bytes()
    assert "quarantine" in kept.parts
    assert (quarantined.error or "").startswith("mix: garbage.wav has no audio stream")
    assert (await stack.recording(good)).state is RecordingState.READY


async def test_a_file_that_appears_late_is_taken_on_a_later_attempt(stack: RecordingStack) -> None:
    call_id = await stack.add_call(make_call(9, recording_file=pbx_path("2026/late.wav")))

    await stack.worker.process_due()
    waiting = await stack.recording(call_id)
    write_wav(stack.monitor / "late.wav", 1.0)  # not where the PBX said
    (stack.monitor / "2026").mkdir()
    write_wav(stack.monitor / "2026/late.wav", 1.0)
    ran_early = await stack.worker.process_due()
    stack.clock.advance(2)
    ran_when_due = await stack.worker.process_due()

    assert waiting.state is RecordingState.PENDING and waiting.attempts == 1
    assert ran_early == 0 and ran_when_due == 1
    assert (await stack.recording(call_id)).state is RecordingState.READY


async def test_a_file_that_never_comes_marks_the_call_missing(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    outcomes: list[tuple[str, RecordingState]] = []
    stack = recording_stack(sessions, database_url, tmp_path)
    worker = RecordingWorker(
        sessions,
        stack.settings.recordings,
        stack.settings.pbxs,
        clock=stack.clock,
        observe=lambda pbx, state: outcomes.append((pbx, state)),
    )
    call_id = await stack.add_call(make_call(10, recording_file=pbx_path("never.wav")))

    attempts = 0
    while (await stack.recording(call_id)).state is RecordingState.PENDING:
        attempts += await worker.process_due()
        stack.clock.advance(1)

    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.MISSING
    # Retried with growing delays (2, 4, 8, 8... s) for the 30 s the settings allow, then given up.
    assert 4 <= attempts <= 8
    assert outcomes == [("office", RecordingState.MISSING)]


@pytest.mark.parametrize(
    "announced",
    [
        "/var/spool/asterisk/monitor/../../../etc/passwd",
        "/var/spool/asterisk/monitor/2026/../../monitor-other/x.wav",
        "../outside.wav",
        "/etc/asterisk/manager.conf",
    ],
)
async def test_paths_out_of_the_monitor_directory_are_refused(stack: RecordingStack, announced: str) -> None:
    (stack.monitor.parent / "outside.wav").write_bytes(b"secret")
    call_id = await stack.add_call(make_call(11, recording_file=announced))

    await stack.worker.process_due()

    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.REFUSED
    assert stack.stored_files() == []
    assert not (stack.store_dir / "quarantine").exists()


async def test_a_symlink_out_of_the_monitor_directory_is_refused(stack: RecordingStack) -> None:
    secret = write_wav(stack.monitor.parent / "elsewhere.wav", 1.0)
    os.symlink(secret, stack.monitor / "link.wav")
    call_id = await stack.add_call(make_call(12, recording_file=pbx_path("link.wav")))

    await stack.worker.process_due()

    assert (await stack.recording(call_id)).state is RecordingState.REFUSED
    assert stack.stored_files() == []


async def test_freepbx_bare_names_are_found_under_the_pbx_local_date(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path)
    moscow = stack.settings.pbxs[0].model_copy(update={"timezone": "Europe/Moscow"})
    worker = RecordingWorker(sessions, stack.settings.recordings, [moscow], clock=stack.clock)
    started = datetime(2026, 11, 22, 22, 30, tzinfo=UTC)  # 01:30 on the 23rd in Moscow
    (stack.monitor / "2026/11/23").mkdir(parents=True)
    write_wav(stack.monitor / "2026/11/23/external-101-79161234567.wav", 1.0)
    call_id = await stack.add_call(
        make_call(
            13,
            recording_file="external-101-79161234567.wav",
            started_at=started,
            answered_at=started,
            ended_at=started,
        )
    )

    await worker.process_due()

    assert (await stack.recording(call_id)).state is RecordingState.READY


async def test_a_file_still_being_written_waits_for_the_settle_delay(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path, settle_seconds=5)
    growing = write_wav(stack.monitor / "growing.wav", 1.0)
    written = growing.stat().st_mtime
    stack.clock.now = datetime.fromtimestamp(written + 1, UTC)
    call_id = await stack.add_call(make_call(14, recording_file=pbx_path("growing.wav")))

    await stack.worker.process_due()  # changed 1 s ago: not yet
    first_look = await stack.recording(call_id)
    write_wav(growing, 2.0)  # MixMonitor was still writing
    os.utime(growing, (written + 4, written + 4))
    stack.clock.advance(4)
    await stack.worker.process_due()  # due again at +5 s, but the file changed at +4 s
    second_look = await stack.recording(call_id)
    stack.clock.advance(4)
    await stack.worker.process_due()

    assert first_look.state is second_look.state is RecordingState.PENDING
    assert first_look.attempts == second_look.attempts == 0  # waiting for a file is not a failed attempt
    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.duration_seconds == pytest.approx(2.0, abs=0.01)


async def test_originals_are_removed_only_when_configured(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path, delete_originals=True)
    stack.place_shared(ANSWERED_BASE)
    call_id = await stack.add_call(split_call(15, ANSWERED_BASE))

    await stack.worker.process_due()

    assert (await stack.recording(call_id)).state is RecordingState.READY
    assert list(stack.monitor.rglob("*.wav")) == []


async def test_a_call_written_again_keeps_its_converted_recording(stack: RecordingStack) -> None:
    stack.place_shared(ANSWERED_BASE)
    call = split_call(16, ANSWERED_BASE)
    call_id = await stack.add_call(call)
    await stack.worker.process_due()
    first = await stack.recording(call_id)

    await stack.add_call(call)  # a replay, or a batch retried after an outage
    ran = await stack.worker.process_due()

    assert ran == 0
    assert await stack.recording(call_id) == first


async def test_a_job_whose_worker_died_is_taken_again_when_its_lease_ends(stack: RecordingStack) -> None:
    stack.place_shared(ANSWERED_BASE)
    call_id = await stack.add_call(split_call(17, ANSWERED_BASE))
    async with stack.sessions.begin() as session:  # a worker claims the job, then its process is killed
        [claimed] = await claim_due_recordings(
            session, now=stack.clock(), lease_until=stack.clock() + LEASE, limit=10
        )

    during_lease = await stack.worker.process_due()
    stack.clock.advance(LEASE.total_seconds())
    after_lease = await stack.worker.process_due()

    assert claimed.call_id == call_id
    assert (during_lease, after_lease) == (0, 1)
    assert (await stack.recording(call_id)).state is RecordingState.READY


async def test_mp3_is_stored_when_configured_for_players_without_opus(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    stack = recording_stack(sessions, database_url, tmp_path, format="mp3", bitrate=32_000)
    stack.place_shared(ANSWERED_BASE)
    call_id = await stack.add_call(split_call(18, ANSWERED_BASE))

    await stack.worker.process_due()

    recording = await stack.recording(call_id)
    assert recording.format == "mp3"
    assert {Path(stored.path).suffix for stored in recording.files.values()} == {".mp3"}
    mix = (stack.store_dir / recording.files["mix"].path).read_bytes()
    assert mix[:3] == b"ID3" or mix[:2] in (b"\xff\xf3", b"\xff\xfb", b"\xff\xf2")
    assert decoded_peak_dbfs(stack.store_dir / recording.files["mix"].path) > -12


async def test_a_push_during_conversion_is_not_overwritten_by_its_outcome(stack: RecordingStack) -> None:
    stack.place_shared(ANSWERED_BASE)
    call = split_call(19, ANSWERED_BASE)
    call_id = await stack.add_call(call)
    async with stack.sessions.begin() as session:  # the worker takes the job...
        [job] = await claim_due_recordings(
            session, now=stack.clock(), lease_until=stack.clock() + LEASE, limit=1
        )
    async with stack.sessions.begin() as session:  # ...and the PBX pushes a part meanwhile
        await register_push(session, call.pbx, call.pbx_call_id, due_at=stack.clock() + timedelta(seconds=1))
    async with stack.sessions.begin() as session:
        written = await finish_recording(
            session, job, Outcome(RecordingState.EMPTY, duration_seconds=0.0), now=stack.clock()
        )

    assert written is False
    reopened = await stack.recording(call_id)
    assert (reopened.state, reopened.attempts) == (RecordingState.PENDING, 0)
    stack.clock.advance(1)
    assert await stack.worker.process_due() == 1
    assert (await stack.recording(call_id)).state is RecordingState.READY


async def test_a_part_pushed_again_during_conversion_survives_and_is_converted_next(
    stack: RecordingStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = make_call(20)
    call_id = await stack.add_call(call)
    store = stack.worker.store

    async def push_mix(seconds: float, due_in: float) -> None:
        upload = write_wav(store.upload_file(), seconds)
        store.accept_push(call.pbx, call.pbx_call_id, Part.MIX, upload)
        async with stack.sessions.begin() as session:
            await register_push(
                session, call.pbx, call.pbx_call_id, due_at=stack.clock() + timedelta(seconds=due_in)
            )

    real_encode = service.encode

    async def encode_while_the_pbx_pushes_again(*args: object, **kwargs: object) -> object:
        encoded = await real_encode(*args, **kwargs)  # type: ignore[arg-type]
        await push_mix(2.0, due_in=1)
        return encoded

    await push_mix(1.0, due_in=0)
    monkeypatch.setattr(service, "encode", encode_while_the_pbx_pushes_again)
    await stack.worker.process_due()
    monkeypatch.setattr(service, "encode", real_encode)
    after_first = await stack.recording(call_id)
    stack.clock.advance(1)
    await stack.worker.process_due()

    assert after_first.state is RecordingState.PENDING  # the older outcome was not written...
    assert store.pushed_parts(call.pbx, call.pbx_call_id) == {}  # ...and the new push survived until now
    recording = await stack.recording(call_id)
    assert recording.state is RecordingState.READY
    assert recording.duration_seconds == pytest.approx(2.0, abs=0.01)
