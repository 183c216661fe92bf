"""Freed heap is given back to the kernel: what `trim_heap_periodically` runs once a minute in `serve`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from calltracking.app import memory
from calltracking.app.memory import heap_trimmer, trim_heap_periodically

MiB = 1024 * 1024


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def fragment_a_thread_arena(kept: list[bytearray]) -> None:
    """Allocate ~200 MB in a thread's own malloc arena and free all but one block in fifty: the allocator
    keeps the freed memory, pinned between the survivors, as after a burst of calls."""
    blocks = [bytearray(4000) for _ in range(50_000)]
    kept.extend(blocks[::50])


def test_trimming_gives_freed_heap_back_to_the_kernel() -> None:
    trim = heap_trimmer()
    assert trim is not None, "glibc's malloc_trim: the C library of every platform the image runs on"
    kept: list[bytearray] = []
    worker = threading.Thread(target=fragment_a_thread_arena, args=(kept,))
    worker.start()
    worker.join()
    before = resident_bytes()
    trim()
    after = resident_bytes()

    assert len(kept) == 1_000
    assert before - after > 100 * MiB, f"RSS {before / MiB:.0f} MiB -> {after / MiB:.0f} MiB"


async def test_the_service_trims_on_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []
    monkeypatch.setattr(memory, "heap_trimmer", lambda: lambda: trims.append(1) or 1)
    task = asyncio.create_task(trim_heap_periodically(interval=0.01))
    try:
        async with asyncio.timeout(10):
            while len(trims) < 3:
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert len(trims) >= 3


ARENA_PROBE = """
import sys, threading
from pathlib import Path
from calltracking.app.memory import share_heap_arenas

if sys.argv[1] == "shared":
    assert share_heap_arenas()
together = threading.Barrier(6)
kept = []

def allocate() -> None:
    kept.append([bytearray(4000) for _ in range(2_000)])
    together.wait(timeout=30)

threads = [threading.Thread(target=allocate) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
arenas = 0
for line in Path("/proc/self/smaps").read_text().splitlines():
    fields = line.split()
    if "-" in fields[0] and len(fields) == 5 and fields[1].startswith("rw"):
        arenas += int(fields[0].split("-")[0], 16) % (64 * 1024 * 1024) == 0
print(arenas)
"""


def thread_arenas(mode: str) -> int:
    """Thread arenas (anonymous maps on glibc's 64 MiB heap boundary) in a fresh interpreter whose six
    threads allocate at once: a fresh one because arenas, once made, last as long as the process."""
    done = subprocess.run(
        [sys.executable, "-c", ARENA_PROBE, mode], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_worker_threads_share_two_arenas() -> None:
    assert thread_arenas("own") >= 4, "glibc gives each allocating thread an arena of its own"
    assert thread_arenas("shared") <= memory.ARENA_MAX - 1, "beside the main arena (the process heap)"
