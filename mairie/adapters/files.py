"""Files the back office hands to people and other systems (deposit folders, the accountant's export),
behind a small interface: `FileDrop`. `LocalFolder` writes under a root folder, atomically; `MemoryDrop`
keeps everything in memory for the tests.

Paths are relative to the drop's root, with `/` separators; a path that would leave the root is refused.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol


class FileDrop(Protocol):
    def write(self, relative: str, content: bytes) -> str:
        """Write (or replace) a file; returns where it is (a path or a name people can find)."""
        ...

    def append_csv_row(self, relative: str, header: Sequence[str], row: Sequence[str]) -> str:
        """Append a `;`-separated row to a CSV file, writing its header when the file is new."""
        ...

    def read(self, relative: str) -> bytes | None: ...


def _safe(relative: str) -> PurePosixPath:
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ValueError(f"chemin de dépôt refusé : {relative!r}")
    return path


def _csv_line(row: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerow(row)
    return buffer.getvalue().encode("utf-8")


class LocalFolder:
    """A folder on this machine (`MAIRIE_DEPOSIT_DIR`)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _target(self, relative: str) -> Path:
        return self.root.joinpath(*_safe(relative).parts)

    def write(self, relative: str, content: bytes) -> str:
        target = self._target(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_bytes() == content:
            return str(target)
        # A temporary file of its own: two processes filing the same document at once both succeed.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, target)
        return str(target)

    def append_csv_row(self, relative: str, header: Sequence[str], row: Sequence[str]) -> str:
        target = self._target(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab") as handle:
            if handle.tell() == 0:
                handle.write(_csv_line(header))
            handle.write(_csv_line(row))
        return str(target)

    def read(self, relative: str) -> bytes | None:
        target = self._target(relative)
        return target.read_bytes() if target.exists() else None


class MemoryDrop:
    """The fake: files in a dict, for tests that check what was handed over without a file system."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def write(self, relative: str, content: bytes) -> str:
        self.files[str(_safe(relative))] = content
        return f"memory:{_safe(relative)}"

    def append_csv_row(self, relative: str, header: Sequence[str], row: Sequence[str]) -> str:
        key = str(_safe(relative))
        if key not in self.files:
            self.files[key] = _csv_line(header)
        self.files[key] += _csv_line(row)
        return f"memory:{key}"

    def read(self, relative: str) -> bytes | None:
        return self.files.get(str(_safe(relative)))
