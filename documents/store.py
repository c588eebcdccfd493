"""Content-addressed document stores: immutable, idempotent, checked on read. `ContentStore` is what the
service layer uses (`mairie.services.paperwork.keep/load`); `DocumentStore` keeps files in a folder, and
`mairie.adapters.document_store.DatabaseStore` keeps the bytes in the database (`MAIRIE_DOCUMENT_STORE`).

The file store:

A file lives at `<root>/<sha[:2]>/<sha><suffix>`, its name being the SHA-256 of its bytes. It is
written to a temporary file in the same folder, flushed to disk, then linked into place: a reader
never sees a partial file, and an existing file is never overwritten. The store knows nothing of the
database; the service layer records a `models.entities.StoredDocument` with the returned hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class StoreError(Exception):
    """The store cannot give back what was asked: unknown hash, or a file whose bytes changed."""


@dataclass(frozen=True)
class StoredFile:
    """Where a content was stored and what it is (`path` is None when the store is not a folder)."""

    sha256: str
    path: Path | None
    size: int


class ContentStore(Protocol):
    """Bytes kept under their SHA-256: a second put of the same bytes changes nothing; a get checks them."""

    def put(self, content: bytes, suffix: str = ".pdf", *, transaction: object | None = None) -> StoredFile:
        """Store bytes once. `transaction` is the caller's open SQLAlchemy session: a store that can write
        in it does (the bytes then commit, or roll back, with the rows that point to them)."""
        ...

    def get(self, sha256: str, suffix: str | None = None) -> bytes:
        """The bytes stored under a hash, checked against it (`StoreError` if absent or altered)."""
        ...

    def __contains__(self, sha256: str) -> bool: ...


class DocumentStore:
    """Files named by their SHA-256 under one root folder (`MAIRIE_DOCUMENT_STORE=files`)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path_for(self, sha256: str, suffix: str = ".pdf") -> Path:
        """Where the content of that hash is (or would be) kept."""
        _check_sha(sha256)
        _check_suffix(suffix)
        return self.root / sha256[:2] / f"{sha256}{suffix}"

    def put(self, content: bytes, suffix: str = ".pdf", *, transaction: object | None = None) -> StoredFile:
        """Store bytes once; putting the same bytes again returns the same entry and writes nothing.

        A folder has no transaction: the file is written at once, whatever `transaction` is. If the caller
        then rolls back, the file stays unreferenced (harmless: same name, same bytes next time)."""
        sha = hashlib.sha256(content).hexdigest()
        target = self.path_for(sha, suffix)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_new(target, content)
        return StoredFile(sha256=sha, path=target, size=len(content))

    def get(self, sha256: str, suffix: str | None = None) -> bytes:
        """The bytes stored under a hash, checked against it (`StoreError` if absent or altered)."""
        path = self.find(sha256, suffix)
        content = path.read_bytes()
        if hashlib.sha256(content).hexdigest() != sha256:
            raise StoreError(f"le fichier {path} a été modifié : son empreinte ne correspond plus")
        return content

    def find(self, sha256: str, suffix: str | None = None) -> Path:
        """The path of a stored hash, whatever its suffix when none is given."""
        if suffix is not None:
            path = self.path_for(sha256, suffix)
            if path.exists():
                return path
        else:
            _check_sha(sha256)
            matches = sorted((self.root / sha256[:2]).glob(f"{sha256}.*"))
            if matches:
                return matches[0]
        raise StoreError(f"aucun document d'empreinte {sha256} dans {self.root}")

    def __contains__(self, sha256: str) -> bool:
        try:
            self.find(sha256)
        except StoreError:
            return False
        return True


def _write_new(target: Path, content: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)
        try:
            # link() fails if the target exists: a concurrent writer of the same bytes won, which is fine.
            os.link(tmp, target)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: rename, unless the file appeared meanwhile
            if not target.exists():
                os.replace(tmp, target)
                return
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(target.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def check_sha(sha256: str) -> None:
    """Refuse anything but 64 lowercase hexadecimal digits (`StoreError`)."""
    _check_sha(sha256)


def check_suffix(suffix: str) -> None:
    """Refuse a file extension that is not short, lowercase and alphanumeric (`StoreError`)."""
    _check_suffix(suffix)


def _check_sha(sha256: str) -> None:
    if not _SHA256.match(sha256):
        raise StoreError(f"empreinte SHA-256 invalide : {sha256!r}")


def _check_suffix(suffix: str) -> None:
    if not _SUFFIX.match(suffix):
        raise StoreError(f"extension de fichier invalide : {suffix!r} (exemples : .pdf, .xml, .json)")
