"""The raw spool: what a media value's ``log()`` writes before it returns.

Encoding a PNG, a GIF or a WAV takes milliseconds to seconds, so ``log()`` does not do it: it
appends the value's raw content (pixels, samples, JSON text) to the run's spool with one
``writev`` and journals a *pending* reference (``{"__m__": id, ...}``) in the row. The kernel's
page cache holds both once ``log()`` returns, so a ``kill -9`` right after loses neither: the
encoder thread (:mod:`runyard.media._worker`) or, if the process died, recovery
(:func:`runyard.media.complete_records`) turns the raw entry into the stored file.

Layout: ``<journal>.spool/`` beside the journal, segment files ``000001.seg``, ... of entries

    [u32 little-endian header length][header JSON][payload bytes]

The header holds ``id``, ``enc`` (the encoder), ``len`` (payload bytes) and encoder arguments.
An entry is written completely before the row that names it, so a torn last entry (a crash
mid-write) is never named by a journaled row and is ignored. A new segment starts once one
passes ``segment_bytes``; the encoder deletes a finished segment once every entry in it is
encoded (its results are in the journal then), so the spool stays small on long runs.
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

SPOOL_SUFFIX = ".spool"
SEGMENT_BYTES = 64 << 20
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

    def read(self) -> bytes:
        with open(self.segment, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read(self.length)
        if len(data) != self.length:
            raise OSError(f"spool entry {self.id} in {self.segment} is incomplete")
        return data


class SpoolWriter:
    """Appends entries; thread-safe. ``on_entry`` is told of each (from the writing thread)."""

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
        self._seg_path = folder / "none"
        self._offset = 0
        self.closed = False

    def _rotate(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._seg_no += 1
        self._seg_path = self.folder / f"{self._seg_no:06d}.seg"
        self._fd = os.open(
            self._seg_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
        )
        self._offset = 0

    @property
    def current_segment(self) -> Path:
        return self._seg_path

    def append(self, header: dict[str, Any], payload: Sequence[Any]) -> int:
        """Write one entry (``payload``: buffers written back to back); its id."""
        length = sum(memoryview(p).nbytes for p in payload)
        with self._lock:
            if self.closed:
                raise RuntimeError("the run's media spool is closed (the run finished)")
            if self._fd < 0 or self._offset >= self._segment_bytes:
                self._rotate()
            entry_id = self._next_id
            self._next_id += 1
            head = orjson.dumps({**header, "id": entry_id, "len": length})
            parts = [_LEN.pack(len(head)), head, *payload]
            total = 4 + len(head) + length
            try:
                written = os.writev(self._fd, parts)
                if written != total:  # a short write: finish it, or it fails below
                    _write_rest(self._fd, b"".join(bytes(memoryview(p)) for p in parts)[written:])
            except OSError:
                # A full disk (or another write error): this entry is torn. The next one goes
                # to a new segment, so the torn entry stays the last of its segment, which
                # readers skip; the id is not used.
                self._next_id -= 1
                os.close(self._fd)
                self._fd = -1
                raise
            entry = SpoolEntry(
                entry_id, header, self._seg_path, self._offset + 4 + len(head), length
            )
            self._offset += total
            self._on_entry(entry)
        return entry_id

    def close(self) -> None:
        with self._lock:
            self.closed = True
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def _write_rest(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def read_spool(folder: Path) -> Iterator[SpoolEntry]:
    """Every complete entry of a spool folder, in order (a torn last entry is skipped)."""
    if not folder.is_dir():
        return
    for seg in sorted(folder.glob("*.seg")):
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
                length = int(header.get("len", 0))
                start = pos + 4 + hlen
                if start + length > size:
                    break
                yield SpoolEntry(int(header["id"]), header, seg, start, length)
                pos = start + length
