"""Freed heap is given back to the kernel: what `trim_heap_periodically` runs once a minute in `serve`."""

from __future__ import annotations

import asyncio
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
