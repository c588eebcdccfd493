"""Files other systems hand to the back office (Hélios's acquits, dropped by the issuer's télétransmission
platform or an operator), behind a small interface: `Inbox`. `FolderInbox` watches a folder; `MemoryInbox`
is the fake for the tests.

A file read is moved out of the way once handled: to `traites/` when imported, to `erreurs/` (with a
`.txt` saying why) when it could not be, so that the next look finds only new files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol


class Inbox(Protocol):
    def waiting(self) -> list[str]:
        """The names of the files waiting, oldest name first."""
        ...

    def read(self, name: str) -> bytes: ...

    def done(self, name: str, *, ok: bool, note: str = "") -> str:
        """Move a handled file out of the inbox; returns where it went."""
        ...


DONE, FAILED = "traites", "erreurs"


class FolderInbox:
    """A folder on this machine; only the files directly in it are waiting (not `traites/`, `erreurs/`)."""

    def __init__(self, root: Path, suffixes: tuple[str, ...] = (".xml",)) -> None:
        self.root = root
        self.suffixes = suffixes

    def waiting(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in self.suffixes
        )

    def read(self, name: str) -> bytes:
        return (self.root / Path(name).name).read_bytes()

    def done(self, name: str, *, ok: bool, note: str = "") -> str:
        folder = self.root / (DONE if ok else FAILED)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(name).name
        os.replace(self.root / Path(name).name, target)
        if note and not ok:
            target.with_name(target.name + ".txt").write_text(note + "\n", encoding="utf-8")
        return str(target)


class MemoryInbox:
    """The fake: files in a dict; handled ones are kept in `handled` with their outcome."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})
        self.handled: dict[str, tuple[bool, str]] = {}

    def waiting(self) -> list[str]:
        return sorted(self.files)

    def read(self, name: str) -> bytes:
        return self.files[name]

    def done(self, name: str, *, ok: bool, note: str = "") -> str:
        self.files.pop(name)
        self.handled[name] = (ok, note)
        return f"memory:{DONE if ok else FAILED}/{name}"
