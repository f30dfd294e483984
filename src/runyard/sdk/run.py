"""``Run``: one tracked execution — its config, history, summary and final state."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from runyard.errors import UsageError
from runyard.limits import MAX_KEYS_PER_ROW
from runyard.sdk.alert import AlertLevel, alert_payload
from runyard.sdk.config import Config
from runyard.sdk.console import ConsoleCapture
from runyard.sdk.journal import JournalBlocked, JournalWriter, Record, retire_journal
from runyard.sdk.resume import (
    EXPLICIT_STEPS,
    ResumeStart,
    merged_over,
    reconcile,
    stored_run_after_earlier_sessions,
)
from runyard.sdk.settings import Settings
from runyard.sdk.shipper import Shipper
from runyard.sdk.stop import StopPoller, start_stop_poller
from runyard.sdk.summary import MetricDefinition, Summary, SummaryTracker, parse_metric_definition
from runyard.sdk.values import check_row_size, flatten_into
from runyard.system.monitor import SystemMonitor


class RunFinishedError(UsageError, RuntimeError):
    """The run was already finished (a W&B ``wandb.errors.UsageError`` too)."""


class Run:
    """A run. Created by :func:`runyard.init`; use as a context manager to finish it.

    ``log`` is safe to call from several threads. The run belongs to the process that created
    it: in a forked child it does nothing (with one warning) and never touches the parent's data.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        root: Path | None,
        header: dict[str, Any],
        config: Config,
        start_step: int = 0,
        runtime_offset: float = 0.0,
        initial_summary: Mapping[str, Any] | None = None,
        initial_metric_defs: Sequence[Mapping[str, Any]] | None = None,
        resume_start: ResumeStart | None = None,
    ) -> None:
        self._settings = settings
        self._root = root
        self._header = header
        self.entity: str = header["entity"]
        self.project: str = header["project"]
        self.id: str = header["run_id"]
        self._name: str = header["name"]
        self._group: str | None = header.get("group")
        self._job_type: str | None = header.get("job_type")
        self._tags: tuple[str, ...] = tuple(header.get("tags") or ())
        self._notes: str | None = header.get("notes")
        self.sweep_id: str | None = header.get("sweep_id")
        self.mode: str = settings.mode or "online"
        self.resumed: bool = bool(header.get("resumed"))
        self.start_time: float = header["start_time"]
        self._runtime_offset = runtime_offset
        self._owner_pid = os.getpid()
        #: False once finished, in disabled mode, or in a forked child: log() checks only this.
        self._live = settings.mode != "disabled"
        self._step = start_step
        self._pending: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._finished = False
        self._warned_fork = False
        self._tracker = SummaryTracker()
        self._tracker.resume_under(initial_summary, initial_metric_defs)
        self.summary = Summary(self._tracker, on_set=self._on_summary_set)
        self.config = config
        self._journal: JournalWriter | None = None
        self._media: Any = None  # runyard.media.MediaContext: spool + encoder of rich values
        self._shipper: Shipper | None = None
        self._console: ConsoleCapture | None = None
        self.state = "running"
        self._preempting = False
        self.journal_path: Path | None = None
        self._uploads: Any = None  # sdk/uploads.FileUploads, once save() uploads to a server
        #: save() globs of policy "end"/"live" (saved again at finish), and what was saved:
        #: name in the run -> (size, mtime) of the copy
        self._saved_globs: list[tuple[str, Path, str]] = []
        self._saved: dict[str, tuple[int, int]] = {}
        #: W&B's config._wandb block (chart specs, code_path), kept in meta.wandb.config
        self._wandb_config: dict[str, Any] = {}
        self._watcher: Any = None  # integrations/torch_watch.TorchWatcher, once watch() is used
        #: a sweep's stop decision (sdk/stop.py); _stop_pending: log() raises StopRun next
        self._stop: StopPoller | None = None
        self._stop_pending = False
        #: how init() decided to start or resume this run id, and later the store's verdict on
        #: a provisional start (also in the stored run's ``meta.resume``); see sdk/resume.py
        self.resume_decision: dict[str, Any] | None = None
        #: started without the store's answer: the shipper reconciles when it answers
        self._provisional = False
        #: (provisional) the journal seq from which rows carry steps the user gave explicitly,
        #: and the run's own step counter at that point
        self._absolute_from_seq: int | None = None
        self._relative_end: int | None = None
        self._system: SystemMonitor | None = None  # the system-metrics sampler (runyard.system)
        self._alerts: Any = None  # runyard.alerts.AlertDispatcher (embedded store + webhook)
        if self.mode == "disabled" or root is None:
            return
        self._journal_id: str = header["journal_id"]
        self._open_journal(root)
        if resume_start is not None:
            self._provisional = resume_start.provisional
            if not resume_start.provisional:
                self.resume_decision = resume_start.decision
                self._append("meta", {"resume": resume_start.decision})
            if resume_start.resumed or resume_start.provisional:
                # The store applies a header's config only to a new run: a resumed run's
                # merged config (and a provisional one's, merged once the store answers) goes
                # in as a record.
                self._append("config", config.as_dict())
        self._media = self._media_context()
        config._attach(self._on_config_change)
        if self.mode == "online":
            assert self.journal_path is not None
            self._shipper = Shipper(
                journal_path=self.journal_path,
                journal_id=self._journal_id,
                header=header,
                open_store=self._open_store,
                snapshot=self._snapshot,
                flush_interval=settings.flush_interval or 0.2,
                heartbeat_interval=settings.heartbeat_interval or 15.0,
                on_ready=self._store_ready,
                journal=self._journal,
                reconcile=self._reconcile if self._provisional else None,
                prepare=self._prepare_batch,
            )
            self._stop = start_stop_poller(self, settings)
        self._git_thread: threading.Thread | None = None
        if not settings.disable_git:
            self._git_thread = threading.Thread(
                target=self._collect_git, name="runyard-git", daemon=True
            )
            self._git_thread.start()
        if settings.console != "off":
            self._console = ConsoleCapture(self._on_console)
        if not settings.disable_stats:
            self._system = SystemMonitor(
                self._on_stats,
                interval=settings.stats_sampling_interval or 15.0,
                start_time=self.start_time,
                runtime_offset=runtime_offset,
            )

    # -- journal plumbing -----------------------------------------------------------------------

    def _open_journal(self, root: Path) -> None:
        from runyard.store.locate import journal_dir

        folder = journal_dir(root)
        final = folder / f"{self.id}-{self._journal_id}.journal"
        staging = folder / f".{final.name}.new"
        # Created and locked under a name recovery ignores, then renamed: a recovering process
        # never sees an unlocked journal of a live run.
        self._journal = JournalWriter(
            staging,
            backlog_limit=int((self._settings.journal_backlog_mb or 256.0) * 2**20),
            on_blocked=self._journal_blocked,
            on_unblocked=self._journal_unblocked,
            on_dropped=self._journal_dropping,
        )
        self._append("run", self._header)
        os.rename(staging, final)
        self._journal.path = final
        self.journal_path = final

    def _append(self, kind: str, payload: Any) -> Record | None:
        journal = self._journal
        if journal is None or journal.closed:
            return None
        return journal.append(kind, payload)

    # -- a journal that cannot be written (full disk): warn, keep training ---------------------

    def _journal_blocked(self, blocked: JournalBlocked) -> None:
        # Called by the writer under its lock, on whichever thread appended: print only.
        folder = self._journal.path.parent if self._journal is not None else self._root
        safe = self._step - 1
        where = (
            "shipped to the store from memory meanwhile"
            if self.mode == "online"
            else "lost if this process ends first"
        )
        _warn(
            f"runyard: cannot write the journal of run {self.path} in {folder} "
            f"({blocked.error.strerror or blocked.error}; {_free_space(folder)} free there). "
            f"Training goes on: {'steps up to ' + str(safe) if safe >= 0 else 'the run header'} "
            f"are safe in the journal; newer records wait in memory (up to "
            f"{self._settings.journal_backlog_mb:g} MiB) and are written to it as soon as the "
            f"disk takes them, {where}. Free space on that disk (or set RUNYARD_DIR to another "
            f"one for the next runs); then `runyard sync --dir {self._root}` uploads all that "
            f"the journal holds."
        )

    def _journal_unblocked(self, blocked: JournalBlocked, durable_seq: int) -> None:
        lost = f"; {blocked.dropped} record(s) were dropped" if blocked.dropped else ""
        _warn(
            f"runyard: the journal of run {self.path} is writable again: the records kept in "
            f"memory are in it now{lost or ', nothing was lost'}"
        )

    def _journal_dropping(self, blocked: JournalBlocked, record: Record) -> None:
        _warn(
            f"runyard: the journal of run {self.path} still cannot be written and "
            f"{self._settings.journal_backlog_mb:g} MiB of records wait in memory: from step "
            f"{self._step} on, records are dropped until the disk takes writes again "
            f"(RUNYARD_JOURNAL_BACKLOG_MB sets the amount kept)"
        )

    def _open_store(self) -> Any:
        from runyard.store import open_store

        return open_store(self._settings.store or "", self._settings.api_key)

    def _store_ready(self, store: Any) -> None:
        # Recover journals left by processes that died, now that we have the store open.
        from runyard.sdk.recovery import recover_journals

        if self._root is not None:
            try:
                recover_journals(self._root, store, quiet=True)
            except Exception:
                pass

    def _reconcile(self, store: Any) -> Callable[[list[Record]], list[Record]]:
        """The store answered a provisional run (shipper thread, before its first batch):
        decide where this session's records go, move the run's own state accordingly and
        journal the decision; returns the rewrite for the records journaled before it.
        Raises while the store cannot answer (the shipper asks again) and
        ``RunConflictError`` when the run exists and may not be resumed."""
        existing = stored_run_after_earlier_sessions(store, self._root, self._header)
        with self._lock:
            absolute = self._absolute_from_seq
            relative_end = self._relative_end if absolute is not None else self._step
            recon = reconcile(
                self._header,
                existing,
                relative_end=relative_end if relative_end is not None else self._step,
                absolute_from_seq=absolute,
                decided_by="store after start",
            )
            if absolute is None:
                self._step += recon.step_offset
            else:
                self._step = max(self._step, recon.floor)
            self._runtime_offset += recon.runtime_offset
            last = self._tracker.last
            if absolute is None and "_step" in last:
                last["_step"] = int(last["_step"]) + recon.step_offset
            if "_runtime" in last:
                last["_runtime"] = float(last["_runtime"]) + recon.runtime_offset
            self._tracker.resume_under(recon.initial_summary, recon.stored_metric_defs)
            record = self._append("resume", recon.record_payload())
            if record is not None:
                recon.resume_seq = record[0]
            if recon.stored_config is not None:
                merged_config = merged_over(recon.stored_config, self.config._data)
                self.config._data.clear()
                self.config._data.update(merged_config)
                self._append("config", self.config.as_dict())
            if recon.resumed and existing is not None and not self._settings.run_name:
                self._name = existing.name  # the stored run keeps its name
            self._provisional = False
            self.resumed = self.resumed or recon.resumed
            self.resume_decision = recon.decision
        return recon.rewrite

    def _snapshot(self) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        summary = self._tracker.snapshot()
        media = self._media
        if media is not None and media.active:
            summary = media.resolver.resolve_summary(summary)
        return summary, [d.to_dict() for d in self._tracker.definitions]

    # -- media (runyard.media): the hook of rich values into log() and the shipper -------------

    def _media_context(self) -> Any:
        from runyard.media import MediaContext

        assert self.journal_path is not None
        return MediaContext(self.journal_path, self._append, (self.entity, self.project, self.id))

    def _prepare_batch(self, store: Any, pending: list[Record], limit: int) -> list[Record]:
        """The records the shipper may send now: rows whose media are encoded, resolved, with
        their files put into the store first (the first batch only creates the run)."""
        media = self._media
        if media is None or not media.active:
            return pending[:limit]
        shipper = self._shipper
        if shipper is not None and shipper.applied_seq == 0:
            return pending[:1]
        return list(media.prepare(store, pending, limit))

    def _collect_git(self) -> None:
        from runyard.sdk.metadata import git_metadata, program_dir

        meta = git_metadata(program_dir())
        if meta:
            with self._lock:
                if not self._finished:
                    self._append("meta", meta)

    def _on_config_change(self, data: dict[str, Any]) -> None:
        if self._is_owner():
            self._append("config", data)

    def _on_summary_set(self, change: dict[str, Any]) -> None:
        if self._is_owner():
            self._append("summary", change)

    def _on_console(self, lines: list[tuple[str, float, str]]) -> None:
        self._append("console", lines)

    def _on_stats(self, row: dict[str, Any]) -> None:
        # On the monitor's thread; after finish() or in a forked child nothing is written.
        if self._live and os.getpid() == self._owner_pid:
            self._append("stats", row)

    def _is_owner(self) -> bool:
        if os.getpid() == self._owner_pid:
            return True
        if not self._warned_fork:
            self._warned_fork = True
            warnings.warn(
                f"runyard: run {self.id} belongs to process {self._owner_pid}; this forked "
                f"process ({os.getpid()}) does not write to it. Call runyard.init() here to "
                f"track this process as its own run.",
                stacklevel=3,
            )
        return False

    def _abandon_after_fork(self) -> None:
        """Called in a forked child for every run inherited from the parent."""
        self._live = False
        self._lock = threading.Lock()
        if self._journal is not None:
            self._journal.abandon_after_fork()
        self._shipper = None
        self._console = None
        self._system = None  # its thread stayed in the parent
        self._alerts = None

    # -- the run's own fields: settable after init() as in W&B, journaled as an "attrs" record --

    @property
    def name(self) -> str:
        """The run's display name; ``run.name = "..."`` renames it (stored like any record)."""
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        self._set_attrs(name=_attr_text("name", value, 256, allow_none=False))

    @property
    def notes(self) -> str | None:
        return self._notes

    @notes.setter
    def notes(self, value: str | None) -> None:
        self._set_attrs(notes=_attr_text("notes", value, None))

    @property
    def tags(self) -> tuple[str, ...]:
        return self._tags

    @tags.setter
    def tags(self, value: Any) -> None:
        if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
            raise TypeError(
                f"runyard: run.tags must be a list or tuple of strings, not "
                f"{type(value).__name__} {value!r}; e.g. run.tags = run.tags + ('best',)"
            )
        tags: list[str] = []
        for tag in value:
            text = _attr_text("tags[]", tag, 256, allow_none=False)
            assert text is not None
            if text not in tags:
                tags.append(text)
        self._set_attrs(tags=tags)

    @property
    def group(self) -> str | None:
        """The run's group (``init(group=...)``); settable too (W&B's is read-only)."""
        return self._group

    @group.setter
    def group(self, value: str | None) -> None:
        self._set_attrs(group=_attr_text("group", value, 256))

    @property
    def job_type(self) -> str | None:
        """The run's job type (``init(job_type=...)``); settable too (W&B's is read-only)."""
        return self._job_type

    @job_type.setter
    def job_type(self, value: str | None) -> None:
        self._set_attrs(job_type=_attr_text("job_type", value, 128))

    def _set_attrs(self, **changes: Any) -> None:
        if self._finished:
            field = next(iter(changes))
            raise RunFinishedError(
                f"runyard: run {self.id} is finished; change its {field} with "
                f"runyard.Api().run({self.path!r}).update() or the `runyard runs` commands"
            )
        with self._lock:
            for field, value in changes.items():
                setattr(self, f"_{field}", tuple(value) if field == "tags" else value)
            if self.mode != "disabled" and self._is_owner():
                self._append("attrs", changes)
                if self._shipper is not None:
                    self._shipper.flush_soon()

    # -- public API -----------------------------------------------------------------------------

    @property
    def step(self) -> int:
        """The step the next committed row gets."""
        return self._step

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"

    @property
    def url(self) -> str | None:
        """The run's page in the dashboard (W&B's ``run.url``): on the runyard server, or for
        the embedded store where `runyard ui` serves it (``http://127.0.0.1:8080``; another
        port with ``RUNYARD_UI_URL``). None offline or disabled, as in W&B."""
        base = self._dashboard_base()
        return None if base is None else f"{base}/#/r/{self.path}"

    def get_url(self) -> str | None:
        return self.url

    @property
    def project_url(self) -> str | None:
        base = self._dashboard_base()
        return None if base is None else f"{base}/#/p/{self.entity}/{self.project}"

    def get_project_url(self) -> str | None:
        return self.project_url

    @property
    def sweep_url(self) -> str | None:
        base = self._dashboard_base()
        return None if base is None or not self.sweep_id else f"{base}/#/s/{self.sweep_id}"

    def get_sweep_url(self) -> str | None:
        return self.sweep_url

    def _dashboard_base(self) -> str | None:
        if self.mode != "online":
            return None
        if self._is_server_store():
            from runyard.credentials import server_url

            return server_url(self._settings.store or "")
        return (os.environ.get("RUNYARD_UI_URL") or "http://127.0.0.1:8080").rstrip("/")

    @property
    def dir(self) -> str | None:
        """The folder for the run's own files (W&B's ``run.dir``): files written there are
        saved with the run at ``finish()``. ``init(dir=X)`` puts it under ``X/runyard/``;
        otherwise it is the run's files folder in the store (``<store>/files/...``). The
        store itself stays where it is found (``RUNYARD_DIR``, the nearest ``.runyard``)."""
        folder = self._user_dir() or self._files_dir()
        if folder is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder)

    @property
    def store_dir(self) -> str | None:
        """The ``.runyard`` folder of this run's journals (and embedded store)."""
        return str(self._root) if self._root is not None else None

    @property
    def disabled(self) -> bool:
        return self.mode == "disabled"

    @property
    def should_stop(self) -> bool:
        """True once the run's sweep decided to stop it (early termination, a canceled sweep):
        break out of the training loop, and the run ends ``stopped`` (see sdk/stop.py)."""
        return self._stop is not None and self._stop.should_stop()

    @property
    def stop_reason(self) -> str | None:
        """Why the sweep stopped the run, or None."""
        return self._stop.reason if self._stop is not None else None

    def log(
        self, data: Mapping[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Record metrics. Nested dicts become ``a/b`` keys.

        Without ``step``, each call is one history row (``commit=False`` merges into the next).
        With ``step``, calls with the same step merge; a higher step commits the previous row; a
        lower step is refused with a warning (the data is dropped).
        """
        if not self._live:  # finished, disabled, or inherited through fork: the rare paths
            if self._finished:
                raise RunFinishedError(
                    f"runyard: run {self.id} is finished; call runyard.init() to start a new run"
                )
            if self.mode != "disabled":
                self._is_owner()
            return
        if not isinstance(data, Mapping):
            raise TypeError(
                f"runyard.log: expected a dict of values, got {type(data).__name__}; "
                f"e.g. runyard.log({{'loss': 0.1}})"
            )
        plot = sys.modules.get("runyard.plot")
        if plot is not None:  # charts exist only once runyard.plot is imported
            data = plot.pop_charts(data, self._on_chart)
        values: dict[str, Any] = {}
        flatten_into(values, data, media=self._media)
        with self._lock:
            pending = self._pending
            if pending and len(pending) + len(values) > MAX_KEYS_PER_ROW:
                check_row_size(len(pending.keys() | values.keys()))
            if step is not None:
                if type(step) is not int or step < 0:
                    step = _as_step(step)
                if self._provisional and self._absolute_from_seq is None:
                    self._mark_explicit_steps(step)
                if step < self._step:
                    warnings.warn(
                        f"runyard.log: step {step} is lower than the current step "
                        f"{self._step}; these values were not recorded: {sorted(values)}. "
                        f"Steps must not decrease (use a custom x axis with "
                        f"define_metric(..., step_metric=...) for other orders).",
                        stacklevel=2,
                    )
                    return
                if step > self._step:
                    if self._pending:
                        self._commit()
                    self._step = step
                if self._pending is None:
                    self._pending = values
                else:
                    self._pending.update(values)
                if commit:
                    self._commit()
            else:
                if self._pending is None:
                    self._pending = values
                else:
                    self._pending.update(values)
                if commit is not False:
                    self._commit()
        if self._stop_pending and self._stop is not None:
            self._stop_pending = False
            raise self._stop.stop_run()

    def _mark_explicit_steps(self, step: int) -> None:
        """A provisional run got its first explicit step: rows from here on carry steps the
        user chose, which reconciling keeps (see sdk/resume.py). Called with the lock held."""
        if step > self._step and self._pending:
            self._commit()  # the row the run counted itself
        self._relative_end = self._step
        record = self._append(EXPLICIT_STEPS, {"step": step})
        self._absolute_from_seq = record[0] if record is not None else None

    def _commit(self) -> None:
        row = self._pending
        self._pending = None
        if row is None:
            row = {}
        now = time.time()
        row["_step"] = self._step
        row["_runtime"] = now - self.start_time + self._runtime_offset
        row["_timestamp"] = now
        # Journaled first: a row the journal cannot encode must not reach the summary either.
        self._append("row", row)
        self._tracker.update_row(row)
        self._step += 1

    def define_metric(
        self,
        name: str,
        step_metric: str | None = None,
        step_sync: bool | None = None,
        hidden: bool | None = None,
        summary: str | None = None,
        goal: str | None = None,
        overwrite: bool | None = None,
    ) -> MetricDefinition:
        """Customize a metric (or glob of metrics): its summary aggregate, goal and x axis."""
        definition = parse_metric_definition(name, step_metric, summary, goal, hidden)
        with self._lock:
            self._tracker.define(definition)
            if self.mode != "disabled" and self._is_owner():
                self._append("define", definition.to_dict())
        return definition

    def watch(
        self,
        models: Any,
        criterion: Any = None,
        log: str | None = "gradients",
        log_freq: int = 1000,
        idx: int | None = None,
        log_graph: bool = False,
    ) -> None:
        """Log histograms of a torch module's gradients and/or parameters every ``log_freq``
        batches (W&B's ``watch``; see runyard/integrations/torch_watch.py and docs/media.md).
        ``models``: a ``torch.nn.Module`` or a list of them."""
        from runyard.integrations.torch_watch import TorchWatcher

        if self._watcher is None:
            self._watcher = TorchWatcher(self)
        self._watcher.watch(models, criterion, log, log_freq, idx, log_graph)

    def unwatch(self, models: Any = None) -> None:
        """Remove the hooks ``watch`` put on ``models`` (default: on every watched model)."""
        if self._watcher is not None:
            self._watcher.unwatch(models)

    def alert(
        self,
        title: str,
        text: str,
        level: str | AlertLevel | None = None,
        wait_duration: int | float | timedelta | None = None,
    ) -> None:
        """Raise an alert: stored with the run and sent to the webhook the server is
        configured with (a Slack-compatible message), at most once per ``wait_duration``
        (seconds or a timedelta; one minute by default) for the same title.

        Returns once the alert is in the journal; delivery happens elsewhere (the server, or
        for the embedded store a background thread when ``RUNYARD_ALERT_WEBHOOK`` is set).
        """
        if not self._live:
            if self._finished:
                raise RunFinishedError(
                    f"runyard: run {self.id} is finished; alert() needs a running run"
                )
            if self.mode != "disabled":
                self._is_owner()
            return
        now = time.time()
        payload = alert_payload(
            title, text, level, wait_duration, now, now - self.start_time + self._runtime_offset
        )
        self._append("alert", payload)
        if self._shipper is not None:
            self._shipper.flush_soon()
        if self._settings.alert_webhook and self.mode == "online" and not self._is_server_store():
            self._start_alert_delivery()

    def _start_alert_delivery(self) -> None:
        if self._alerts is None:
            from runyard.alerts.dispatch import AlertDispatcher
            from runyard.alerts.webhook import WebhookNotifier

            assert self._settings.alert_webhook
            self._alerts = AlertDispatcher(
                self._open_store, WebhookNotifier(self._settings.alert_webhook)
            )
        self._alerts.wake(soon=True)

    def mark_preempting(self) -> None:
        """Say that this run may be preempted (W&B's ``run.mark_preempting()``): the run is
        ``preempting`` in the store at once, and if its process then ends without finishing
        it cleanly (a non-zero exit, SIGTERM, an exception, or SIGKILL found by recovery), it
        ends ``preempted`` rather than ``failed``/``killed``/``crashed``. A requeued job resumes
        it with ``init(id=..., resume="allow")`` (it is ``running`` again); a sweep's
        ``requeue()`` runs preempted trials again. A run that still finishes cleanly is
        ``finished``. Calling it twice is harmless."""
        if self._finished:
            raise RunFinishedError(f"runyard: run {self.id} is finished; it cannot be preempted")
        with self._lock:
            if self._preempting:
                return
            self._preempting = True
            self.state = "preempting"
            if self.mode != "disabled" and self._is_owner():
                self._append("preempt", {"time": time.time()})
                if self._shipper is not None:
                    self._shipper.flush_soon()

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Write the last row, mark the run finished (or failed for a non-zero exit code)."""
        state = "finished" if not exit_code else "failed"
        self._finish(state, exit_code=exit_code, quiet=quiet)

    def _finish(
        self,
        state: str,
        exit_code: int | None = None,
        failure: str | None = None,
        quiet: bool | None = None,
        wait: float | None = None,
    ) -> None:
        from runyard.sdk import state as module_state

        if self._stop is not None and not self._finished:
            state, failure = self._stop.final_state(state, failure)
        if self._preempting and state in ("failed", "crashed", "killed"):
            state = "preempted"  # it said it may be preempted, then ended without finishing
        git_thread = getattr(self, "_git_thread", None)
        if git_thread is not None and os.getpid() == self._owner_pid:
            git_thread.join(timeout=5.0)  # a short run still gets its git metadata
        if self._system is not None and os.getpid() == self._owner_pid:
            self._system.stop(timeout=1.0)
        if self._watcher is not None:
            self._watcher.unwatch()  # torch hooks never log into a finished run
        media_done = True
        if self._media is not None and self._media.active and os.getpid() == self._owner_pid:
            # Encode what log() spooled before the finish record (the rest: runyard sync).
            media_wait = wait
            if media_wait is None:
                timeout = self._settings.finish_timeout
                media_wait = timeout if timeout is not None else 30.0
            media_done = self._media.close(media_wait)
        if not self._finished and os.getpid() == self._owner_pid and self._root is not None:
            try:
                self._save_at_finish()
            except OSError as exc:
                _warn(f"runyard: could not save the run's files at finish: {exc}")
        with self._lock:
            if self._finished:
                return
            if os.getpid() != self._owner_pid:
                self._finished = True
                self._live = False
                return
            if self._pending:
                self._commit()
            self._finished = True
            self._live = False
            self.state = state
            if self._console is not None:
                self._console.stop()
            now = time.time()
            self._append(
                "finish",
                {
                    "state": state,
                    "exit_code": exit_code,
                    "failure": failure,
                    "time": now,
                    "runtime": now - self.start_time + self._runtime_offset,
                },
            )
        if wait is None:  # RUNYARD_FINISH_TIMEOUT: then the rest is left to `runyard sync`
            timeout = self._settings.finish_timeout
            wait = timeout if timeout is not None else 30.0
        deadline = time.monotonic() + wait
        complete = True
        if self._journal is not None and self._journal.blocked is not None:
            self._journal.retry_backlog()
        if self._shipper is not None:
            complete = self._shipper.stop(wait)
            if self._journal is not None and self._shipper.applied_seq < self._journal.seq:
                complete = False  # never retire a journal the store does not fully hold
        lost = self._report_unwritten()
        not_uploaded: list[str] = []
        if self._uploads is not None:
            not_uploaded = self._uploads.close(max(0.0, deadline - time.monotonic()))
        if self._alerts is not None:
            # Embedded store with a webhook: deliver what finish() just stored (bounded).
            self._alerts.close(min(5.0, max(0.0, deadline - time.monotonic())))
        complete = complete and media_done
        if complete and self._media is not None and self._media.active and self.mode == "online":
            try:  # a cache to tidy: it never fails the finish
                self._media.delivered(self._open_store() if self._is_server_store() else None)
            except Exception:
                pass
        if self._journal is not None:
            if complete and self.journal_path is not None and self.mode == "online":
                # Retired while we still hold its lock, so no recovery ever races with us.
                self.journal_path = retire_journal(
                    self.journal_path, keep=bool(self._settings.keep_journals)
                )
            self._journal.close()
        module_state.forget(self)
        silent = self._settings.silent if quiet is None else quiet
        if not silent or not complete or lost:
            self._print_footer(complete)
        if not_uploaded:
            print(
                f"runyard: {len(not_uploaded)} file(s) of run {self.path} could not be uploaded "
                f"to {self._settings.store} "
                f"({self._uploads.last_error or 'the run did not reach the store'}): "
                f"{', '.join(not_uploaded)}; copies are in {self._files_dir()}, and "
                f"`runyard sync` uploads them",
                file=sys.__stderr__ or sys.stderr,
            )

    def _report_unwritten(self) -> int:
        """At finish: how many records exist only in memory and did not reach the store (they
        are lost with this process); says so, once, with the last step that is safe."""
        journal = self._journal
        if journal is None or (journal.blocked is None and journal.durable_seq >= journal.seq):
            return 0
        if journal.retry_backlog():
            return 0
        stored = self._shipper.applied_seq if self._shipper is not None else 0
        blocked = journal.blocked
        lost = journal.seq - max(journal.durable_seq, stored)
        dropped = blocked.dropped if blocked is not None else 0
        if lost <= 0 and not dropped:
            return 0
        _warn(
            f"runyard: {max(lost, 0) + dropped} record(s) of run {self.path} could be written "
            f"neither to its journal ({blocked.error.strerror if blocked else 'disk full'}, in "
            f"{journal.path.parent}) nor to the store, and are lost with this process; the "
            f"journal holds everything before them. Free space there, then run "
            f"`runyard sync --dir {self._root}`."
        )
        return max(lost, 0) + dropped

    def _print_footer(self, complete: bool) -> None:
        out = sys.__stderr__ or sys.stderr
        if self.mode == "disabled":
            return
        if self.mode == "offline":
            print(
                f"runyard: run {self.path} ({self.state}) saved offline to {self.journal_path}; "
                f"upload it with `runyard sync`",
                file=out,
            )
        elif complete:
            print(
                f"runyard: run {self.path} {self.state}; see it with `runyard runs show {self.id}`",
                file=out,
            )
        else:
            import shlex

            error = self._shipper.last_error if self._shipper is not None else None
            left = "some"
            if self._journal is not None and self._shipper is not None:
                left = str(max(self._journal.seq - self._shipper.applied_seq, 0))
            command = f"runyard sync --dir {shlex.quote(str(self._root))}"
            if self._settings.store:
                command += f" --store {shlex.quote(self._settings.store)}"
            print(
                f"runyard: run {self.path} {self.state}, but {left} record(s) did not reach the "
                f"store within {self._settings.finish_timeout:g}s ({error}); they are kept in "
                f"{self.journal_path}: upload them with `{command}`",
                file=out,
            )

    def mark_failed(self, exc: BaseException) -> None:
        """Finish as failed (or killed for KeyboardInterrupt), keeping the traceback."""
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        state = "killed" if isinstance(exc, KeyboardInterrupt) else "failed"
        self._finish(state, exit_code=1, failure=text)

    def save(
        self,
        glob_str: str | os.PathLike[str],
        base_path: str | os.PathLike[str] | None = None,
        policy: str = "live",
    ) -> list[str]:
        """Save files matching ``glob_str`` with the run (W&B's ``run.save``).

        A file's name in the run is its path relative to ``base_path`` (default: the current
        directory for a relative glob; for an absolute one, the folder above the file's, as
        W&B does). ``policy``: ``"now"`` saves them now, ``"end"`` at ``finish()``, ``"live"``
        (the default) now and again at ``finish()`` if they changed, and files matching the
        glob by then too. Copies go to the run's files folder
        (``<store>/files/<entity>/<project>/<id>``); with a server store (online mode) they
        are also uploaded in the background, and ``finish()`` waits for the uploads
        (``RUNYARD_FINISH_TIMEOUT``) and reports any that did not complete. Returns the copies'
        paths."""
        if policy not in ("live", "now", "end"):
            raise ValueError(
                f"runyard.save: policy={policy!r} is not valid; use 'live', 'now' or 'end'"
            )
        if self._root is None:
            return []
        if self._finished:
            raise RunFinishedError(
                f"runyard: run {self.id} is finished; save() needs a running run"
            )
        pattern, base = _save_pattern(glob_str, base_path)
        matches = _matching_files(pattern)
        if not matches and not any(c in str(glob_str) for c in "*?["):
            raise FileNotFoundError(f"runyard.save: {glob_str} is not a file")
        if policy != "now":
            self._saved_globs.append((pattern, base, policy))
        if policy == "end":
            return [str(self._files_target(_name_in_run(path, base))) for path in matches]
        return [self._save_file(path, _name_in_run(path, base)) for path in matches]

    def _files_target(self, name: str) -> Path:
        folder = self._files_dir()
        assert folder is not None
        return folder / name

    def _save_file(self, source: Path, name: str) -> str:
        """Copy ``source`` into the run's files as ``name`` (and upload it to a server)."""
        target = self._files_target(name)
        try:
            stat = source.stat()
        except OSError:
            return str(target)
        stamp = (stat.st_size, stat.st_mtime_ns)
        if self._saved.get(name) == stamp and target.exists():
            return str(target)
        if source.resolve() != target.resolve():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        self._saved[name] = stamp
        if self.mode == "online" and self._is_server_store() and self._is_owner():
            if self._uploads is None:
                from runyard.sdk.uploads import FileUploads

                shipper = self._shipper
                self._uploads = FileUploads(
                    self._open_store,
                    self.entity,
                    self.project,
                    self.id,
                    ready=lambda: shipper is None or shipper.applied_seq > 0,
                )
            self._uploads.submit(name, target)
        return str(target)

    def _save_at_finish(self) -> None:
        """``save(policy="end"/"live")`` globs, and the files written into ``run.dir``."""
        for pattern, base, _policy in self._saved_globs:
            for path in _matching_files(pattern):
                self._save_file(path, _name_in_run(path, base))
        user_dir = self._user_dir()
        if user_dir is not None and user_dir.is_dir():
            for path in sorted(user_dir.rglob("*")):
                if path.is_file():
                    self._save_file(path, path.relative_to(user_dir).as_posix())

    def _user_dir(self) -> Path | None:
        """``init(dir=X)``'s folder for this run's files (W&B's ``run.dir``), if given."""
        if not self._settings.files_dir or self._root is None:
            return None
        return Path(self._settings.files_dir).absolute() / "runyard" / f"run-{self.id}" / "files"

    def log_code(
        self,
        root: str | os.PathLike[str] | None = ".",
        name: str | None = None,
        include_fn: Callable[..., bool] | None = None,
        exclude_fn: Callable[..., bool] | None = None,
    ) -> Any:
        """Save the source code under ``root`` as a ``code`` artifact (W&B's ``log_code``):
        files for which ``include_fn(path[, root])`` is true (default: ``.py``,
        ``requirements*.txt``, ``Dockerfile*``) and ``exclude_fn`` is false (default: the
        ``.runyard``/``wandb`` folders, hidden folders, virtual environments). Returns the
        logged artifact, or None (with a warning) when nothing matched."""
        from runyard.artifacts.artifact import Artifact

        if root is None:
            return None
        base = os.path.abspath(root)
        files = _code_files(base, include_fn or _is_code_file, exclude_fn or _is_excluded_dir)
        if not files:
            _warn(f"runyard.log_code: no source files found under {base}; no code was saved")
            return None
        if name is None:
            main = sys.modules.get("__main__")
            program = getattr(main, "__file__", None)
            relative = os.path.relpath(program, base) if program else "code"
            name = _artifact_safe(f"source-{self.project}-{relative}")
        artifact = Artifact(name, "code")
        for path in files:
            artifact.add_file(path, name=os.path.relpath(path, base))
        logged = self.log_artifact(artifact)
        self._set_wandb_config("code_path", f"{name}:latest")
        return logged

    def _on_chart(self, key: str, spec: dict[str, Any], kind: str) -> None:
        self._set_wandb_config(key, spec, sub=kind)

    def _set_wandb_config(self, key: str, value: Any, sub: str | None = None) -> None:
        """Set ``key`` (under ``sub``) in W&B's ``config._wandb`` block, which runyard keeps in
        the run's ``meta["wandb"]["config"]`` (where the W&B door keeps the wandb client's):
        chart specs (``visualize``), ``code_path``. The whole block is journaled each time."""
        with self._lock:
            block = self._wandb_config
            if sub is None:
                block[key] = value
            else:
                block.setdefault(sub, {})[key] = value
            if self.mode != "disabled" and self._is_owner() and not self._finished:
                self._append("meta", {"wandb": {"config": block}})

    # -- artifacts (runyard/artifacts/sdk.py does the work) -------------------------------------

    def log_artifact(
        self,
        artifact_or_path: Any,
        name: str | None = None,
        type: str | None = None,
        aliases: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> Any:
        """Log a version of an ``Artifact`` (or of a file/folder path); see docs/artifacts.md."""
        from runyard.artifacts import sdk

        return sdk.log_artifact(self, artifact_or_path, name, type, aliases, tags)

    def use_artifact(
        self,
        artifact_or_name: Any,
        type: str | None = None,
        aliases: list[str] | None = None,
        use_as: str | None = None,
    ) -> Any:
        """A logged artifact version (``"name:alias"``, ``"entity/project/name:v3"``), recorded
        as used by this run."""
        from runyard.artifacts import sdk

        return sdk.use_artifact(self, artifact_or_name, type, aliases, use_as)

    def log_model(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        aliases: list[str] | None = None,
    ) -> Any:
        from runyard.artifacts import sdk

        return sdk.log_model(self, path, name, aliases)

    def use_model(self, name: str) -> str:
        from runyard.artifacts import sdk

        return sdk.use_model(self, name)

    def link_model(
        self,
        path: str | os.PathLike[str],
        registered_model_name: str,
        name: str | None = None,
        aliases: list[str] | None = None,
    ) -> Any:
        from runyard.artifacts import sdk

        return sdk.link_model(self, path, registered_model_name, name, aliases)

    def link_artifact(
        self, artifact: Any, target_path: str, aliases: list[str] | None = None
    ) -> Any:
        from runyard.artifacts import sdk

        return sdk.link_artifact(self, artifact, target_path, aliases)

    def _files_dir(self) -> Path | None:
        return (
            None
            if self._root is None
            else self._root / "files" / self.entity / self.project / self.id
        )

    def _is_server_store(self) -> bool:
        return (self._settings.store or "").lower().startswith(("http://", "https://"))

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if isinstance(exc, SystemExit):
            from runyard.sdk.state import finish_for_exit

            finish_for_exit(self, exc.code if isinstance(exc.code, int | str) else None)
        elif exc is not None:
            self.mark_failed(exc)
        else:
            self.finish()

    def __repr__(self) -> str:
        return f"<runyard.Run {self.path} name={self.name!r} state={self.state}>"


_CODE_EXCLUDED_DIRS = frozenset(
    {
        ".runyard",
        "wandb",
        ".wandb",
        "runyard",
        "venv",
        ".venv",
        "env",
        "node_modules",
        "__pycache__",
        "site-packages",
    }
)


def _is_code_file(path: str, root: str = "") -> bool:
    name = os.path.basename(path)
    return (
        name.endswith(".py")
        or (name.startswith("requirements") and name.endswith(".txt"))
        or name.startswith("Dockerfile")
    )


def _is_excluded_dir(path: str, root: str = "") -> bool:
    parts = Path(os.path.relpath(path, root or ".")).parts[:-1]
    return any(p in _CODE_EXCLUDED_DIRS or p.startswith(".") for p in parts)


def _call_filter(fn: Callable[..., bool], path: str, root: str) -> bool:
    try:
        return bool(fn(path, root))
    except TypeError:
        return bool(fn(path))  # W&B accepts one-argument filters too


def _code_files(root: str, include: Callable[..., bool], exclude: Callable[..., bool]) -> list[str]:
    found: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _CODE_EXCLUDED_DIRS and not d.startswith("."))
        for name in sorted(names):
            path = os.path.join(folder, name)
            if _call_filter(include, path, root) and not _call_filter(exclude, path, root):
                found.append(path)
    return found


def _artifact_safe(name: str) -> str:
    import re

    return re.sub(r"[^a-zA-Z0-9_.-]", "_", name)[:128]


def _save_pattern(
    glob_str: str | os.PathLike[str], base_path: str | os.PathLike[str] | None
) -> tuple[str, Path]:
    """``(absolute glob, base folder)`` of a ``save()`` call, by W&B's rules."""
    text = os.fspath(glob_str)
    if isinstance(text, bytes):
        text = text.decode()
    if text.startswith(("s3://", "gs://")):
        raise ValueError(f"runyard.save: {text} is a cloud storage URL, not a local file")
    pattern = os.path.abspath(text)
    if base_path is not None:
        base = Path(os.path.abspath(base_path))
    elif not os.path.isabs(text):
        base = Path(os.path.abspath("."))
    else:
        base = Path(pattern).parent.parent
    if not Path(pattern).is_relative_to(base):
        raise ValueError(
            f"runyard.save: {text} is not inside base_path {base}; give a base_path above it"
        )
    return pattern, base


def _matching_files(pattern: str) -> list[Path]:
    import glob

    return [Path(p) for p in sorted(glob.glob(pattern, recursive=True)) if os.path.isfile(p)]


def _name_in_run(path: Path, base: Path) -> str:
    return Path(os.path.abspath(path)).relative_to(base).as_posix()


def _attr_text(field: str, value: Any, limit: int | None, allow_none: bool = True) -> str | None:
    """A run field's new value, checked as init() checks it (the store refuses the rest)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"runyard: run.{field} must be a string, not {type(value).__name__}")
    if "\x00" in value or (limit is not None and len(value) > limit):
        raise ValueError(
            f"runyard: run.{field} {value[:60]!r} contains a NUL character"
            + (f" or is longer than {limit} characters" if limit is not None else "")
        )
    return value


def _warn(message: str) -> None:
    print(message, file=sys.__stderr__ or sys.stderr)


def _free_space(folder: Path | None) -> str:
    try:
        st = os.statvfs(folder or ".")
    except OSError:
        return "unknown space"
    free = float(st.f_bavail * st.f_frsize)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if free < 1024 or unit == "GiB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024
    return f"{free:.1f} TiB"


def _as_step(step: Any) -> int:
    if isinstance(step, bool):
        raise TypeError("runyard.log: step must be an int, got a bool")
    try:
        value = int(step)
    except (TypeError, ValueError):
        raise TypeError(f"runyard.log: step must be an int, got {step!r}") from None
    if value != step:
        raise TypeError(f"runyard.log: step must be a whole number, got {step!r}")
    if value < 0:
        raise ValueError(f"runyard.log: step must be >= 0, got {value}")
    return value
