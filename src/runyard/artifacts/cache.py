"""The download cache: verified blobs shared by every run on the machine, with an LRU size cap.

Layout: ``<cache dir>/artifacts/`` is a :class:`~runyard.blobs.LocalBlobStore` (``sha256/ab/..``
one file per content, published atomically, so concurrent processes share it safely), and a
blob arriving from a server is written there through the store's verifying writer (or its
resumable upload, for large files: a killed download resumes where it stopped). A blob that was
used gets its mtime touched; when the cache grows past its cap, the least recently used blobs
are removed first. ``RUNYARD_ARTIFACT_CACHE_SIZE`` sets the cap (``10GB`` by default; ``500MB``,
``2GiB`` or a number of bytes).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from runyard.artifacts.hashing import default_cache_dir
from runyard.blobs import LocalBlobStore

DEFAULT_CAP = 10 * 10**9
_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not a size: write e.g. 10GB, 500MB, 2GiB or a byte count")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


class DownloadCache:
    """The machine's artifact download cache (see the module docstring)."""

    def __init__(self, root: Path | None = None, cap: int | None = None) -> None:
        self.root = (root or default_cache_dir()) / "artifacts"
        self.blobs = LocalBlobStore(self.root)
        if cap is None:
            env = os.environ.get("RUNYARD_ARTIFACT_CACHE_SIZE")
            cap = parse_size(env) if env else DEFAULT_CAP
        self.cap = cap

    def path(self, key: str) -> Path | None:
        """The cached blob (touched as used), or ``None``."""
        path = self.blobs.local_path(key)
        if path is not None:
            with contextlib.suppress(OSError):
                os.utime(path)
        return path

    def usage(self) -> tuple[int, list[tuple[float, int, Path]]]:
        files: list[tuple[float, int, Path]] = []
        total = 0
        for key in self.blobs.keys():  # noqa: SIM118 - a BlobStore, not a dict
            path = self.blobs.path_of(key)
            try:
                st = path.stat()
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, path))
            total += st.st_size
        return total, files

    def evict(self, keep: set[str] | None = None) -> int:
        """Remove least recently used blobs until the cache is under its cap (never those in
        ``keep``, the ones just downloaded); the bytes removed."""
        total, files = self.usage()
        if total <= self.cap:
            return 0
        keep_names = {k.split(":", 1)[1] for k in keep or ()}
        freed = 0
        for _mtime, size, path in sorted(files):
            if total - freed <= self.cap:
                break
            if path.name in keep_names:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                freed += size
        return freed
