"""cProfile of exactly the measured stretches of a benchmark, one per scenario."""

from __future__ import annotations

import contextlib
import cProfile
import pstats
import time
from collections.abc import Iterator
from pathlib import Path


class Profiles:
    """With --profile DIR: one cProfile per scenario, on only while its requests are measured. Its clock is
    the process's CPU time (like the CPU columns), not wall time: on 2 shared cores, wall time in a
    profile mostly shows where the process happened to be descheduled."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._profiles: dict[str, cProfile.Profile] = {}

    @contextlib.contextmanager
    def active(self, scenario: str) -> Iterator[None]:
        if self.directory is None:
            yield
            return
        profile = self._profiles.setdefault(scenario, cProfile.Profile(time.process_time))
        profile.enable()
        try:
            yield
        finally:
            profile.disable()

    def write(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        for scenario, profile in self._profiles.items():
            stem = self.directory / "".join(c if c.isalnum() else "_" for c in scenario).strip("_")
            profile.dump_stats(stem.with_suffix(".pstats"))
            with stem.with_suffix(".txt").open("w") as out:
                stats = pstats.Stats(profile, stream=out).strip_dirs()
                stats.sort_stats("cumulative").print_stats(50)
                stats.sort_stats("tottime").print_stats(35)
            print(f"profile of {scenario!r}: {stem}.pstats / .txt")
