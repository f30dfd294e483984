"""Pending references → stored references, and their files into the store.

A row journaled by ``log()`` holds *pending* values for media that were not encoded yet::

    {"_type": "image-file", "format": "png", "width": 256, "height": 256,
     "__m__": [7], "__id__": 7}

``__m__`` lists every spool entry the value waits for; a dict with ``__id__: n`` is the file
reference of entry ``n`` (it gets ``sha256``, ``size`` and ``path``), and a dict
``{"__id__": n, "__as__": "path"}`` is replaced by the path alone (``images/separated``'s
``filenames``). Entry results come from ``media`` journal records (written by the encoder
thread) or from encoding the spool in recovery. File names follow W&B:
``media/<subdir>/<key>_<step>_<sha256[:20]><ext>``.

The resolver is what the shipper, recovery and ``runyard sync`` call before ``Store.apply``: the
store only ever sees final references, and the files they name are in the store (uploaded,
deduplicated by content) before the row that names them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runyard.blobs import LocalBlobStore
from runyard.media._encode import ID, PENDING
from runyard.media._pins import pin_path, prunable, release

AS = "__as__"
_UNSAFE = re.compile(r"[^A-Za-z0-9._/\-]")

Record = tuple[int, str, Any]


def safe_key(key: str) -> str:
    """A metric key as a file path part (``/`` kept, as W&B does; no empty/dot parts)."""
    parts = [_UNSAFE.sub("_", p) for p in key.split("/")]
    return "/".join(p if p not in ("", ".", "..") else "_" for p in parts)


def media_path(key: str, step: int, result: dict[str, Any]) -> str:
    hexdigest = result["key"].split(":", 1)[1]
    return f"media/{result['subdir']}/{safe_key(key)}_{step}_{hexdigest[:20]}{result['ext']}"


def is_pending(value: Any) -> bool:
    return type(value) is dict and PENDING in value


class MediaResolver:
    """Resolves the pending values of one journal's records (see the module docstring)."""

    def __init__(
        self, blobs: LocalBlobStore | None, where: tuple[str, str, str], pins: Path | None = None
    ) -> None:
        self.blobs = blobs
        self.where = where
        self.pins = pins
        self.results: dict[int, dict[str, Any]] = {}
        self._resolved: dict[tuple[str, tuple[int, ...]], Any] = {}
        self._last_summary: dict[str, Any] = {}
        self._registered: set[str] = set()
        self._sent: set[str] = set()
        self._warned = False

    # -- results -------------------------------------------------------------------------------

    def note(self, records: Sequence[Record]) -> None:
        for _seq, kind, payload in records:
            if kind == "media":
                self.results[int(payload["id"])] = payload

    def add_result(self, result: dict[str, Any]) -> None:
        self.results[int(result["id"])] = result

    def missing(self, records: Sequence[Record]) -> set[int]:
        """Entry ids that rows of ``records`` wait for and that have no result yet."""
        out: set[int] = set()
        for _seq, kind, payload in records:
            if kind == "row":
                for value in payload.values():
                    if type(value) is dict and PENDING in value:
                        out.update(i for i in value[PENDING] if i not in self.results)
        return out

    # -- resolution ----------------------------------------------------------------------------

    def prepare(self, store: Any, pending: Sequence[Record], limit: int) -> list[Record]:
        """The longest prefix (at most ``limit``) of ``pending`` whose rows can be resolved,
        resolved, with the files they name put into ``store``."""
        self.note(pending)
        out: list[Record] = []
        for record in pending[:limit]:
            seq, kind, payload = record
            if kind == "row" and any(is_pending(v) for v in payload.values()):
                resolved, files = self.resolve_row(payload)
                if resolved is None:
                    break
                self.register(store, files)
                out.append((seq, kind, resolved))
            else:
                out.append(record)
        return out

    def resolve_row(
        self, row: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[tuple[str, str, int]]]:
        """The row with its pending values resolved and the files they name; ``(None, [])``
        while an entry it needs has no result."""
        step = int(row.get("_step", 0))
        out = dict(row)
        files: list[tuple[str, str, int]] = []
        for key, value in row.items():
            if not is_pending(value):
                continue
            ids = tuple(int(i) for i in value[PENDING])
            if any(i not in self.results for i in ids):
                return None, []
            resolved = self._node(value, key, step, files)
            self._resolved[(key, ids)] = resolved
            out[key] = resolved
        return out, files

    def _node(self, value: Any, key: str, step: int, files: list[tuple[str, str, int]]) -> Any:
        if type(value) is list:
            return [self._node(v, key, step, files) for v in value]
        if type(value) is not dict:
            return value
        entry_id = value.get(ID)
        if entry_id is None:
            return {k: self._node(v, key, step, files) for k, v in value.items() if k != PENDING}
        result = self.results[int(entry_id)]
        if "error" in result:
            return {"_type": value.get("_type", "file"), "error": result["error"]}
        inline = result.get("inline")
        if inline is not None:  # a histogram binned off the training thread: no file
            out = {k: v for k, v in value.items() if k not in (PENDING, ID, AS)}
            out.update(inline)
            return out
        path = media_path(key, step, result)
        files.append((path, result["key"], int(result["size"])))
        files.extend((n, k, int(s)) for n, k, s in result.get("files") or ())
        if value.get(AS) == "path":
            return path
        out = {
            k: self._node(v, key, step, files)
            for k, v in value.items()
            if k not in (PENDING, ID, AS)
        }
        out.update(sha256=result["key"].split(":", 1)[1], size=int(result["size"]), path=path)
        return out

    def resolve_summary(self, summary: dict[str, Any]) -> dict[str, Any]:
        """The summary with pending values replaced by their resolved row values (or the
        previous resolved value while the newest is still being encoded)."""
        out = {}
        for key, value in summary.items():
            if is_pending(value):
                ids = tuple(int(i) for i in value[PENDING])
                resolved = self._resolved.get((key, ids))
                if resolved is None:
                    if key in self._last_summary:
                        out[key] = self._last_summary[key]
                    continue
                self._last_summary[key] = resolved
                out[key] = resolved
            else:
                out[key] = value
        return out

    # -- files ---------------------------------------------------------------------------------

    def register(self, store: Any, files: Sequence[tuple[str, str, int]]) -> None:
        """Put the files into the store (once per name; a blob sent before is linked). With a
        server store, each blob the server acknowledged is released from the local cache
        (:mod:`runyard.media._pins`): a later file of the same content is a link."""
        from runyard.store.base import StoreError

        entity, project, run_id = self.where
        prune = self.blobs is not None and prunable(store, self.blobs.root)
        for name, key, _size in files:
            if name in self._registered:
                continue
            try:
                source = self._source(key)
                done = (key in self._sent or source is None) and store.link_file(
                    entity, project, run_id, name, key
                )
                if not done:
                    if source is None:
                        raise StoreError(f"the encoded file {key} is missing on this machine")
                    store.put_file(entity, project, run_id, name, source, expected_key=key)
                if prune:
                    assert self.blobs is not None
                    release(self.pins, self.blobs.root, key, prune=True)
            except StoreError as exc:
                if type(exc).__name__ == "StoreUnavailableError":
                    raise  # the shipper retries
                if not self._warned:
                    self._warned = True
                    print(
                        f"runyard: media file {name} of run {entity}/{project}/{run_id} was "
                        f"refused by the store: {exc}",
                        file=sys.__stderr__ or sys.stderr,
                    )
            self._registered.add(name)
            self._sent.add(key)

    def _source(self, key: str) -> Path | None:
        """Where this machine has the blob: the journal's pin, else the cache's copy."""
        if self.pins is not None:
            pinned = pin_path(self.pins, key)
            if pinned.is_file():
                return pinned
        if self.blobs is not None:
            return self.blobs.local_path(key)
        return None
