"""BlobStore: content addressing, atomic writes, safe extraction of untrusted archives."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from hearth.store import blobs as blobs_mod
from hearth.store import blobs as blobs_module
from hearth.store.blobs import MSG_UNZIP, MSG_UNZIPPED_SIZE, BlobStore, ZipRejected, inspect_zip


def make_zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            zf.writestr(info, content)
    return buf.getvalue()


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path)


def test_put_is_content_addressed_and_idempotent(blobs: BlobStore, tmp_path: Path) -> None:
    data = make_zip([("a.txt", b"a", 0o100644)])
    sha = blobs.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert blobs.path(sha) == tmp_path / "blobs" / "sha256" / f"{sha}.zip"
    assert blobs.read(sha) == data and blobs.put(data) == sha
    assert [p.name for p in blobs.root.iterdir()] == [f"{sha}.zip"]


def test_failed_put_leaves_no_temporary(blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        blobs.put(b"data")
    assert list(blobs.root.iterdir()) == []


def test_extract_sets_modes_for_the_sandbox_user(blobs: BlobStore) -> None:
    data = make_zip(
        [
            ("bootstrap", b"#!/bin/sh\n", 0o100755),
            ("lib/mod.py", b"x = 1\n", 0o100600),
            ("empty/", b"", 0o040700),
        ]
    )
    sha = blobs.put(data)
    code = blobs.extract(sha)
    assert code == blobs.code_path(sha)
    assert stat.S_IMODE(code.stat().st_mode) == 0o755
    assert stat.S_IMODE((code / "bootstrap").stat().st_mode) == 0o755
    assert stat.S_IMODE((code / "lib" / "mod.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((code / "lib").stat().st_mode) == 0o755
    assert (code / "empty").is_dir()
    assert blobs.extract(sha) == code  # once only
    assert [p.name for p in blobs.code_root.iterdir()] == [sha]


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../b.txt"])
def test_escaping_paths_are_refused(blobs: BlobStore, name: str) -> None:
    data = make_zip([(name, b"x", 0o100644)])
    with pytest.raises(ZipRejected):
        inspect_zip(data)
    sha = blobs.put(data)
    with pytest.raises(ZipRejected):
        blobs.extract(sha)
    assert not blobs.code_path(sha).exists()
    assert list(blobs.code_root.iterdir()) == []


def test_symlinks_are_refused(blobs: BlobStore) -> None:
    data = make_zip([("link", b"/etc/passwd", 0o120777)])
    with pytest.raises(ZipRejected, match="Could not unzip"):
        inspect_zip(data)
    with pytest.raises(ZipRejected):
        blobs.extract(blobs.put(data))


def test_not_a_zip(blobs: BlobStore) -> None:
    with pytest.raises(ZipRejected) as exc:
        inspect_zip(b"not a zip at all")
    assert str(exc.value) == MSG_UNZIP


def test_declared_size_over_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(blobs_mod, "UNZIPPED_LIMIT", 1000)
    data = make_zip([("a", b"\0" * 600, 0o100644), ("b", b"\0" * 600, 0o100644)])
    with pytest.raises(ZipRejected) as exc:
        inspect_zip(data)
    assert str(exc.value) == MSG_UNZIPPED_SIZE


def test_extraction_stops_at_the_limit_whatever_headers_say(
    blobs: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_zip([("a", b"\0" * 5000, 0o100644)])
    sha = blobs.put(data)
    monkeypatch.setattr(blobs_mod, "UNZIPPED_LIMIT", 1000)
    with pytest.raises(ZipRejected, match="Unzipped size"):
        blobs.extract(sha)
    assert list(blobs.code_root.iterdir()) == []  # nothing half-extracted


def test_corrupt_member_is_refused_atomically(blobs: BlobStore) -> None:
    data = bytearray(make_zip([("a.txt", b"hello world" * 100, 0o100644)]))
    offset = data.index(b"a.txt") + len("a.txt") + 5  # inside the compressed stream
    data[offset] ^= 0xFF
    sha = blobs.put(bytes(data))
    with pytest.raises(ZipRejected):
        blobs.extract(sha)
    assert list(blobs.code_root.iterdir()) == []


def test_cleanup_temporaries(blobs: BlobStore) -> None:
    (blobs.root / ".tmp-x.zip").write_bytes(b"partial")
    (blobs.code_root / ".tmp-abc").mkdir()
    blobs.cleanup_temporaries()
    assert list(blobs.root.iterdir()) == [] and list(blobs.code_root.iterdir()) == []


def test_an_archive_of_exactly_the_unzipped_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # AWS: "Unzipped size must be smaller than 262144000 bytes" refuses the limit itself
    # (LocalStack's test_oversized_unzipped_lambda); one byte less is accepted (test_large_lambda).
    monkeypatch.setattr(blobs_module, "UNZIPPED_LIMIT", 10)
    assert inspect_zip(make_zip([("a.txt", b"x" * 9, 0o100644)])) == 9
    with pytest.raises(ZipRejected) as exc:
        inspect_zip(make_zip([("a.txt", b"x" * 10, 0o100644)]))
    assert str(exc.value) == MSG_UNZIPPED_SIZE
