"""The run journal: an append-only write-ahead file per run session.

Each record is one line of JSON, ``[seq, kind, payload]``, written with a single ``os.write``
on an ``O_APPEND`` descriptor before ``log()`` returns. A record whose ``log()`` returned is
therefore in the kernel's page cache and survives ``kill -9`` of the process (it does not survive
a power loss; nothing that returns in microseconds can).

The writing process holds an exclusive ``flock`` on the file while the run is active. The lock
dies with the process, which is how a reader tells a live run from one whose process vanished.

Record kinds: ``run`` (header), ``config`` (full config), ``row`` (history row), ``summary``
(explicit summary set/delete), ``define`` (metric definition), ``console`` (output lines),
``meta`` (host/git metadata), ``finish`` (final state). The store applies them in ``seq`` order
and remembers the last applied ``seq``, which makes re-applying a journal idempotent.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from runyard._json import dumps

JOURNAL_SUFFIX = ".journal"

Record = tuple[int, str, Any]


class JournalWriter:
    """Appends records to a journal file. Thread-safe; owned by the process that created it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._owner_pid = os.getpid()
        self._seq = 0
        self._lock = threading.Lock()
        self.closed = False

    @property
    def seq(self) -> int:
        """The sequence number of the last record written."""
        return self._seq

    def append(self, kind: str, payload: Any) -> Record:
        """Write one record and return it. The record is durable against process death."""
        with self._lock:
            self._seq += 1
            record = (self._seq, kind, payload)
            os.write(self._fd, dumps(record) + b"\n")
        return record

    def close(self) -> None:
        """Release the file (and its lock). Only the owning process really closes it."""
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


def read_journal(path: Path) -> Iterator[Record]:
    """Yield the complete records of a journal; a torn last line (crash mid-write) is ignored."""
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break
            try:
                seq, kind, payload = orjson.loads(line)
            except (orjson.JSONDecodeError, ValueError):
                break
            yield int(seq), str(kind), payload


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
