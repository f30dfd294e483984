"""The raw spool: what a media value's ``log()`` writes before it returns.

Encoding a PNG, a GIF or a WAV takes milliseconds to seconds, so ``log()`` does not do it: it
appends the value's raw content (pixels, samples, JSON text) to the run's spool with one
``writev`` and journals a *pending* reference (``{"__m__": id, ...}``) in the row. The kernel's
page cache holds both once ``log()`` returns, so a ``kill -9`` right after loses neither: the
encoder thread (:mod:`runyard.media._worker`) or, if the process died, recovery
(:func:`runyard.media.complete_records`) turns the raw entry into the stored file.

Layout: ``<journal>.spool/`` beside the journal, segment files ``000001.seg``, ... of entries

    [u32 little-endian header length][header JSON][payload bytes]

The header holds ``id``, ``seg`` (the segment's number), ``enc`` (the encoder), ``len``
(payload bytes) and encoder arguments. An entry is written completely before the row that
names it, so a torn last entry (a crash mid-write) is never named by a journaled row and is
ignored. A new segment starts once one passes ``segment_bytes``.

Segments are recycled: once every entry of a segment is encoded (its results are in the
journal then), the encoder hands it back (:meth:`SpoolWriter.recycle`) and the writer reuses
the file, renamed, for a later segment (a reserve of :data:`FREE_SEGMENTS` at first, growing
to :data:`MAX_RESERVE` after bursts that outran the encoder; the rest are deleted), so the
spool stays small on long runs. The reason is speed: overwriting pages
the kernel already holds costs ``log()`` about a memory copy, while appending fresh pages to a
file goes through the file system's block allocation, several times slower (an 8 MB array: ~1
ms against 2-20 ms on a busy machine). A recycled file holds stale entries after the new ones;
their ``seg`` is the old number, which is where :func:`read_spool` stops.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SPOOL_SUFFIX = ".spool"
SEGMENT_BYTES = 16 << 20
#: Segments kept ready for reuse at first (recycled, else prefilled with zeros by the helper).
FREE_SEGMENTS = 2
#: Encoded segments kept for reuse at most: the reserve starts at :data:`FREE_SEGMENTS` and
#: doubles each time ``log()`` finds no ready segment (a burst of large media outran the
#: encoder), so that the next burst copies into recycled pages: 256 MiB of page cache at most,
#: mapped (file pages in the process's RSS) until the run finishes.
MAX_RESERVE = 16
#: Segments mapped at most at once (the current one, the ready ones, and those waiting for the
#: encoder); the helper prefills no new segment beyond it.
MAX_MAPPED = MAX_RESERVE + 4
_LEN = struct.Struct("<I")


def spool_dir_for(journal_path: Path) -> Path:
    """The spool folder of a journal (``<name>.journal`` → ``<name>.spool``)."""
    return journal_path.with_name(journal_path.stem + SPOOL_SUFFIX)


@dataclass
class SpoolEntry:
    """Where one entry's payload lies."""

    id: int
    header: dict[str, Any]
    segment: Path
    offset: int  # of the payload
    length: int
    #: The segment's mapping, where the entry was copied into one (the writer's, live until
    #: the encoder recycles the segment): read in place by :meth:`view`.
    mapped: mmap.mmap | None = None

    def view(self) -> memoryview | bytes:
        """The payload without a copy where the entry lies in a mapped segment (the caller
        releases the view before the segment is recycled), else :meth:`read`'s bytes.
        Saves the encoder an 8 MB read into fresh memory per 1M-float histogram."""
        if self.mapped is not None:
            try:
                return memoryview(self.mapped)[self.offset : self.offset + self.length]
            except ValueError:  # the writer closed the mapping (the run finished)
                pass
        return self.read()

    def read(self) -> bytes:
        with open(self.segment, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.length)
        if len(data) != self.length:
            raise OSError(f"spool entry {self.id} in {self.segment} is incomplete")
        return data


@dataclass
class _Ready:
    """A segment file waiting for reuse: recycled (stale entries in it) or prefilled (zeros),
    mapped; ``armed`` once its pages are faulted in for writing."""

    path: Path
    mm: mmap.mmap
    armed: bool = False


class SpoolWriter:
    """Appends entries; thread-safe. ``on_entry`` is told of each (from the writing thread).

    Where it can, an entry is copied into a segment mapped into memory (``mmap``, shared with
    the file: the page cache holds it at once, so it survives ``kill -9`` like a ``write``),
    whose pages a helper thread faulted in for writing beforehand: ``log()`` then costs one
    memory copy, with no system call and no page fault (an 8 MB array: ~0.3 ms, against ~1 ms
    for ``pwritev`` over existing pages and 2-20 ms for appending to a fresh file on a busy
    machine). Entries that do not fit a mapped segment, and any entry while no mapped segment
    is ready, are written with ``pwritev``.
    """

    def __init__(
        self,
        folder: Path,
        on_entry: Callable[[SpoolEntry], None],
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.folder = folder
        self._on_entry = on_entry
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._next_id = 1
        self._seg_no = 0
        self._fd = -1
        self._mm: mmap.mmap | None = None
        self._seg_path = folder / "none"
        self._offset = 0
        self._ready: list[_Ready] = []
        self._named = 0
        self._helping = False
        self._retired = {}
        self._reserve = FREE_SEGMENTS
        self._recycling = 0  # segments being renamed/mapped by recycle() for the reserve
        self.closed = False

    # -- segments ---------------------------------------------------------------------------

    def _rotate(self, total: int) -> None:
        """Start the next segment (lock held): a ready mapped one if the entry fits it."""
        self._release_current()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seg_no += 1
        self._seg_path = self.folder / f"{self._seg_no:06d}.seg"
        self._offset = 0
        ready = next((r for r in reversed(self._ready) if r.armed), None)
        if ready is None and self._seg_no > 1:  # log() writes to fresh pages: keep more next time
            self._reserve = min(MAX_RESERVE, self._reserve * 2)
        if ready is not None and total <= self._segment_bytes:
            self._ready.remove(ready)
            try:
                os.rename(ready.path, self._seg_path)
                self._mm = ready.mm
            except OSError:
                ready.mm.close()
        if self._mm is None:
            self._fd = os.open(
                self._seg_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_TRUNC, 0o600
            )
        self._start_helper()

    def _start_helper(self) -> None:
        """Start the helper thread unless it runs (lock held)."""
        if not self._helping and not self.closed:
            self._helping = True
            threading.Thread(target=self._help, name="runyard-spool", daemon=True).start()

    def _release_current(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._mm is not None:
            # Kept mapped: the encoder hands the segment back to recycle() once encoded.
            self._retired[self._seg_path] = self._mm
            self._mm = None

    _retired: dict[Path, mmap.mmap]

    def recycle(self, segment: Path) -> None:
        """``segment`` is encoded entirely (from the encoder thread): keep it for reuse (mapped;
        a segment written with ``pwritev`` is mapped now) while the reserve has room, else
        delete it."""
        with self._lock:
            if segment == self._seg_path:
                return
            mm = self._retired.pop(segment, None)
            keep = not self.closed and len(self._ready) + self._recycling < self._reserve
            if keep:
                self._recycling += 1
                self._named += 1
                free = self.folder / f"free-{self._named:06d}"
        if not keep:
            _discard(mm, segment)
            return
        try:  # outside the lock: log() goes on meanwhile (these files are not its)
            os.rename(segment, free)
            if mm is None:
                mm = _remapped(free, self._segment_bytes)
        except OSError:
            mm = None
        with self._lock:
            self._recycling -= 1
            if mm is not None and not self.closed:
                self._ready.append(_Ready(free, mm))
                self._start_helper()
                return
        _discard(mm, free, segment)  # the rename may or may not have happened

    def _help(self) -> None:
        """The helper thread: arms recycled segments (faults their pages in for writing:
        pages the kernel wrote back meanwhile would otherwise fault in ``log()``) and
        prefills new ones (zeros, mapped, armed) while fewer than :data:`FREE_SEGMENTS` wait.
        Zeros end a segment for :func:`read_spool` (an empty header). It ends when there is
        nothing to do (started again by the next rotation or recycling)."""
        try:
            while True:
                with self._lock:
                    todo = next((r for r in self._ready if not r.armed), None)
                    mapped = len(self._ready) + len(self._retired) + (self._mm is not None)
                    full = len(self._ready) >= FREE_SEGMENTS or mapped >= MAX_MAPPED
                    if self.closed or (todo is None and full):
                        return
                    if todo is None:
                        self._named += 1
                        path = self.folder / f"free-{self._named:06d}"
                if todo is None:
                    todo = _Ready(path, _prefilled(path, self._segment_bytes))
                    with self._lock:
                        if self.closed:
                            todo.mm.close()
                            path.unlink(missing_ok=True)
                            return
                        self._ready.append(todo)
                _arm(todo.mm)
                with self._lock:
                    todo.armed = True
        except (OSError, ValueError):
            pass  # a full disk, the spool removed: log() writes with pwritev then
        finally:
            with self._lock:
                self._helping = False

    @property
    def current_segment(self) -> Path:
        return self._seg_path

    # -- entries ----------------------------------------------------------------------------

    def append(
        self,
        header: dict[str, Any],
        payload: Sequence[Any],
        check: Callable[[int], None] | None = None,
    ) -> int:
        """Write one entry (``payload``: buffers written back to back); its id.

        ``check(i)``, if given, is called just before part ``i`` is copied, while that part is
        about to be read anyway (one pass over memory for checking and copying); an exception
        it raises abandons the entry (nothing of it counts: its header is written last).
        """
        views = [memoryview(p).cast("B") for p in payload]
        length = sum(v.nbytes for v in views)
        with self._lock:
            if self.closed:
                raise RuntimeError("the run's media spool is closed (the run finished)")
            entry_id = self._next_id
            head = orjson.dumps({**header, "id": entry_id, "seg": self._seg_no, "len": length})
            total = 4 + len(head) + length
            mm = self._mm
            if (mm is not None and self._offset + total > len(mm)) or (
                mm is None and (self._fd < 0 or self._offset >= self._segment_bytes)
            ):
                self._rotate(total)
                head = orjson.dumps({**header, "id": entry_id, "seg": self._seg_no, "len": length})
                total = 4 + len(head) + length
                mm = self._mm
            start = self._offset
            data_at = start + 4 + len(head)
            if mm is not None:
                pos = data_at
                for i, v in enumerate(views):  # the payload first, the header last
                    if check is not None:
                        check(i)
                    mm[pos : pos + v.nbytes] = v
                    pos += v.nbytes
                mm[start + 4 : data_at] = head
                mm[start : start + 4] = _LEN.pack(len(head))
            else:
                try:
                    self._write(views, head, start, data_at, total, check)
                except OSError:
                    # A full disk (or another write error): this entry is torn. The next one
                    # goes to a new segment, so the torn entry stays the last of its segment,
                    # which readers skip; the id is not used.
                    os.close(self._fd)
                    self._fd = -1
                    raise
            self._next_id += 1
            entry = SpoolEntry(entry_id, header, self._seg_path, data_at, length, mm)
            self._offset += total
            self._on_entry(entry)
        return entry_id

    def _write(
        self,
        views: list[memoryview],
        head: bytes,
        start: int,
        data_at: int,
        total: int,
        check: Callable[[int], None] | None,
    ) -> None:
        """Write an entry to the current (unmapped) segment file."""
        if check is not None:  # checked part by part: the payload first, the header last
            pos = data_at
            for i, v in enumerate(views):
                check(i)
                _write_all(self._fd, v, pos)
                pos += v.nbytes
            _write_all(self._fd, memoryview(_LEN.pack(len(head)) + head), start)
            return
        parts: list[Any] = [_LEN.pack(len(head)), head, *views]
        written = os.pwritev(self._fd, parts, start)
        if written != total:  # a short write: finish it, or it fails
            rest = b"".join(bytes(p) for p in parts)[written:]
            _write_all(self._fd, memoryview(rest), start + written)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            maps = [r.mm for r in self._ready] + list(self._retired.values())
            if self._mm is not None:
                maps.append(self._mm)
            self._mm = None
            self._ready = []
            self._retired.clear()
        for mm in maps:
            with contextlib.suppress(BufferError, ValueError):
                mm.close()


#: ``madvise(MADV_POPULATE_WRITE)`` (Linux 5.14): fault a mapping's pages in for writing.
_MADV_POPULATE_WRITE = 23
_PAGE = mmap.PAGESIZE


def _prefilled(path: Path, size: int) -> mmap.mmap:
    """A new segment file of ``size`` zero bytes (written, so its blocks and pages exist),
    mapped shared and writable."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_TRUNC, 0o600)
    try:
        zeros = bytes(1 << 20)
        for offset in range(0, size, len(zeros)):
            _write_all(fd, memoryview(zeros)[: min(len(zeros), size - offset)], offset)
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except BaseException:
        path.unlink(missing_ok=True)  # a full disk: no half-made segment (a hole would SIGBUS)
        raise
    finally:
        os.close(fd)


def _discard(mm: mmap.mmap | None, *paths: Path) -> None:
    """Unmap a segment and delete its file (under whichever of ``paths`` it has)."""
    if mm is not None:
        mm.close()
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def _remapped(path: Path, size: int) -> mmap.mmap | None:
    """The first ``size`` bytes of an existing segment file, mapped shared and writable;
    ``None`` if the file is shorter (a hole would be allocated by a page fault, and raise
    SIGBUS on a full disk)."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        if os.fstat(fd).st_size < size:
            return None
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def _arm(mm: mmap.mmap) -> None:
    """Fault every page of ``mm`` in for writing (its content unchanged)."""
    try:
        mm.madvise(_MADV_POPULATE_WRITE)
        return
    except (OSError, ValueError, AttributeError):
        pass
    for offset in range(0, len(mm), _PAGE):  # older kernels: touch each page
        mm[offset] = mm[offset]
        if offset % (256 * _PAGE) == 0:
            time.sleep(0)  # hand the GIL over now and then


def _write_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(f"could not write the media spool (wrote {n} bytes)")
        view = view[n:]
        offset += n


def read_spool(folder: Path) -> Iterator[SpoolEntry]:
    """Every complete entry of a spool folder, in order (a torn last entry is skipped)."""
    if not folder.is_dir():
        return
    for seg in sorted(folder.glob("*.seg")):
        number = int(seg.stem) if seg.stem.isdigit() else None
        size = seg.stat().st_size
        with open(seg, "rb") as fh:
            pos = 0
            while pos + 4 <= size:
                fh.seek(pos)
                (hlen,) = _LEN.unpack(fh.read(4))
                if pos + 4 + hlen > size:
                    break
                try:
                    header = orjson.loads(fh.read(hlen))
                except orjson.JSONDecodeError:
                    break
                if not isinstance(header, dict) or header.get("seg", number) != number:
                    break  # a stale entry of the segment this file was before it was reused
                length = int(header.get("len", 0))
                start = pos + 4 + hlen
                if start + length > size:
                    break
                yield SpoolEntry(int(header["id"]), header, seg, start, length)
                pos = start + length
