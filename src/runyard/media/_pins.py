"""The client's blob cache (``<dir>/blobs``) for server stores: pins, and pruning.

The encoder thread writes each encoded file into the local blob store ``<dir>/blobs``; the
resolver uploads it from there. With the embedded store that folder *is* the store's blob store
(nothing to clean). With a server it is only a cache, which would grow for ever, so:

* **Pins.** Each journal pins the blobs it needs: a hard link
  ``<dir>/blobs/.pins/<journal>/<hex>`` made right after the blob is written. The upload reads
  the pin, so a blob stays readable for the journal that needs it whatever other processes
  delete, and a journal left for ``runyard sync`` (offline, crashed, server down) keeps its
  blobs until it is synced.
* **Release.** When the server has acknowledged a blob (the upload or a link by hash
  answered), the journal drops its pin, and the cached blob itself is deleted if no other
  journal pins it (its link count is 1). A later file of the same content in that run is a link
  by hash, which the server answers for the run's own entity. When the run's journal is fully
  delivered (``finish()``, recovery, ``runyard sync``) its pin folder goes.
* **Never for an embedded store.** Cached blobs are deleted only when the store is a server
  *and* no embedded store lives in the same folder (``<dir>/runyard.db``), whose files the
  blobs would be.

The race "another process pins the blob while it is deleted" is safe: the pin (a link to the
same inode) keeps the content, and a writer whose blob vanished before it could pin writes it
again (:func:`pin_blob`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from runyard.blobs import LocalBlobStore, parse_key

PINS = ".pins"
#: The embedded store's database file name (runyard.store.locate.DB_NAME).
_EMBEDDED_DB = "runyard.db"


def pins_dir_for(journal_path: Path) -> Path:
    """The pin folder of a journal (``<dir>/blobs/.pins/<journal name>``)."""
    return journal_path.parent.parent / "blobs" / PINS / journal_path.stem


def pin_path(pins: Path, key: str) -> Path:
    return pins / parse_key(key)[1]


def pin_blob(blobs: LocalBlobStore, pins: Path, key: str, data: bytes) -> None:
    """Pin the blob ``key`` (just written with ``data``) for the journal of ``pins``."""
    target = pin_path(pins, key)
    for _ in range(3):
        try:
            os.link(blobs.path_of(key), target)
            return
        except FileExistsError:
            return
        except FileNotFoundError:
            if not pins.is_dir():
                pins.mkdir(parents=True, exist_ok=True)
                continue
            blobs.put_bytes(data)  # released by another process in between: write it again
    raise OSError(f"could not pin blob {key} in {pins}")


def prunable(store: Any, blobs_root: Path) -> bool:
    """Whether cached blobs under ``blobs_root`` may be deleted once ``store`` has them: the
    store is a server's and the folder holds no embedded store."""
    # Another thread may be importing the module right now (partially initialised, without
    # HTTPStore yet): then no HTTPStore exists yet either.
    http_store = getattr(sys.modules.get("runyard.store.http"), "HTTPStore", None)
    if http_store is None or not isinstance(store, http_store):
        return False
    return not (blobs_root.parent / _EMBEDDED_DB).exists()


def release(pins: Path | None, blobs_root: Path, key: str, *, prune: bool) -> None:
    """Drop the journal's pin of ``key``; with ``prune``, delete the cached blob too unless
    another journal pins it."""
    if pins is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pin_path(pins, key))
    if prune:
        algorithm, hexdigest = parse_key(key)
        cached = blobs_root / algorithm / hexdigest[:2] / hexdigest
        try:
            if os.stat(cached).st_nlink == 1:
                os.unlink(cached)
        except FileNotFoundError:
            pass


def release_all(pins: Path, blobs_root: Path, prune: bool) -> None:
    """Release every pin of a journal (its records are all stored) and remove its folder."""
    if not pins.is_dir():
        return
    for entry in os.scandir(pins):
        if len(entry.name) == 64:
            release(pins, blobs_root, f"sha256:{entry.name}", prune=prune)
    shutil.rmtree(pins, ignore_errors=True)
