"""The background thread that moves a run's journal records into the store.

``log()`` only appends to the journal and to an in-memory deque; this thread drains the deque
every ``flush_interval`` seconds and applies the records as one batch (one transaction). If the
store is unavailable it retries with backoff; the journal keeps everything meanwhile, so a
failure here never reaches the training loop and never loses data (``runyard sync`` or the next
``init()`` applies what is left).
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from runyard.sdk.journal import Record
from runyard.store.base import JournalBatch, Store

MAX_BATCH = 20_000


class Shipper:
    """Drains ``queue`` into ``store`` from a daemon thread."""

    def __init__(
        self,
        *,
        journal_id: str,
        header: dict[str, Any],
        open_store: Callable[[], Store],
        snapshot: Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]],
        flush_interval: float,
        heartbeat_interval: float,
        on_ready: Callable[[Store], None] | None = None,
    ) -> None:
        self.queue: collections.deque[Record] = collections.deque()
        self._journal_id = journal_id
        self._header = header
        self._open_store = open_store
        self._snapshot = snapshot
        self._flush_interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._on_ready = on_ready
        self._wake = threading.Event()
        self._stopping = False
        self._store: Store | None = None
        self.applied_seq = 0
        self.last_error: BaseException | None = None
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="runyard-shipper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
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
                if self.queue or now - last_beat >= self._heartbeat_interval or stopping:
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
                    return
                continue
            if stopping and not self.queue:
                return

    def _ship_all(self, now: float) -> None:
        assert self._store is not None
        pending: list[Record] = []
        while self.queue and len(pending) < MAX_BATCH:
            pending.append(self.queue.popleft())
        summary, defs = self._snapshot()
        batch = JournalBatch(
            self._journal_id, self._header, pending, summary, defs, heartbeat_at=now
        )
        try:
            self.applied_seq = self._store.apply(batch)
        except BaseException:
            # Put the records back in front, in order, so nothing is skipped on retry.
            self.queue.extendleft(reversed(pending))
            raise
        if self.queue:
            self._wake.set()

    def flush_soon(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None) -> bool:
        """Ship what is queued, end the thread; False if it did not finish within ``timeout``."""
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return not self._thread.is_alive() and not self.queue and self.last_error is None
