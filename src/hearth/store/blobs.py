"""Content-addressed code archives and their extracted, read-only trees.

It owns `<data_dir>/blobs/sha256/<hex>.zip` (the archives exactly as uploaded) and
`<data_dir>/code/<hex>/` (each archive extracted once). It never decides which function uses which
archive (that is the store and `hearth.functions`), and it never executes anything it extracts.

Guarantees:
- A blob or code directory either exists complete or not at all: both are written under a temporary
  name, fsynced, then renamed.
- Archives are untrusted input. Extraction refuses absolute paths, `..` components, symlinks and
  device entries, and stops at `UNZIPPED_LIMIT` bytes however the archive lies about its sizes
  (zip bombs).
- Extracted trees are world-readable and not writable: directories 0755, files 0644, or 0755 when
  the archive marks them executable (a `bootstrap` must stay executable), so the unprivileged
  sandbox user can read them and no function can change them.

On a shared database engine (PostgreSQL: several nodes are one Hearth) every archive is also kept in
the database, in `CHUNK`-sized rows of the `code_blobs` component, written before `put` returns: a
node that never saw the upload fetches the archive into its own `blobs/` directory (a cache) the first
time it reads or extracts it. Archives are small (AWS: 50 MB zipped through the API), so the database
holds them without strain; extracted trees are never shared, each node extracts its own.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from hearth.store.component import ComponentDb
from hearth.store.engine import engine_for

UNZIPPED_LIMIT = 262_144_000  # AWS's CodeSizeUnzipped
_CHUNK = 1024 * 1024
CHUNK = 4 * 1024 * 1024  # one database row of a shared archive

_SHARED_MIGRATIONS = (
    "CREATE TABLE code_blobs (sha TEXT NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, "
    "PRIMARY KEY (sha, part))",
)

MSG_UNZIP = "Could not unzip uploaded file. Please check your file, then try to upload again."
MSG_UNZIPPED_SIZE = f"Unzipped size must be smaller than {UNZIPPED_LIMIT} bytes"


class ZipRejected(ValueError):
    """The archive cannot be accepted; `str(exc)` is the sentence AWS answers for it."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _safe_member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The relative path an entry extracts to, or None for a directory entry. Raises ZipRejected
    for anything that could escape the target directory or is not a plain file or directory."""
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        # Symlinks (and devices, fifos) could point outside the code directory.
        raise ZipRejected(f"{MSG_UNZIP}")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in path.parts or "\x00" in name:
        raise ZipRejected(MSG_UNZIP)
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        return None
    if info.is_dir() or kind == stat.S_IFDIR:
        return None
    return PurePosixPath(*parts)


def inspect_zip(data: bytes) -> int:
    """Check an uploaded archive without extracting it; return its declared unzipped size.

    Raises ZipRejected with AWS's message for an unreadable archive, unsafe entries, or a declared
    size over the limit. (Extraction re-checks the real sizes: headers can lie.)
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise ZipRejected(MSG_UNZIP) from None
    total = 0
    for info in infos:
        _safe_member_path(info)
        total += info.file_size
    if total >= UNZIPPED_LIMIT:  # "must be smaller than": the limit itself is refused, as AWS
        raise ZipRejected(MSG_UNZIPPED_SIZE)
    return total


class BlobStore:
    """Code archives by SHA-256, and their extracted trees."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "blobs" / "sha256"
        self.code_root = data_dir / "code"
        self.root.mkdir(parents=True, exist_ok=True)
        self.code_root.mkdir(parents=True, exist_ok=True)
        # The sandbox user must traverse into code/<hex>/; the data dir itself stays private
        # (0700) and the sandbox reaches code through a bind mount, so 0755 here leaks nothing.
        self.code_root.chmod(0o755)
        # Archives every node must read (a shared engine); None on SQLite, where the files are all.
        self._shared = (ComponentDb(data_dir, "code_blobs", _SHARED_MIGRATIONS)
                        if engine_for(data_dir).dialect.name != "sqlite" else None)

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close()

    @staticmethod
    def sha256_hex(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    def path(self, sha: str) -> Path:
        _check_hex(sha)
        return self.root / f"{sha}.zip"

    def code_path(self, sha: str) -> Path:
        _check_hex(sha)
        return self.code_root / sha

    def exists(self, sha: str) -> bool:
        if self.path(sha).is_file():
            return True
        return self._shared is not None and bool(
            self._shared.query("SELECT 1 FROM code_blobs WHERE sha = ? AND part = 0", (sha,)))

    def put(self, data: bytes) -> str:
        """Store an archive durably (and, on a shared engine, in the database); return its hex SHA-256.
        Idempotent."""
        sha = self.sha256_hex(data)
        if self._shared is not None:
            with self._shared.tx() as db:
                for part, start in enumerate(range(0, max(len(data), 1), CHUNK)):
                    db.execute("INSERT INTO code_blobs (sha, part, data) VALUES (?, ?, ?) "
                               "ON CONFLICT (sha, part) DO NOTHING", (sha, part, data[start:start + CHUNK]))
        self._write_file(sha, data)
        return sha

    def _fetch(self, sha: str) -> None:
        """Bring a shared archive this node has not seen into its blobs directory (no-op when present)."""
        if self._shared is None or self.path(sha).is_file():
            return
        parts = self._shared.query("SELECT data FROM code_blobs WHERE sha = ? ORDER BY part", (sha,))
        if not parts:
            raise FileNotFoundError(f"no archive {sha} in the shared store")
        data = b"".join(bytes(row[0]) for row in parts)
        if self.sha256_hex(data) != sha:
            raise ValueError(f"the shared archive {sha} does not match its digest")
        self._write_file(sha, data)

    def _write_file(self, sha: str, data: bytes) -> None:
        final = self.path(sha)
        if final.is_file():
            return
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".zip", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def read(self, sha: str) -> bytes:
        self._fetch(sha)
        return self.path(sha).read_bytes()

    def delete(self, sha: str) -> None:
        """Remove an archive and its extracted tree (the caller knows nothing references them). Other
        nodes' cached copies stay until their data directory is cleared: nothing names them any more."""
        if self._shared is not None:
            with self._shared.tx() as db:
                db.execute("DELETE FROM code_blobs WHERE sha = ?", (sha,))
        self.path(sha).unlink(missing_ok=True)
        code = self.code_path(sha)
        if code.exists():
            _make_writable(code)
            shutil.rmtree(code, ignore_errors=True)

    def extract(self, sha: str) -> Path:
        """Extract the archive once to <data_dir>/code/<hex>/ and return that directory.

        Blocking (disk and CPU): call it from a worker thread. Raises ZipRejected for an archive
        that turns out to be corrupt, unsafe or too large when really decompressed.
        """
        final = self.code_path(sha)
        if final.is_dir():
            return final
        self._fetch(sha)
        blob = self.path(sha)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{sha[:16]}-", dir=self.code_root))
        try:
            _extract_into(blob, tmp)
            _seal(tmp)
            try:
                os.rename(tmp, final)
            except OSError:
                if not final.is_dir():  # not a concurrent extraction of the same blob: a real failure
                    raise
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
            _fsync_dir(self.code_root)
        except BaseException:
            if tmp.exists():
                _make_writable(tmp)
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def cleanup_temporaries(self) -> None:
        """Remove half-written files left by a crash (call at start, before any writer runs)."""
        for leftover in self.root.glob(".tmp-*"):
            leftover.unlink(missing_ok=True)
        for leftover in self.code_root.glob(".tmp-*"):
            _make_writable(leftover)
            shutil.rmtree(leftover, ignore_errors=True)


def _check_hex(sha: str) -> None:
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ValueError(f"not a sha256 hex digest: {sha!r}")


def _extract_into(blob: Path, target: Path) -> None:
    total = 0
    try:
        with zipfile.ZipFile(blob) as zf:
            for info in zf.infolist():
                rel = _safe_member_path(info)
                if rel is None:
                    dir_parts = [
                        p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p not in ("", ".")
                    ]
                    if dir_parts:
                        target.joinpath(*dir_parts).mkdir(parents=True, exist_ok=True)
                    continue
                dest = target.joinpath(*rel.parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.exists():
                    # Duplicate names: the last entry wins, as with `unzip -o`.
                    dest.unlink()
                executable = bool((info.external_attr >> 16) & 0o111)
                with zf.open(info) as src, open(dest, "xb") as out:
                    while True:
                        chunk = src.read(_CHUNK)
                        if not chunk:
                            break
                        total += len(chunk)
                        if total > UNZIPPED_LIMIT:
                            raise ZipRejected(MSG_UNZIPPED_SIZE)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                os.chmod(dest, 0o755 if executable else 0o644)
    except ZipRejected:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        ValueError,
        NotImplementedError,
        RuntimeError,
    ):
        raise ZipRejected(MSG_UNZIP) from None


def _seal(root: Path) -> None:
    """Directories 0755 (files already have their final modes)."""
    for dirpath, _dirnames, _files in os.walk(root):
        os.chmod(dirpath, 0o755)


def _make_writable(root: Path) -> None:
    """Let the owner delete a sealed tree (root can anyway; an unprivileged Hearth needs this)."""
    for dirpath, _dirnames, _files in os.walk(root):
        try:
            os.chmod(dirpath, 0o755)
        except OSError:
            pass
