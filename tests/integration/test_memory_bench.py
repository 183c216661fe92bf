"""CI's shortened run of bench/memory.py: the memory benchmark still streams calls through the service,
sees them in the database and prints its figures. (Figures are not judged here: a short run measures
warm-up, and a shared CI machine's memory says nothing.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "memory.py"


def test_memory_bench_short_run_prints_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--calls", "200", "--idle", "0.2"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert any(line.strip().startswith("200 calls  RSS") for line in lines), done.stdout
    assert any(line.startswith("RSS end/first (10 -> 200 calls): ") for line in lines), done.stdout
    assert any(line.strip().startswith("RSS ") and line.endswith(" B") for line in lines), done.stdout
