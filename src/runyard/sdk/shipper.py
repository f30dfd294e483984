"""The background thread that moves a run's journal records into the store.

``log()`` only appends to the journal file; this thread tails that file every
``flush_interval`` seconds and applies the new records as one batch (one transaction). The file,
not an in-memory queue, is the single source: whatever interrupts the writer (a signal between
two statements, an exception) cannot make the store skip a record that the journal holds. If the
store is unavailable the thread retries with backoff; the journal keeps everything meanwhile, so
a failure here never reaches the training loop and never loses data (``runyard sync`` or the
next ``init()`` applies what is left).

A batch whose outcome is unknown (the server died or timed out after receiving it) is simply
sent again: ``Store.apply`` skips the records at or below the journal's applied mark, so a
record is never stored twice. At ``stop(timeout)`` the thread keeps retrying until the
deadline, then gives up and leaves the rest in the journal for ``runyard sync``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from runyard.sdk.journal import Record
from runyard.store.base import JournalBatch, Store

#: Records per transaction. Small batches keep each stretch of work short: this thread shares
#: the GIL with the training loop, and a long batch shows up as a stall in some log() call.
MAX_BATCH = 2_000


class Shipper:
    """Tails a journal file into ``store`` from a daemon thread."""

    def __init__(
        self,
        *,
        journal_path: Path,
        journal_id: str,
        header: dict[str, Any],
        open_store: Callable[[], Store],
        snapshot: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]],
        flush_interval: float,
        heartbeat_interval: float,
        on_ready: Callable[[Store], None] | None = None,
    ) -> None:
        self._file = open(journal_path, "rb")  # noqa: SIM115 - closed when the thread ends
        self._partial = b""
        self._pending: list[Record] = []
        self._journal_id = journal_id
        self._header = header
        self._open_store = open_store
        self._snapshot = snapshot
        self._flush_interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._on_ready = on_ready
        self._wake = threading.Event()
        self._stopping = False
        self._deadline = float("inf")
        self._store: Store | None = None
        self.applied_seq = 0
        self.last_error: BaseException | None = None
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="runyard-shipper", daemon=True)
        self._thread.start()

    def _read_new(self) -> None:
        data = self._file.read()
        if not data:
            return
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for its newline
        for line in lines:
            seq, kind, payload = orjson.loads(line)
            self._pending.append((int(seq), str(kind), payload))

    def _loop(self) -> None:
        try:
            self._run_loop()
        finally:
            self._file.close()

    def _run_loop(self) -> None:
        backoff = self._flush_interval
        last_beat = 0.0
        while True:
            self._wake.wait(backoff)
            self._wake.clear()
            stopping = self._stopping
            try:
                if self._store is None:
                    self._store = self._open_store()
                    if self._on_ready is not None:
                        self._on_ready(self._store)
                now = time.time()
                self._read_new()
                if self._pending or now - last_beat >= self._heartbeat_interval or stopping:
                    self._ship_all(now)
                    last_beat = now
                backoff = self._flush_interval
                self.last_error = None
            except Exception as exc:
                self.last_error = exc
                if not self._warned:
                    self._warned = True
                    print(
                        f"runyard: cannot write to the store yet ({exc}); the journal keeps "
                        f"every record and writing is retried",
                        file=sys.__stderr__,
                    )
                backoff = min(max(backoff * 2, 0.5), 10.0)
                if stopping:
                    # finish() is waiting: keep trying until its deadline, then leave the rest
                    # to `runyard sync` (the journal has it).
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        return
                    backoff = min(backoff, 2.0, left)
                continue
            if stopping and not self._pending:
                return

    def _ship_all(self, now: float) -> None:
        assert self._store is not None
        while True:
            batch_records = self._pending[:MAX_BATCH]
            summary, defs = self._snapshot()
            batch = JournalBatch(
                self._journal_id, self._header, batch_records, summary, defs, heartbeat_at=now
            )
            self.applied_seq = self._store.apply(batch)
            del self._pending[: len(batch_records)]  # only once the store has them
            if not self._pending:
                return
            time.sleep(0.001)  # let the training thread run between batches

    def flush_soon(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None) -> bool:
        """Ship what is queued, end the thread; False if it did not finish within ``timeout``
        (the store stayed unavailable or slow): the journal keeps what was not shipped."""
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive() and not self._pending and self.last_error is None
