"""The encoder thread of a run, and recovery's encoding of what a dead process left.

:class:`MediaContext` is what a :class:`runyard.Run` holds: the spool (written on the training
thread, :mod:`runyard.media._spool`), the encoder thread that turns each entry into a file in
the local blob store (``<root>/blobs``) and journals a ``media`` record
``{"id", "key", "size", "ext", "subdir", "files"}``, and the resolver the shipper calls.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from runyard.blobs import LocalBlobStore
from runyard.media._encode import IN_PLACE, encode, set_pause
from runyard.media._pins import pin_blob, pins_dir_for, prunable, release_all
from runyard.media._resolve import MediaResolver, Record
from runyard.media._spool import SpoolEntry, SpoolWriter, read_spool, spool_dir_for


def encode_entry(
    entry: SpoolEntry,
    blobs: LocalBlobStore,
    results: dict[int, dict[str, Any]],
    pins: Path | None = None,
) -> dict[str, Any]:
    """Encode one spool entry into ``blobs``; the ``media`` record describing the result.
    ``pins``: the journal's pin folder (see :mod:`runyard.media._pins`)."""
    header = entry.header
    try:
        if header.get("enc") in IN_PLACE:
            payload = entry.view()
            try:
                encoded = encode(header, payload, results)
            finally:
                if isinstance(payload, memoryview):
                    payload.release()
        else:
            encoded = encode(header, entry.read(), results)
        if encoded.inline is not None:
            return {"id": entry.id, "inline": encoded.inline}
        info = blobs.put_bytes(encoded.data)
        if pins is not None:
            pin_blob(blobs, pins, info.key, encoded.data)
    except Exception as exc:
        return {"id": entry.id, "error": f"{type(exc).__name__}: {exc}"}
    result: dict[str, Any] = {
        "id": entry.id,
        "key": info.key,
        "size": info.size,
        "ext": header.get("ext") or encoded.ext,
        "subdir": header.get("sub", "misc"),
    }
    if encoded.files:
        result["files"] = [list(f) for f in encoded.files]
    return result


class MediaContext:
    """A run's media plumbing. ``spool`` is called on the training thread (cheap); the rest
    runs on the encoder thread."""

    def __init__(
        self,
        journal_path: Path,
        append: Callable[[str, Any], Any],
        where: tuple[str, str, str],
    ) -> None:
        self.spool_dir = spool_dir_for(journal_path)
        self.blobs_root = journal_path.parent.parent / "blobs"
        self.pins = pins_dir_for(journal_path)
        self._append = append
        self._blobs: LocalBlobStore | None = None
        self._writer: SpoolWriter | None = None
        self.resolver = MediaResolver(None, where, self.pins)
        self._queue: deque[SpoolEntry] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._closing = False
        self._results: dict[int, dict[str, Any]] = {}
        self._not_spooling = threading.Event()  # clear while a log() writes to the spool
        self._not_spooling.set()
        self.active = False
        self._not_kept = 0

    @property
    def blobs(self) -> LocalBlobStore:
        if self._blobs is None:
            self._blobs = LocalBlobStore(self.blobs_root)
            self.resolver.blobs = self._blobs
        return self._blobs

    def spool(
        self,
        header: dict[str, Any],
        payload: Sequence[Any],
        check: Callable[[int], None] | None = None,
    ) -> int:
        """Append one raw entry (durable when this returns); its id. ``check``: see
        :meth:`SpoolWriter.append`."""
        writer = self._writer
        if writer is None:
            with self._cond:
                if self._writer is None:
                    self._writer = SpoolWriter(self.spool_dir, self._submit)
                    self.active = True
                writer = self._writer
        self._not_spooling.clear()
        try:
            entry_id = writer.append(header, payload, check)
        finally:
            self._not_spooling.set()
        if self._not_kept:
            self._not_kept = 0
            _warn(f"runyard: media are written again to {self.spool_dir}")
        return entry_id

    def not_kept(self, key: str, error: OSError) -> None:
        """A media value whose raw data could not be written (a full disk): left out of its
        row, with one warning until media can be written again (the run goes on)."""
        self._not_kept += 1
        if self._not_kept == 1:
            _warn(
                f"runyard: cannot write the media logged as {key!r} to {self.spool_dir} "
                f"({error.strerror or error}); media values are left out of their rows (the "
                f"rest of each row is logged) until the disk has room again"
            )

    def _pause(self) -> None:
        """The encoder's pause point: wait (at most 10 ms) while a ``log()`` writes to the
        spool, so that the training thread gets the GIL back at once each time it gives it
        up in there."""
        self._not_spooling.wait(0.01)

    def _submit(self, entry: SpoolEntry) -> None:
        with self._cond:
            self._queue.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="runyard-media", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        set_pause(self._pause)
        blobs = self.blobs
        previous: Path | None = None
        quick = False
        try:
            while True:
                with self._cond:
                    if not self._queue and quick:
                        _quick_switching(False)
                        quick = False
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    entry = self._queue.popleft()
                    self._busy = True
                if not quick:
                    _quick_switching(True)
                    quick = True
                previous = self._encode(entry, blobs, previous)
        finally:
            if quick:
                _quick_switching(False)

    def _encode(self, entry: SpoolEntry, blobs: LocalBlobStore, previous: Path | None) -> Path:
        try:
            self._encode_one(entry, blobs, previous)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
        return entry.segment

    def _encode_one(self, entry: SpoolEntry, blobs: LocalBlobStore, previous: Path | None) -> None:
        result = encode_entry(entry, blobs, self._results, self.pins)
        if "error" in result:
            print(
                f"runyard: could not encode a media value ({result['error']}); its row "
                f"keeps a reference marked with the error",
                file=sys.__stderr__ or sys.stderr,
            )
        self._results[entry.id] = result
        self._append("media", result)
        self.resolver.add_result(result)
        if previous is not None and previous != entry.segment and self._writer is not None:
            self._writer.recycle(previous)  # every entry of it is encoded and journaled

    def prepare(self, store: Any, pending: Sequence[Record], limit: int) -> list[Record]:
        """For the shipper: see :meth:`MediaResolver.prepare`."""
        if self._blobs is None:
            _ = self.blobs
        return self.resolver.prepare(store, pending, limit)

    def delivered(self, store: Any) -> None:
        """Every row of the run is in ``store``: drop the run's pins (and, for a server, the
        cached blobs nobody else pins; see :mod:`runyard.media._pins`)."""
        release_all(self.pins, self.blobs_root, prunable(store, self.blobs_root))

    def close(self, timeout: float) -> bool:
        """Encode what is queued (until ``timeout``), stop the thread; True if all is encoded.
        The spool is removed then; otherwise it stays for recovery / ``runyard sync``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(max(0.0, min(0.5, deadline - time.monotonic())))
            done = not self._queue and not self._busy
        if self._writer is not None:
            self._writer.close()
        if done and self.spool_dir.exists():
            shutil.rmtree(self.spool_dir, ignore_errors=True)
        return done


#: The GIL switch interval while an encoder thread has work (see :func:`_quick_switching`).
QUICK_SWITCH_INTERVAL = 0.0002
_switch_lock = threading.Lock()
_switch_users = 0
_switch_before = 0.0


def _quick_switching(on: bool) -> None:
    """Hand the GIL over every 0.2 ms instead of 5 ms while any encoder thread is busy.

    Encoding is C code (Pillow, zlib, numpy) that releases the GIL in short pieces and takes it
    back before a waiting thread wakes up, so the training thread, whose ``log()`` gives the GIL
    up for its ``writev``, would wait for the interpreter's forced switch, 5 ms at a time (an 8
    MB histogram's ``log()`` took 19 ms instead of 2 behind a queue of PNGs). The interval is
    process-wide: it is lowered while at least one encoder thread works, and restored when the
    last one is idle, unless someone else changed it meanwhile.
    """
    global _switch_users, _switch_before
    with _switch_lock:
        if on:
            if _switch_users == 0:
                _switch_before = sys.getswitchinterval()
                sys.setswitchinterval(min(_switch_before, QUICK_SWITCH_INTERVAL))
            _switch_users += 1
            return
        _switch_users -= 1
        quick = min(_switch_before, QUICK_SWITCH_INTERVAL)
        if _switch_users == 0 and sys.getswitchinterval() == quick:
            sys.setswitchinterval(_switch_before)


def complete_records(
    records: list[Record], journal_path: Path, store: Any
) -> tuple[list[Record], MediaResolver | None]:
    """Recovery and ``runyard sync``: resolve every pending value of a journal's records,
    encoding from its spool what the dead (or offline) process had not encoded, and put the
    files into ``store``. Returns the records to apply and the resolver (``None`` when the
    journal has no media)."""
    header = records[0][2] if records and records[0][1] == "run" else {}
    where = (header.get("entity", ""), header.get("project", ""), header.get("run_id", ""))
    pins = pins_dir_for(journal_path)
    resolver = MediaResolver(LocalBlobStore(journal_path.parent.parent / "blobs"), where, pins)
    resolver.note(records)
    missing = resolver.missing(records)
    if not missing and not any(kind == "media" for _s, kind, _p in records):
        return records, None
    assert resolver.blobs is not None
    if missing:
        spool = spool_dir_for(journal_path)
        results = dict(resolver.results)
        for entry in read_spool(spool):
            if entry.id in results and "error" not in results[entry.id]:
                continue
            results[entry.id] = encode_entry(entry, resolver.blobs, results, pins)
            resolver.add_result(results[entry.id])
        for entry_id in missing - set(results):
            resolver.add_result({"id": entry_id, "error": "the raw media data was lost"})
    out: list[Record] = []
    for seq, kind, payload in records:
        if kind == "row":
            resolved, files = resolver.resolve_row(payload)
            assert resolved is not None
            resolver.register(store, files)
            out.append((seq, kind, resolved))
        else:
            out.append((seq, kind, payload))
    return out, resolver


def discard_spool(journal_path: Path, store: Any = None) -> None:
    """Remove a journal's spool and pins once its records are all in ``store`` (a server's:
    the cached blobs nobody else pins are deleted too)."""
    shutil.rmtree(spool_dir_for(journal_path), ignore_errors=True)
    blobs_root = journal_path.parent.parent / "blobs"
    release_all(pins_dir_for(journal_path), blobs_root, prunable(store, blobs_root))


def _warn(message: str) -> None:
    print(message, file=sys.__stderr__ or sys.stderr)
