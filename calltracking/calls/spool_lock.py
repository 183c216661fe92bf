"""One process per journal: an exclusive `flock` on the spool directory for as long as a process uses it.

Two processes appending to one journal would interleave their records and acknowledge each other's calls;
a hot-standby pair configured from one copied settings file would do exactly that. The lock is released
by the kernel when the process dies (SIGKILL included), so a journal left by a dead process can be taken
at once, by its own restart or by `calltracking drain-journal` on another host that sees the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from calltracking.errors import ConfigError

LOCK_FILE = "lock"


@contextlib.contextmanager
def spool_held(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise ConfigError(
                f"the journal in {directory} is in use by {holder}: each calltracking process needs a "
                "[database] spool_dir (a data directory) of its own"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
