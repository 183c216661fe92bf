"""Files: the content-addressed audio store, the quarantine, the inbox of pushed files, and the PBX's
monitor directory as this host sees it. Every function blocks (run them in a thread); every path that
comes from outside is checked to stay inside its directory.

Stored audio is named by its SHA-256 (`ab/cd/abcd....ogg`): the same audio is stored once, a name can
never point at other content, and a half-written file is never visible under its final name (it is
written in `tmp/`, fsync'd, then renamed).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from calltracking.calls.recording import Part, StoredFile
from calltracking.durable import move_durably
from recordings.audio import sha256_of
from recordings.sources import PathRefused

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# A call's name under a PBX's inbox: a safe name without "..", as one pattern the API's document can
# state (with a length of at most MAX_NAME).
CALL_KEY = re.compile(r"^[A-Za-z0-9](?:\.?[A-Za-z0-9_-])*\.?$")
MAX_NAME = 64


def resolve_inside(root: Path, relative: PurePosixPath | str) -> Path:
    """`root / relative`, following symlinks, if that is still inside `root`; else `PathRefused`."""
    base = root.resolve()
    target = (base / str(relative)).resolve()
    if not target.is_relative_to(base) or target == base:
        raise PathRefused(f"{str(relative)[:200]!r} resolves outside {root}")
    return target


FileIdentity = tuple[int, int, int]  # inode, size, modification time (ns)


def file_identities(paths: Iterable[Path]) -> dict[Path, FileIdentity]:
    """Which file each path names right now (a replaced file is another one); missing paths are left out."""
    found = {}
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            stat = path.stat()
            found[path] = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return found


def find_first(root: Path, candidates: tuple[PurePosixPath, ...]) -> Path | None:
    """The first candidate that exists as a regular file inside `root`."""
    for candidate in candidates:
        path = resolve_inside(root, candidate)
        if path.is_file():
            return path
    return None


def is_safe_name(name: str) -> bool:
    # fullmatch: Python's `$` would also let a name end in a newline.
    return SAFE_NAME.fullmatch(name) is not None


def is_call_key(name: str) -> bool:
    return len(name) <= MAX_NAME and CALL_KEY.fullmatch(name) is not None


class RecordingStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    def _scratch(self) -> Path:
        """Where work in progress lives: on the store's file system, so finished files are renamed into
        place, not copied."""
        scratch = self.root / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        return scratch

    @contextlib.contextmanager
    def work_dir(self) -> Iterator[Path]:
        path = Path(tempfile.mkdtemp(dir=self._scratch()))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def put(self, produced: Path, suffix: str) -> StoredFile:
        """Move a finished file into the store under its content's name."""
        digest = sha256_of(produced)
        relative = f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"
        final = self.root / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        size = produced.stat().st_size
        if not final.exists():
            move_durably(produced, final)
        return StoredFile(path=relative, sha256=digest, bytes=size)

    def path_of(self, stored: StoredFile) -> Path:
        return resolve_inside(self.root, stored.path)

    def remove(self, relative: str) -> bool:
        try:
            resolve_inside(self.root, relative).unlink()
        except FileNotFoundError:
            return False
        return True

    def quarantine(self, original: Path, call_key: str) -> StoredFile:
        """Keep a copy of a file that is not audio, for a person to look at; the worker moves on."""
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        target_dir = self.quarantine_dir / day / _safe(call_key)
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / _safe(original.name)
        shutil.copyfile(original, target)
        return StoredFile(
            path=str(target.relative_to(self.root)), sha256=sha256_of(target), bytes=target.stat().st_size
        )

    def inbox_for(self, pbx: str, call_key: str) -> Path:
        if not is_safe_name(pbx) or not is_call_key(call_key):
            raise PathRefused(f"not a PBX name and call id: {pbx[:64]!r}, {call_key[:64]!r}")
        return self.inbox_dir / pbx / call_key

    def pushed_parts(self, pbx: str, call_key: str) -> dict[Part, Path]:
        """The files a PBX pushed for this call, by part (`<part>.audio` in its inbox)."""
        directory = self.inbox_for(pbx, call_key)
        found = {}
        for part in Part:
            path = directory / f"{part.value}.audio"
            if path.is_file():
                found[part] = path
        return found

    def accept_push(self, pbx: str, call_key: str, part: Part, received: Path) -> Path:
        """Put a fully received upload in the call's inbox (a later push of the same part replaces it)."""
        directory = self.inbox_for(pbx, call_key)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{part.value}.audio"
        move_durably(received, final)
        return final

    def upload_file(self) -> Path:
        """A new empty file for an upload in progress."""
        handle, name = tempfile.mkstemp(dir=self._scratch(), suffix=".upload")
        os.close(handle)
        return Path(name)

    def clear_inbox(self, pbx: str, call_key: str, taken: Mapping[Path, FileIdentity]) -> None:
        """Remove the pushed files that were converted, as they were then: a part pushed again meanwhile
        (a new file under the same name) stays for the next run."""
        for path, identity in taken.items():
            if file_identities([path]).get(path) == identity:
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: something new arrived
            self.inbox_for(pbx, call_key).rmdir()


def _safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]", "_", name)[:128].lstrip(".")
    return cleaned or "file"
