"""``runyard.Api``: read runs back — for notebooks, scripts and the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from runyard.sdk.metadata import username
from runyard.store import RunQuery, RunRecord, Store, open_store, resolve_store_url
from runyard.store.base import AlertRecord, FileRecord, RunDeletion, SweepRecord
from runyard.store.locate import resolve_root


class Api:
    """Read access to a store: ``store`` if given, else ``RUNYARD_BASE_URL`` (a runyard
    server), else ``RUNYARD_STORE``, else the server ``runyard login`` made the default, else
    the embedded store. ``api_key`` is for a server (default: ``RUNYARD_API_KEY``, then the key
    saved by ``runyard login``).

    Opening the Api also recovers journals left by processes that died and marks runs whose
    process is gone as ``crashed``, so what it returns is up to date.
    """

    def __init__(
        self,
        store: str | None = None,
        dir: str | os.PathLike[str] | None = None,
        entity: str | None = None,
        recover: bool = True,
        api_key: str | None = None,
    ) -> None:
        self.root: Path = resolve_root(dir)
        self.store_url = resolve_store_url(store, self.root)
        self.store: Store = open_store(self.store_url, api_key)
        self.default_entity = entity or os.environ.get("RUNYARD_ENTITY") or username()
        if recover:
            from runyard.sdk.recovery import mark_stale_runs, recover_journals

            recover_journals(self.root, self.store, quiet=True)
            mark_stale_runs(self.store)

    def _split(self, path: str | None) -> tuple[str | None, str | None]:
        if not path:
            return None, None
        parts = [p for p in path.strip("/").split("/") if p]
        if len(parts) == 1:
            return None, parts[0]
        if len(parts) == 2:
            return parts[0], parts[1]
        raise ValueError(f"runyard.Api: {path!r} is not a project path; use 'entity/project'")

    def projects(self) -> list[tuple[str, str, int]]:
        """``(entity, project, runs)`` for each project."""
        return self.store.list_projects()

    def runs(
        self,
        path: str | None = None,
        filters: Mapping[str, Any] | None = None,
        order: str | None = "-created_at",
        limit: int | None = None,
        per_page: int = 50,
    ) -> Runs:
        """Runs of a project (``"entity/project"`` or ``"project"``; all projects if None)
        matching ``filters`` (:mod:`runyard.query`), sorted by ``order``, at most ``limit``:
        a lazy :class:`Runs` sequence that reads ``per_page`` runs at a time as it is iterated
        or indexed (W&B's paginator); ``len()`` is the number of matching runs. The store does
        the work (``Store.query_runs``: SQL, or the server's ``/runs``)."""
        entity, project = self._split(path)
        return Runs(self.store, entity, project, filters, order, limit, per_page)

    def run(self, path: str) -> ApiRun:
        """A run by ``"entity/project/id"``, ``"project/id"`` or ``"id"``; an id may be
        shortened to a unique prefix (as git's commits). :class:`LookupError` names the
        candidates of an ambiguous or unknown one."""
        parts = [p for p in path.strip("/").split("/") if p and p != "runs"]
        entity: str | None = None
        project: str | None = None
        if len(parts) == 3:
            entity, project, run_id = parts
            record = self.store.find_run(*parts)
        elif len(parts) == 2:
            project, run_id = parts
            record = self.store.find_run(self.default_entity, project, run_id)
            if record is None:
                matches = self.store.list_runs(RunQuery(project=project, run_ids=[run_id]))
                record = matches[0] if len(matches) == 1 else None
        elif len(parts) == 1:
            run_id = parts[0]
            matches = self.store.list_runs(RunQuery(run_ids=[run_id]))
            if len(matches) > 1:
                raise LookupError(
                    f"run id {run_id!r} exists in several projects: "
                    f"{', '.join(m.path for m in matches)}; give 'entity/project/id'"
                )
            record = matches[0] if matches else None
        else:
            raise ValueError(f"runyard.Api.run: {path!r} is not a run path")
        if record is None:
            record = self._by_prefix(path, entity, project, run_id)
        return ApiRun(self.store, record)

    def _by_prefix(
        self, path: str, entity: str | None, project: str | None, run_id: str
    ) -> RunRecord:
        """The one run whose id starts with ``run_id`` (one SQL prefix query, a few runs
        read), else a LookupError naming candidates: ids that start alike, runs so named."""
        found = self.store.runs_by_id_prefix(run_id, entity, project, limit=6)
        if len(found) == 1:
            return found[0]
        if found:
            shown = ", ".join(f"{r.path} ({r.name})" for r in found[:5])
            more = " and more" if len(found) > 5 else ""
            raise LookupError(
                f"run id prefix {run_id!r} is ambiguous: {shown}{more}; give more of the id"
            )
        hints: list[RunRecord] = []
        named, _total = self.store.query_runs(entity, project, {"name": run_id}, None, 5)
        hints.extend(named)
        cut = len(run_id) - 1
        while len(hints) < 3 and cut >= 2:
            hints.extend(
                r
                for r in self.store.runs_by_id_prefix(run_id[:cut], entity, project, limit=5)
                if r.pk not in {h.pk for h in hints}
            )
            cut -= 2 if cut > 4 else 1
        where = f"{entity}/{project}" if entity else (project or "any project")
        message = f"no run {path!r} in {where} ({self.store_url})"
        if hints:
            message += "; did you mean " + ", ".join(f"{r.path} ({r.name})" for r in hints[:5])
        else:
            message += "; list runs with `runyard runs ls`"
        raise LookupError(message)

    # -- sweeps ---------------------------------------------------------------------------------

    def sweep(self, path: str) -> ApiSweep:
        """A sweep by ``"entity/project/id"``, ``"project/id"`` or ``"id"`` (W&B's
        ``Api.sweep``): its config and state, ``.runs`` and ``.best_run()``."""
        sweep_id = path.strip("/").split("/")[-1]
        record = self.store.get_sweep(sweep_id)
        if record is None:
            raise LookupError(
                f"no sweep {path!r} in {self.store_url}; list sweeps with `runyard sweep ls`"
            )
        return ApiSweep(self.store, record)

    # -- artifacts ------------------------------------------------------------------------------

    def artifact(self, name: str, type: str | None = None) -> Any:
        """An artifact version: ``"entity/project/name:alias"`` or ``"project/name:v3"``."""
        from runyard.artifacts.sdk import api_artifact

        return api_artifact(self.store, self.default_entity, name, type)

    def artifact_collections(self, project: str, type: str | None = None) -> list[Any]:
        """The artifact names of ``"entity/project"`` (or ``"project"``), of ``type`` if given."""
        from runyard.artifacts import artifact_store_for

        entity, proj = self._split(project)
        return artifact_store_for(self.store).collections(
            entity or self.default_entity, proj or "", type
        )

    def artifacts(self, type_name: str | None, name: str) -> list[Any]:
        """Every version of an artifact name (``"entity/project/name"``), newest first."""
        from runyard.artifacts import artifact_store_for
        from runyard.artifacts.artifact import Artifact
        from runyard.artifacts.sdk import split_ref

        entity, project, coll, _ = split_ref(name, self.default_entity, "")
        arts = artifact_store_for(self.store)
        found = arts.versions(entity, project, coll)
        return [Artifact._from_record(r, arts) for r in found if type_name in (None, r.type)]


class Runs(Sequence["ApiRun"]):
    """Runs of :meth:`Api.runs`, read ``per_page`` at a time as they are used (W&B's
    ``Runs`` paginator): iterate, index (``runs[0]``, ``runs[-1]``, slices) and ``len()``
    (the number of matching runs, from the first page's query). Each page is one
    ``Store.query_runs`` call; pages already read are kept."""

    def __init__(
        self,
        store: Store,
        entity: str | None,
        project: str | None,
        filters: Mapping[str, Any] | None,
        order: str | None,
        limit: int | None,
        per_page: int = 50,
    ) -> None:
        if per_page < 1:
            raise ValueError(f"runyard.Api.runs: per_page must be at least 1, not {per_page}")
        self._store = store
        self._where = (entity, project)
        self._filters = filters
        self._order = order
        self._limit = limit
        self.per_page = per_page
        self._loaded: list[ApiRun] = []
        self._total: int | None = None
        if filters:  # a bad filter fails here, as a list would have
            from runyard.query import check_order, compile_filter

            compile_filter(filters)
            check_order(order)

    def __eq__(self, other: object) -> bool:
        """Equal to a list (or any sequence) of the same runs: ``Api.runs`` returned a list
        before it paged, and ``api.runs(...) == []`` must keep working."""
        if isinstance(other, Runs | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def _wanted(self) -> int:
        total = self._total if self._total is not None else 1 << 62
        return total if self._limit is None else min(total, self._limit)

    def _load_page(self) -> bool:
        """Read the next page; False when every run is read."""
        if self._total is not None and len(self._loaded) >= self._wanted():
            return False
        want = self.per_page
        if self._limit is not None:
            want = min(want, self._limit - len(self._loaded))
            if want <= 0:
                return False
        records, total = self._store.query_runs(
            *self._where, self._filters, self._order, want, len(self._loaded)
        )
        self._total = total
        self._loaded.extend(ApiRun(self._store, r) for r in records)
        return bool(records)

    @property
    def length(self) -> int:
        """How many runs match (W&B's ``Runs.length``)."""
        if self._total is None:
            self._load_page()
        return self._wanted()

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[ApiRun]:
        i = 0
        while True:
            while i >= len(self._loaded):
                if not self._load_page():
                    return
            yield self._loaded[i]
            i += 1

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index < 0:
            raise IndexError("runyard.Runs index out of range")
        while index >= len(self._loaded):
            if not self._load_page():
                raise IndexError("runyard.Runs index out of range")
        return self._loaded[index]

    def __repr__(self) -> str:
        where = "/".join(p for p in self._where if p) or "all projects"
        return f"<runyard.Runs {where} ({len(self)} runs)>"


class ApiSweep:
    """A stored sweep (W&B's ``wandb.apis.public.Sweep``)."""

    def __init__(self, store: Store, record: SweepRecord) -> None:
        self._store = store
        self.record = record

    id = property(lambda self: self.record.id)
    entity = property(lambda self: self.record.entity)
    project = property(lambda self: self.record.project)
    state = property(lambda self: self.record.state)
    config = property(lambda self: self.record.config)
    method = property(lambda self: self.record.method)
    path = property(lambda self: self.record.path)

    @property
    def name(self) -> str:
        return self.record.name or self.record.config.get("name") or self.record.id

    @property
    def expected_run_count(self) -> int | None:
        """The sweep's ``run_cap`` (None: no cap; a grid's size when it has one)."""
        cap = self.record.config.get("run_cap")
        return int(cap) if isinstance(cap, int) else None

    @property
    def runs(self) -> Runs:
        """The sweep's runs, newest first."""
        return self._runs("-created_at")

    def _runs(self, order: str | None, per_page: int = 50) -> Runs:
        return Runs(
            self._store,
            self.entity,
            self.project,
            {"sweep_id": self.id},
            order,
            None,
            per_page,
        )

    @property
    def order(self) -> str | None:
        """The sort key of the sweep's metric (``summary.<name>``, ``-`` first when the goal
        is maximize), or None when the sweep has none; the first of several metrics."""
        metric = self.record.config.get("metric")
        if not metric and self.record.config.get("metrics"):
            metric = self.record.config["metrics"][0]
        if not isinstance(metric, Mapping) or not metric.get("name"):
            return None
        sign = "-" if metric.get("goal", "minimize") == "maximize" else ""
        return f"{sign}summary.{metric['name']}"

    def best_run(self, order: str | None = None) -> ApiRun | None:
        """The sweep's best run by ``order`` (a sort key: ``summary.loss``, ``-summary.acc``;
        W&B's ``+``/``summary_metrics.`` forms too), else by the sweep's metric, else the
        newest; None for a sweep without runs. Runs without the metric come last."""
        key = order if order is not None else self.order
        if key is not None and key.startswith("+"):
            key = key[1:]
        found = self._runs(key or "-created_at", per_page=1)
        return found[0] if len(found) else None

    def __repr__(self) -> str:
        return f"<runyard.ApiSweep {self.path} {self.state}>"


def _editable(field: str) -> Any:
    """A property of :class:`ApiRun` that may be assigned (saved by ``update()``)."""

    def get(self: ApiRun) -> Any:
        return getattr(self.record, field)

    def put(self: ApiRun, value: Any) -> None:
        setattr(self.record, field, list(value) if field == "tags" else value)

    return property(get, put, doc=f"The run's {field} (save a change with update()).")


#: the fields :meth:`ApiRun.update` sends when they changed
_EDITABLE = ("name", "tags", "notes", "group", "job_type", "config", "summary")


class ApiRun:
    """A stored run. ``name``, ``tags``, ``notes``, ``group``, ``job_type``, ``config`` and
    ``summary`` may be changed (assigned, or edited in place) and saved with :meth:`update`
    (W&B's ``run.update()``); :meth:`delete` deletes the run."""

    def __init__(self, store: Store, record: RunRecord) -> None:
        self._store = store
        self._reset(record)

    def _reset(self, record: RunRecord) -> None:
        import copy

        self.record = record
        self._saved = {f: copy.deepcopy(self._field(f)) for f in _EDITABLE}

    def _field(self, field: str) -> Any:
        return getattr(self.record, field)

    name = _editable("name")
    display_name = _editable("name")
    tags = _editable("tags")
    notes = _editable("notes")
    group = _editable("group")
    job_type = _editable("job_type")
    config = _editable("config")
    summary = _editable("summary")

    id = property(lambda self: self.record.run_id)
    entity = property(lambda self: self.record.entity)
    project = property(lambda self: self.record.project)
    state = property(lambda self: self.record.state)
    sweep_id = property(lambda self: self.record.sweep_id)
    #: the parameters the sweep assigned (flat dotted names), for runs of a sweep
    sweep_params = property(lambda self: self.record.sweep_params)
    metadata = property(lambda self: self.record.meta)
    created_at = property(lambda self: self.record.created_at)
    runtime = property(lambda self: self.record.runtime)
    failure = property(lambda self: self.record.failure)
    exit_code = property(lambda self: self.record.exit_code)
    path = property(lambda self: self.record.path)
    metric_definitions = property(lambda self: self.record.metric_defs)

    def metric_names(self) -> list[str]:
        return self._store.metric_names(self.record.pk)

    # -- editing and deleting ---------------------------------------------------------------------

    def update(self) -> None:
        """Save the changed ``name``, ``tags``, ``notes``, ``group``, ``job_type``,
        ``config`` and ``summary`` (W&B's ``run.update()``): the fields changed since the run
        was read replace the stored ones. A running run's own next batch still sets its
        summary and config: edit those after it ended."""
        changes = {f: self._field(f) for f in _EDITABLE if self._field(f) != self._saved[f]}
        if not changes:
            return
        self._reset(self._store.update_run(self.entity, self.project, self.id, **changes))

    save = update  # W&B's alias

    def delete(
        self, delete_artifacts: bool = False, *, force: bool = False, dry_run: bool = False
    ) -> RunDeletion:
        """Delete the run and what it logged (W&B's ``run.delete()``); its files' content
        goes from the blob store unless another run or an artifact holds it. With
        ``delete_artifacts``, the artifact versions it logged are deleted first (their
        aliases too). A running run needs ``force``. Returns what was deleted
        (:class:`runyard.store.base.RunDeletion`); ``dry_run`` only says so."""
        if delete_artifacts and not dry_run:
            from runyard.artifacts import artifact_store_for

            arts = artifact_store_for(self._store)
            logged, _used = arts.run_artifacts(self.entity, self.project, self.id)
            for version in logged:
                arts.delete(version, force=True)
        return self._store.delete_run(
            self.entity, self.project, self.id, force=force, dry_run=dry_run
        )

    def scan_history(
        self,
        keys: Sequence[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every history row, in step order."""
        yield from self._store.history(self.record.pk, keys, min_step, max_step)

    def history(
        self,
        keys: Sequence[str] | None = None,
        samples: int | None = 500,
        pandas: bool = True,
        stream: str = "default",
    ) -> Any:
        """History rows; at most ``samples`` evenly spaced rows (first and last kept).

        Returns a pandas DataFrame when pandas is installed and ``pandas`` is true, otherwise a
        list of dicts. ``samples=None`` returns every row.

        ``stream="system"`` (or W&B's internal name ``"events"``) returns the system metrics
        instead: rows ``{"_timestamp", "_runtime", "system.cpu", ...}`` by time (docs/system.md).
        """
        if stream in ("system", "events"):
            limit = samples if samples is not None and samples > 0 else None
            rows = self._store.system_metrics(self.record.pk, limit, keys).rows
            return _frame(rows) if pandas else rows
        if stream != "default":
            raise ValueError(
                f"runyard.ApiRun.history: stream={stream!r} is not a stream; use 'default' "
                f"(the logged history) or 'system' (system metrics)"
            )
        rows = self._store.history(self.record.pk, keys)
        if samples is not None and samples > 0 and len(rows) > samples:
            if samples == 1:
                rows = [rows[-1]]
            else:
                last = len(rows) - 1
                picks = sorted({round(i * last / (samples - 1)) for i in range(samples)})
                rows = [rows[i] for i in picks]
        return _frame(rows) if pandas else rows

    def alerts(self) -> list[AlertRecord]:
        """The run's alerts (``run.alert``), oldest first, with their webhook delivery state."""
        return self._store.alerts(self.record.pk)

    def logged_artifacts(self) -> list[Any]:
        """The artifact versions this run logged."""
        from runyard.artifacts.sdk import run_artifacts

        return run_artifacts(self._store, self.entity, self.project, self.id)[0]

    def used_artifacts(self) -> list[Any]:
        """The artifact versions this run used."""
        from runyard.artifacts.sdk import run_artifacts

        return run_artifacts(self._store, self.entity, self.project, self.id)[1]

    def console(self, limit: int | None = None) -> list[tuple[str, float, str]]:
        """Console lines ``(stream, timestamp, text)``."""
        return self._store.console(self.record.pk, limit)

    # -- files and media -------------------------------------------------------------------------

    def files(self) -> list[ApiFile]:
        """The run's files (``run.save`` and media under ``media/``), by name."""
        return [ApiFile(self, f) for f in self._store.list_files(*self._where())]

    def file(self, name: str) -> ApiFile:
        """One file by name; :class:`FileNotFoundError` if absent."""
        for f in self._store.list_files(*self._where()):
            if f.name == name:
                return ApiFile(self, f)
        raise FileNotFoundError(f"run {self.path} has no file {name!r}")

    def _where(self) -> tuple[str, str, str]:
        return self.entity, self.project, self.id

    def open_file(self, name: str) -> BinaryIO:
        """A binary stream of a file's content (close it)."""
        return self._store.open_file(*self._where(), name)[1]

    def load(self, ref: Mapping[str, Any], as_numpy: bool = False) -> Any:
        """A media reference from this run's history or summary, loaded back:
        ``image-file`` → a PIL image (``as_numpy``: an array, the logged pixels);
        ``images/separated`` → a list of those; ``table-file`` → a pandas DataFrame;
        ``histogram`` → ``(counts, edges)`` numpy arrays; ``plotly-file`` → the figure's dict;
        ``audio-file`` with ``as_numpy`` → ``(samples, sample_rate)``, both read from the file;
        other files (audio, video, html) → their bytes; the list forms (``audio``, ``videos``,
        ``html``) → a list of those."""
        from runyard.media.load import load_reference

        return load_reference(self.open_file, ref, as_numpy=as_numpy)

    def __repr__(self) -> str:
        return f"<runyard.ApiRun {self.path} {self.state}>"


def _frame(rows: list[dict[str, Any]]) -> Any:
    """A pandas DataFrame of ``rows`` when pandas is installed, else the rows."""
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)


class ApiFile:
    """A file of a stored run (W&B's ``run.file(name)``)."""

    def __init__(self, run: ApiRun, record: FileRecord) -> None:
        self._run = run
        self.name = record.name
        self.size = record.size
        self.updated_at = record.updated_at
        self.sha256 = record.sha256

    def download(self, root: str | os.PathLike[str] = ".", replace: bool = False) -> Path:
        """Write the file to ``root/name`` (streamed); its path. An existing file is kept
        unless ``replace``."""
        import shutil

        target = Path(root) / self.name
        if target.exists() and not replace:
            raise FileExistsError(f"{target} exists; pass replace=True to overwrite it")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.download")
        with self._run.open_file(self.name) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
        return target

    def __repr__(self) -> str:
        return f"<runyard.ApiFile {self.name} ({self.size} bytes)>"
