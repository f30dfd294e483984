"""Editing and deleting runs in SQLStore (``Store.update_run``/``delete_run``/
``runs_by_id_prefix``).

Deleting a run removes its rows from every table that holds them, then the content of its
files that nothing else holds. Content is shared: the blob store is content-addressed, so the
same bytes may be another run's file, an artifact's file, or an upload in flight. A blob is
deleted only if, inside the deleting transaction, no ``run_files`` row names it, no
``artifact_files`` row names it, it has no ``blobs`` row (artifact content: the artifact GC's
to collect, which checks run files too) and no unexpired ``blob_leases`` row holds it.

Race with a concurrent upload of the same content (``put_file``: the bytes are written first,
then the file's row): the deleter deletes the bytes *before it commits*, while it holds

* SQLite: the database's write lock (every writer begins ``IMMEDIATE``);
* PostgreSQL: ``SHARE`` locks on ``run_files``, ``artifact_files``, ``blobs`` and
  ``blob_leases`` (they conflict with any insert), taken before it checks.

and the uploader checks, inside its own transaction after its insert (which waits for those
locks), that the bytes are still there (``SQLStore._name_blob``), putting them again when they
went. Either the upload's row came first (the deleter sees it and keeps the blob) or the
deletion came first (the upload sees the bytes gone and writes them again).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard._json import dumps_doc
from runyard.store import schema as S
from runyard.store.base import (
    LIVE_RUN_STATES,
    RunActiveError,
    RunDeletion,
    RunRecord,
    check_run_update,
)

if TYPE_CHECKING:
    from runyard.store.sql import SQLStore

#: tables keyed by ``run_pk`` whose rows go with the run (``runs`` itself last)
_RUN_TABLES = (
    "run_metric_keys",
    "history_steps",
    "metrics",
    "metric_blocks",
    "metric_pages",
    "console_lines",
    "system_samples",
    "run_alerts",
    "run_files",
    "journals",
)
_COLUMNS = {"group": "group_name"}


def _chunks(items: Sequence[str], n: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])


def _run_pk(conn: Connection, entity: str, project: str, run_id: str) -> tuple[int, str] | None:
    row = conn.execute(
        sa.select(S.runs.c.pk, S.runs.c.state)
        .join(S.projects, S.projects.c.id == S.runs.c.project_id)
        .where(S.projects.c.entity == entity, S.projects.c.name == project)
        .where(S.runs.c.run_id == run_id)
    ).first()
    return None if row is None else (int(row.pk), str(row.state))


def update_run(
    store: SQLStore, entity: str, project: str, run_id: str, changes: dict[str, Any]
) -> RunRecord:
    checked = check_run_update(changes)
    values: dict[str, Any] = {}
    for field, value in checked.items():
        column = _COLUMNS.get(field, field)
        values[column] = dumps_doc(value) if field in ("tags", "config", "summary") else value
    with store.engine.begin() as conn:
        found = _run_pk(conn, entity, project, run_id)
        if found is None:
            raise LookupError(f"no run {entity}/{project}/{run_id}")
        if values:
            conn.execute(
                S.runs.update()
                .where(S.runs.c.pk == found[0])
                .values(**values, updated_at=time.time())
            )
    record = store.find_run(entity, project, run_id)
    assert record is not None
    return record


def delete_run(
    store: SQLStore,
    entity: str,
    project: str,
    run_id: str,
    *,
    force: bool = False,
    dry_run: bool = False,
) -> RunDeletion:
    path = f"{entity}/{project}/{run_id}"
    files = store.list_files(entity, project, run_id)
    legacy_dir = store.files_dir(entity, project, run_id)
    legacy_bytes = sum(f.size for f in files if f.sha256 is None)
    F = S.run_files
    with store.engine.begin() as conn:
        if not store.is_sqlite:
            conn.exec_driver_sql(
                "LOCK TABLE run_files, artifact_files, blobs, blob_leases IN SHARE MODE"
            )
        found = _run_pk(conn, entity, project, run_id)
        if found is None:
            raise LookupError(f"no run {path}")
        pk, state = found
        if state in ("pending", *LIVE_RUN_STATES) and not force:
            raise RunActiveError(
                f"run {path} is {state}: its process would go on writing to it. Stop it "
                f"first (`runyard runs stop {run_id}`) and wait for it to end, or delete it "
                f"anyway with force (--force)"
            )
        history_rows = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(S.history_steps)
                .where(S.history_steps.c.run_pk == pk)
            ).scalar()
            or 0
        )
        # each content once, however many of the run's names it has
        sizes = {
            str(k): int(n)
            for k, n in conn.execute(
                sa.select(F.c.blob_key, sa.func.max(F.c.size))
                .where(F.c.run_pk == pk)
                .group_by(F.c.blob_key)
            ).all()
        }
        report = RunDeletion(
            path=path,
            files=len(files),
            file_bytes=sum(f.size for f in files),
            history_rows=history_rows,
            dry_run=dry_run,
        )
        if dry_run:
            report.freed_bytes = legacy_bytes + sum(
                size for _key, size in _unshared(conn, sizes, exclude_pk=pk)
            )
            return report
        for table in _RUN_TABLES:
            t = S.metadata.tables[table]
            conn.execute(t.delete().where(t.c.run_pk == pk))
        u = S.artifact_usage
        conn.execute(
            u.delete().where(
                u.c.run_entity == entity, u.c.run_project == project, u.c.run_id == run_id
            )
        )
        conn.execute(S.runs.delete().where(S.runs.c.pk == pk))
        freed = 0
        blobs = store.blobs
        for key, size in _unshared(conn, sizes, exclude_pk=None):
            if blobs.delete(key):  # before the commit: see the module docstring
                freed += size
        report.freed_bytes = freed + legacy_bytes
    if legacy_dir.is_dir():
        shutil.rmtree(legacy_dir, ignore_errors=True)
    with store._cache_lock:
        store._run_keys.pop(pk, None)
    return report


def _unshared(
    conn: Connection, sizes: dict[str, int], *, exclude_pk: int | None
) -> list[tuple[str, int]]:
    """``(key, size)`` of the blobs among ``sizes`` (this run's content: key -> size) that
    nothing else holds (see the module docstring); ``exclude_pk``: a run whose own rows do
    not count (a dry run's: they are still there)."""
    keys = sorted(sizes)
    now = time.time()
    F, AF, B, L = S.run_files, S.artifact_files, S.blobs, S.blob_leases
    held: set[str] = set()
    for part in _chunks(keys):
        others = sa.select(F.c.blob_key).where(F.c.blob_key.in_(part))
        if exclude_pk is not None:
            others = others.where(F.c.run_pk != exclude_pk)
        held.update(conn.execute(others).scalars())
        held.update(conn.execute(sa.select(AF.c.blob_key).where(AF.c.blob_key.in_(part))).scalars())
        held.update(conn.execute(sa.select(B.c.key).where(B.c.key.in_(part))).scalars())
        held.update(
            conn.execute(
                sa.select(L.c.key).where(L.c.key.in_(part), L.c.expires_at > now)
            ).scalars()
        )
    return [(k, sizes[k]) for k in keys if k not in held]


def runs_by_id_prefix(
    store: SQLStore,
    prefix: str,
    entity: str | None,
    project: str | None,
    limit: int,
    entities: Sequence[str] | None,
) -> list[RunRecord]:
    if not prefix or (entities is not None and not entities):
        return []
    R, P = S.runs, S.projects
    stmt = (
        store._run_select()
        .where(sa.func.substr(R.c.run_id, 1, len(prefix)) == prefix)
        .order_by(R.c.created_at.desc(), R.c.pk.desc())
        .limit(max(1, limit))
    )
    if entity is not None:
        stmt = stmt.where(P.c.entity == entity)
    if project is not None:
        stmt = stmt.where(P.c.name == project)
    if entities is not None:
        stmt = stmt.where(P.c.entity.in_(list(entities)))
    with store._read() as conn:
        rows = conn.execute(stmt).all()
    from runyard.store.sql import _to_record

    return [_to_record(r._mapping) for r in rows]
