"""The heap of a long-running service: the garbage collector tuned for it, and freed memory given back.

What exists once the service is wired up (modules, the app, caches) lives as long as the process, so the
collector stops walking it, and collects the young generation less eagerly. A report building thousands
of objects per request otherwise paid for full collections over the whole heap (bench/README.md "Web
pages").

glibc's allocator keeps memory that Python and the drivers freed, in every thread's arena, for reuse: over
a million calls the service's RSS rose by 60 MB while the memory in use did not (bench/README.md
"memory.py"). `trim_heap_periodically` hands the free pages back to the kernel every ten seconds
(`malloc_trim(0)`, which releases whole free pages inside every arena, not only at the top of the heap),
so the RSS an admin watches follows what the service holds. Not glibc (musl, macOS): nothing to do.

The trim cannot give back a page that still holds one live block, and glibc gives every thread that
allocates an arena of its own (up to eight per core): each aiosqlite connection's worker thread kept its
own holes, and over a million calls those thread arenas grew by 31 MB while SQLite's memory in use fell.
`share_heap_arenas` caps the arenas at two before any worker thread starts, so the threads reuse each
other's freed memory, and fixes the size above which a block is mapped on its own (glibc otherwise raises
it to the largest block freed so far, and large transient blocks are then carved from the arenas, where
they leave holes).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# Allocations between young-generation collections (CPython's default is 700), and the default ratios
# for the older two.
YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Call once the process is wired up, before it serves."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)


# mallopt's parameters (glibc's malloc.h) and the values the service runs with.
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENA_MAX = 2
MMAP_THRESHOLD_BYTES = 256 * 1024


def _c_function(name: str, *argtypes: type[ctypes._SimpleCData[Any]]) -> Any | None:
    """One of the C library's functions, taking `argtypes` and returning an int; None where the C
    library has none of that name (not glibc: musl, macOS)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        function = getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function


def share_heap_arenas() -> bool:
    """Call before the process starts threads; False where the C library has no `mallopt` (not glibc)."""
    mallopt = _c_function("mallopt", ctypes.c_int, ctypes.c_int)
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, ARENA_MAX)) and bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


# A trim once a minute let 5-16 MB of freed memory build up between trims, a sawtooth as large as the
# whole growth allowed over a million calls; a trim takes under 10 ms of a worker thread.
TRIM_INTERVAL_SECONDS = 10.0


def heap_trimmer() -> Callable[[], int] | None:
    """glibc's `malloc_trim`, or None where the C library has none."""
    trim = _c_function("malloc_trim", ctypes.c_size_t)
    if trim is None:
        return None
    return lambda: int(trim(0))


async def trim_heap_periodically(interval: float = TRIM_INTERVAL_SECONDS) -> None:
    """Run for the life of the process: give freed heap pages back to the kernel every `interval`."""
    trim = heap_trimmer()
    if trim is None:
        log.info("heap_trim_unavailable")
        return
    while True:
        await asyncio.sleep(interval)
        # A trim walks every arena under its lock: off the event loop, so no AMI event waits on it.
        await asyncio.to_thread(trim)
