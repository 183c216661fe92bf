"""The garbage collector tuned for a long-running service: what exists once the service is wired up
(modules, the app, caches) lives as long as the process, so the collector stops walking it, and collects
the young generation less eagerly. A report building thousands of objects per request otherwise paid
for full collections over the whole heap (bench/README.md "Web pages")."""

from __future__ import annotations

import gc

# Allocations between young-generation collections (CPython's default is 700), and the default ratios
# for the older two.
YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Call once the process is wired up, before it serves."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
