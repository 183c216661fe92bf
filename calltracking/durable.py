"""Putting a finished file in its place so that a crash or power loss leaves either the old state or
the new one: the file's data is flushed, it is renamed over its final name, and the rename itself is
flushed (the directory). Used by the spool and the recording store."""

from __future__ import annotations

import os
from pathlib import Path


def move_durably(source: Path, target: Path) -> None:
    with source.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(source, target)
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
