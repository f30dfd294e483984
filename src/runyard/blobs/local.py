"""LocalBlobStore: blobs as files in a directory.

Layout::

    <root>/sha256/ab/abcdef0123...   one file per blob, named by its full digest
    <root>/.partial/                 content being written (never read as a blob)
    <root>/.partial/r-<id>, r-<id>.offset   a resumable upload's parts and its committed offset

A writer streams into a temporary file under ``.partial/`` while hashing, then publishes it
with ``os.link`` to its final name (or drops it when that name exists already: same content).
``link`` never replaces, so a published blob's inode is never swapped under a reader, and the
name appears only once the content is complete. With ``fsync=True`` the file and its folder are
also flushed before the link, so a published blob survives a power loss, not only the death of
the writing process.

Several processes may share the directory (the SDK's encoder threads, ``runyard sync``, a
server); nothing is locked because nothing is ever modified in place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from runyard.blobs.base import (
    ALGORITHMS,
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    BlobDigestMismatchError,
    BlobError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    BlobWriter,
    ResumableUpload,
    check_upload_id,
    new_hasher,
    parse_key,
)

_PARTIAL = ".partial"
#: Leftovers of writers killed mid-write older than this are removed when a store opens.
STALE_PARTIAL_SECONDS = 24 * 3600


class LocalBlobStore(BlobStore):
    """A :class:`~runyard.blobs.base.BlobStore` in the directory ``root`` (created if needed)."""

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._partial = self.root / _PARTIAL
        self._partial.mkdir(parents=True, exist_ok=True)
        self._clean_partial()

    supports_resumable = True

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def resumable(self, upload_id: str, *, expected_key: str) -> _LocalResumable:
        parse_key(expected_key)
        return _LocalResumable(self, check_upload_id(upload_id), expected_key)

    def _clean_partial(self) -> None:
        cutoff = time.time() - STALE_PARTIAL_SECONDS
        with contextlib.suppress(OSError), os.scandir(self._partial) as it:
            for entry in it:
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)

    def path_of(self, key: str) -> Path:
        """Where the blob ``key`` lives (or would live)."""
        algorithm, hexdigest = parse_key(key)
        return self.root / algorithm / hexdigest[:2] / hexdigest

    def writer(
        self, *, expected_key: str | None = None, max_size: int | None = None
    ) -> _LocalWriter:
        if expected_key is not None:
            parse_key(expected_key)
        return _LocalWriter(self, expected_key, max_size)

    def stat(self, key: str) -> BlobInfo | None:
        try:
            st = os.stat(self.path_of(key))
        except FileNotFoundError:
            return None
        return BlobInfo(key, st.st_size)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self.path_of(key))

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.path_of(key), "rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"no blob {key}") from None

    def local_path(self, key: str) -> Path | None:
        path = self.path_of(key)
        return path if path.is_file() else None

    def delete(self, key: str) -> bool:
        try:
            os.unlink(self.path_of(key))
        except FileNotFoundError:
            return False
        return True

    def keys(self) -> Iterator[str]:
        for algorithm, length in ALGORITHMS.items():
            base = self.root / algorithm
            if not base.is_dir():
                continue
            for fan in sorted(base.iterdir()):
                if not fan.is_dir():
                    continue
                for entry in fan.iterdir():
                    name = entry.name
                    if len(name) == length and name[:2] == fan.name:
                        yield f"{algorithm}:{name}"

    def _publish(self, tmp: str, key: str) -> None:
        final = self.path_of(key)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return  # another writer published the same content first
        if self.fsync:
            _fsync_dir(final.parent)


class _LocalWriter(BlobWriter):
    def __init__(self, store: LocalBlobStore, expected_key: str | None, max_size: int | None):
        self._store = store
        self._expected = expected_key
        self._max = max_size
        algorithm = parse_key(expected_key)[0] if expected_key else DEFAULT_ALGORITHM
        self._algorithm = algorithm
        self._hash = new_hasher(algorithm)
        fd, self._tmp = tempfile.mkstemp(dir=store._partial, prefix="w-")
        os.fchmod(fd, 0o644)
        self._fh: BinaryIO | None = os.fdopen(fd, "wb", buffering=0)
        self.size = 0
        self._info: BlobInfo | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._fh is None:
            raise ValueError("write to a closed blob writer")
        n = len(data)
        if self._max is not None and self.size + n > self._max:
            self.abort()
            raise BlobTooLargeError(self._max)
        self._hash.update(data)
        view = memoryview(data)
        while view:
            written = self._fh.write(view)
            view = view[written or 0 :]
        self.size += n

    def commit(self) -> BlobInfo:
        if self._info is not None:
            return self._info
        if self._fh is None:
            raise ValueError("commit of an aborted blob writer")
        key = f"{self._algorithm}:{self._hash.hexdigest()}"
        try:
            if self._expected is not None and key != self._expected:
                raise BlobDigestMismatchError(self._expected, key)
            if self._store.fsync:
                os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            self._store._publish(self._tmp, key)
        finally:
            self.abort()
        self._info = BlobInfo(key, self.size)
        return self._info

    def abort(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        if self._tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = ""


class _LocalResumable(ResumableUpload):
    """Parts appended to ``.partial/r-<id>``; ``r-<id>.offset`` holds the length of the parts
    that completed (replaced atomically after each), so bytes of a part whose writer died are
    cut off by the next ``append``. An ``flock`` on the data file serialises processes."""

    def __init__(self, store: LocalBlobStore, upload_id: str, expected_key: str) -> None:
        self.upload_id = upload_id
        self.expected_key = expected_key
        self._store = store
        self._data = store._partial / f"r-{upload_id}"
        self._mark = store._partial / f"r-{upload_id}.offset"

    @property
    def offset(self) -> int:
        try:
            return int(self._mark.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Any]:
        fd = os.open(self._data, os.O_RDWR | os.O_CREAT, 0o644)
        fh = os.fdopen(fd, "r+b", buffering=0)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fh
        finally:
            fh.close()

    def append(self, chunks: Iterable[bytes], offset: int) -> int:
        with self._locked() as fh:
            current = self.offset
            if offset != current:
                raise BlobError(
                    f"upload {self.upload_id} is at offset {current}, not {offset}: resume there"
                )
            fh.truncate(current)
            fh.seek(current)
            size = current
            try:
                for chunk in chunks:
                    view = memoryview(chunk)
                    while view:
                        view = view[fh.write(view) or 0 :]
                    size += len(chunk)
            except BaseException:
                fh.truncate(current)
                raise
            if self._store.fsync:
                os.fsync(fh.fileno())
            tmp = self._mark.with_name(self._mark.name + ".new")
            tmp.write_text(str(size))
            os.replace(tmp, self._mark)
            return size

    def complete(self, hashers: Sequence[Any] = ()) -> BlobInfo:
        algorithm = parse_key(self.expected_key)[0]
        digest = new_hasher(algorithm)
        with self._locked() as fh:
            size = self.offset
            fh.truncate(size)
            fh.seek(0)
            buf = bytearray(CHUNK_SIZE)
            view = memoryview(buf)
            while n := fh.readinto(buf):
                digest.update(view[:n])
                for h in hashers:
                    h.update(view[:n])
            key = f"{algorithm}:{digest.hexdigest()}"
            try:
                if key != self.expected_key:
                    raise BlobDigestMismatchError(self.expected_key, key)
                if self._store.fsync:
                    os.fsync(fh.fileno())
                self._store._publish(str(self._data), key)
            finally:
                self._remove()
        return BlobInfo(key, size)

    def _remove(self) -> None:
        for path in (self._mark, self._data):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def abort(self) -> None:
        with self._locked():
            self._remove()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
