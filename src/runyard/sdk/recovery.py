"""Recovery: apply journals whose process died (or offline journals) to a store.

A journal is recoverable when nobody holds its lock: its writer finished or vanished. Records
are applied past the store's mark for that journal, so recovering twice, or recovering a journal
that was half shipped, neither duplicates nor loses rows. A journal without a ``finish`` record
belonged to a process that vanished (``kill -9``, OOM, power loss of a node): its run is marked
``crashed`` (``preempted`` if it had called ``mark_preempting()``).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from runyard._time import format_time
from runyard.sdk.delivery import Delivery
from runyard.sdk.journal import JOURNAL_SUFFIX, Record, read_journal, retire_journal, try_lock
from runyard.sdk.resume import journal_header, reconcile_recovered
from runyard.sdk.summary import MetricDefinition, SummaryTracker
from runyard.store.base import JournalBatch, Store
from runyard.store.locate import journal_dir

CRASH_MESSAGE = (
    "the process ended without finishing the run (killed with SIGKILL, out of memory, or "
    "crashed); recovered from its journal"
)


@dataclass
class RecoveryResult:
    path: Path
    run_path: str
    records: int
    state: str
    #: records the store could not apply, set aside under journal/quarantine/
    quarantined: int = 0


@dataclass
class RecoveryFailure:
    path: Path
    error: str


@dataclass
class RecoveryReport:
    """What :func:`recover_journals` did with each journal it found."""

    recovered: list[RecoveryResult] = field(default_factory=list)
    #: journals a live process holds (their runs are still running)
    live: list[Path] = field(default_factory=list)
    #: offline journals left out (``include_offline=False``)
    offline: list[Path] = field(default_factory=list)
    failed: list[RecoveryFailure] = field(default_factory=list)


def pending_journals(root: Path) -> list[Path]:
    folder = journal_dir(root)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"*{JOURNAL_SUFFIX}"))


def replay(records: list[Record]) -> tuple[SummaryTracker, bool]:
    """The summary tracker after ``records``, and whether they include a ``finish`` record."""
    tracker = SummaryTracker()
    if records and records[0][1] == "run":
        header = records[0][2]
        tracker.resume_under(header.get("initial_summary"), header.get("initial_metric_defs"))
    finished = False
    for _seq, kind, payload in records:
        if kind == "row":
            tracker.update_row(payload)
        elif kind == "define":
            tracker.define(MetricDefinition.from_dict(payload))
        elif kind == "summary":
            for key, value in (payload.get("set") or {}).items():
                tracker.pin(key, value)
            for key in payload.get("del") or ():
                tracker.unpin(key)
        elif kind == "resume":
            # A provisional session met the stored run (sdk/resume.py): its summary so far
            # lies under what this session logged.
            tracker.resume_under(payload.get("initial_summary"), payload.get("stored_metric_defs"))
        elif kind == "finish":
            finished = True
    return tracker, finished


def recover_journal(path: Path, store: Store, keep: bool | None = None) -> RecoveryResult | None:
    """Apply one journal if no live process owns it, then retire it (see ``retire_journal``)."""
    fd = try_lock(path)
    if fd is None:
        return None
    try:
        if not path.exists():  # another process recovered it while we waited for the lock
            return None
        damaged: list[bytes] = []
        records = list(read_journal(path, damaged))
        if not records or records[0][1] != "run":
            return None
        header = records[0][2]
        reconciled = None
        if header.get("provisional"):
            # Started while the store could not be asked: place its steps now (sdk/resume.py).
            records, reconciled = reconcile_recovered(records, store, path.parent.parent)
        records, media = _complete_media(records, path, store)
        tracker, finished = replay(records)
        state = "finished"
        preempting = any(kind == "preempt" for _, kind, _ in records)
        if not finished:
            last_time = max(
                (p.get("_timestamp", 0.0) for _, k, p in records if k == "row"),
                default=header.get("start_time", time.time()),
            )
            runtime = max(
                (p.get("_runtime", 0.0) for _, k, p in records if k == "row"), default=0.0
            )
            records.append(
                (
                    records[-1][0] + 1,
                    "finish",
                    {
                        # it said it may be preempted (mark_preempting), then vanished
                        "state": "preempted" if preempting else "crashed",
                        "exit_code": None,
                        "failure": CRASH_MESSAGE,
                        "time": last_time,
                        "runtime": runtime,
                    },
                )
            )
            state = "preempted" if preempting else "crashed"
        else:
            state = next(p["state"] for _, k, p in reversed(records) if k == "finish")
        if reconciled is not None:
            records = reconciled.store_form(records)
        delivery = Delivery(
            store,
            header["journal_id"],
            header,
            quarantine_dir=path.parent / "quarantine",
            journal_name=path.name,
        )
        if damaged:
            print(
                f"runyard: skipped {len(damaged)} damaged line(s) of {path} (a write that failed "
                f"or an edit); every whole record is applied",
                file=sys.stderr,
            )
        delivery.deliver(
            records,
            summary=tracker.snapshot(),
            metric_defs=[d.to_dict() for d in tracker.definitions],
        )
        if keep is None:
            keep = os.environ.get("RUNYARD_KEEP_JOURNALS", "").lower() in ("1", "true", "yes")
        retire_journal(path, keep)
        if media:
            from runyard.media import discard_spool

            discard_spool(path, store)
        run_path = f"{header['entity']}/{header['project']}/{header['run_id']}"
        return RecoveryResult(path, run_path, len(records), state, len(delivery.quarantined))
    finally:
        os.close(fd)


def _complete_media(records: list[Record], path: Path, store: Store) -> tuple[list[Record], bool]:
    """Resolve the journal's media references (encoding from its spool what the dead process
    had not), with their files put into the store; the run is created first (its files need
    it)."""
    from runyard.media import complete_records
    from runyard.media._resolve import is_pending

    if not any(
        kind == "media" or (kind == "row" and any(is_pending(v) for v in payload.values()))
        for _s, kind, payload in records
    ):
        return records, False
    header = records[0][2]
    store.apply(JournalBatch(journal_id=header["journal_id"], header=header, records=records[:1]))
    resolved, _resolver = complete_records(records, path, store)
    return resolved, True


def recover_journals(
    root: Path, store: Store, *, include_offline: bool = False, quiet: bool = False
) -> list[RecoveryResult]:
    """Recover every unowned journal under ``root``. Offline journals only if asked."""
    return recover_all(root, store, include_offline=include_offline, quiet=quiet).recovered


def recover_all(
    root: Path, store: Store, *, include_offline: bool = False, quiet: bool = False
) -> RecoveryReport:
    """Recover every unowned journal under ``root`` and say what happened to each."""
    report = RecoveryReport()
    # Oldest session first: a run's later session is placed after the earlier ones' steps.
    dated = []
    for path in pending_journals(root):
        header = journal_header(path)
        if header is None:
            if path.exists():  # a header still being written, or a damaged file
                dated.append((float("inf"), path))
            continue  # retired by another process meanwhile
        if not include_offline and header.get("mode") == "offline":
            report.offline.append(path)
            continue
        dated.append((float(header.get("start_time") or 0.0), path))
    for _, path in sorted(dated):
        try:
            result = recover_journal(path, store)
        except FileNotFoundError:
            continue  # another process recovered and retired it meanwhile
        except Exception as exc:
            if not quiet:
                print(f"runyard: could not recover {path}: {exc}", file=sys.stderr)
            report.failed.append(RecoveryFailure(path, str(exc)))
            continue
        if result is not None:
            report.recovered.append(result)
        elif path.exists():
            report.live.append(path)
    return report


def mark_stale_runs(store: Store, timeout: float = 300.0) -> list[str]:
    """Mark ``crashed`` the running runs whose process is gone (``preempted``: those that
    called ``mark_preempting()``).

    On this host a run whose process no longer exists is crashed at once (its journal, if any,
    has just been recovered); elsewhere a heartbeat older than ``timeout`` seconds decides.
    """
    from runyard.sdk.metadata import hostname
    from runyard.sdk.state import _pid_alive
    from runyard.store.base import LIVE_RUN_STATES, RunQuery

    here = hostname()
    now = time.time()
    marked = []
    for run in store.list_runs(RunQuery(states=list(LIVE_RUN_STATES))):
        if run.host == here and run.pid is not None:
            gone = not _pid_alive(run.pid)
        else:
            gone = now - run.heartbeat_at > timeout
        if gone and store.mark_run_state(
            run.pk,
            "crashed",
            failure=f"no heartbeat since {format_time(run.heartbeat_at)}; the process is gone",
        ):
            marked.append(run.path)
    return marked
