"""Object bodies on disk: one immutable file per body, named by a generated id.

It owns the `<data_dir>/s3/` directory: bodies are written to `tmp/<id>`, fsynced, renamed into
`blobs/<id[:2]>/<id>` and the directory fsynced — only then may a metadata row point at them, so an
acknowledged object survives `kill -9` and a crash mid-upload leaves only a temporary file (removed
at the next start). File names never come from keys. Files are never modified once renamed: a copy
is a hard link, and a file is unlinked only after the row that named it is gone (`sweep` removes
files no row names, e.g. after a crash between the rename and the commit). It never reads metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

READ_CHUNK = 1024 * 1024


def new_id() -> str:
    return uuid.uuid4().hex


class BlobWriter:
    """One body being written; `commit()` makes it durable and returns its id, `discard()` drops it."""

    def __init__(self, files: ObjectFiles) -> None:
        self._files = files
        self.id = new_id()
        self.tmp = files.tmp_dir / self.id
        self._fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self.size += len(data)

    async def commit(self) -> str:
        fd, self._fd = self._fd, -1
        await asyncio.to_thread(self._files.install, fd, self.tmp, self.id)
        return self.id

    def discard(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()


class ObjectFiles:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "s3"
        self.tmp_dir = self.root / "tmp"
        self.blob_dir = self.root / "blobs"
        self.tmp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.blob_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for leftover in self.tmp_dir.iterdir():  # uploads a crash interrupted: never visible
            with contextlib.suppress(OSError):
                leftover.unlink()

    def path(self, blob: str) -> Path:
        if len(blob) != 32 or not blob.isalnum():
            raise ValueError(f"not a blob id: {blob!r}")
        return self.blob_dir / blob[:2] / blob

    def writer(self) -> BlobWriter:
        return BlobWriter(self)

    def install(self, fd: int, tmp: Path, blob: str) -> None:
        """fsync the body, rename it into place, fsync the directories (runs in a worker thread)."""
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target = self.path(blob)
        created = not target.parent.exists()
        target.parent.mkdir(exist_ok=True, mode=0o700)
        os.rename(tmp, target)
        _fsync_dir(target.parent)
        if created:
            _fsync_dir(self.blob_dir)

    def link(self, blob: str) -> str:
        """A new id for the same immutable body (CopyObject without copying bytes)."""
        fresh = new_id()
        target = self.path(fresh)
        target.parent.mkdir(exist_ok=True, mode=0o700)
        os.link(self.path(blob), target)
        _fsync_dir(target.parent)
        return fresh

    def remove(self, blobs: Iterable[str]) -> None:
        for blob in blobs:
            with contextlib.suppress(FileNotFoundError, ValueError):
                self.path(blob).unlink()

    def sweep(self, referenced: set[str]) -> int:
        """Remove bodies no metadata row names (a crash between rename and commit); returns how many."""
        removed = 0
        for sub in self.blob_dir.iterdir():
            for f in sub.iterdir():
                if f.name not in referenced:
                    with contextlib.suppress(OSError):
                        f.unlink()
                        removed += 1
        return removed

    async def read(self, segments: list[tuple[str, int]], start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the body made of `segments` ((blob id, size), in order)."""
        offset = 0
        for blob, size in segments:
            seg_start, seg_end = offset, offset + size
            offset = seg_end
            if seg_end <= start or seg_start >= end:
                continue
            lo = max(start, seg_start) - seg_start
            hi = min(end, seg_end) - seg_start
            with open(self.path(blob), "rb", buffering=0) as f:
                f.seek(lo)
                remaining = hi - lo
                while remaining > 0:
                    chunk = f.read(min(READ_CHUNK, remaining))
                    if not chunk:
                        raise OSError(f"object body {blob} is shorter than recorded")
                    remaining -= len(chunk)
                    yield chunk


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
