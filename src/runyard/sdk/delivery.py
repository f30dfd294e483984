"""Delivery: apply a journal's records to a store in batches it takes, whatever they hold.

The shipper (live runs), recovery and ``runyard sync`` all apply journals through
:class:`Delivery`. It splits records into batches the store accepts (at most
:data:`MAX_BATCH` records and :data:`runyard.limits.MAX_BATCH_BYTES` bytes), and when the store
rejects a batch for good (``BatchRejectedError``: a record it cannot hold, a body too large, a
server bug on some input) it finds out what is at fault instead of retrying forever:

1. the run itself (the header alone is refused): :class:`RunRejectedError`, nothing can be
   stored; the journal keeps everything for ``runyard sync`` once the cause is fixed;
2. the summary snapshot: the history goes on without it, with one warning;
3. otherwise some records: the batch is halved until the records at fault are found. Each is
   *quarantined*: written whole to ``journal/quarantine/<journal>`` beside the journal, replaced
   in the store by a ``quarantined`` record (the run's ``meta.quarantined`` names it) and
   reported with one warning naming the record, its step and the store's reason. Every other
   record of the run is applied.

A failure that may pass (``StoreUnavailableError``) is never a reason to set anything aside: it
propagates, and the caller retries later from :attr:`Delivery.applied_seq`. A rejection the store
is not sure of (``certain=False``, e.g. an HTTP 500) is retried a few times before a record is
quarantined.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from runyard._json import dumps
from runyard.limits import MAX_BATCH_BYTES
from runyard.sdk.journal import Record
from runyard.store.base import BatchRejectedError, JournalBatch, Store, StoreError

#: Records per batch. Small batches keep each stretch of work short: the shipper shares the GIL
#: with the training loop, and a long batch shows up as a stall in some log() call.
MAX_BATCH = 2_000
#: Waits before a record is set aside after rejections the store was not sure of.
UNSURE_RETRIES = (0.5, 1.0, 2.0)


class RunRejectedError(StoreError):
    """The store refuses the run itself (its header): none of its records can be applied."""


def _warn_stderr(message: str) -> None:
    print(message, file=sys.__stderr__ or sys.stderr)


class Delivery:
    """Applies the records of one journal to ``store``; see the module docstring.

    Not thread-safe: one thread delivers a journal at a time (the journal's writer or the
    process that holds its lock).
    """

    def __init__(
        self,
        store: Store,
        journal_id: str,
        header: dict[str, Any],
        *,
        quarantine_dir: Path | None,
        journal_name: str,
        warn: Callable[[str], None] = _warn_stderr,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.journal_id = journal_id
        self.header = header
        self.quarantine_dir = quarantine_dir
        self.journal_name = journal_name
        self._warn = warn
        self._sleep = sleep
        #: the store's applied mark for this journal, as last answered
        self.applied_seq = 0
        #: the records set aside, as ``(seq, kind, reason)``
        self.quarantined: list[tuple[int, str, str]] = []
        self.summary_refused: str | None = None

    @property
    def run_path(self) -> str:
        h = self.header
        return f"{h.get('entity')}/{h.get('project')}/{h.get('run_id')}"

    def deliver(
        self,
        records: Sequence[Record],
        *,
        sizes: Sequence[int] | None = None,
        summary: dict[str, Any] | None = None,
        metric_defs: list[dict[str, Any]] | None = None,
        heartbeat_at: float | None = None,
        between: Callable[[], None] | None = None,
    ) -> int:
        """Apply ``records`` (in ``seq`` order) and return the applied mark.

        ``sizes`` are the records' encoded sizes when the caller knows them (computed
        otherwise); ``between`` runs between two batches (the shipper yields the GIL there).
        With no records, one batch carries the summary and heartbeat."""
        if not records:
            self._apply_checked([], summary, metric_defs, heartbeat_at)
            return self.applied_seq
        if sizes is None:
            sizes = [len(dumps(r)) + 1 for r in records]
        start = 0
        while start < len(records):
            end = start
            total = 0
            while end < len(records) and end - start < MAX_BATCH:
                if end > start and total + sizes[end] > MAX_BATCH_BYTES:
                    break
                total += sizes[end]
                end += 1
            if start and between is not None:
                between()
            self._apply_checked(list(records[start:end]), summary, metric_defs, heartbeat_at)
            start = end
        return self.applied_seq

    # -- the search for what the store refuses ----------------------------------------------

    def _apply(
        self,
        records: list[Record],
        summary: dict[str, Any] | None,
        defs: list[dict[str, Any]] | None,
        heartbeat_at: float | None,
    ) -> None:
        if self.summary_refused is not None:
            summary = defs = None
        batch = JournalBatch(self.journal_id, self.header, records, summary, defs, heartbeat_at)
        self.applied_seq = max(self.applied_seq, self.store.apply(batch))

    def _apply_checked(
        self,
        records: list[Record],
        summary: dict[str, Any] | None,
        defs: list[dict[str, Any]] | None,
        heartbeat_at: float | None,
    ) -> None:
        try:
            self._apply(records, summary, defs, heartbeat_at)
            return
        except BatchRejectedError as exc:
            first = exc
        self._check_run_and_summary(summary, defs, first)
        self._split(records, summary, defs, heartbeat_at)

    def _check_run_and_summary(
        self,
        summary: dict[str, Any] | None,
        defs: list[dict[str, Any]] | None,
        error: BatchRejectedError,
    ) -> None:
        """Is it the run (header), the summary, or the records that the store refuses?"""
        try:
            self._apply([], summary, defs, None)
            return  # the run and summary pass: the records are at fault
        except BatchRejectedError as exc:
            error = exc
        if summary is not None or defs is not None:
            try:
                self._apply([], None, None, None)
            except BatchRejectedError:
                pass
            else:
                self.summary_refused = str(error)
                self._warn(
                    f"runyard: the store cannot hold the summary of run {self.run_path} "
                    f"({error}); its history and everything else are stored, but its summary "
                    f"is no longer updated"
                )
                return
        raise RunRejectedError(
            f"the store refuses run {self.run_path} itself ({error}); none of its records can "
            f"be stored. The journal keeps them all: fix the cause, then run `runyard sync`"
        )

    def _split(
        self,
        records: list[Record],
        summary: dict[str, Any] | None,
        defs: list[dict[str, Any]] | None,
        heartbeat_at: float | None,
    ) -> None:
        if len(records) == 1:
            self._settle(records[0], summary, defs, heartbeat_at)
            return
        middle = len(records) // 2
        for half in (records[:middle], records[middle:]):
            try:
                self._apply(half, summary, defs, heartbeat_at)
            except BatchRejectedError:
                self._split(half, summary, defs, heartbeat_at)

    def _settle(
        self,
        record: Record,
        summary: dict[str, Any] | None,
        defs: list[dict[str, Any]] | None,
        heartbeat_at: float | None,
    ) -> None:
        """One record the store rejected: retried if the store was unsure, else set aside."""
        if record[0] <= self.applied_seq:
            return
        reason = "rejected"
        for wait in (0.0, *UNSURE_RETRIES):
            if wait:
                self._sleep(wait)
            try:
                self._apply([record], summary, defs, heartbeat_at)
                return
            except BatchRejectedError as exc:
                reason = str(exc)
                if summary is not None or defs is not None:
                    # Maybe only the two together are too large (a big string is in the row
                    # and in the summary): the record alone, then the summary alone.
                    try:
                        self._apply([record], None, None, heartbeat_at)
                    except BatchRejectedError:
                        pass
                    else:
                        self._check_run_and_summary(summary, defs, exc)
                        return
                if exc.certain:
                    break
        self._quarantine(record, reason)
        stand_in = (record[0], "quarantined", {"kind": record[1], "reason": reason[:500]})
        self._apply([stand_in], summary, defs, heartbeat_at)

    def _quarantine(self, record: Record, reason: str) -> None:
        seq, kind, payload = record
        kept = "it is not kept anywhere else"
        if self.quarantine_dir is not None:
            try:
                self.quarantine_dir.mkdir(parents=True, exist_ok=True)
                path = self.quarantine_dir / self.journal_name
                line = orjson.dumps(
                    {"seq": seq, "kind": kind, "reason": reason, "record": _raw(record)}
                )
                with open(path, "ab") as fh:
                    fh.write(line + b"\n")
                kept = f"it is kept in {path}"
            except OSError as exc:
                kept = f"it could not be kept ({exc})"
        step = payload.get("_step") if kind == "row" and isinstance(payload, dict) else None
        where = f"record {seq} ({kind}{f', step {step}' if step is not None else ''})"
        self.quarantined.append((seq, kind, reason))
        self._warn(
            f"runyard: {where} of run {self.run_path} cannot be stored: {reason}. It was set "
            f"aside and every other record of the run is stored; {kept}"
        )


def _raw(record: Record) -> Any:
    """The record as JSON can hold it (it may be what the store could not encode)."""
    try:
        return orjson.loads(dumps(record))
    except Exception:
        return repr(record)[:10_000]
