"""The run journal: an append-only write-ahead file per run session.

Each record is one line of JSON, ``[seq, kind, payload]``, written with a single ``os.write``
on an ``O_APPEND`` descriptor before ``log()`` returns. A record whose ``log()`` returned is
therefore in the kernel's page cache and survives ``kill -9`` of the process (it does not survive
a power loss; nothing that returns in microseconds can).

The writing process holds an exclusive ``flock`` on the file while the run is active. The lock
dies with the process, which is how a reader tells a live run from one whose process vanished.

A full disk (or any failing ``write``) never tears the framing and never loses what was
acknowledged: a record is written whole (short writes are continued) or reported not durable; a
fragment left by a failed write is closed by a newline before the next record, and readers skip
such a damaged line. Records that cannot be written wait in memory (a bounded backlog, see
:class:`JournalWriter`) and are written, in order, as soon as the disk takes them again; the
shipper ships them from memory meanwhile, so an online run loses nothing while its store can
write.

Record kinds: ``run`` (header), ``config`` (full config), ``row`` (history row), ``summary``
(explicit summary set/delete), ``define`` (metric definition), ``console`` (output lines),
``meta`` (host/git metadata), ``finish`` (final state), ``stats`` (a system-metrics sample,
runyard.system), ``alert`` (``run.alert``), ``quarantined`` (sent by the shipper in place of a
record the store could not apply; see sdk/delivery.py). The store applies them in
``seq`` order and remembers the last applied ``seq``, which makes re-applying a journal
idempotent.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from runyard._json import dumps
from runyard.limits import MAX_RECORD_BYTES

JOURNAL_SUFFIX = ".journal"

Record = tuple[int, str, Any]


#: Bytes of records kept in memory while the journal cannot be written
#: (``RUNYARD_JOURNAL_BACKLOG_MB``).
DEFAULT_BACKLOG_BYTES = 256 << 20
#: Seconds between two attempts to write the backlog (each ``append`` would otherwise try).
RETRY_INTERVAL = 0.5


class JournalBlocked:
    """Why and since when a journal cannot be written (``JournalWriter.blocked``)."""

    __slots__ = ("dropped", "error", "first_seq")

    def __init__(self, error: OSError, first_seq: int) -> None:
        self.error = error
        #: the first record that is not in the file (every record before it is)
        self.first_seq = first_seq
        #: records given up because the backlog was full (they are lost)
        self.dropped = 0


class JournalWriter:
    """Appends records to a journal file. Thread-safe; owned by the process that created it.

    ``append`` never raises for a write that fails (``ENOSPC``, ``EDQUOT``, ``EIO``...): the
    record, whole and numbered, waits in a backlog in memory (at most ``backlog_limit`` bytes)
    and ``durable_seq`` stays at the last record that is in the file. Later appends, and
    :meth:`retry_backlog`, write the backlog first, in order. ``on_blocked`` and ``on_unblocked``
    are called (with the writer's lock held: keep them short and don't append from them) when
    the journal stops and starts taking writes again, ``on_dropped`` when the backlog is full.
    """

    def __init__(
        self,
        path: Path,
        *,
        backlog_limit: int = DEFAULT_BACKLOG_BYTES,
        on_blocked: Callable[[JournalBlocked], None] | None = None,
        on_unblocked: Callable[[JournalBlocked, int], None] | None = None,
        on_dropped: Callable[[JournalBlocked, Record], None] | None = None,
    ) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner_pid = os.getpid()
        self._seq = 0
        self._durable = 0
        self._lock = threading.Lock()
        self.closed = False
        #: a failed write left a fragment in the file: the next write starts with a newline
        self._torn = False
        self._backlog: deque[tuple[Record, bytes]] = deque()
        self._backlog_bytes = 0
        self._backlog_limit = backlog_limit
        self._next_retry = 0.0
        self.blocked: JournalBlocked | None = None
        self._on_blocked = on_blocked
        self._on_unblocked = on_unblocked
        self._on_dropped = on_dropped

    @property
    def seq(self) -> int:
        """The sequence number of the last record appended (durable or waiting in memory;
        a record dropped because the backlog was full gives its number to the next one)."""
        return self._seq

    @property
    def durable_seq(self) -> int:
        """The last record that is whole in the file: it survives the death of the process."""
        return self._durable

    def append(self, kind: str, payload: Any) -> Record:
        """Number and write one record, and return it.

        Raises ``TypeError``/``ValueError`` (nothing written, no number used) for a payload that
        cannot be encoded or is larger than ``limits.MAX_RECORD_BYTES``. A write the disk refuses
        does not raise: see the class docstring."""
        with self._lock:
            seq = self._seq + 1
            record = (seq, kind, payload)
            data = dumps(record) + b"\n"
            if len(data) > MAX_RECORD_BYTES:
                raise ValueError(
                    f"a {kind} record of {len(data) / 2**20:.1f} MiB is larger than the "
                    f"{MAX_RECORD_BYTES >> 20} MiB a journal record may hold"
                )
            self._seq = seq
            if self._backlog and not self._drain(force=False):
                self._keep(record, data)
                return record
            try:
                self._write(data)
            except OSError as exc:
                self._block(exc, seq)
                self._keep(record, data)
                return record
            self._durable = seq
        return record

    def _write(self, data: bytes) -> None:
        """Write ``data`` whole (continuing short writes), or raise ``OSError``."""
        if self._torn:
            data = b"\n" + data
        view = memoryview(data)
        written = 0
        while written < len(view):
            try:
                n = os.write(self._fd, view[written:])
            except InterruptedError:
                continue
            except OSError:
                if written:
                    self._torn = True
                raise
            if n <= 0:  # not seen on Linux, but never loop on it
                if written:
                    self._torn = True
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written += n
        self._torn = False

    def _block(self, exc: OSError, seq: int) -> None:
        if self.blocked is None:
            self.blocked = JournalBlocked(exc, seq)
            if self._on_blocked is not None:
                self._on_blocked(self.blocked)
        self._next_retry = time.monotonic() + RETRY_INTERVAL

    def _keep(self, record: Record, data: bytes) -> None:
        if self._backlog_bytes + len(data) > self._backlog_limit:
            assert self.blocked is not None
            self._seq -= 1  # the record exists nowhere: its number goes to the next one
            self.blocked.dropped += 1
            if self.blocked.dropped == 1 and self._on_dropped is not None:
                self._on_dropped(self.blocked, record)
            return
        self._backlog.append((record, data))
        self._backlog_bytes += len(data)

    def _drain(self, force: bool) -> bool:
        """Write the backlog in order; True once it is empty. Tries at most every
        ``RETRY_INTERVAL`` seconds unless ``force``."""
        if not force and time.monotonic() < self._next_retry:
            return False
        backlog = self._backlog
        while backlog:
            record, data = backlog[0]
            try:
                self._write(data)
            except OSError as exc:
                self._block(exc, record[0])
                return False
            backlog.popleft()
            self._backlog_bytes -= len(data)
            self._durable = record[0]
        blocked, self.blocked = self.blocked, None
        if blocked is not None and self._on_unblocked is not None:
            self._on_unblocked(blocked, self._durable)
        return True

    def retry_backlog(self) -> bool:
        """Try to write the records waiting in memory now; True when none wait (any more)."""
        with self._lock:
            if not self._backlog:
                return True
            if self.closed:
                return False
            return self._drain(force=True)

    def backlog_after(self, seq: int) -> list[tuple[int, bytes]]:
        """``(seq, line)`` of the records after ``seq`` that are only in memory (``line`` as in
        the file, newline included), for a reader that has read the file up to ``seq``. Empty
        while the file holds records after ``seq`` that the reader has not read yet: it must
        read those first (records reach the file in order)."""
        with self._lock:
            if self._durable > seq or not self._backlog:
                return []
            return [(record[0], data) for record, data in self._backlog if record[0] > seq]

    def close(self) -> None:
        """Release the file (and its lock). Only the owning process really closes it. Records
        still in the backlog are given up: the caller reports them (see ``seq`` and
        ``durable_seq``)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if os.getpid() == self._owner_pid:
                os.close(self._fd)

    def abandon_after_fork(self) -> None:
        """In a forked child: drop our copy of the descriptor without touching the lock.

        ``flock`` locks belong to the open file description shared with the parent; closing
        the child's descriptor keeps the parent's lock (and lets a later recovery see the
        parent's death even if the child lives on).
        """
        self._lock = threading.Lock()
        self._backlog = deque()
        if not self.closed:
            self.closed = True
            try:
                os.close(self._fd)
            except OSError:
                pass


def retire_journal(path: Path, keep: bool) -> Path | None:
    """A journal whose records are all in the store: delete it, or move it to ``done/``.

    The store holds every record, so the file is redundant; ``RUNYARD_KEEP_JOURNALS=true``
    keeps it (under ``journal/done/``) for auditing or re-syncing to another store.
    """
    try:
        if not keep:
            path.unlink()
            return None
        done = path.parent / "done"
        done.mkdir(exist_ok=True)
        target = done / path.name
        os.replace(path, target)
        return target
    except FileNotFoundError:
        return None


def parse_line(line: bytes) -> Record | None:
    """The record on one complete journal line, or None for a damaged line (a fragment that a
    failed write left and the next write closed, or an edit by hand)."""
    try:
        seq, kind, payload = orjson.loads(line)
        return int(seq), str(kind), payload
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return None


def read_journal(path: Path, damaged: list[bytes] | None = None) -> Iterator[Record]:
    """Yield the complete records of a journal in order.

    A torn last line (the process died mid-write) is ignored; a damaged line inside the file is
    skipped (appended to ``damaged`` if given), and so is a record whose ``seq`` does not follow
    the previous one's (a record written again after a failed write)."""
    last = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            if line == b"\n":
                continue
            record = parse_line(line)
            if record is None:
                if damaged is not None:
                    damaged.append(line)
                continue
            if record[0] <= last:
                continue
            last = record[0]
            yield record


def try_lock(path: Path) -> int | None:
    """Open ``path`` and take its exclusive lock without waiting; ``None`` if a writer holds it.

    The caller owns the returned descriptor and releases the lock by closing it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
