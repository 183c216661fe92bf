"""The `calltracking` command as an admin uses it (sync tests: the CLI runs its own event loop)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest

from calltracking.app.cli import main, shown_database_url
from tests.helpers.captures import TRACES


def test_replay_then_calls_as_json_and_as_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    captures = [str(TRACES / "inbound_group_answered.ami"), str(TRACES / "outbound_busy.ami")]

    assert main(["replay", *captures, "--database", url]) == 0
    capsys.readouterr()
    assert main(["calls", "--database", url, "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["calls", "--database", url]) == 0
    table = capsys.readouterr().out

    assert [(c["direction"], c["status"], c["answered_by"], c["manager"]) for c in lines] == [
        ("outbound", "busy", None, "102"),
        ("inbound", "answered", "102", "102"),
    ]
    assert {"id", "pbx", "linkedid", "caller_number", "rang", "started_at", "recording_state"} <= set(
        lines[0]
    )
    assert lines[0]["started_at"].endswith("Z")
    assert "legs" not in lines[0]
    assert table.splitlines()[0].split()[:4] == ["ID", "STARTED", "(UTC)", "DIR"]
    assert table.rstrip().endswith("2 call(s)")


def test_replay_of_a_missing_file_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    assert main(["replay", str(tmp_path / "nope.ami"), "--database", url]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_bad_settings_stop_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[[pbx]]\nport = 'five'\n")
    assert main(["--config", str(config), "calls"]) == 2
    assert "invalid settings" in capsys.readouterr().err


def test_unsupported_database_url_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calls", "--database", "mysql://x@y/z"]) == 2
    assert "unsupported database" in capsys.readouterr().err


def test_migrate_creates_the_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    assert main(["migrate", "--database", url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["calls", "--database", url]) == 0
    assert "0 call(s)" in capsys.readouterr().out


def test_tokens_are_created_listed_and_revoked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    assert main(["token", "--database", url, "create", "--role", "integration", "--name", "CRM"]) == 0
    created = capsys.readouterr().out.splitlines()
    secret = created[-1]
    assert secret.startswith("ct_") and "integration" in created[0]
    assert main(["token", "--database", url, "create", "--role", "manager", "--manager", "101"]) == 0
    capsys.readouterr()

    assert main(["token", "--database", url, "list"]) == 0
    listing = capsys.readouterr().out
    assert "integration" in listing and "manager=101" in listing and secret not in listing

    assert main(["token", "--database", url, "revoke", "1"]) == 0
    assert main(["token", "--database", url, "revoke", "1"]) == 1
    capsys.readouterr()
    assert main(["token", "--database", url, "list"]) == 0
    assert "revoked" in capsys.readouterr().out.splitlines()[0]


@pytest.mark.parametrize(
    "args",
    [["--role", "manager"], ["--role", "admin", "--manager", "101"], ["--role", "root"]],
)
def test_token_creation_refuses_inconsistent_roles(tmp_path: Path, args: list[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    with pytest.raises(SystemExit) if "root" in args else contextlib.nullcontext():
        assert main(["token", "--database", url, "create", *args]) == 2


def test_replayed_recordings_are_listed_held_and_deleted_by_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    store = tmp_path / "store"
    config = tmp_path / "calltracking.toml"
    config.write_text(f'[recordings]\nstorage_dir = "{store}"\n')
    captures = [str(TRACES / "inbound_single_answered.ami"), str(TRACES / "inbound_single_missed.ami")]

    def run(*args: str) -> tuple[int, str]:
        code = main(["--config", str(config), *args, "--database", url])
        return code, capsys.readouterr().out

    assert run("replay", *captures, "--recordings-dir", str(TRACES / "recordings"))[0] == 0
    missed, answered = [json.loads(line) for line in run("calls", "--json")[1].splitlines()]
    assert answered["recording"]["duration_seconds"] == pytest.approx(6.02, abs=0.05)
    assert answered["recording"]["sides"] == ["customer", "manager"]
    assert answered["recording"]["url"] == f"/api/v1/calls/{answered['id']}/recording"
    assert (answered["recording_state"], answered["has_recording"]) == ("ready", True)
    assert (missed["recording"], missed["recording_state"]) == (None, "empty")
    stored = list(store.rglob("*.ogg"))
    assert len(stored) == 3

    # The captures are from 2026-11-22 12:19 UTC: a retention age of a minute covers them.
    assert run("legal-hold", str(answered["id"]))[0] == 0
    held = json.loads(run("retention", "--days", "0.001", "--dry-run")[1])
    assert run("legal-hold", str(answered["id"]), "--release")[0] == 0
    dry = json.loads(run("retention", "--days", "0.001", "--dry-run")[1])
    done = json.loads(run("retention", "--days", "0.001")[1])
    after = json.loads(run("calls", "--json")[1].splitlines()[1])

    assert held["recordings"] == 0
    assert (dry["recordings"], dry["call_ids"], dry["dry_run"]) == (1, [answered["id"]], True)
    assert (done["recordings"], done["files"]) == (1, 3)
    assert [path for path in stored if path.exists()] == []
    assert (after["recording"], after["recording_state"]) == (None, "deleted")
    assert after["talk_seconds"] == answered["talk_seconds"]  # the call record stays


def test_retention_without_an_age_and_hold_of_an_unknown_call_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"

    assert main(["retention", "--database", url]) == 2
    assert "retention_days" in capsys.readouterr().err
    assert main(["legal-hold", "42", "--database", url]) == 1
    assert "no call 42" in capsys.readouterr().err


def test_stats_prints_the_reports_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    captures = [str(TRACES / "inbound_group_answered.ami"), str(TRACES / "outbound_busy.ami")]
    assert main(["replay", *captures, "--database", url]) == 0
    capsys.readouterr()
    november = ["--from", "2026-11-01", "--to", "2026-11-30", "--tz", "UTC", "--database", url]

    assert main(["stats", *november, "--json"]) == 0
    lines = {line["key"]: line for line in map(json.loads, capsys.readouterr().out.splitlines())}
    assert main(["stats", *november, "--csv"]) == 0
    csv_keys = [row.split(",")[0] for row in capsys.readouterr().out.splitlines()[1:]]
    assert main(["stats", *november]) == 0
    table = capsys.readouterr().out.splitlines()

    # 101 rang in the group call that 102 answered: it neither received nor missed it.
    assert list(lines) == csv_keys == ["ext:102", "total"]
    assert (lines["ext:102"]["inbound_answered"], lines["ext:102"]["outbound_made"]) == (1, 1)
    assert table[0] == "2026-11-01T00:00:00+00:00 .. 2026-12-01T00:00:00+00:00 (UTC)"
    assert table[1].split()[:3] == ["MANAGER", "TEAM", "IN"]
    assert [row.split()[0] for row in table[2:]] == ["ext:102", "total"]


def test_stats_with_a_period_it_cannot_read_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    assert main(["stats", "--from", "2026-11-30", "--to", "2026-11-01", "--database", url]) == 2
    assert "`to` must be after `from`" in capsys.readouterr().err


def test_calls_newest_first_since_a_time_and_limited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    captures = [str(TRACES / "inbound_group_answered.ami"), str(TRACES / "outbound_busy.ami")]
    assert main(["replay", *captures, "--database", url]) == 0
    capsys.readouterr()

    def listed(*args: str) -> list[dict[str, object]]:
        assert main(["calls", "--database", url, "--json", *args]) == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    everything = listed()
    newest = str(everything[0]["started_at"])
    assert [call["direction"] for call in everything] == ["outbound", "inbound"]
    assert listed("--limit", "1") == everything[:1]
    assert listed("--since", newest) == everything[:1]
    assert listed("--since", "2100-01-01") == []


def test_commands_say_which_database_they_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["migrate", "--database", "sqlite+aiosqlite:///here.db"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"calltracking: database sqlite+aiosqlite:///{tmp_path}/here.db"
    ]


def test_a_database_is_shown_without_its_password() -> None:
    shown = shown_database_url("postgresql+asyncpg://ct:s3cret@db.example:5432/ct")
    assert shown == "postgresql+asyncpg://ct:***@db.example:5432/ct"


def test_version_is_the_installed_packages(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"calltracking {version('calltracking')}"


def test_every_command_and_option_says_what_it_does() -> None:
    import argparse

    from calltracking.app.cli import _parser

    undocumented: list[str] = []

    def walk(parser: argparse.ArgumentParser, name: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for command, sub in action.choices.items():
                    if not helps.get(command):
                        undocumented.append(f"{name} {command}")
                    walk(sub, f"{name} {command}")
            elif not action.help:
                undocumented.append(f"{name} {'/'.join(action.option_strings) or action.dest}")

    walk(_parser(), "calltracking")
    assert undocumented == []


def test_a_database_from_a_newer_version_is_refused_with_a_way_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "newer.db"
    assert main(["migrate", "--database", f"sqlite+aiosqlite:///{database}"]) == 0
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0999_from_the_future'")
    capsys.readouterr()

    assert main(["calls", "--database", f"sqlite+aiosqlite:///{database}"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("calltracking: the database was migrated by a newer calltracking")
    assert "restore the backup" in err[-1]
