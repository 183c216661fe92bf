"""The `calltracking` command as an admin uses it (sync tests: the CLI runs its own event loop)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from calltracking.app.cli import main
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
        ("inbound", "answered", "102", "102"),
        ("outbound", "busy", None, "102"),
    ]
    assert {"id", "pbx", "linkedid", "caller_number", "rang", "started_at", "recording_file"} <= set(lines[0])
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
    answered, missed = [json.loads(line) for line in run("calls", "--json")[1].splitlines()]
    assert answered["recording"]["duration_seconds"] == pytest.approx(6.02, abs=0.05)
    assert answered["recording"]["sides"] == ["customer", "manager"]
    assert answered["recording"]["url"] == f"/api/v1/calls/{answered['id']}/recording"
    assert (answered["recording_state"], answered["recording_missing"]) == ("ready", False)
    assert (missed["recording"], missed["recording_state"]) == (None, "empty")
    stored = list(store.rglob("*.ogg"))
    assert len(stored) == 3

    # The captures are from 2026-11-22 12:19 UTC: a retention age of a minute covers them.
    assert run("legal-hold", str(answered["id"]))[0] == 0
    held = json.loads(run("retention", "--days", "0.001", "--dry-run")[1])
    assert run("legal-hold", str(answered["id"]), "--release")[0] == 0
    dry = json.loads(run("retention", "--days", "0.001", "--dry-run")[1])
    done = json.loads(run("retention", "--days", "0.001")[1])
    after = json.loads(run("calls", "--json")[1].splitlines()[0])

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
