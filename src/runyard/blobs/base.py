"""The content-addressed blob store interface.

A blob is an immutable byte string named by a digest of its content, its **key**:
``"<algorithm>:<lowercase hex digest>"``, today always ``sha256:<64 hex>``. The algorithm is
part of the key so that another one can be added later and coexist with stored ``sha256`` keys.
Helpers: :func:`make_key`, :func:`parse_key`, :func:`key_of_bytes`, :func:`new_hasher`.

Run files, media and artifact contents all live in one blob store; the tables that name them
(``run_files``, artifact manifests) hold keys. Implementations: :class:`LocalBlobStore` (a
directory); an S3-compatible one plugs in through :func:`runyard.blobs.register_scheme`.

Contract (every implementation)
-------------------------------
* **Streamed.** :meth:`BlobStore.writer` / :meth:`BlobStore.put_stream` take the content in
  chunks and :meth:`BlobStore.open` gives it back as a readable stream: no method needs the whole
  content in memory (``put_bytes``/``get_bytes`` exist for small blobs).
* **Atomic publish.** A blob becomes visible to :meth:`stat`, :meth:`exists`, :meth:`open` and
  :meth:`keys` only once complete and its digest computed. A reader never sees a partial blob,
  from this process or any other, even if the writer is killed mid-write (what it left is not a
  blob; implementations clean such leftovers up eventually).
* **Verified.** The store computes the digest itself while the content streams in. A writer
  given ``expected_key`` refuses to publish different content
  (:class:`BlobDigestMismatchError`), so a client-supplied hash is checked, never trusted.
* **Idempotent puts.** Putting content that is already stored stores nothing new and returns
  the same :class:`BlobInfo`; any number of threads and processes may put the same or different
  blobs concurrently.
* **Size limits.** With ``max_size``, a writer fails with :class:`BlobTooLargeError` as soon as
  more bytes than that arrive (the caller can stop reading its source then), publishing
  nothing.
* **Immutable.** The content of a key never changes. :meth:`delete` removes a blob (garbage
  collection is the caller's business: the store does not count references); a stream opened
  before the delete may or may not stay readable, so delete only blobs no table names.
* **Thread safety.** A store object may be shared by threads; a :class:`BlobWriter` belongs to
  one thread at a time.

Additions for large transfers (made for artifacts; optional for an implementation)
---------------------------------------------------------------------------------
* **Resumable uploads.** :meth:`BlobStore.resumable` returns a :class:`ResumableUpload` named
  by the caller's ``upload_id``: parts appended by one process survive its death, and another
  process opening the same ``upload_id`` continues at :attr:`ResumableUpload.offset` instead of
  starting over. :meth:`ResumableUpload.complete` verifies the whole content against the
  expected key before publishing (nothing unverified ever becomes a blob). The local store keeps
  the parts in one staged file, the S3 store in a multipart upload. Stores without it raise
  :class:`BlobError`; :attr:`BlobStore.supports_resumable` says which.
* **Presigned reads.** :meth:`BlobStore.presign_get` may return a URL that reads the blob
  without credentials for a limited time (S3); ``None`` (the default) means "read through me".
* **Presigned uploads.** :meth:`BlobStore.presign_upload` may return instructions (``url``,
  ``method``, ``headers``) to upload content for ``upload_id`` straight to the storage, into a
  staging place that is never a blob; :meth:`BlobStore.complete_presigned` then verifies what
  arrived against the expected key (reading it back) and publishes it. ``None`` (the default)
  means "upload through me".

What a reader may assume: if :meth:`stat` returns a :class:`BlobInfo`, :meth:`open` of that key
yields exactly ``size`` bytes whose digest is the key (unless the blob was deleted meanwhile,
which raises :class:`BlobNotFoundError`).
"""

from __future__ import annotations

import abc
import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO

#: The algorithms a key may name and the length of their hex digests.
ALGORITHMS: dict[str, int] = {"sha256": 64}
#: The algorithm of new keys.
DEFAULT_ALGORITHM = "sha256"
#: Chunk size of the default streaming helpers.
CHUNK_SIZE = 1 << 20

_KEY = re.compile(r"^([a-z0-9]+):([0-9a-f]+)$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")


def check_upload_id(upload_id: str) -> str:
    """``upload_id`` if it is a valid name for a :class:`ResumableUpload`."""
    if not isinstance(upload_id, str) or not _UPLOAD_ID.match(upload_id) or upload_id[0] == ".":
        raise BlobError(f"invalid upload id {upload_id!r}: use letters, digits and -_. only")
    return upload_id


class BlobError(Exception):
    """A blob store operation failed."""


class InvalidBlobKeyError(BlobError, ValueError):
    """Not a key of a known algorithm (``sha256:<64 lowercase hex>``)."""


class BlobNotFoundError(BlobError, FileNotFoundError):
    """No blob has this key."""


class BlobTooLargeError(BlobError):
    """More bytes arrived than the writer's ``max_size``; nothing was published."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the content is larger than the limit of {limit} bytes")
        self.limit = limit


class BlobDigestMismatchError(BlobError):
    """The content's digest is not the ``expected_key``; nothing was published."""

    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"the content's digest is {actual}, not the expected {expected}")
        self.expected = expected
        self.actual = actual


def make_key(algorithm: str, hexdigest: str) -> str:
    """``"<algorithm>:<hexdigest>"``, validated."""
    key = f"{algorithm}:{hexdigest.lower()}"
    parse_key(key)
    return key


def parse_key(key: str) -> tuple[str, str]:
    """``(algorithm, hexdigest)`` of a key; :class:`InvalidBlobKeyError` if it is not one."""
    m = _KEY.match(key) if isinstance(key, str) else None
    if m is None or ALGORITHMS.get(m.group(1)) != len(m.group(2)):
        raise InvalidBlobKeyError(
            f"invalid blob key {key!r}: expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return m.group(1), m.group(2)


def new_hasher(algorithm: str = DEFAULT_ALGORITHM) -> Any:
    """A fresh ``hashlib`` object for ``algorithm``."""
    if algorithm not in ALGORITHMS:
        raise InvalidBlobKeyError(f"unknown blob key algorithm {algorithm!r}")
    return hashlib.new(algorithm)


def key_of_bytes(data: bytes | bytearray | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """The key that ``data`` is stored under."""
    h = new_hasher(algorithm)
    h.update(data)
    return f"{algorithm}:{h.hexdigest()}"


def key_of_file(path: str | Path, algorithm: str = DEFAULT_ALGORITHM) -> tuple[str, int]:
    """``(key, size)`` of a file's content, read in chunks."""
    h = new_hasher(algorithm)
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_SIZE):
            h.update(chunk)
            size += len(chunk)
    return f"{algorithm}:{h.hexdigest()}", size


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob: its key and its size in bytes."""

    key: str
    size: int


class BlobWriter(abc.ABC):
    """One blob being written: :meth:`write` chunks, then :meth:`commit` (or :meth:`abort`).

    As a context manager it aborts when the block raises or ends without a commit. After a
    failed :meth:`write` (too large) the writer is aborted already.
    """

    #: Bytes written so far.
    size: int

    @abc.abstractmethod
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append a chunk; :class:`BlobTooLargeError` once the total passes ``max_size``."""

    @abc.abstractmethod
    def commit(self) -> BlobInfo:
        """Publish the blob (atomically; a no-op if the same content is stored already)."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop what was written. Safe to call more than once, and after :meth:`commit`."""

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.abort()


class ResumableUpload(abc.ABC):
    """One blob uploaded in parts, possibly by several processes in turn (see the contract's
    additions). Parts are appended in order; only :meth:`complete` publishes."""

    upload_id: str
    expected_key: str

    @property
    @abc.abstractmethod
    def offset(self) -> int:
        """Bytes stored so far (what a resumed upload skips)."""

    @abc.abstractmethod
    def append(self, chunks: Iterable[bytes], offset: int) -> int:
        """Store the chunks as the next part, which must start at ``offset`` (the caller's idea
        of :attr:`offset`: a mismatch raises :class:`BlobError` and stores nothing); returns
        the new offset. A part interrupted half-way is dropped: the offset stays where it was."""

    @abc.abstractmethod
    def complete(self, hashers: Sequence[Any] = ()) -> BlobInfo:
        """Verify the content against ``expected_key`` and publish it (the staged parts are
        removed either way: :class:`BlobDigestMismatchError` leaves nothing). ``hashers``
        (``hashlib`` objects) are fed the content while it is verified, so a caller gets other
        digests (MD5) of it without reading it again."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop the staged parts."""


class BlobStore(abc.ABC):
    """Abstract base of the blob stores. See the module docstring for the contract."""

    #: Whether :meth:`resumable` works on this store.
    supports_resumable: bool = False

    def resumable(self, upload_id: str, *, expected_key: str) -> ResumableUpload:
        """The resumable upload ``upload_id`` (created if new) of the blob ``expected_key``.
        ``upload_id`` is the caller's name for it (letters, digits, ``-_.``, at most 200)."""
        raise BlobError(f"{type(self).__name__} does not support resumable uploads")

    def presign_get(self, key: str, expires: int = 900) -> str | None:
        """A URL reading the blob for ``expires`` seconds without credentials, or ``None``."""
        parse_key(key)
        return None

    def presign_upload(self, upload_id: str, expires: int = 900) -> dict[str, Any] | None:
        """``{"url", "method", "headers"}`` to upload one blob's content for ``upload_id``
        without credentials, or ``None`` (see the contract's additions)."""
        return None

    def complete_presigned(
        self, upload_id: str, *, expected_key: str, hashers: Sequence[Any] = ()
    ) -> BlobInfo:
        """Verify and publish what was uploaded through :meth:`presign_upload`;
        :class:`BlobNotFoundError` if nothing arrived, :class:`BlobDigestMismatchError` (and
        the upload dropped) if it is other content."""
        raise BlobError(f"{type(self).__name__} has no presigned uploads")

    @abc.abstractmethod
    def writer(self, *, expected_key: str | None = None, max_size: int | None = None) -> BlobWriter:
        """A writer for one new blob (see :class:`BlobWriter`)."""

    @abc.abstractmethod
    def stat(self, key: str) -> BlobInfo | None:
        """The blob, or ``None`` if none has this key. :class:`InvalidBlobKeyError` for a
        malformed key (every method that takes a key checks it)."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The blob's content as a readable binary stream (close it). It may not be seekable;
        :class:`BlobNotFoundError` if absent."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove the blob; ``False`` if there was none."""

    @abc.abstractmethod
    def keys(self) -> Iterator[str]:
        """Every stored key, in no particular order."""

    # -- helpers built on the methods above; implementations may override them for speed ----

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def local_path(self, key: str) -> Path | None:
        """A path on this machine holding the blob's content (read-only!), if the store has one,
        so that a server can hand it to ``sendfile``; ``None`` otherwise."""
        parse_key(key)
        return None

    def put_stream(
        self,
        source: IO[bytes] | Iterable[bytes],
        *,
        expected_key: str | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        """Store what a binary file object (read in chunks) or an iterable of chunks yields."""
        with self.writer(expected_key=expected_key, max_size=max_size) as w:
            if hasattr(source, "read"):
                read = source.read
                while chunk := read(CHUNK_SIZE):
                    w.write(chunk)
            else:
                for chunk in source:
                    w.write(chunk)
            return w.commit()

    def put_bytes(
        self,
        data: bytes | bytearray | memoryview,
        *,
        expected_key: str | None = None,
        max_size: int | None = None,
    ) -> BlobInfo:
        with self.writer(expected_key=expected_key, max_size=max_size) as w:
            w.write(data)
            return w.commit()

    def put_file(
        self, path: str | Path, *, expected_key: str | None = None, max_size: int | None = None
    ) -> BlobInfo:
        """Store a file's content (read in chunks; the file is left as it is)."""
        with open(path, "rb") as fh:
            return self.put_stream(fh, expected_key=expected_key, max_size=max_size)

    def iter_chunks(self, key: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The blob's content in chunks (opened at the first ``next``)."""
        with self.open(key) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def get_bytes(self, key: str) -> bytes:
        """The whole content (for small blobs)."""
        with self.open(key) as fh:
            return fh.read()

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (remote stores)."""
