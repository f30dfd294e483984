"""The store interface: where runs, history and sweeps persist.

Implementations: :class:`runyard.store.sql.SQLStore` (SQLite embedded default, PostgreSQL).
A later HTTP client backend implements the same contract.

Contract
--------
* **Writes go through** :meth:`Store.apply` **only**, one journal batch at a time. A batch
  carries records ``(seq, kind, payload)`` of one journal in increasing ``seq``. The store applies
  the records whose ``seq`` is above the journal's applied mark and moves the mark, atomically
  (one transaction). Re-applying a batch, or a whole journal, is therefore a no-op: no row is
  duplicated and none is lost. Batches of one journal must be applied in order; batches of
  different journals may be applied concurrently from any number of threads and processes.
* **Thread and process safety**: a ``Store`` object may be shared by threads of one process. It
  must not be used in a forked child; call :meth:`Store.after_fork` there (``runyard`` does).
  Any number of processes may open the same database at once.
* **Errors of** :meth:`Store.apply`: :class:`StoreUnavailableError` when trying again later may
  succeed (nothing was applied); :class:`BatchRejectedError` when this batch can never be applied
  as it is (nothing was applied); :class:`RunConflictError` and other :class:`StoreError` for the
  run as a whole. Implementations translate their own errors into these.
* **Readers** see whole batches or nothing. ``summary``, ``config`` and ``state`` of a run are
  those of the last applied batch. History rows are immutable once written.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from runyard.errors import CommError
from runyard.sdk.journal import Record

if TYPE_CHECKING:
    from runyard.sweeps.controller import SweepControl


@dataclass
class JournalBatch:
    """Records of one journal to apply, with the state derived from the whole journal so far.

    ``header`` is the journal's ``run`` record payload; it lets the store create (or resume)
    the run if this is the first batch it sees. With ``"attach": true`` the journal joins a
    run that exists as it is (no state change, header fields ignored; the run is created from
    the header only if absent): how one writer session spreads a run over several journals
    (the W&B door keeps one per file-stream part, ``runyard.compat.wandb``). ``summary`` and
    ``metric_defs`` are snapshots computed by the writer from every record up to the last one
    in ``records``.
    """

    journal_id: str
    header: dict[str, Any]
    records: Sequence[Record]
    summary: dict[str, Any] | None = None
    metric_defs: list[dict[str, Any]] | None = None
    heartbeat_at: float | None = None


@dataclass
class RunRecord:
    """A run as stored (read side)."""

    pk: int
    entity: str
    project: str
    run_id: str
    name: str
    group: str | None
    job_type: str | None
    tags: list[str]
    notes: str | None
    state: str
    config: dict[str, Any]
    summary: dict[str, Any]
    meta: dict[str, Any]
    metric_defs: list[dict[str, Any]]
    sweep_id: str | None
    host: str | None
    pid: int | None
    created_at: float
    updated_at: float
    heartbeat_at: float
    finished_at: float | None
    runtime: float
    last_step: int
    exit_code: int | None
    failure: str | None
    sweep_params: dict[str, Any] | None = None
    agent_id: str | None = None

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.run_id}"


#: every state a run can be in (``pending`` until its program starts, ``running`` (or
#: ``preempting`` once it called ``mark_preempting()``), then one of the final states); the
#: query language checks ``state`` values against it
RUN_STATES = (
    "pending",
    "running",
    "preempting",
    "finished",
    "failed",
    "crashed",
    "killed",
    "stopped",
    "preempted",
)
#: the states after which a run's process writes nothing more
FINAL_RUN_STATES = ("finished", "failed", "crashed", "killed", "stopped", "preempted")
#: the states of a run whose process is (or should be) alive
LIVE_RUN_STATES = ("running", "preempting")
#: a ``preempting`` run that ends in one of these ends ``preempted`` instead (W&B: a run that
#: said it may be preempted and then died was preempted, not crashed; requeued jobs resume it)
PREEMPTED_ENDINGS = ("failed", "crashed", "killed")

#: :meth:`Store.update_run`'s fields and their length limits (None: no limit), as init() checks
RUN_TEXT_FIELDS: dict[str, int | None] = {"name": 256, "notes": None, "group": 256, "job_type": 128}
RUN_UPDATE_FIELDS = ("name", "tags", "notes", "group", "job_type", "config", "summary")


def check_run_update(changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes of :meth:`Store.update_run` checked (:class:`StoreError` naming the field
    and what it takes); tags deduplicated in order. Shared by the stores and the server."""
    out: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in RUN_UPDATE_FIELDS:
            raise StoreError(
                f"{name!r} is not a field a run update changes; use {', '.join(RUN_UPDATE_FIELDS)}"
            )
        if name == "tags":
            if isinstance(value, str) or not isinstance(value, list | tuple):
                raise StoreError("tags must be a list of strings, e.g. ['baseline', 'v2']")
            tags: list[str] = []
            for tag in value:
                if not isinstance(tag, str) or not tag or "\x00" in tag or len(tag) > 256:
                    raise StoreError(
                        f"tag {tag!r} must be a non-empty string of at most 256 characters "
                        f"without NUL"
                    )
                if tag not in tags:
                    tags.append(tag)
            out[name] = tags
        elif name in ("config", "summary"):
            if not isinstance(value, Mapping):
                raise StoreError(f"{name} must be an object (a dict of keys to values)")
            from runyard.limits import MAX_DEPTH, too_deep

            where = too_deep(dict(value), MAX_DEPTH)
            if where is not None:
                raise StoreError(f"{name} is nested more than {MAX_DEPTH} levels at {where}")
            out[name] = dict(value)
        else:
            limit = RUN_TEXT_FIELDS[name]
            if value is None and name != "name":
                out[name] = None
                continue
            if (
                not isinstance(value, str)
                or "\x00" in value
                or (limit is not None and len(value) > limit)
                or (name == "name" and not value.strip())
            ):
                raise StoreError(
                    f"{name} must be a{' non-empty' if name == 'name' else ''} string without "
                    f"NUL" + (f" of at most {limit} characters" if limit else "")
                )
            out[name] = value
    return out


@dataclass
class RunDeletion:
    """What :meth:`Store.delete_run` deleted (or, with ``dry_run``, would delete).

    ``files``/``file_bytes``: the run's files (``run.save``, media), each counted once;
    ``freed_bytes``: the bytes of content that went from the blob store (content that another
    run, an artifact or an upload in flight still holds is kept: it is not counted)."""

    path: str
    files: int
    file_bytes: int
    freed_bytes: int = 0
    history_rows: int = 0
    dry_run: bool = False


@dataclass
class RunQuery:
    """Selection of runs: every field narrows the result; ``None`` means any."""

    entity: str | None = None
    project: str | None = None
    states: Sequence[str] | None = None
    sweep_id: str | None = None
    run_ids: Sequence[str] | None = None
    limit: int | None = None
    order_desc: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Series:
    """One numeric metric of one run by step, possibly downsampled (see :meth:`Store.series`).

    ``values`` are floats (NaN where NaN was logged); ``total`` is the number of logged points
    in the requested step range before downsampling.
    """

    key: str
    steps: list[int]
    values: list[float]
    total: int
    downsampled: bool


@dataclass
class KeyValues:
    """The values one run logged under one key (numbers, text, media references: anything a
    history row holds), by step (see :meth:`Store.logged_values`). ``total`` is how many steps
    of the requested range have the key; ``thinned`` says that only some of them came back."""

    key: str
    steps: list[int]
    values: list[Any]
    total: int
    thinned: bool


@dataclass
class XSeries:
    """One run's series of a metric with an x value per point (see :meth:`Store.series_many`):
    ``xs[i]`` is the x (``_step``, ``_runtime``, ``_timestamp`` or another metric) at
    ``steps[i]``."""

    key: str
    x: str
    steps: list[int]
    xs: list[float]
    values: list[float]
    total: int
    downsampled: bool


#: the x axes every run has besides its metrics
TIME_AXES = ("_step", "_runtime", "_timestamp")


@dataclass
class WorkspaceRecord:
    """A saved dashboard workspace (see :meth:`Store.get_workspace`): ``scope`` is
    ``"project"`` (the project's default, ``user`` empty) or ``"user"`` (one user's own)."""

    entity: str
    project: str
    scope: str
    user: str
    doc: dict[str, Any]
    updated_at: float


@dataclass
class FileRecord:
    """A file of a run (``run.save``, media), relative ``name`` with ``/`` separators.

    ``sha256`` is the hex digest of its content (``None`` for files a store keeps outside its
    blob store, e.g. ``run.save`` copies written into an embedded store's run folder)."""

    name: str
    size: int
    updated_at: float
    sha256: str | None = None


#: What :meth:`Store.put_file` reads a file's content from: bytes, a local path, a binary file
#: object (read in chunks) or an iterable of chunks.
FileData = bytes | bytearray | memoryview | Path | IO[bytes] | Iterable[bytes]


@dataclass
class SystemRows:
    """System-metric samples of a run (see :meth:`Store.system_metrics`).

    Each row is W&B's shape for its ``events`` stream: ``{"_timestamp", "_runtime",
    "system.cpu": ..., ...}``. ``total`` is the number of samples stored; ``downsampled`` says
    whether ``rows`` is an evenly spaced subset of them.
    """

    rows: list[dict[str, Any]]
    total: int
    downsampled: bool


@dataclass
class AlertRecord:
    """An alert of a run (``run.alert``), with the state of its webhook notification.

    ``delivery``: ``pending`` (waiting for a dispatcher), ``suppressed`` (an alert of the same
    run and title was notified less than ``wait_duration`` seconds before), ``sent``,
    ``failed`` (the webhook kept refusing it; ``error`` says why) or ``expired`` (nobody
    delivered it while it was fresh).
    """

    id: int
    title: str
    text: str
    level: str
    wait_duration: float
    timestamp: float
    runtime: float
    delivery: str
    attempts: int = 0
    sent_at: float | None = None
    error: str | None = None


@dataclass
class SweepRecord:
    """A sweep as stored."""

    id: str
    entity: str
    project: str
    name: str | None
    description: str | None
    method: str
    state: str
    config: dict[str, Any]
    seed: int
    method_state: dict[str, Any]
    run_count: int
    created_at: float
    updated_at: float

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.id}"


@dataclass
class TrialRecord:
    """A run of a sweep, as the controller sees it."""

    pk: int
    run_id: str
    name: str
    state: str
    params: dict[str, Any]
    summary: dict[str, Any]
    agent_id: str | None
    created_at: float
    heartbeat_at: float
    failure: str | None


@dataclass
class AgentRecord:
    id: str
    sweep_id: str
    host: str | None
    pid: int | None
    state: str
    current_run_id: str | None
    runs_done: int
    created_at: float
    heartbeat_at: float


class SweepTransaction(abc.ABC):
    """What the sweep controller may do while it holds a sweep's lock.

    Obtained from :meth:`Store.sweep_transaction`; everything done through it commits together
    when the ``with`` block ends, and no other controller (in any process, on any host sharing
    the database) can hold the same sweep's lock meanwhile. This is what makes assignment atomic.
    """

    sweep: SweepRecord

    @abc.abstractmethod
    def trials(
        self, *, states: Sequence[str] | None = None, agent_id: str | None = None
    ) -> list[TrialRecord]:
        """Every run of the sweep, oldest first; only those in ``states`` and/or handed to
        ``agent_id`` when given (the controller's common questions, answered without reading
        every run of a large sweep)."""

    def trial_count(self) -> int:
        """How many runs the sweep has (a store should answer without reading them)."""
        return len(self.trials())

    @abc.abstractmethod
    def agents(self) -> list[AgentRecord]:
        """Every agent of the sweep."""

    @abc.abstractmethod
    def add_trial(
        self,
        run_id: str,
        name: str,
        params: dict[str, Any],
        config: dict[str, Any],
        agent_id: str | None,
    ) -> None:
        """Create the run (state ``pending``) that an agent is about to start."""

    @abc.abstractmethod
    def set_trial_state(self, run_id: str, state: str, failure: str | None = None) -> None:
        """Change a run of the sweep (e.g. ``crashed`` when its agent died)."""

    @abc.abstractmethod
    def set_trial_result(
        self,
        run_id: str,
        state: str,
        summary: dict[str, Any],
        config: dict[str, Any] | None = None,
        failure: str | None = None,
    ) -> None:
        """Finish a run whose program never called ``runyard.init()`` (e.g. a Hydra job whose
        return value is the objective): merge ``summary`` into its summary, set its state, and
        replace its config if ``config`` is given."""

    @abc.abstractmethod
    def set_agent_state(self, agent_id: str, state: str) -> None: ...

    @abc.abstractmethod
    def update_sweep(
        self,
        *,
        state: str | None = None,
        method_state: dict[str, Any] | None = None,
        run_count: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        """Change the sweep's row (and ``self.sweep``). ``config`` replaces the stored sweep
        config (the document as given, e.g. with a raised ``run_cap``); the caller validates it."""


class StoreError(CommError, RuntimeError):
    """A store operation failed in a way the caller should report to the user (a W&B
    ``wandb.errors.CommError`` too)."""


class RunActiveError(StoreError):
    """The run is still running (its process writes to it): stop it first."""


class FileTooLargeError(StoreError):
    """A file is larger than the store (or server) accepts; nothing was stored."""

    def __init__(self, message: str, limit: int) -> None:
        super().__init__(message)
        self.limit = limit


class RunConflictError(StoreError):
    """A run with the same id already exists in the project and the batch does not resume it."""


class StoreUnavailableError(StoreError):
    """The store could not be reached or could not write now (a server down or timing out, a
    database restarting, locked or on a full disk); retrying the same call later may work."""


class StoreDamagedError(StoreUnavailableError):
    """The database file is damaged (SQLite: "database disk image is malformed", "file is not a
    database"). Nothing can be read or written until someone repairs or replaces it; writers
    keep their journals meanwhile, as for any store that cannot write now."""


class BatchRejectedError(StoreError):
    """The store will never apply this batch as it is: one of its records (or its size, or its
    summary) is something the store cannot hold. Sending it again fails the same way; the
    writer splits it and sets aside the record at fault (see ``runyard.sdk.delivery``).

    ``certain`` is False when the store cannot tell a lasting refusal from a passing failure
    (a server's 500): the writer then retries a while before it sets a record aside."""

    def __init__(self, message: str, *, certain: bool = True) -> None:
        super().__init__(message)
        self.certain = certain


class Store(abc.ABC):
    """Abstract base of the stores. See the module docstring for the contract."""

    #: Records per :meth:`apply` that a writer should aim for: large enough to amortise a
    #: transaction (or a request), small enough that one call's work in Python stays short;
    #: the shipper shares the GIL with the training loop.
    batch_records: int = 1_000

    @abc.abstractmethod
    def apply(self, batch: JournalBatch) -> int:
        """Apply the unapplied records of ``batch``; return the journal's applied mark after."""

    @abc.abstractmethod
    def journal_progress(self, journal_id: str) -> int:
        """The last applied ``seq`` of a journal, 0 if the store has never seen it."""

    @abc.abstractmethod
    def find_run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        """The run, or ``None``."""

    @abc.abstractmethod
    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        """Runs matching ``query``, newest first unless ``query.order_desc`` is false."""

    def query_runs(
        self,
        entity: str | None,
        project: str | None,
        filter: Mapping[str, Any] | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        entities: Sequence[str] | None = None,
    ) -> tuple[list[RunRecord], int]:
        """One page of the runs of ``entity``/``project`` (``None``: any) matching ``filter`` (a
        :mod:`runyard.query` document), and how many runs match in all.

        The result is exactly that of :func:`runyard.query.select_runs` on :meth:`list_runs`'s
        runs (newest first, then ``compile_filter``, the stable ``sort_runs``, then
        ``[offset:offset + limit]``); ``entities``, if given, keeps only runs of those entities.
        A bad filter or sort key raises :class:`runyard.query.QueryError`. This default does
        just that; stores override it to do the work in the database.
        """
        from runyard.query import select_runs

        runs = self.list_runs(RunQuery(entity=entity, project=project))
        if entities is not None:
            allowed = set(entities)
            runs = [r for r in runs if r.entity in allowed]
        return select_runs(runs, filter, sort, limit, offset)

    def run_pks(self, entity: str, project: str, run_ids: Sequence[str]) -> dict[str, int]:
        """The ``pk`` of each of ``run_ids`` that exists in the project (others are left
        out). Stores override it with a lighter read than :meth:`list_runs`."""
        if not run_ids:
            return {}
        runs = self.list_runs(RunQuery(entity=entity, project=project, run_ids=list(run_ids)))
        return {r.run_id: r.pk for r in runs}

    def project_metric_names(self, entity: str, project: str) -> list[str]:
        """The names of the metrics any run of the project logged, sorted (the workspace's
        panels). Stores override it with one query."""
        names: set[str] = set()
        for run in self.list_runs(RunQuery(entity=entity, project=project)):
            names.update(self.metric_names(run.pk))
        return sorted(names)

    def runs_by_id_prefix(
        self,
        prefix: str,
        entity: str | None = None,
        project: str | None = None,
        limit: int = 10,
        *,
        entities: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        """Runs whose id starts with ``prefix`` (newest first, at most ``limit``), of
        ``entity``/``project`` when given and only of ``entities`` when given: how a short id
        (``runyard runs show 3fa2``) is found. Stores answer with one indexed query."""
        runs = self.list_runs(RunQuery(entity=entity, project=project))
        if entities is not None:
            runs = [r for r in runs if r.entity in set(entities)]
        return [r for r in runs if r.run_id.startswith(prefix)][:limit]

    # -- editing and deleting runs ---------------------------------------------------------------

    @abc.abstractmethod
    def update_run(self, entity: str, project: str, run_id: str, **changes: Any) -> RunRecord:
        """Change a run's ``name``, ``tags``, ``notes``, ``group``, ``job_type``, ``config``
        or ``summary`` (each given replaces the stored one; checked by
        :func:`check_run_update`), in any state: W&B's ``Api().run(...).update()``. A running
        run's own later batches still set its summary and config (the writer's snapshot).
        Returns the run as stored after; :class:`LookupError` if there is no such run."""

    @abc.abstractmethod
    def delete_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        force: bool = False,
        dry_run: bool = False,
    ) -> RunDeletion:
        """Delete a run with everything it logged: history, console, system metrics, alerts,
        its files' names, and the files' content that nothing else holds (another run's file,
        an artifact, an upload's lease: kept; race-free with a concurrent upload of the same
        content). Artifacts it logged stay (``Api``'s ``delete_artifacts`` deletes them
        first). A ``pending`` or ``running`` run raises :class:`RunActiveError` unless
        ``force`` (its process would go on writing). ``dry_run`` deletes nothing and says
        what would go; :class:`LookupError` if there is no such run."""

    @abc.abstractmethod
    def list_projects(self) -> list[tuple[str, str, int]]:
        """``(entity, project, number of runs)`` for every project."""

    @abc.abstractmethod
    def metric_names(self, run_pk: int) -> list[str]:
        """Names of the metrics logged by a run, sorted."""

    @abc.abstractmethod
    def history(
        self,
        run_pk: int,
        keys: Sequence[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> list[dict[str, Any]]:
        """History rows ``{"_step", "_runtime", "_timestamp", key: value...}`` by step.

        With ``keys``, only rows where at least one of ``keys`` was logged, with those keys.
        """

    @abc.abstractmethod
    def console(self, run_pk: int, limit: int | None = None) -> list[tuple[str, float, str]]:
        """Console lines ``(stream, timestamp, text)`` in order (the last ``limit`` if given)."""

    @abc.abstractmethod
    def mark_run_state(
        self, run_pk: int, state: str, failure: str | None = None, only_if_running: bool = True
    ) -> bool:
        """Set a run's final state outside a journal (e.g. a stale heartbeat); True if changed."""

    # -- sweeps ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def create_sweep(
        self,
        *,
        sweep_id: str,
        entity: str,
        project: str,
        name: str | None,
        description: str | None,
        method: str,
        config: dict[str, Any],
        seed: int,
    ) -> SweepRecord:
        """Store a new sweep in state ``running``."""

    @abc.abstractmethod
    def get_sweep(self, sweep_id: str) -> SweepRecord | None: ...

    @abc.abstractmethod
    def list_sweeps(
        self, entity: str | None = None, project: str | None = None
    ) -> list[SweepRecord]:
        """Sweeps, newest first."""

    @abc.abstractmethod
    def set_sweep_state(self, sweep_id: str, state: str) -> SweepRecord:
        """Change a sweep's state (pause, resume, stop, cancel)."""

    @abc.abstractmethod
    def sweep_transaction(self, sweep_id: str) -> AbstractContextManager[SweepTransaction]:
        """Lock the sweep and yield a :class:`SweepTransaction` (see its contract)."""

    @abc.abstractmethod
    def sweep_trials(self, sweep_id: str) -> list[TrialRecord]:
        """The sweep's runs, oldest first, read without taking the sweep's lock."""

    @abc.abstractmethod
    def register_agent(self, agent_id: str, sweep_id: str, host: str, pid: int) -> AgentRecord: ...

    @abc.abstractmethod
    def agent_heartbeat(
        self, agent_id: str, current_run_id: str | None, runs_done: int, state: str = "running"
    ) -> None: ...

    @abc.abstractmethod
    def metric_values(self, run_pks: Sequence[int], key: str) -> dict[int, list[Any]]:
        """The logged values of one metric for each run, in step order (for early stopping)."""

    @abc.abstractmethod
    def series(
        self,
        run_pk: int,
        key: str,
        samples: int = 2000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Series:
        """One numeric metric of a run in step order, for charts.

        When more than ``samples`` points fall in the step range, the answer keeps the first and
        the last point of the range (so a chart ends at the run's last logged value, as its
        summary does) and cuts the range into ``(samples - 2) // 2`` buckets of consecutive
        steps (at least one), each keeping its minimum and its maximum point (in step order), so
        a spike or a dip is never averaged away: at most ``max(samples, 4)`` points, with
        ``downsampled`` true. Non-numeric values (strings, None) are left out.
        """

    def series_many(
        self,
        run_pks: Sequence[int],
        key: str,
        samples: int = 500,
        *,
        x: str = "_step",
        since: Mapping[int, int] | None = None,
    ) -> dict[int, XSeries]:
        """The series of ``key`` of many runs at once, for a chart of all of them: one
        :class:`XSeries` per run of ``run_pks`` (an empty one for a run without the metric).

        Each is downsampled as :meth:`series` says (first and last point, min/max buckets);
        a store may make the buckets coarser (whole 64-step blocks) to bound the work of a
        large call, never finer, and says so with ``downsampled``. ``since`` maps a run to the
        last step the caller already has: only later points come back for it (an incremental
        update of a live chart; ``total`` then counts those points). ``x`` gives each point its
        x value: ``_step``, ``_runtime``, ``_timestamp``, or another metric's value at the same
        step (linearly interpolated over steps between the points where it was logged; points
        outside them are left out). Reads see one consistent state per run.

        This default calls :meth:`series` and :meth:`history` per run; stores override it to
        answer in a few queries.
        """
        import numpy as np

        out: dict[int, XSeries] = {}
        for pk in run_pks:
            lo = None if since is None or pk not in since else since[pk] + 1
            s = self.series(pk, key, samples, min_step=lo)
            steps, values = list(s.steps), list(s.values)
            xs: list[float] = [float(v) for v in steps]
            if x != "_step" and steps:
                if x in TIME_AXES:
                    rows = self.history(pk, None, steps[0], steps[-1])
                    by_step = {int(r["_step"]): r.get(x) for r in rows}
                    found = [by_step.get(st) for st in steps]
                    xs = [np.nan if v is None else float(v) for v in found]
                else:
                    rows = self.history(pk, [x], steps[0], steps[-1])
                    known = [
                        (int(r["_step"]), float(r[x]))
                        for r in rows
                        if isinstance(r.get(x), int | float) and not isinstance(r.get(x), bool)
                    ]
                    xs = interpolate_x(steps, known)
                keep = [i for i, v in enumerate(xs) if v == v]  # not NaN
                steps = [steps[i] for i in keep]
                values = [values[i] for i in keep]
                xs = [xs[i] for i in keep]
            out[pk] = XSeries(key, x, steps, xs, values, s.total, s.downsampled)
        return out

    # -- values of one key (the dashboard's media panels) -------------------------------------

    def logged_steps(self, run_pks: Sequence[int], key: str) -> dict[int, list[int]]:
        """The steps at which each run logged ``key``, ascending: one list per run of
        ``run_pks`` (empty for a run without the key). Cheap (integers only): the dashboard's
        step slider over a media key reads it before any value.

        This default reads :meth:`history`; stores override it with one query."""
        return {
            pk: [int(r["_step"]) for r in self.history(pk, [key]) if key in r]
            for pk in dict.fromkeys(run_pks)
        }

    def logged_values(
        self,
        run_pks: Sequence[int],
        key: str,
        samples: int | None = None,
        *,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> dict[int, KeyValues]:
        """Every value each run logged under ``key`` in the step range (inclusive bounds), in
        step order, whatever its kind (media references, histograms, tables, numbers): one
        :class:`KeyValues` per run of ``run_pks``. With ``samples`` and more steps than that in
        the range, ``samples`` of them evenly spread (the first and the last kept, ``thinned``
        true): a histogram over time of 100,000 steps reads as many columns as it can draw.
        Values are as :meth:`history` returns them; reads see one consistent state per run.

        This default reads :meth:`history`; stores override it with a few queries."""
        out: dict[int, KeyValues] = {}
        for pk in dict.fromkeys(run_pks):
            rows = [r for r in self.history(pk, [key], min_step, max_step) if key in r]
            keep = thin_indices(len(rows), samples)
            out[pk] = KeyValues(
                key,
                [int(rows[i]["_step"]) for i in keep],
                [rows[i][key] for i in keep],
                len(rows),
                len(keep) < len(rows),
            )
        return out

    # -- dashboard workspaces ---------------------------------------------------------------------

    @abc.abstractmethod
    def get_workspace(self, entity: str, project: str, user: str | None) -> WorkspaceRecord | None:
        """The workspace ``user`` sees in a project: their own if they saved one (``user``
        not None), else the project's, else None. The document is the dashboard's (panels,
        sections, settings; docs/dashboard.md); the store keeps it as given."""

    @abc.abstractmethod
    def put_workspace(
        self, entity: str, project: str, scope: str, user: str | None, doc: dict[str, Any]
    ) -> WorkspaceRecord:
        """Save (replace) the project's workspace (``scope="project"``) or ``user``'s own in
        the project (``scope="user"``). The project must exist (it has runs):
        :class:`StoreError` otherwise, and for an unknown scope or a user scope without a
        user."""

    @abc.abstractmethod
    def delete_workspace(self, entity: str, project: str, scope: str, user: str | None) -> bool:
        """Forget a saved workspace (a user's: back to the project's); True if one was kept."""

    # -- files ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def put_file(
        self,
        entity: str,
        project: str,
        run_id: str,
        name: str,
        data: FileData,
        *,
        expected_key: str | None = None,
        max_size: int | None = None,
    ) -> FileRecord:
        """Store (or replace) a run's file, reading ``data`` in chunks (never whole in memory).

        The content goes into the store's blob store once per content hash (runyard.blobs);
        readers see the old file or the new one, never a part. ``expected_key``
        (``sha256:<hex>``) is verified (:class:`StoreError` on a mismatch); more than
        ``max_size`` bytes raise :class:`FileTooLargeError`. ``name`` is relative; ``..`` and
        absolute paths are refused with :class:`StoreError`; so is a run that does not exist."""

    def link_file(
        self, entity: str, project: str, run_id: str, name: str, key: str
    ) -> FileRecord | None:
        """Name the already stored content ``key`` as a run's file without sending it again;
        ``None`` if this store cannot (then :meth:`put_file` the content). Stores link only
        content that a file of the same entity already has, so knowing a hash never gives
        access to another entity's data."""
        return None

    @abc.abstractmethod
    def open_file(
        self, entity: str, project: str, run_id: str, name: str
    ) -> tuple[FileRecord, BinaryIO]:
        """A run's file and a binary stream of its content (close it);
        :class:`FileNotFoundError` if absent."""

    def local_file_path(self, entity: str, project: str, run_id: str, name: str) -> Path | None:
        """A local path of the file's content (read-only), for ``sendfile``; ``None`` if the
        store has none. :class:`FileNotFoundError` if absent."""
        return None

    def read_file(self, entity: str, project: str, run_id: str, name: str) -> bytes:
        """A run's whole file (small files); :class:`FileNotFoundError` if absent."""
        _record, stream = self.open_file(entity, project, run_id, name)
        with stream:
            return stream.read()

    @abc.abstractmethod
    def list_files(self, entity: str, project: str, run_id: str) -> list[FileRecord]:
        """A run's files, by name."""

    # -- system metrics and alerts -------------------------------------------------------------

    @abc.abstractmethod
    def system_metrics(
        self, run_pk: int, samples: int | None = None, keys: Sequence[str] | None = None
    ) -> SystemRows:
        """The run's system-metric samples (journal ``stats`` records) in time order.

        With ``samples``, at most that many rows, evenly spaced over the run's samples (the
        first and the last kept). With ``keys``, rows keep only those metrics (and the
        ``_timestamp``/``_runtime``), and rows without any of them are left out.
        """

    @abc.abstractmethod
    def alerts(self, run_pk: int) -> list[AlertRecord]:
        """The run's alerts (journal ``alert`` records), oldest first."""

    # -- sweep control --------------------------------------------------------------------------

    def controller(self, sweep_id: str) -> SweepControl:
        """The sweep controller for ``sweep_id``. A direct store runs it in this process (over
        :meth:`sweep_transaction`); a remote store asks its server, which runs it there."""
        from runyard.sweeps.controller import SweepController

        return SweepController(self, sweep_id)

    def after_fork(self) -> None:  # noqa: B027 - optional hook
        """Forget connections inherited from the parent process."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


def interpolate_x(steps: Sequence[int], known: Sequence[tuple[int, float]]) -> list[float]:
    """The x value at each of ``steps`` from the ``(step, x)`` points where the x metric was
    logged (in step order): exact where logged, linear in step between them, NaN outside."""
    import numpy as np

    if not known:
        return [float("nan")] * len(steps)
    ks = np.asarray([k for k, _ in known], dtype=float)
    kv = np.asarray([v for _, v in known], dtype=float)
    at = np.asarray(steps, dtype=float)
    xs = np.interp(at, ks, kv)
    xs[(at < ks[0]) | (at > ks[-1])] = np.nan
    return [float(v) for v in xs]


def thin_indices(n: int, samples: int | None) -> list[int]:
    """Indices of ``samples`` of ``n`` items evenly spread, the first and the last included
    (all of them when ``samples`` is None or at least ``n``)."""
    if samples is None or n <= samples:
        return list(range(n))
    if samples <= 1:
        return [n - 1] if samples == 1 else []
    return sorted({round(i * (n - 1) / (samples - 1)) for i in range(samples)})
