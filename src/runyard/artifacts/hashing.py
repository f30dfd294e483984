"""Hashing the files of an artifact: SHA-256 keys, with a cache that makes re-logging free.

``HashCache`` remembers the key of each file by ``(absolute path, size, mtime_ns, inode,
ctime_ns)``: a file whose stat has not changed is not read again (the ctime guards against a
rewrite that restores the mtime). It is one SQLite file per machine (``<cache dir>/hashes.db``,
WAL mode), shared by every process; a lost or corrupt cache only costs rehashing.

Files are hashed by a thread pool (``hashlib`` releases the GIL, so the cores are used);
``hashlib.file_digest`` reads into one buffer per file, which keeps Python's overhead under 1% of
the hash itself (see ``bench/artifacts.py`` for the numbers).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
    "ino INTEGER, ctime_ns INTEGER, key TEXT)"
)


def default_cache_dir() -> Path:
    """``RUNYARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/runyard``, else ``~/.cache/runyard``."""
    explicit = os.environ.get("RUNYARD_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "runyard"


def hash_workers() -> int:
    return max(2, min(8, os.cpu_count() or 2))


def sha256_file(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as fh:
        return "sha256:" + hashlib.file_digest(fh, "sha256").hexdigest()


class HashCache:
    """``(path, stat)`` → key, persisted in ``<root>/hashes.db``; thread-safe."""

    def __init__(self, root: Path | None = None) -> None:
        self.path = (root or default_cache_dir()) / "hashes.db"
        self._local = threading.local()
        self._broken = False

    def _conn(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
        except sqlite3.Error:
            self._broken = True  # a cache we cannot use only costs rehashing
            return None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @staticmethod
    def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
        return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)

    def lookup(self, paths: Sequence[str]) -> dict[str, tuple[str, os.stat_result]]:
        """The cached key and current stat of each path whose stat matches the cache."""
        found: dict[str, tuple[str, os.stat_result]] = {}
        conn = self._conn()
        stats = {p: os.stat(p) for p in paths}
        if conn is None or not paths:
            return found
        rows: list[tuple[str, int, int, int, int, str]] = []
        try:
            for i in range(0, len(paths), 500):
                part = list(paths[i : i + 500])
                marks = ",".join("?" * len(part))
                rows += conn.execute(
                    f"SELECT path, size, mtime_ns, ino, ctime_ns, key FROM hashes "
                    f"WHERE path IN ({marks})",
                    part,
                ).fetchall()
        except sqlite3.Error:
            return found
        for path, size, mtime, ino, ctime, key in rows:
            st = stats[path]
            if self._stamp(st) == (size, mtime, ino, ctime):
                found[path] = (key, st)
        return found

    def remember(self, items: Sequence[tuple[str, os.stat_result, str]]) -> None:
        conn = self._conn()
        if conn is None or not items:
            return
        with contextlib.suppress(sqlite3.Error):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?, ?)",
                [(p, *self._stamp(st), key) for p, st, key in items],
            )
            conn.execute("COMMIT")


def hash_files(
    paths: Sequence[str], cache: HashCache | None = None, workers: int | None = None
) -> dict[str, tuple[str, int]]:
    """``{path: (sha256 key, size)}`` for absolute ``paths``; unchanged files come from the
    cache, the others are hashed in parallel (and remembered). A file that changes while it is
    hashed is hashed again (its stat before and after must agree)."""
    cached = cache.lookup(paths) if cache is not None else {}
    out = {p: (key, st.st_size) for p, (key, st) in cached.items()}
    todo = [p for p in paths if p not in cached]

    def one(path: str) -> tuple[str, os.stat_result, str]:
        for _ in range(5):
            before = os.stat(path)
            key = sha256_file(path)
            after = os.stat(path)
            if HashCache._stamp(before) == HashCache._stamp(after):
                return path, after, key
        raise OSError(f"{path} keeps changing while it is hashed; log it once it is written")

    if todo:
        if len(todo) == 1:
            results = [one(todo[0])]
        else:
            with ThreadPoolExecutor(min(workers or hash_workers(), len(todo))) as pool:
                results = list(pool.map(one, todo))
        if cache is not None:
            cache.remember(results)
        for path, st, key in results:
            out[path] = (key, st.st_size)
    return out
