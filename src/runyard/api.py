"""``runyard.Api``: read runs back — for notebooks, scripts and the CLI."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from runyard.sdk.metadata import username
from runyard.store import RunQuery, RunRecord, Store, open_store, resolve_store_url
from runyard.store.base import AlertRecord, FileRecord
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
    ) -> list[ApiRun]:
        """Runs of a project (``"entity/project"`` or ``"project"``; all projects if None)
        matching ``filters`` (:mod:`runyard.query`), sorted by ``order``, at most ``limit``;
        the store does the work (``Store.query_runs``: SQL, or the server's ``/runs``)."""
        entity, project = self._split(path)
        records, _total = self.store.query_runs(entity, project, filters, order, limit)
        return [ApiRun(self.store, r) for r in records]

    def run(self, path: str) -> ApiRun:
        """A run by ``"entity/project/id"``, ``"project/id"`` or a unique ``"id"``."""
        parts = [p for p in path.strip("/").split("/") if p and p != "runs"]
        if len(parts) == 3:
            record = self.store.find_run(*parts)
        elif len(parts) == 2:
            record = self.store.find_run(self.default_entity, parts[0], parts[1])
            if record is None:
                matches = [
                    r for r in self.store.list_runs(RunQuery(project=parts[0], run_ids=[parts[1]]))
                ]
                record = matches[0] if len(matches) == 1 else None
        elif len(parts) == 1:
            matches = self.store.list_runs(RunQuery(run_ids=[parts[0]]))
            if len(matches) > 1:
                raise LookupError(
                    f"run id {parts[0]!r} exists in several projects: "
                    f"{', '.join(m.path for m in matches)}; give 'entity/project/id'"
                )
            record = matches[0] if matches else None
        else:
            raise ValueError(f"runyard.Api.run: {path!r} is not a run path")
        if record is None:
            raise LookupError(f"no run {path!r} in {self.store_url}")
        return ApiRun(self.store, record)

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


class ApiRun:
    """A stored run (read-only view)."""

    def __init__(self, store: Store, record: RunRecord) -> None:
        self._store = store
        self.record = record

    id = property(lambda self: self.record.run_id)
    name = property(lambda self: self.record.name)
    entity = property(lambda self: self.record.entity)
    project = property(lambda self: self.record.project)
    state = property(lambda self: self.record.state)
    config = property(lambda self: self.record.config)
    summary = property(lambda self: self.record.summary)
    group = property(lambda self: self.record.group)
    job_type = property(lambda self: self.record.job_type)
    tags = property(lambda self: self.record.tags)
    notes = property(lambda self: self.record.notes)
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
        other files (audio, video, html) → their bytes."""
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
