"""A journal belongs to one process at a time; a dead process's journal is written by whoever takes it.

The hot-standby pair (README "Hot standby") must each have their own spool directory: a second process on
the same one is refused, not allowed to interleave records. The journal a dead process left on its disk
is written to the database, once, by `calltracking drain-journal` (or by that process's own restart).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from calltracking.app.cli import main
from calltracking.app.runtime import call_pipeline
from calltracking.calls.spool import CallSpool
from calltracking.calls.spool_lock import spool_held
from calltracking.config import DatabaseSettings
from calltracking.errors import ConfigError
from tests.helpers.factories import make_call
from tests.helpers.listening import stored_calls


async def test_a_second_process_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    settings = DatabaseSettings(
        url=f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", spool_dir=tmp_path / "spool"
    )
    async with call_pipeline(settings):
        with pytest.raises(ConfigError, match=r"needs a \[database\] spool_dir .* of its own"):
            async with call_pipeline(settings):
                pass
    async with call_pipeline(settings) as again:  # released with the first
        assert again.call_log.spool_depth == 0


def test_a_dead_peers_journal_is_written_once_by_drain_journal(
    database_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    journal = tmp_path / "dead-peer-spool"
    with CallSpool(journal) as spool:  # what a killed process leaves: appended, never acknowledged
        for number in range(1, 6):
            spool.append(make_call(number))

    first = drain(journal, database_url, capsys)
    again = drain(journal, database_url, capsys)

    stored = asyncio.run(stored_calls(database_url))
    assert sorted(s.call.pbx_call_id for s in stored) == [f"1795349935.{n}" for n in range(1, 6)]
    assert first == (0, "wrote 5 calls from " + str(journal))
    assert again == (0, "wrote 0 calls from " + str(journal))


def test_drain_journal_refuses_a_journal_in_use_or_absent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}"
    journal = tmp_path / "spool"
    with CallSpool(journal), spool_held(journal):
        while_held = drain(journal, database, capsys)
    missing = drain(tmp_path / "nowhere", database, capsys)

    assert while_held == (
        2,
        f"calltracking: the journal in {journal} is in use by process {os.getpid()}: "
        "each calltracking process needs a [database] spool_dir (a data directory) of its own",
    )
    assert missing == (2, f"calltracking: no journal in {tmp_path / 'nowhere'} (no journal.log)")


def drain(journal: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`calltracking drain-journal`: its exit code, and what it printed on stdout (or, when it failed, its
    error line; the log lines on stderr are not its answer)."""
    capsys.readouterr()
    code = main(["drain-journal", str(journal), "--database", database_url])
    out, err = capsys.readouterr()
    errors = [
        line
        for line in err.splitlines()
        if line.startswith("calltracking: ") and not line.startswith("calltracking: database ")
    ]
    return code, out.strip() or "\n".join(errors)
