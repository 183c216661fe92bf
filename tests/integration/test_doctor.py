"""`calltracking doctor` against a good setup and broken ones: a scripted AMI peer on loopback that greets
like Asterisk 22, real databases on both backends, real directories, the real ffmpeg and vosk."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from ami.capture_peer import CapturePeer, PeerSession, frame
from calltracking.app.cli import main
from calltracking.app.doctor import run_doctor
from calltracking.app.doctor.host import check_recordings_dir
from calltracking.app.doctor.result import Status
from calltracking.config import (
    DatabaseSettings,
    PbxSettings,
    Settings,
    TranscriptionSettings,
)
from calltracking.store.engine import create_engine, migrate
from tests.helpers.databases import BACKENDS, database_for_test, fresh_database

LISTEN = 0.3
BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ACCEPTED = b"Response: Success\r\nMessage: Authentication accepted\r\n\r\n"
REFUSED = b"Response: Error\r\nMessage: Authentication failed\r\n\r\n"
# As real Asterisk 22 writes it after a Login: outside the event path, so without a Timestamp.
BOOTED = frame(
    {
        "Event": "FullyBooted",
        "Privilege": "system,all",
        "Uptime": "10",
        "LastReload": "10",
        "Status": "Fully Booted",
    }
)
TRUNK_CHANNEL = "PJSIP/provider-0000002a"


def call_events(timestamped: bool = True) -> bytes:
    """A call arriving on the trunk while the doctor listens."""
    stamp = {"Timestamp": "1796011695.340382"} if timestamped else {}
    common = {"Channel": TRUNK_CHANNEL, "Uniqueid": "1796011695.161", "Linkedid": "1796011695.161"}
    return frame(
        {"Event": "Newchannel", "Privilege": "call,all", **stamp, **common, "ChannelState": "4"}
    ) + frame({"Event": "Newexten", "Privilege": "dialplan,all", **stamp, **common, "Context": "from-trunk"})


def list_reply(action: Mapping[str, str], event: str, items: Sequence[Mapping[str, str]]) -> list[bytes]:
    action_id = action.get("actionid", "")
    return [
        frame({"Response": "Success", "ActionID": action_id, "EventList": "start", "Message": "will follow"}),
        *(frame({"Event": event, "ActionID": action_id, **item}) for item in items),
        frame(
            {
                "Event": f"{event}Complete" if event != "EndpointList" else "EndpointListComplete",
                "ActionID": action_id,
                "EventList": "Complete",
                "ListItems": str(len(items)),
            }
        ),
    ]


def list_commands(allowed: Sequence[str]) -> Callable[[Mapping[str, str]], list[bytes]]:
    def reply(action: Mapping[str, str]) -> list[bytes]:
        synopses = {name: f"{name} synopsis.  (Priv: system,all)" for name in allowed}
        return [frame({"Response": "Success", "ActionID": action.get("actionid", ""), **synopses})]

    return reply


def channels_appearing(new: Sequence[str]) -> Callable[[Mapping[str, str]], list[bytes]]:
    """CoreShowChannels: nothing up the first time, `new` up the next times."""
    asked = []

    def reply(action: Mapping[str, str]) -> list[bytes]:
        asked.append(action)
        channels = [] if len(asked) == 1 else [{"Channel": name, "Uniqueid": "1.1"} for name in new]
        return list_reply(action, "CoreShowChannel", channels)

    return reply


def refused(action: Mapping[str, str]) -> list[bytes]:
    return [
        frame({"Response": "Error", "ActionID": action.get("actionid", ""), "Message": "Permission denied"})
    ]


@dataclass
class Pbx:
    """How the scripted PBX behaves: what it says after the Login, which events reach the doctor."""

    greeting: bytes = BANNER + ACCEPTED + BOOTED
    events: bytes = b""
    new_channels: Sequence[str] = (TRUNK_CHANNEL,)
    allowed: Sequence[str] = ("CoreShowChannels", "Originate", "PJSIPShowEndpoints", "Ping", "Logoff")
    endpoints: Sequence[str] = ("101", "102", "provider")
    core_show_channels_refused: bool = False
    # As with the smallest write classes (originate,reporting): PJSIPShowEndpoints needs system.
    endpoints_refused: bool = False

    def session(self) -> PeerSession:
        return PeerSession(
            greeting=self.greeting,
            body=self.events,
            close_at_end=False,
            action_replies={
                "listcommands": list_commands(self.allowed),
                "coreshowchannels": refused
                if self.core_show_channels_refused
                else channels_appearing(self.new_channels),
                "pjsipshowendpoints": refused
                if self.endpoints_refused
                else lambda action: list_reply(
                    action, "EndpointList", [{"ObjectName": name} for name in self.endpoints]
                ),
                "logoff": lambda action: [
                    frame({"Response": "Goodbye", "ActionID": action.get("actionid", "")})
                ],
            },
        )


GOOD = Pbx(events=call_events())


@pytest.fixture
async def migrated_sqlite(tmp_path: Path) -> AsyncIterator[str]:
    async with database_for_test("sqlite", tmp_path, migrated=True) as url:
        yield url


@pytest.fixture
def monitor_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "monitor"
    directory.mkdir()
    return directory


async def doctor(
    pbx: Pbx | None,
    database_url: str,
    monitor_dir: Path,
    *,
    secret: str = "right",
    recordings_dir: Path | None = None,
    models: Mapping[str, Path] | None = None,
    search_path: str | None = None,
    port: int | None = None,
) -> tuple[int, dict[str, str]]:
    """Run the doctor on a setup; its exit code and its lines by check name."""
    peer = CapturePeer([pbx.session()] if pbx else [])
    peer_port = await peer.start()
    if pbx is None:
        await peer.stop()  # the port is closed now: nothing listens on it
    try:
        settings = Settings(
            database=DatabaseSettings(url=database_url, connect_timeout_seconds=5),
            pbxs=(
                PbxSettings(
                    name="office",
                    port=port or peer_port,
                    username="calltracking",
                    secret=secret,
                    trunk_endpoints=("provider",),
                    recordings_dir=recordings_dir or monitor_dir,
                    login_timeout_seconds=5,
                ),
            ),
            transcription=TranscriptionSettings(models=dict(models or {})),
        )
        out = io.StringIO()
        code = await run_doctor(settings, out, LISTEN, search_path)
    finally:
        await peer.stop()
    lines = out.getvalue().splitlines()
    assert lines[-1].endswith(" ok"), lines  # the summary
    return code, {line[6:].split(": ", 1)[0]: line for line in lines[:-1]}


async def test_good_setup_passes_every_check(migrated_sqlite: str, monitor_dir: Path) -> None:
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir)

    assert code == 0, lines
    assert all(line.startswith("ok ") for line in lines.values()), lines
    assert list(lines) == [
        "database",
        "pbx office",
        "pbx office actions",
        "pbx office events",
        "pbx office timestamps",
        "pbx office trunks",
        "pbx office recordings",
        "ffmpeg",
        "transcription",
    ]
    assert "migrations current (0013)" in lines["database"]
    assert "logged in as calltracking (Asterisk Call Manager/11.0.0)" in lines["pbx office"]
    assert "classes seen: call, dialplan" in lines["pbx office events"]
    assert "2 event(s), all with a Timestamp" in lines["pbx office timestamps"]
    assert "provider exist" in lines["pbx office trunks"]


async def test_wrong_secret_is_a_refused_login(migrated_sqlite: str, monitor_dir: Path) -> None:
    code, lines = await doctor(Pbx(greeting=BANNER + REFUSED), migrated_sqlite, monitor_dir, secret="wrong")

    assert code == 1
    assert lines["pbx office"] == (
        "FAIL  pbx office: AMI login refused for user calltracking (Authentication failed) -> check secret "
        "in [[pbx]] 'office' and manager.conf ([calltracking] secret, permit/deny for this host)"
    )
    assert "pbx office events" not in lines


async def test_closed_port_says_the_pbx_cannot_be_reached(migrated_sqlite: str, monitor_dir: Path) -> None:
    code, lines = await doctor(None, migrated_sqlite, monitor_dir)

    assert code == 1
    assert lines["pbx office"].startswith("FAIL  pbx office: cannot connect to 127.0.0.1:")
    assert "connection refused (nothing listens there)" in lines["pbx office"]
    assert "check host and port in [[pbx]] 'office'" in lines["pbx office"]


async def test_events_without_timestamp_fail(migrated_sqlite: str, monitor_dir: Path) -> None:
    code, lines = await doctor(Pbx(events=call_events(timestamped=False)), migrated_sqlite, monitor_dir)

    assert code == 1
    assert lines["pbx office timestamps"].startswith(
        "FAIL  pbx office timestamps: 2 of 2 events without a Timestamp (e.g. Newchannel)"
    )
    assert "set timestampevents = yes in [general] of manager.conf" in lines["pbx office timestamps"]
    assert lines["pbx office events"].startswith("ok ")


async def test_missing_read_class_fails_when_a_call_came_and_no_event(
    migrated_sqlite: str, monitor_dir: Path
) -> None:
    # A channel came up while the doctor listened (CoreShowChannels shows it), its events never arrived.
    code, lines = await doctor(Pbx(events=b""), migrated_sqlite, monitor_dir)

    assert code == 1
    assert lines["pbx office events"] == (
        f"FAIL  pbx office events: 1 channel(s) appeared in {LISTEN:g} s ({TRUNK_CHANNEL}...) but no call "
        "event arrived: the AMI user's read classes leave them out, so no call is logged -> set read = "
        "call,dialplan,agent,system in manager.conf [calltracking], then `manager reload` on the Asterisk CLI"
    )


async def test_quiet_pbx_is_a_warning_not_a_failure(migrated_sqlite: str, monitor_dir: Path) -> None:
    code, lines = await doctor(Pbx(events=b"", new_channels=()), migrated_sqlite, monitor_dir)

    assert code == 0
    assert lines["pbx office events"].startswith("warn  pbx office events: no call happened in the 0.3 s")
    assert "--listen 60" in lines["pbx office timestamps"]


async def test_refused_actions_and_unknown_trunk(migrated_sqlite: str, monitor_dir: Path) -> None:
    pbx = Pbx(events=call_events(), core_show_channels_refused=True, endpoints=("101", "102"))
    code, lines = await doctor(pbx, migrated_sqlite, monitor_dir)

    assert code == 1
    assert lines["pbx office actions"].startswith(
        "FAIL  pbx office actions: CoreShowChannels refused (Permission denied)"
    )
    assert (
        "add reporting (or system) to write = in manager.conf [calltracking]" in lines["pbx office actions"]
    )
    assert lines["pbx office trunks"].startswith(
        "warn  pbx office trunks: trunk endpoint(s) provider not among the PBX's 2 PJSIP endpoints"
    )


async def test_originate_not_allowed_is_a_warning(migrated_sqlite: str, monitor_dir: Path) -> None:
    pbx = Pbx(events=call_events(), allowed=("CoreShowChannels", "PJSIPShowEndpoints"))
    code, lines = await doctor(pbx, migrated_sqlite, monitor_dir)

    assert code == 0
    assert lines["pbx office actions"].startswith("warn  pbx office actions: Originate is not allowed")


async def test_trunk_known_from_its_channels_when_endpoints_cannot_be_listed(
    migrated_sqlite: str, monitor_dir: Path
) -> None:
    code, lines = await doctor(
        Pbx(events=call_events(), endpoints_refused=True), migrated_sqlite, monitor_dir
    )

    assert code == 0
    assert (
        lines["pbx office trunks"] == "ok    pbx office trunks: channels seen on trunk endpoint(s) provider"
    )


async def test_trunk_unknown_is_a_warning(migrated_sqlite: str, monitor_dir: Path) -> None:
    pbx = Pbx(events=b"", new_channels=("PJSIP/101-00000001",), endpoints_refused=True)
    code, lines = await doctor(pbx, migrated_sqlite, monitor_dir)

    assert lines["pbx office trunks"].startswith(
        "warn  pbx office trunks: cannot list PJSIP endpoints (Permission denied; PJSIPShowEndpoints needs "
        "write = system) and no channel on provider was up: whether they exist is unknown"
    )
    assert code == 1  # the new channel's events never arrived: that one fails


@pytest.mark.parametrize("backend", BACKENDS)
async def test_database_behind_on_migrations(backend: str, tmp_path: Path, monitor_dir: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            await migrate(engine, "0008")
        finally:
            await engine.dispose()
        code, lines = await doctor(GOOD, url, monitor_dir)

    assert code == 1
    assert lines["database"].startswith("FAIL  database: ")
    assert lines["database"].endswith("is at revision 0008, behind 0013 -> run `calltracking migrate`")


@pytest.mark.parametrize("backend", BACKENDS)
async def test_empty_database_says_migrate(backend: str, tmp_path: Path, monitor_dir: Path) -> None:
    async with fresh_database(backend, tmp_path) as url:
        code, lines = await doctor(GOOD, url, monitor_dir)

    assert code == 1
    assert lines["database"].endswith(
        "has no calltracking schema (head is 0013) -> run `calltracking migrate`"
    )
    if backend == "sqlite":
        assert not (tmp_path / "calls.db").exists()  # looking did not create it


@pytest.mark.parametrize("backend", BACKENDS)
async def test_unreachable_database(backend: str, tmp_path: Path, monitor_dir: Path) -> None:
    # SQLite: a directory where the file should be; PostgreSQL: a port nothing listens on.
    url = (
        f"sqlite+aiosqlite:///{tmp_path}"
        if backend == "sqlite"
        else "postgresql+asyncpg://postgres:secret@127.0.0.1:9/calltracking"
    )
    code, lines = await doctor(GOOD, url, monitor_dir)

    assert code == 1
    assert lines["database"].startswith("FAIL  database: cannot reach ")
    assert lines["database"].endswith(
        "-> check [database] url (host, port, user, password) and that the database server is running"
    )
    assert "secret" not in lines["database"]  # the password is not printed


async def test_missing_recordings_dir(migrated_sqlite: str, monitor_dir: Path, tmp_path: Path) -> None:
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir, recordings_dir=tmp_path / "nfs")

    assert code == 1
    assert lines["pbx office recordings"] == (
        f"FAIL  pbx office recordings: {tmp_path / 'nfs'} does not exist -> set [[pbx]] recordings_dir to "
        "where the PBX's monitor directory is mounted"
    )


async def test_recordings_path_that_is_a_file(
    migrated_sqlite: str, monitor_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("")
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir, recordings_dir=tmp_path / "file")

    assert code == 1
    assert "is not a directory" in lines["pbx office recordings"]


NOBODY = 65534


async def test_unreadable_recordings_dir(migrated_sqlite: str, monitor_dir: Path) -> None:
    if os.geteuid() == 0:
        # Root reads any directory: the service's user is not root, so ask as one (uid 65534, nobody).
        message = unreadable_as_nobody()
    else:
        monitor_dir.chmod(0)
        try:
            code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir)
        finally:
            monitor_dir.chmod(0o755)
        assert code == 1
        message = lines["pbx office recordings"]

    assert "is not readable by this user" in message


def unreadable_as_nobody() -> str:
    """The recordings check run with an unprivileged effective user (as the service's own user would be)
    on a directory only root may read; nothing else runs meanwhile, and root comes back at once."""
    parent = Path(tempfile.mkdtemp(prefix="doctor-"))
    try:
        parent.chmod(0o755)
        recordings = parent / "monitor"
        recordings.mkdir(mode=0o700)
        pbx = PbxSettings(recordings_dir=recordings)
        os.seteuid(NOBODY)
        try:
            result = check_recordings_dir(pbx)
        finally:
            os.seteuid(0)
    finally:
        shutil.rmtree(parent)
    assert result.status is Status.FAIL
    return result.message


async def test_ffmpeg_absent(migrated_sqlite: str, monitor_dir: Path, tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir, search_path=str(empty))

    assert code == 1
    assert lines["ffmpeg"] == (
        "FAIL  ffmpeg: ffmpeg not found on the PATH -> install ffmpeg (Debian/Ubuntu: apt install ffmpeg), "
        "on the PATH of the service's user"
    )


async def test_ffmpeg_present_can_encode(migrated_sqlite: str, monitor_dir: Path) -> None:
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir, search_path="/usr/bin")

    assert code == 0, lines

    assert lines["ffmpeg"].startswith("ok    ffmpeg: ffmpeg version ")
    assert lines["ffmpeg"].endswith("(/usr/bin/ffmpeg), encodes ogg/opus")


async def test_bad_vosk_model_dirs(migrated_sqlite: str, monitor_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "README").write_text("not a model\n")
    models = {"ru": broken, "en": tmp_path / "absent"}
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir, models=models)

    assert code == 1
    assert lines["transcription model en"] == (
        f"FAIL  transcription model en: the 'en' model directory {tmp_path / 'absent'} does not exist -> "
        f"unpack a vosk model (https://alphacephei.com/vosk/models) into {tmp_path / 'absent'}, or fix "
        "[transcription] models.en"
    )
    assert lines["transcription model ru"].startswith(
        f"FAIL  transcription model ru: the 'ru' model in {broken} cannot be loaded"
    )


async def test_real_vosk_model_loads(migrated_sqlite: str, monitor_dir: Path) -> None:
    from tests.helpers.speech import korean_model_dir

    model = korean_model_dir()
    code, lines = await doctor(GOOD, migrated_sqlite, monitor_dir, models={"ko": model})

    assert code == 0, lines
    assert lines["transcription model ko"] == f"ok    transcription model ko: {model} loads (16000 Hz)"


def test_cli_doctor_exit_code_and_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through `calltracking doctor` itself: nothing listens on the PBX's port, the database is new."""
    config = tmp_path / "calltracking.toml"
    config.write_text(
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path / "new.db"}"\n'
        f'[[pbx]]\nname = "office"\nport = 9\nrecordings_dir = "{tmp_path}"\nlogin_timeout_seconds = 2\n'
    )

    assert main(["--config", str(config), "doctor", "--listen", "0"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL  database: sqlite+aiosqlite:///")
    assert out[0].endswith("has no calltracking schema (head is 0013) -> run `calltracking migrate`")
    assert out[1].startswith("FAIL  pbx office: cannot connect to 127.0.0.1:9")
    assert out[2] == f"ok    pbx office recordings: {tmp_path} readable"
    assert out[-1].startswith("2 failed, 0 warning(s), ")
    assert not (tmp_path / "new.db").exists()
