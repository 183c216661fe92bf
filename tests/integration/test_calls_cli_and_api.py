"""`calltracking calls --json` and `GET /api/v1/calls` show one shape: the same fields, values and times."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

from api.schemas import CallOut
from calltracking.app.cli import main
from tests.helpers.api import running_api


async def test_cli_and_api_list_the_same_calls_field_for_field(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_api(database_url, tmp_path) as api:
        response = await api.client.get("/api/v1/calls?limit=500", headers=api.auth("admin"))
        assert response.status == 200
        from_api = (await response.json())["items"]
        capsys.readouterr()
        assert await asyncio.to_thread(main, ["calls", "--database", database_url, "--json"]) == 0
        from_cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    assert len(from_api) > 5
    assert from_cli == from_api
    assert all(call["started_at"].endswith("Z") for call in from_cli)


def test_the_readmes_call_record_names_every_field_the_api_and_cli_show() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    record = readme.split("## The call record", 1)[1]
    section = record.split("| field | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = {
        name
        for line in section.splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([a-z_]+)`", line.split(" | ")[0])
    }
    assert documented == set(CallOut.model_fields)
