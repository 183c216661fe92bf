"""`calltracking doctor`: every check of a setup, one line each, and an exit code for scripts.

The checks run concurrently (the PBX sessions listen for a while; a big speech model takes seconds to
load) and print in a fixed order: the database, each PBX, this host's files and tools. Exit 0 when
nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import asyncio
from typing import TextIO

from calltracking.app.doctor.database import check_database
from calltracking.app.doctor.host import check_ffmpeg, check_models, check_recordings_dir
from calltracking.app.doctor.pbx import check_pbx
from calltracking.app.doctor.result import CheckResult, Status
from calltracking.config import Settings

__all__ = ["CheckResult", "Status", "run_checks", "run_doctor"]


async def run_checks(
    settings: Settings, listen_seconds: float, search_path: str | None = None
) -> list[CheckResult]:
    database = asyncio.create_task(check_database(settings.database))
    pbxs = [asyncio.create_task(check_pbx(pbx, listen_seconds)) for pbx in settings.pbxs]
    ffmpeg = asyncio.create_task(check_ffmpeg(settings.recordings, search_path))
    models = asyncio.create_task(check_models(settings.transcription))
    results = [await database]
    for pbx, task in zip(settings.pbxs, pbxs, strict=True):
        results += await task
        results.append(check_recordings_dir(pbx))
    results.append(await ffmpeg)
    results += await models
    return results


async def run_doctor(
    settings: Settings, out: TextIO, listen_seconds: float, search_path: str | None = None
) -> int:
    results = await run_checks(settings, listen_seconds, search_path)
    for result in results:
        out.write(result.line + "\n")
    counts = {status: sum(r.status is status for r in results) for status in Status}
    out.write(f"{counts[Status.FAIL]} failed, {counts[Status.WARN]} warning(s), {counts[Status.OK]} ok\n")
    return 1 if counts[Status.FAIL] else 0
