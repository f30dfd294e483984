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

import bisect
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runyard._gil import quick_switching
from runyard._json import dumps
from runyard.errors import AuthenticationError
from runyard.sdk.delivery import Delivery, RunRejectedError
from runyard.sdk.journal import JournalWriter, Record, parse_line
from runyard.store.base import RunConflictError, Store, StoreDamagedError

#: Journal growth per flush interval above which the training thread counts as logging in a
#: tight loop (about 3,000 small rows a second): the store is opened after that burst.
BUSY_BYTES = 64 << 10
#: Seconds after which the store is opened even if the training thread never pauses.
OPEN_DEADLINE = 3.0
#: Bytes of journal read at a time (a backlog is read, and shipped, piece by piece).
READ_BYTES = 1 << 20
#: Lines decoded between two hand-overs of the GIL to the training thread.
YIELD_EVERY = 512


class Shipper:
    """Tails a journal file (and its writer's in-memory backlog) into ``store`` from a daemon
    thread."""

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
        journal: JournalWriter | None = None,
        reconcile: Callable[[Store], Callable[[list[Record]], list[Record]]] | None = None,
        prepare: Callable[[Store, list[Record], int], list[Record]] | None = None,
    ) -> None:
        self._file = open(journal_path, "rb")  # noqa: SIM115 - closed when the thread ends
        self._journal_path = journal_path
        self._journal = journal
        self._partial = b""
        #: lines read but not yet in the store, undecoded: bytes are not tracked by the garbage
        #: collector, so a backlog of lines (the store still opening) costs no GC time
        self._pending: list[bytes] = []
        self._pending_seqs: list[int] = []
        #: the last seq read (from the file or the writer's backlog)
        self._seen = 0
        self._damaged = 0
        self._journal_id = journal_id
        self._header = header
        self._open_store = open_store
        self._snapshot = snapshot
        self._flush_interval = flush_interval
        self._heartbeat_interval = heartbeat_interval
        self._on_ready = on_ready
        #: a provisional run (sdk/resume.py): asked once the store answers, before anything is
        #: shipped; it returns the rewrite of the records journaled until then
        self._reconcile = reconcile
        #: (store, pending, limit) -> the prefix of pending to send now, possibly rewritten
        #: (runyard.media resolves pending media references there); None: all of pending.
        self._prepare = prepare
        self._journal_size = 0
        #: the last read stopped at its limit: there is more in the file
        self._more = False
        self._open_deadline = time.monotonic() + OPEN_DEADLINE
        self._wake = threading.Event()
        self._stopping = False
        self._deadline = float("inf")
        self._store: Store | None = None
        self._delivery: Delivery | None = None
        self.applied_seq = 0
        self.last_error: BaseException | None = None
        #: set when the store refuses the run itself: nothing more is sent
        self.refused: Exception | None = None
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="runyard-shipper", daemon=True)
        self._thread.start()

    @property
    def quarantined(self) -> list[tuple[int, str, str]]:
        """Records the store could not apply and that were set aside (see sdk/delivery.py)."""
        return self._delivery.quarantined if self._delivery is not None else []

    def _take(self, seq: int, line: bytes) -> None:
        if seq <= self._seen:
            return  # written again after a failed write, or already taken from the backlog
        self._seen = seq
        self._pending.append(line)
        self._pending_seqs.append(seq)

    def _read_new(self, limit: int | None = READ_BYTES) -> None:
        """Take the lines written since the last read (at most ``limit`` bytes of them; the
        rest is read on the next call: ``self._more``), then what waits in the writer's
        backlog once the file is read to its end."""
        for _ in range(3):
            data = self._file.read(-1 if limit is None else limit)
            self._more = limit is not None and len(data) >= limit
            if data:
                data = self._partial + data
                lines = data.split(b"\n")
                self._partial = lines.pop()  # an incomplete last line waits for its newline
                for n, line in enumerate(lines):
                    # Decoded here only to know the line is whole (a fragment a failed write
                    # left can begin with a valid seq, and its record follows it, rewritten);
                    # kept undecoded until it is shipped.
                    record = parse_line(line) if line else None
                    if record is None:
                        self._damaged += bool(line)
                        continue
                    self._take(record[0], line)
                    if n % YIELD_EVERY == YIELD_EVERY - 1:
                        _yield_gil()
            if self._more or self._journal is None:
                return
            if self._journal.durable_seq > self._seen:
                continue  # the backlog moved to the file meanwhile: read that first
            for seq, line in self._journal.backlog_after(self._seen):
                self._take(seq, line[:-1])
            return

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
            if self.refused is not None:
                return
            try:
                if self._journal is not None and self._journal.blocked is not None:
                    self._journal.retry_backlog()
                if self._store is None and not stopping and self._logging_hard():
                    continue
                if self._store is None:
                    with quick_switching():
                        self._store = self._open_store()
                        if self._on_ready is not None:
                            self._on_ready(self._store)
                    self._delivery = Delivery(
                        self._store,
                        self._journal_id,
                        self._header,
                        quarantine_dir=self._journal_path.parent / "quarantine",
                        journal_name=self._journal_path.name,
                    )
                if self._reconcile is not None:
                    self._reconcile_now()
                now = time.time()
                self._read_new()
                if self._pending or now - last_beat >= self._heartbeat_interval or stopping:
                    self._ship_all(now)
                    last_beat = now
                backoff = self._flush_interval
                self.last_error = None
            except RunRejectedError as exc:
                self.refused = self.last_error = exc
                print(f"runyard: {exc}", file=sys.__stderr__)
                return
            except RunConflictError as exc:
                # The run may never take this journal (sdk/resume.py): stop, keep it all.
                self.last_error = exc
                print(
                    f"runyard: {exc}. Its records are kept in {self._file.name}; nothing "
                    f"was lost, but they stay out of the store (pass resume='allow' to continue "
                    f"a run, or use a new id)",
                    file=sys.__stderr__,
                )
                return
            except Exception as exc:
                self.last_error = exc
                if isinstance(exc, AuthenticationError):
                    # 401/403: not an outage, retrying sends the same key again. Stop; the
                    # journal keeps everything for `runyard sync` with a key that may write.
                    self.refused = exc
                    print(
                        f"runyard: {exc}. Nothing was lost: the records stay in "
                        f"{self._file.name}; upload them with `runyard sync` once the key is "
                        f"fixed",
                        file=sys.__stderr__,
                    )
                    return
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
                    # to `runyard sync` (the journal has it). A damaged database file does not
                    # mend itself meanwhile: no point in holding the program's exit for it.
                    left = self._deadline - time.monotonic()
                    if left <= 0 or isinstance(exc, StoreDamagedError):
                        return
                    backoff = min(backoff, 2.0, left)
                continue
            if stopping and not self._pending and self._caught_up():
                return

    def _logging_hard(self) -> bool:
        """True while the training thread logs in a tight loop (the journal grew by more than
        :data:`BUSY_BYTES` since the last look) and :data:`OPEN_DEADLINE` has not passed.

        Opening the store imports SQLAlchemy (or httpx) and may create the schema: hundreds of
        ms of Python in this thread, during which every log() waits for the GIL. The records
        are safe in the journal meanwhile, so the store is opened at the first lull instead
        (a training loop has many: data loading, evaluation), or after the deadline, or at
        finish()."""
        try:
            size = os.fstat(self._file.fileno()).st_size
        except OSError:
            return False
        grew, self._journal_size = size - self._journal_size, size
        return grew > BUSY_BYTES and time.monotonic() < self._open_deadline

    def _caught_up(self) -> bool:
        """Everything the writer numbered is applied (or, with no writer, all that was read)."""
        journal = self._journal
        if journal is None:
            return True
        if journal.seq > self.applied_seq:
            self._read_new()  # the last records (e.g. finish) may have landed since
            return not self._pending and journal.seq <= self._seen
        return True

    def _reconcile_now(self) -> None:
        assert self._store is not None and self._reconcile is not None
        rewrite = self._reconcile(self._store)
        self._reconcile = None
        # Everything journaled before the decision is read now (it was written first) and
        # placed once; records after it are written in place already.
        self._read_new(limit=None)
        records = [r for r in map(parse_line, self._pending) if r is not None]
        rewritten = rewrite(records)
        self._pending = [dumps(record) for record in rewritten]
        self._pending_seqs = [record[0] for record in rewritten]

    def _ship_all(self, now: float) -> None:
        """Deliver the pending lines, a store-sized chunk at a time: each chunk is decoded
        just before it goes, and the training thread gets the GIL between chunks."""
        assert self._delivery is not None and self._store is not None
        chunk = max(1, self._store.batch_records)
        first = True
        while True:
            lines = self._pending[:chunk]
            records: list[Record] = []
            measured: list[int] = []
            for line in lines:
                record = parse_line(line)
                if record is None:
                    self._damaged += 1
                else:
                    records.append(record)
                    measured.append(len(line) + 1)
            sizes: list[int] | None = measured
            if self._prepare is not None and records:
                prepared = self._prepare(self._store, records, len(records))
                if not prepared:
                    return  # waiting for media to be encoded
                if len(prepared) != len(records) or any(
                    a is not b for a, b in zip(prepared, records, strict=False)
                ):
                    sizes = None  # rewritten records: the delivery measures them
                records = prepared
            if not first:
                _yield_gil()
            first = False
            summary, defs = self._snapshot()
            try:
                self._delivery.deliver(
                    records, sizes=sizes, summary=summary, metric_defs=defs, heartbeat_at=now
                )
            finally:
                # Only what the store has is dropped: the rest is sent again on the next round.
                applied = self._delivery.applied_seq
                self.applied_seq = max(self.applied_seq, applied)
                done = bisect.bisect_right(self._pending_seqs, applied)
                if done:
                    del self._pending[:done]
                    del self._pending_seqs[:done]
            if len(self._pending) < chunk and self._more:
                self._read_new()
            if not self._pending:
                return
            if done == 0:  # nothing moved (e.g. only damaged lines): don't spin
                del self._pending[: len(lines)]
                del self._pending_seqs[: len(lines)]

    def flush_soon(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None) -> bool:
        """Ship what is queued, end the thread; False if it did not finish within ``timeout``
        (the store stayed unavailable or slow, or refused the run): the journal keeps what
        was not shipped."""
        if timeout is not None:
            self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout)
        return (
            not self._thread.is_alive()
            and not self._pending
            and self.last_error is None
            and self.refused is None
        )


def _yield_gil() -> None:
    time.sleep(0.0002)  # let the training thread take the GIL between chunks
