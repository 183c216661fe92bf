from __future__ import annotations

from pathlib import Path

import pytest

from calltracking.config import load_settings
from calltracking.errors import ConfigError


def test_defaults_run_on_embedded_sqlite_and_wait_for_a_local_pbx() -> None:
    settings = load_settings(environ={})
    assert settings.database.url.startswith("sqlite+aiosqlite:///")
    [pbx] = settings.pbxs
    assert (pbx.host, pbx.port) == ("127.0.0.1", 5038)


def test_toml_then_environment_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "calltracking.toml"
    config.write_text(
        """
[database]
url = "postgresql+asyncpg://ct@db/calls"

[[pbx]]
name = "office"
host = "10.0.0.5"
secret = "s3cret"
trunk_endpoints = ["carrier-a"]
default_country = "ru"

[[pbx]]
name = "branch"
"""
    )
    settings = load_settings(
        config,
        environ={"CALLTRACKING_DATABASE__BATCH_SIZE": "50", "CALLTRACKING_LOG__LEVEL": "debug"},
        overrides={"database": {"url": "sqlite+aiosqlite:///x.db"}},
    )
    assert settings.database.url == "sqlite+aiosqlite:///x.db"
    assert settings.database.batch_size == 50
    assert settings.log.level == "debug"
    office = settings.pbx("office")
    assert (office.host, office.secret, office.default_country) == ("10.0.0.5", "s3cret", "RU")
    assert office.is_trunk("carrier-a", "from-internal")
    assert office.is_trunk("anything", "from-pstn-toll")
    assert not office.is_trunk("101", "from-internal")
    assert settings.pbx("branch").host == "127.0.0.1"


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[log]\nformat = "json"\n')
    assert load_settings(environ={"CALLTRACKING_CONFIG": str(config)}).log.format == "json"


def test_pbx_list_from_environment_as_json() -> None:
    settings = load_settings(environ={"CALLTRACKING_PBXS": '[{"name": "a", "port": 5039}]'})
    assert [(p.name, p.port) for p in settings.pbxs] == [("a", 5039)]


@pytest.mark.parametrize(
    ("content", "environ"),
    [
        ("this is = = not toml", {}),
        ('[database]\nbatch_size = "many"\n', {}),
        ('[[pbx]]\nname = "a"\n[[pbx]]\nname = "a"\n', {}),
        ('[[pbx]]\nname = "bad name!"\n', {}),
        ("[[pbx]]\nport = 70000\n", {}),
        ("[unknown]\nx = 1\n", {}),
        ("", {"CALLTRACKING_PBXS": "[not json"}),
    ],
)
def test_bad_settings_are_a_clear_error(tmp_path: Path, content: str, environ: dict[str, str]) -> None:
    config = tmp_path / "c.toml"
    config.write_text(content)
    with pytest.raises(ConfigError):
        load_settings(config, environ=environ)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("stats", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"business_hours_start": "18:00", "business_hours_end": "09:00"}, "after business_hours_start"),
        ({"business_hours_start": "09:10"}, "business_hours_start"),
        ({"business_days": [0, 8]}, "ISO weekdays"),
        ({"queue_service_level_seconds": 0}, "queue_service_level_seconds"),
    ],
)
def test_bad_report_settings_say_which(stats: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={}, overrides={"stats": stats})


def test_reports_count_days_in_the_first_pbxs_zone_unless_told() -> None:
    pbx = {"pbxs": [{"name": "office", "timezone": "Asia/Vladivostok"}]}
    assert load_settings(environ={}, overrides=pbx).report_timezone == "Asia/Vladivostok"
    told = pbx | {"stats": {"timezone": "Europe/Moscow"}}
    assert load_settings(environ={}, overrides=told).report_timezone == "Europe/Moscow"


def test_transcription_models_per_language_and_a_pbx_picks_its_own(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        """
[transcription]
models = {ru = "/opt/vosk/ru", en-us = "/opt/vosk/en"}
default_language = "ru"

[[pbx]]
name = "office"

[[pbx]]
name = "london"
language = "en-us"
"""
    )
    settings = load_settings(config, environ={})
    assert settings.transcription.models == {"ru": Path("/opt/vosk/ru"), "en-us": Path("/opt/vosk/en")}
    assert settings.transcription.workers == 0
    assert settings.transcription_language("office") == "ru"
    assert settings.transcription_language("london") == "en-us"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"transcription": {"models": {"Russian": "/opt/vosk/ru"}}}, "must be a code"),
        ({"transcription": {"default_language": "ru"}}, "'ru' has no model"),
        ({"pbxs": [{"name": "a", "language": "ko"}], "transcription": {"models": {"ru": "/m"}}}, "'ko'"),
        ({"pbxs": [{"name": "a", "language": "Korean"}]}, "language"),
        ({"transcription": {"chunk_seconds": 0}}, "chunk_seconds"),
        ({"transcription": {"workers": -1}}, "workers"),
    ],
)
def test_bad_transcription_settings_say_which(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={}, overrides=overrides)


@pytest.mark.parametrize(
    ("content", "environ", "lines"),
    [
        (
            "[[pbx]]\nname = 'office'\nport = 70000\n",
            {},
            ["[[pbx]] 'office': port must be less than or equal to 65535 (got 70000)"],
        ),
        (
            "[[pbx]]\nport = 'five'\nsecret = 1\n",
            {},
            [
                "[[pbx]] #1: port must be a valid integer, unable to parse string as an integer (got 'five')",
                "[[pbx]] #1: secret must be a valid string",
            ],
        ),
        (
            "[unknown]\nx = 1\n[database]\nbatch_size = 0\n",
            {},
            [
                "[database] batch_size must be greater than or equal to 1 (got 0)",
                "[unknown] is not a setting",
            ],
        ),
        (
            "[stats]\nbusiness_hours_start = '18:00'\nbusiness_hours_end = '09:00'\n",
            {},
            ["[stats]: business_hours_end must be after business_hours_start"],
        ),
        (
            "[tracking.dids.\"74951110001\"]\nsource = 'yandex'\nfoo = 1\n",
            {},
            ['[tracking.dids."74951110001"] foo is not a setting'],
        ),
        (
            "",
            {"CALLTRACKING_PBXS": '[{"name": "x", "port": 0}]', "CALLTRACKING_API__PORT": "-1"},
            [
                "CALLTRACKING_PBXS 'x': port must be greater than or equal to 1 (got 0)",
                "CALLTRACKING_API__PORT must be greater than or equal to 0 (got '-1')",
            ],
        ),
        (
            "[database]\nurl = 5\n[[pbx]]\nname = 'a'\n[[pbx]]\nname = 'a'\n",
            {},
            ["[database] url must be a valid string"],
        ),
        ("[[pbx]]\nname = 'a'\n[[pbx]]\nname = 'a'\n", {}, ["PBX names must be unique"]),
    ],
)
def test_bad_settings_are_one_line_each_in_the_admins_words(
    tmp_path: Path, content: str, environ: dict[str, str], lines: list[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(content)
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ=environ)
    message = str(raised.value)
    assert message.splitlines() == [f"invalid settings in {config}:", *lines]
    assert "pydantic" not in message and "pbxs" not in message


def test_paths_default_under_the_data_dir_never_the_working_directory(tmp_path: Path) -> None:
    systemd = load_settings(environ={"STATE_DIRECTORY": "/var/lib/calltracking", "HOME": "/home/ct"})
    state = load_settings(environ={"XDG_STATE_HOME": str(tmp_path / "state")})
    home = load_settings(environ={"HOME": str(tmp_path / "home")})
    told = load_settings(
        environ={
            "CALLTRACKING_DATA_DIR": str(tmp_path / "data"),
            "CALLTRACKING_DATABASE__SPOOL_DIR": "/spool",
        }
    )

    assert systemd.recordings.storage_dir == Path("/var/lib/calltracking/recordings")
    assert state.data_dir == tmp_path / "state" / "calltracking"
    assert (
        home.database.url == f"sqlite+aiosqlite:///{tmp_path}/home/.local/state/calltracking/calltracking.db"
    )
    assert (told.database.spool_dir, told.recordings.storage_dir) == (
        Path("/spool"),
        tmp_path / "data" / "recordings",
    )
