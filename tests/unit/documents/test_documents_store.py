"""The content-addressed store: immutable, idempotent, checked on read."""

import hashlib
import os

import pytest

from documents.store import DocumentStore, StoreError


def test_put_writes_under_the_hash(tmp_path):
    store = DocumentStore(tmp_path)
    stored = store.put(b"%PDF-1.7 hello", ".pdf")
    sha = hashlib.sha256(b"%PDF-1.7 hello").hexdigest()
    assert stored.sha256 == sha
    assert stored.path == tmp_path / sha[:2] / f"{sha}.pdf"
    assert stored.size == 14
    assert store.get(sha) == b"%PDF-1.7 hello"
    assert sha in store


def test_same_bytes_twice_same_entry_and_no_rewrite(tmp_path):
    store = DocumentStore(tmp_path)
    first = store.put(b"abc")
    mtime = first.path.stat().st_mtime_ns
    second = store.put(b"abc")
    assert second == first
    assert first.path.stat().st_mtime_ns == mtime
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temp file left


def test_stored_file_is_read_only(tmp_path):
    stored = DocumentStore(tmp_path).put(b"immutable")
    assert not os.access(stored.path, os.W_OK) or os.geteuid() == 0
    assert stored.path.stat().st_mode & 0o222 == 0


def test_altered_file_is_refused(tmp_path):
    store = DocumentStore(tmp_path)
    stored = store.put(b"original")
    os.chmod(stored.path, 0o644)
    stored.path.write_bytes(b"tampered")
    with pytest.raises(StoreError, match="modifié"):
        store.get(stored.sha256)


def test_unknown_hash_and_bad_input(tmp_path):
    store = DocumentStore(tmp_path)
    with pytest.raises(StoreError):
        store.get("0" * 64)
    with pytest.raises(StoreError):
        store.get("../../etc/passwd")
    with pytest.raises(StoreError):
        store.put(b"x", "/../evil")


def test_other_suffixes(tmp_path):
    store = DocumentStore(tmp_path)
    stored = store.put(b"<xml/>", ".xml")
    assert stored.path.suffix == ".xml"
    assert store.get(stored.sha256, ".xml") == b"<xml/>"
