"""SQLStore: the store over SQLAlchemy 2, for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import fcntl
import logging
import math
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from runyard._json import dumps_doc, loads_doc
from runyard.blobs import (
    BlobError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    open_blob_store,
)
from runyard.store import schema as S
from runyard.store import sql_query
from runyard.store.base import (
    LIVE_RUN_STATES,
    PREEMPTED_ENDINGS,
    BatchRejectedError,
    FileData,
    FileRecord,
    FileTooLargeError,
    JournalBatch,
    RunConflictError,
    RunDeletion,
    RunQuery,
    RunRecord,
    Series,
    Store,
    StoreDamagedError,
    StoreError,
    StoreUnavailableError,
    WorkspaceRecord,
)
from runyard.store.codec import decode_metric, encode_metric
from runyard.store.downsample import (
    _keep_ends,
    _Piece,
    _point,
    _reduce_buckets,
    _value,
    bucket_count,
    bucket_grid,
    downsample_min_max,
)
from runyard.store.pages import refresh_pages
from runyard.store.sql_series import SeriesMethods
from runyard.store.sql_sweeps import SweepMethods
from runyard.store.sql_system import SystemMethods
from runyard.store.sql_values import ValuesMethods

#: The Alembic head this code expects; tests check it matches the migrations folder.
SCHEMA_REVISION = "0010"

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x52554E59  # "RUNY"
#: Part of the name of a file being written (``put_file``); never a stored file's name.
_TMP_MARK = ".runyard-tmp."


#: Bulk-inserted history tables: column order of the row tuples, and PostgreSQL's binary COPY
#: types of those columns (schema.py's Integer, BigInteger, Float, SmallInteger, Text).
_BULK: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "metrics": (
        ("key_id", "run_pk", "step", "value", "kind", "text"),
        ("int4", "int4", "int8", "float8", "int2", "text"),
    ),
    "history_steps": (
        ("run_pk", "step", "timestamp", "runtime"),
        ("int4", "int8", "float8", "float8"),
    ),
}


# metric_blocks upsert: a block already stored (its steps continued in a later batch) keeps the
# lower minimum and the higher maximum, the earlier step on ties.
_NEW_MIN = (
    "excluded.min_value IS NOT NULL AND (b.min_value IS NULL OR excluded.min_value < b.min_value "
    "OR (excluded.min_value = b.min_value AND excluded.min_step < b.min_step))"
)
_NEW_MAX = (
    "excluded.max_value IS NOT NULL AND (b.max_value IS NULL OR excluded.max_value > b.max_value "
    "OR (excluded.max_value = b.max_value AND excluded.max_step < b.max_step))"
)
_UPSERT_BLOCKS = (
    "INSERT INTO metric_blocks AS b (key_id, run_pk, block, n, first_step, last_step, "
    "min_value, min_step, max_value, max_step) {rows} "
    "ON CONFLICT (key_id, run_pk, block) DO UPDATE SET n = b.n + excluded.n, "
    "first_step = CASE WHEN excluded.first_step < b.first_step "
    "THEN excluded.first_step ELSE b.first_step END, "
    "last_step = CASE WHEN excluded.last_step > b.last_step "
    "THEN excluded.last_step ELSE b.last_step END, "
    f"min_value = CASE WHEN {_NEW_MIN} THEN excluded.min_value ELSE b.min_value END, "
    f"min_step = CASE WHEN {_NEW_MIN} THEN excluded.min_step ELSE b.min_step END, "
    f"max_value = CASE WHEN {_NEW_MAX} THEN excluded.max_value ELSE b.max_value END, "
    f"max_step = CASE WHEN {_NEW_MAX} THEN excluded.max_step ELSE b.max_step END"
)
_ROW_SQLITE = "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_ROW_PG = "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
_UNNEST_PG = (
    "SELECT * FROM unnest(%s::int4[], %s::int4[], %s::int8[], %s::int4[], %s::int8[], "
    "%s::int8[], %s::float8[], %s::int8[], %s::float8[], %s::int8[])"
)


def normalize_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` as psycopg 3 URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_files_root(url: str) -> Path:
    """Run files live beside an SQLite database (``<root>/files``, where ``run.save`` has
    always put them); for PostgreSQL in ``RUNYARD_FILES_ROOT`` or ``~/.runyard/files``."""
    if url.startswith("sqlite"):
        db_path = sa.engine.make_url(url).database
        if db_path and db_path != ":memory:":
            return Path(db_path).resolve().parent / "files"
    return Path(os.environ.get("RUNYARD_FILES_ROOT") or Path.home() / ".runyard" / "files")


__all__ = ["SQLStore", "bucket_count", "bucket_grid", "downsample_min_max", "normalize_url"]


class SQLStore(SeriesMethods, SweepMethods, SystemMethods, ValuesMethods, Store):
    """A store in one SQL database. Create with :func:`runyard.store.open_store`."""

    # About 0.3 ms of Python per apply (rows and blocks are built in Python): log() on the
    # training thread waits at most that long for the GIL. A transaction costs ~0.1 ms more.
    batch_records = 256

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        files_root: str | os.PathLike[str] | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        self.url = normalize_url(url)
        self._pid = os.getpid()
        self.engine = self._create_engine(self.url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.files_root = Path(files_root) if files_root else default_files_root(self.url)
        self._blobs = blobs
        self._key_ids: dict[str, int] = {}
        self._run_keys: dict[int, set[int]] = {}
        self._cache_lock = threading.Lock()
        if migrate:
            self.ensure_schema()

    # -- engine ---------------------------------------------------------------------------------

    @staticmethod
    def _create_engine(url: str) -> Engine:
        if url.startswith("sqlite"):
            db_path = sa.engine.make_url(url).database
            if db_path and db_path != ":memory:":
                Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, connect_args={"timeout": 120}, pool_pre_ping=False)

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                # Let SQLAlchemy's "begin" event issue BEGIN itself (see _on_begin).
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=120000")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
                dbapi_conn.create_function(
                    sql_query.REGEXP_FUNCTION, 2, sql_query.sqlite_regexp, deterministic=True
                )

            @event.listens_for(engine, "handle_error")
            def _on_error(context: Any) -> None:
                # A damaged file is one runyard message with the fix, not the driver's words.
                damaged = _damaged_sqlite(url, context.original_exception)
                if damaged is not None:
                    raise damaged

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                # Writers take the write lock up front: a deferred transaction that reads and
                # then writes fails with SQLITE_BUSY (no retry) when another process committed
                # in between. Readers stay deferred so they never block writers.
                if conn.get_execution_options().get("runyard_read"):
                    conn.exec_driver_sql("BEGIN")
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(runyard_read=True)
            with conn.begin():
                yield conn

    def after_fork(self) -> None:
        self.engine.dispose(close=False)
        self._pid = os.getpid()

    def close(self) -> None:
        self.engine.dispose()

    # -- schema ---------------------------------------------------------------------------------

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def ensure_schema(self) -> None:
        """Create or upgrade the schema with Alembic, once, whoever else is starting too."""
        if self.current_revision() == SCHEMA_REVISION:
            return
        with self._migration_lock():
            if self.current_revision() == SCHEMA_REVISION:
                return
            # Alembic logs each step at INFO (and its plugins as it imports them); under Hydra
            # (root logger at INFO) that would land in the user's job log. Migrations are
            # runyard's business: keep them quiet, from before the import.
            alembic_logger = logging.getLogger("alembic")
            previous_level = alembic_logger.level
            alembic_logger.setLevel(logging.WARNING)
            try:
                from alembic import command
                from alembic.config import Config as AlembicConfig

                cfg = AlembicConfig()
                cfg.set_main_option("script_location", str(_MIGRATIONS))
                with self.engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            finally:
                alembic_logger.setLevel(previous_level)
        revision = self.current_revision()
        if revision != SCHEMA_REVISION:
            raise StoreError(
                f"store {self.url} is at schema revision {revision!r}, this runyard expects "
                f"{SCHEMA_REVISION!r}; upgrade runyard to open it"
            )

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        if self.is_sqlite:
            db_path = sa.engine.make_url(self.url).database
            if not db_path or db_path == ":memory:":
                yield
                return
            with open(f"{db_path}.migrate-lock", "a") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_MIGRATION_LOCK}
                    )
                    conn.commit()

    # -- writes ---------------------------------------------------------------------------------

    def journal_progress(self, journal_id: str) -> int:
        with self._read() as conn:
            value = conn.execute(
                sa.select(S.journals.c.applied_seq).where(S.journals.c.id == journal_id)
            ).scalar()
        return int(value or 0)

    def apply(self, batch: JournalBatch) -> int:
        staged = _StagedCaches()
        try:
            applied = self._apply(batch, staged)
        except Exception as exc:
            raise _apply_error(exc) from exc
        # Only now that the transaction committed may the caches learn its ids: a rolled-back
        # batch must not leave ids behind that the database does not have.
        with self._cache_lock:
            self._key_ids.update(staged.key_ids)
            for run_pk, keys in staged.run_keys.items():
                self._run_keys.setdefault(run_pk, set()).update(keys)
        return applied

    def _apply(self, batch: JournalBatch, staged: _StagedCaches) -> int:
        now = time.time()
        with self.engine.begin() as conn:
            # FOR UPDATE (PostgreSQL; SQLite's BEGIN IMMEDIATE already serializes writers): an
            # overlapping apply of the same journal waits here, then sees the moved mark.
            found = conn.execute(
                sa.select(S.journals.c.run_pk, S.journals.c.applied_seq)
                .where(S.journals.c.id == batch.journal_id)
                .with_for_update()
            ).first()
            if found is None:
                run_pk = self._open_run(conn, batch.header, now)
                conn.execute(
                    S.journals.insert().values(
                        id=batch.journal_id, run_pk=run_pk, applied_seq=0, updated_at=now
                    )
                )
                applied = 0
            else:
                run_pk, applied = int(found[0]), int(found[1])
            new = [r for r in batch.records if r[0] > applied]
            if not new:
                if batch.heartbeat_at is not None:
                    conn.execute(
                        S.runs.update()
                        .where(S.runs.c.pk == run_pk, S.runs.c.state.in_(LIVE_RUN_STATES))
                        .values(heartbeat_at=batch.heartbeat_at)
                    )
                return applied
            self._apply_records(conn, run_pk, new, batch, now, staged)
            last = new[-1][0]
            conn.execute(
                S.journals.update()
                .where(S.journals.c.id == batch.journal_id)
                .values(applied_seq=last, updated_at=now)
            )
        return last

    def _open_run(self, conn: Connection, header: dict[str, Any], now: float) -> int:
        project_id = self._project_id(conn, header["entity"], header["project"], now)
        existing = conn.execute(
            sa.select(S.runs.c.pk, S.runs.c.state, S.runs.c.sweep_id).where(
                S.runs.c.project_id == project_id, S.runs.c.run_id == header["run_id"]
            )
        ).first()
        if existing is not None and header.get("attach"):
            # Another journal of the same writer session opened the run: add to it as it is.
            return int(existing[0])
        if (
            existing is not None
            and header.get("join_sweep")
            and existing[2] is not None
            and existing[2] == header.get("sweep_id")
        ):
            # A sweep agent created this run; its process now starts it (or, when recovering
            # the journal of a process that died, whatever the controller concluded meanwhile
            # is replaced by what the journal says).
            conn.execute(
                S.runs.update()
                .where(S.runs.c.pk == existing[0])
                .values(
                    # A late journal (recovery) must not reopen a run the controller settled.
                    state="running" if existing[1] == "pending" else existing[1],
                    name=header.get("name") or header["run_id"],
                    group_name=header.get("group"),
                    job_type=header.get("job_type"),
                    tags=dumps_doc(list(header.get("tags") or [])),
                    notes=header.get("notes"),
                    config=dumps_doc(header.get("config") or {}),
                    meta=dumps_doc(header.get("meta") or {}),
                    host=header.get("host"),
                    pid=header.get("pid"),
                    heartbeat_at=now,
                    updated_at=now,
                )
            )
            return int(existing[0])
        if existing is not None:
            if not header.get("resume"):
                raise RunConflictError(
                    f"run {header['entity']}/{header['project']}/{header['run_id']} already "
                    f"exists; pass resume='allow' to continue it or choose another id"
                )
            conn.execute(
                S.runs.update()
                .where(S.runs.c.pk == existing[0])
                .values(
                    state="running",
                    finished_at=None,
                    exit_code=None,
                    failure=None,
                    heartbeat_at=now,
                    updated_at=now,
                    host=header.get("host"),
                    pid=header.get("pid"),
                )
            )
            return int(existing[0])
        result = conn.execute(
            S.runs.insert().values(
                project_id=project_id,
                run_id=header["run_id"],
                name=header.get("name") or header["run_id"],
                group_name=header.get("group"),
                job_type=header.get("job_type"),
                tags=dumps_doc(list(header.get("tags") or [])),
                notes=header.get("notes"),
                state="running",
                config=dumps_doc(header.get("config") or {}),
                summary="{}",
                meta=dumps_doc(header.get("meta") or {}),
                metric_defs="[]",
                sweep_id=header.get("sweep_id"),
                host=header.get("host"),
                pid=header.get("pid"),
                created_at=header.get("start_time") or now,
                updated_at=now,
                heartbeat_at=now,
                runtime=0.0,
                last_step=-1,
            )
        )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def _project_id(self, conn: Connection, entity: str, name: str, now: float) -> int:
        query = sa.select(S.projects.c.id).where(
            S.projects.c.entity == entity, S.projects.c.name == name
        )
        found = conn.execute(query).scalar()
        if found is not None:
            return int(found)
        conn.execute(
            self._insert_ignore(S.projects).values(entity=entity, name=name, created_at=now)
        )
        return int(conn.execute(query).scalar_one())

    def _insert_ignore(self, table: sa.Table) -> Any:
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            return sqlite_insert(table).on_conflict_do_nothing()
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()

    def _key_ids_for(
        self, conn: Connection, names: set[str], staged: _StagedCaches
    ) -> dict[str, int]:
        with self._cache_lock:
            found = {n: self._key_ids[n] for n in names if n in self._key_ids}
        missing = sorted(n for n in names if n not in found)
        # In slices: SQLite takes at most 32,766 parameters per statement. PostgreSQL gets each
        # slice as one array parameter (its limit is 65,535 parameters; and one statement
        # instead of one per name).
        for start in range(0, len(missing), _NAMES_PER_STATEMENT):
            part = missing[start : start + _NAMES_PER_STATEMENT]
            if self.is_sqlite:
                conn.execute(self._insert_ignore(S.metric_keys), [{"name": n} for n in part])
                rows = conn.execute(
                    sa.select(S.metric_keys.c.name, S.metric_keys.c.id).where(
                        S.metric_keys.c.name.in_(part)
                    )
                ).all()
            else:
                conn.exec_driver_sql(
                    "INSERT INTO metric_keys (name) SELECT unnest(%s::text[]) "
                    "ON CONFLICT DO NOTHING",
                    (part,),
                )
                rows = conn.exec_driver_sql(
                    "SELECT name, id FROM metric_keys WHERE name = ANY(%s::text[])", (part,)
                ).all()
            for name, key_id in rows:
                found[name] = staged.key_ids[name] = int(key_id)
        return found

    def _apply_records(
        self,
        conn: Connection,
        run_pk: int,
        records: Sequence[tuple[int, str, Any]],
        batch: JournalBatch,
        now: float,
        staged: _StagedCaches,
    ) -> None:
        steps: list[tuple[int, int, float, float]] = []
        values: list[tuple[str, int, Any]] = []
        console: list[dict[str, Any]] = []
        stats: list[dict[str, Any]] = []
        alerts: list[dict[str, Any]] = []
        run_update: dict[str, Any] = {"updated_at": now}
        meta_update: dict[str, Any] = {}
        quarantined: list[dict[str, Any]] = []
        last_step: int | None = None
        last_runtime: float | None = None
        for _seq, kind, payload in records:
            if kind == "row":
                step = int(payload["_step"])
                runtime = float(payload.get("_runtime", 0.0))
                steps.append((run_pk, step, float(payload.get("_timestamp", now)), runtime))
                for key, value in payload.items():
                    if key[:1] != "_":
                        if not key:
                            raise StoreError(f"record {_seq}: a metric with an empty name")
                        values.append((key, step, value))
                last_step, last_runtime = step, runtime
            elif kind == "config":
                run_update["config"] = dumps_doc(payload)
            elif kind == "console":
                console.extend(
                    {"run_pk": run_pk, "stream": s, "timestamp": t, "text": text}
                    for s, t, text in payload
                )
            elif kind == "meta":
                meta_update.update(payload)
            elif kind == "finish":
                run_update.update(
                    finished_at=payload.get("time", now),
                    runtime=float(payload.get("runtime", 0.0)),
                )
                # A sweep that stopped the run early keeps its verdict (and reason) when the
                # run's own finish record (killed, crashed) arrives later.
                current = run_update.get("state") or self._state_of(conn, run_pk)
                if current != "stopped":
                    final = payload["state"]
                    if current == "preempting" and final in PREEMPTED_ENDINGS:
                        final = "preempted"  # it said it may be preempted, then died
                    run_update.update(
                        state=final,
                        exit_code=payload.get("exit_code"),
                        failure=payload.get("failure"),
                    )
            elif kind == "preempt":
                # run.mark_preempting(): a live run may be preempted (W&B's PreemptRecord)
                current = run_update.get("state") or self._state_of(conn, run_pk)
                if current == "running":
                    run_update["state"] = "preempting"
            elif kind == "tags":
                run_update["tags"] = dumps_doc(list(payload))
            elif kind == "attrs":
                # run.name/notes/tags/group/job_type set after init() (sdk/run.py)
                for field, column in _ATTR_COLUMNS.items():
                    if field in payload:
                        value = payload[field]
                        run_update[column] = dumps_doc(list(value)) if field == "tags" else value
            elif kind == "stats":
                stats.append(payload)
            elif kind == "alert":
                alerts.append(payload)
            elif kind in ("run", "summary", "define", "media"):
                # header handled by _open_run; summary/defs arrive as snapshots; media records
                # are the SDK's own (encoded files, already resolved into the rows)
                pass
            elif kind == "quarantined":
                quarantined.append({"seq": _seq, **payload})
            else:
                raise StoreError(f"unknown journal record kind {kind!r}")
        if steps:
            self._insert_rows(conn, "history_steps", steps)
            run_update["last_step"] = last_step
            if "runtime" not in run_update and last_runtime is not None:
                run_update["runtime"] = last_runtime
        if values:
            key_ids = self._key_ids_for(conn, {k for k, _, _ in values}, staged)
            metric_rows = [(key_ids[k], run_pk, step, *encode_metric(v)) for k, step, v in values]
            self._insert_rows(conn, "metrics", metric_rows)
            self._update_blocks(conn, run_pk, metric_rows)
            self._remember_run_keys(conn, run_pk, set(key_ids.values()), staged)
        if console:
            conn.execute(S.console_lines.insert(), console)
        self._apply_system_records(conn, run_pk, stats, alerts)
        if batch.summary is not None:
            run_update["summary"] = dumps_doc(batch.summary)
        if batch.metric_defs is not None:
            run_update["metric_defs"] = dumps_doc(batch.metric_defs)
        if batch.heartbeat_at is not None:
            run_update["heartbeat_at"] = batch.heartbeat_at
        if meta_update or quarantined:
            current = conn.execute(sa.select(S.runs.c.meta).where(S.runs.c.pk == run_pk)).scalar()
            meta = loads_doc(current) or {}
            meta.update(meta_update)
            if quarantined:
                # What the writer set aside (sdk/delivery.py): the run says so where users look.
                previous = meta.get("quarantined") or []
                meta["quarantined"] = (previous + quarantined)[-_QUARANTINE_KEPT:]
                meta["quarantined_count"] = int(meta.get("quarantined_count") or 0) + len(
                    quarantined
                )
            run_update["meta"] = dumps_doc(meta)
        conn.execute(S.runs.update().where(S.runs.c.pk == run_pk).values(**run_update))

    def _insert_rows(self, conn: Connection, table: str, rows: list[tuple[Any, ...]]) -> None:
        """Append history rows (``metrics`` or ``history_steps``, in :data:`_BULK` column order).

        SQLite: one prepared ``INSERT`` run for every row (``executemany`` stays in C).
        PostgreSQL: one binary ``COPY FROM STDIN`` in the batch's transaction, one round trip
        instead of one per row (``executemany``, even pipelined, is several times slower).
        Rows are never duplicated: only records above the journal's applied mark get here, and
        the mark moves in the same transaction.
        """
        columns, pg_types = _BULK[table]
        if self.is_sqlite:
            marks = ", ".join("?" * len(columns))
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )
            return
        driver_conn = conn.connection.driver_connection
        assert driver_conn is not None
        with (
            driver_conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
            copy.set_types(list(pg_types))
            write_row = copy.write_row
            for row in rows:
                write_row(row)

    def _update_blocks(self, conn: Connection, run_pk: int, rows: list[tuple[Any, ...]]) -> None:
        """Fold new metrics rows into their ``metric_blocks`` rows (see schema.py).

        One pass over the rows grouped by key (a stable sort keeps each key's steps in batch
        order, so a block's rows are consecutive); should a block come twice, the upsert merges.
        """
        params: list[tuple[Any, ...]] = []
        bits = S.BLOCK_BITS
        cur_key = cur_block = None
        n = first = last = 0
        mn = mx = mn_s = mx_s = None
        for key_id, _run_pk, step, value, kind, _text in sorted(rows, key=itemgetter(0)):
            if kind > S.KIND_INT:  # string or None: not part of a numeric series
                continue
            block = step >> bits
            if block != cur_block or key_id != cur_key:
                if cur_key is not None:
                    params.append((cur_key, run_pk, cur_block, n, first, last, mn, mn_s, mx, mx_s))
                cur_key, cur_block, n, first, last = key_id, block, 1, step, step
                if value is None:  # NaN
                    mn = mx = mn_s = mx_s = None
                else:
                    mn = mx = value
                    mn_s = mx_s = step
                continue
            n += 1
            if step > last:
                last = step
            elif step < first:
                first = step
            if value is None:
                continue
            if mn is None:
                mn = mx = value
                mn_s = mx_s = step
                continue
            if value < mn or (value == mn and step < mn_s):
                mn, mn_s = value, step
            if value > mx or (value == mx and step < mx_s):
                mx, mx_s = value, step
        if cur_key is None:
            return
        params.append((cur_key, run_pk, cur_block, n, first, last, mn, mn_s, mx, mx_s))
        if self.is_sqlite:
            conn.exec_driver_sql(_UPSERT_BLOCKS.format(rows=_ROW_SQLITE), params)
        elif len({(p[0], p[2]) for p in params}) < len(params):  # a block twice: unsorted steps
            conn.exec_driver_sql(_UPSERT_BLOCKS.format(rows=_ROW_PG), params)
        else:  # PostgreSQL: one statement for the whole batch
            columns = tuple(list(c) for c in zip(*params, strict=True))
            conn.exec_driver_sql(_UPSERT_BLOCKS.format(rows=_UNNEST_PG), columns)
        # ... and the pages those blocks are in (store/pages.py), from the blocks as merged
        touched: dict[int, set[int]] = {}
        for p in params:
            touched.setdefault(p[0], set()).add(p[2])
        refresh_pages(conn, self.is_sqlite, run_pk, touched)

    def _state_of(self, conn: Connection, run_pk: int) -> str:
        return str(conn.execute(sa.select(S.runs.c.state).where(S.runs.c.pk == run_pk)).scalar())

    def _remember_run_keys(
        self, conn: Connection, run_pk: int, key_ids: set[int], staged: _StagedCaches
    ) -> None:
        with self._cache_lock:
            fresh = sorted(key_ids - self._run_keys.get(run_pk, set()))
        for start in range(0, len(fresh), _NAMES_PER_STATEMENT):
            part = fresh[start : start + _NAMES_PER_STATEMENT]
            if self.is_sqlite:
                conn.execute(
                    self._insert_ignore(S.run_metric_keys),
                    [{"run_pk": run_pk, "key_id": k} for k in part],
                )
            else:
                conn.exec_driver_sql(
                    "INSERT INTO run_metric_keys (run_pk, key_id) "
                    "SELECT %s, unnest(%s::int4[]) ON CONFLICT DO NOTHING",
                    (run_pk, part),
                )
        if fresh:
            staged.run_keys.setdefault(run_pk, set()).update(fresh)

    def mark_run_state(
        self, run_pk: int, state: str, failure: str | None = None, only_if_running: bool = True
    ) -> bool:
        now = time.time()
        with self.engine.begin() as conn:
            stmt = S.runs.update().where(S.runs.c.pk == run_pk)
            if only_if_running:
                stmt = stmt.where(S.runs.c.state.in_(LIVE_RUN_STATES))
            final: Any = state
            if state in PREEMPTED_ENDINGS:  # a preempting run that dies was preempted
                final = sa.case((S.runs.c.state == "preempting", "preempted"), else_=state)
            result = conn.execute(
                stmt.values(state=final, failure=failure, finished_at=now, updated_at=now)
            )
            return bool(result.rowcount)

    # -- reads ----------------------------------------------------------------------------------

    def _run_select(self) -> sa.Select[Any]:
        return sa.select(S.runs, S.projects.c.entity, S.projects.c.name.label("project")).join(
            S.projects, S.projects.c.id == S.runs.c.project_id
        )

    def find_run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(
                self._run_select().where(
                    S.projects.c.entity == entity,
                    S.projects.c.name == project,
                    S.runs.c.run_id == run_id,
                )
            ).first()
        return _to_record(row._mapping) if row is not None else None

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        stmt = self._run_select()
        if query.entity is not None:
            stmt = stmt.where(S.projects.c.entity == query.entity)
        if query.project is not None:
            stmt = stmt.where(S.projects.c.name == query.project)
        if query.states:
            stmt = stmt.where(S.runs.c.state.in_(list(query.states)))
        if query.sweep_id is not None:
            stmt = stmt.where(S.runs.c.sweep_id == query.sweep_id)
        if query.run_ids is not None:
            stmt = stmt.where(S.runs.c.run_id.in_(list(query.run_ids)))
        order = S.runs.c.created_at.desc() if query.order_desc else S.runs.c.created_at.asc()
        stmt = stmt.order_by(order, S.runs.c.pk.desc() if query.order_desc else S.runs.c.pk)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        return [_to_record(r._mapping) for r in rows]

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
        """See :meth:`Store.query_runs`: filtered, sorted, counted and paged in one statement
        (store/sql_query.py); only the page's runs are read whole. Falls back to the Python
        path for what does not translate (``sql_query.Untranslatable``)."""
        from runyard.query import check_order, compile_filter

        compile_filter(filter)  # the errors (QueryError) are the Python path's
        check_order(sort)
        if entities is not None and not entities:
            return [], 0
        try:
            plan = sql_query.build(not self.is_sqlite, filter, sort)
        except sql_query.Untranslatable:
            return super().query_runs(
                entity, project, filter, sort, limit, offset, entities=entities
            )
        params = dict(plan.params)
        base: list[str] = []
        for column, value in (("entity", entity), ("name", project)):
            if value is not None:
                base.append(f"projects.{column} = :b_{column}")
                params[f"b_{column}"] = value
        if entities is not None:
            names = [f":b_e{i}" for i in range(len(entities))]
            base.append(f"projects.entity IN ({', '.join(names)})")
            params.update({f"b_e{i}": e for i, e in enumerate(entities)})
        source = "runs JOIN projects ON projects.id = runs.project_id"
        extra = "".join(f", {c}" for c in plan.columns)
        inner = (
            "SELECT runs.pk, runs.created_at, runs.state, runs.name, runs.run_id, "
            "runs.group_name, runs.job_type, runs.notes, runs.sweep_id, runs.host, "
            "runs.runtime, runs.last_step, projects.entity, projects.name AS project"
            f"{extra} FROM {source} WHERE {' AND '.join(base) or 'TRUE'}"
        )
        # The inner query reads each JSON field once per run (each JSON function call parses or
        # detoasts a whole document): SQLite materializes it, PostgreSQL keeps it apart
        # (OFFSET 0) so that the planner does not inline its columns into every use.
        if self.is_sqlite and plan.columns:
            stmt = f"WITH q AS MATERIALIZED ({inner}) SELECT q.pk, count(*) OVER () FROM q"
        elif self.is_sqlite:
            stmt = f"SELECT q.pk, count(*) OVER () FROM ({inner}) AS q"
        else:
            stmt = f"SELECT q.pk, count(*) OVER () FROM ({inner} OFFSET 0) AS q"
        stmt += f" WHERE {plan.where}"
        body = stmt
        stmt += " ORDER BY " + ", ".join(plan.order)
        if limit is not None:
            stmt += " LIMIT :b_limit"
            params["b_limit"] = limit
        elif self.is_sqlite and offset:
            stmt += " LIMIT -1"
        if offset:
            stmt += " OFFSET :b_offset"
            params["b_offset"] = offset
        with self._read() as conn:
            found = conn.execute(sa.text(stmt), params).all()
            if found:
                total = int(found[0][1])
            else:  # past the end (or limit 0): count on its own
                count = f"SELECT count(*) FROM ({body}) AS c"
                total = int(conn.execute(sa.text(count), params).scalar() or 0)
            pks = [int(r[0]) for r in found]
            rows = conn.execute(self._run_select().where(S.runs.c.pk.in_(pks))).all() if pks else []
        by_pk = {int(r._mapping["pk"]): r for r in rows}
        return [_to_record(by_pk[pk]._mapping) for pk in pks if pk in by_pk], total

    def run_pks(self, entity: str, project: str, run_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        ids = list(dict.fromkeys(run_ids))
        with self._read() as conn:
            for i in range(0, len(ids), 900):
                stmt = (
                    sa.select(S.runs.c.run_id, S.runs.c.pk)
                    .join(S.projects, S.projects.c.id == S.runs.c.project_id)
                    .where(
                        S.projects.c.entity == entity,
                        S.projects.c.name == project,
                        S.runs.c.run_id.in_(ids[i : i + 900]),
                    )
                )
                out.update({str(r): int(pk) for r, pk in conn.execute(stmt).all()})
        return out

    def project_metric_names(self, entity: str, project: str) -> list[str]:
        stmt = (
            sa.select(S.metric_keys.c.name)
            .distinct()
            .select_from(S.run_metric_keys)
            .join(S.metric_keys, S.metric_keys.c.id == S.run_metric_keys.c.key_id)
            .join(S.runs, S.runs.c.pk == S.run_metric_keys.c.run_pk)
            .join(S.projects, S.projects.c.id == S.runs.c.project_id)
            .where(S.projects.c.entity == entity, S.projects.c.name == project)
            .order_by(S.metric_keys.c.name)
        )
        with self._read() as conn:
            return [str(n) for n in conn.execute(stmt).scalars()]

    # -- dashboard workspaces ---------------------------------------------------------------------

    @staticmethod
    def _workspace_key(scope: str, user: str | None) -> str:
        if scope not in S.WORKSPACE_SCOPES:
            raise StoreError(f"unknown workspace scope {scope!r}: use 'project' or 'user'")
        if scope == "user" and user is None:
            raise StoreError("a user's workspace needs a user (sign in with an API key)")
        return "" if scope == "project" else str(user)

    def _project_pk(self, conn: Connection, entity: str, project: str) -> int | None:
        found = conn.execute(
            sa.select(S.projects.c.id).where(
                S.projects.c.entity == entity, S.projects.c.name == project
            )
        ).scalar()
        return None if found is None else int(found)

    def get_workspace(self, entity: str, project: str, user: str | None) -> WorkspaceRecord | None:
        t = S.workspaces
        with self._read() as conn:
            pid = self._project_pk(conn, entity, project)
            if pid is None:
                return None
            rows = conn.execute(
                sa.select(t.c.scope, t.c.user_name, t.c.doc, t.c.updated_at).where(
                    t.c.project_id == pid
                )
            ).all()
        found = {(r[0], r[1]): r for r in rows}
        row = found.get(("user", user)) if user is not None else None
        row = row or found.get(("project", ""))
        if row is None:
            return None
        doc = loads_doc(row[2])
        return WorkspaceRecord(entity, project, row[0], row[1], doc, float(row[3]))

    def put_workspace(
        self, entity: str, project: str, scope: str, user: str | None, doc: dict[str, Any]
    ) -> WorkspaceRecord:
        name = self._workspace_key(scope, user)
        t = S.workspaces
        now = time.time()
        with self.engine.begin() as conn:
            pid = self._project_pk(conn, entity, project)
            if pid is None:
                raise StoreError(
                    f"no project {entity}/{project}: a workspace is saved for a project "
                    f"that has runs"
                )
            key = (t.c.project_id == pid) & (t.c.scope == scope) & (t.c.user_name == name)
            conn.execute(t.delete().where(key))
            conn.execute(
                t.insert().values(
                    project_id=pid, scope=scope, user_name=name, doc=dumps_doc(doc), updated_at=now
                )
            )
        return WorkspaceRecord(entity, project, scope, name, doc, now)

    def delete_workspace(self, entity: str, project: str, scope: str, user: str | None) -> bool:
        name = self._workspace_key(scope, user)
        t = S.workspaces
        with self.engine.begin() as conn:
            pid = self._project_pk(conn, entity, project)
            if pid is None:
                return False
            key = (t.c.project_id == pid) & (t.c.scope == scope) & (t.c.user_name == name)
            return bool(conn.execute(t.delete().where(key)).rowcount)

    def list_projects(self) -> list[tuple[str, str, int]]:
        stmt = (
            sa.select(S.projects.c.entity, S.projects.c.name, sa.func.count(S.runs.c.pk))
            .select_from(S.projects)
            .outerjoin(S.runs, S.runs.c.project_id == S.projects.c.id)
            .group_by(S.projects.c.entity, S.projects.c.name)
            .order_by(S.projects.c.entity, S.projects.c.name)
        )
        with self._read() as conn:
            return [(e, n, int(c)) for e, n, c in conn.execute(stmt).all()]

    def metric_names(self, run_pk: int) -> list[str]:
        stmt = (
            sa.select(S.metric_keys.c.name)
            .join(S.run_metric_keys, S.run_metric_keys.c.key_id == S.metric_keys.c.id)
            .where(S.run_metric_keys.c.run_pk == run_pk)
            .order_by(S.metric_keys.c.name)
        )
        with self._read() as conn:
            return list(conn.execute(stmt).scalars())

    def history(
        self,
        run_pk: int,
        keys: Sequence[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> list[dict[str, Any]]:
        with self._read() as conn:
            key_stmt = sa.select(S.metric_keys.c.id, S.metric_keys.c.name).join(
                S.run_metric_keys, S.run_metric_keys.c.key_id == S.metric_keys.c.id
            )
            key_stmt = key_stmt.where(S.run_metric_keys.c.run_pk == run_pk)
            if keys is not None:
                key_stmt = key_stmt.where(S.metric_keys.c.name.in_(list(keys)))
            names = {int(i): n for i, n in conn.execute(key_stmt).all()}
            rows: dict[int, dict[str, Any]] = {}
            if names:
                stmt = sa.select(
                    S.metrics.c.key_id,
                    S.metrics.c.step,
                    S.metrics.c.value,
                    S.metrics.c.kind,
                    S.metrics.c.text,
                ).where(S.metrics.c.run_pk == run_pk, S.metrics.c.key_id.in_(list(names)))
                if min_step is not None:
                    stmt = stmt.where(S.metrics.c.step >= min_step)
                if max_step is not None:
                    stmt = stmt.where(S.metrics.c.step <= max_step)
                for key_id, step, value, kind, text in conn.execute(stmt):
                    row = rows.get(step)
                    if row is None:
                        row = rows[step] = {}
                    row[names[key_id]] = decode_metric(value, kind, text)
            step_stmt = sa.select(
                S.history_steps.c.step, S.history_steps.c.runtime, S.history_steps.c.timestamp
            ).where(S.history_steps.c.run_pk == run_pk)
            if min_step is not None:
                step_stmt = step_stmt.where(S.history_steps.c.step >= min_step)
            if max_step is not None:
                step_stmt = step_stmt.where(S.history_steps.c.step <= max_step)
            out: list[dict[str, Any]] = []
            for step, runtime, timestamp in conn.execute(
                step_stmt.order_by(S.history_steps.c.step)
            ):
                values = rows.get(step)
                if keys is not None and not values:
                    continue
                row = {"_step": int(step), "_runtime": runtime, "_timestamp": timestamp}
                if values:
                    row.update(values)
                out.append(row)
        return out

    def series(
        self,
        run_pk: int,
        key: str,
        samples: int = 2000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Series:
        """See :meth:`Store.series`. Answers from the series' ``metric_blocks`` rows (one per
        64 steps), aggregated per bucket in SQL, and reads points only in the (at most two)
        blocks cut by the step range; or reads every point when there are at most ``samples``
        or when the buckets are narrower than a block (fewer than ``32 * samples`` steps in
        the range, which bounds the points read)."""
        with self._read() as conn:
            key_id = self._key_id(conn, key)
            if key_id is None:
                return Series(key, [], [], 0, False)
            if not self.is_sqlite:
                # Small queries whose estimated cost (the per-bucket subqueries) can pass
                # jit_above_cost: compiling them would take far longer than running them.
                conn.exec_driver_sql("SET LOCAL jit = off")
            return self._series(conn, key, key_id, run_pk, samples, min_step, max_step)

    @staticmethod
    def _key_id(conn: Connection, key: str) -> int | None:
        found = conn.execute(
            sa.select(S.metric_keys.c.id).where(S.metric_keys.c.name == key)
        ).scalar()
        return None if found is None else int(found)

    def _series(
        self,
        conn: Connection,
        key: str,
        k: int,
        run_pk: int,
        samples: int,
        min_step: int | None,
        max_step: int | None,
    ) -> Series:
        """:meth:`series` on an open read transaction, for the metric with id ``k``."""
        samples = max(2, samples)
        head, inner, tail = self._series_parts(conn, k, run_pk, min_step, max_step)
        # (points, first step, last step) of the three parts
        parts: list[tuple[int, int, int]] = [(p[0], p[1], p[2]) for p in head]
        parts += [inner[:3]] if inner else []
        parts += [(p[0], p[1], p[2]) for p in tail]
        total = sum(p[0] for p in parts)
        if total == 0:
            return Series(key, [], [], 0, False)
        first, last = parts[0][1], parts[-1][2]
        if total <= samples:
            points = self._series_points(conn, k, run_pk, first, last)
            return Series(key, [p[1] for p in points], [_value(p) for p in points], total, False)
        base, width = bucket_grid(first, last, bucket_count(samples))
        if width % S.BLOCK_STEPS:  # buckets narrower than a block: read the points
            pieces = self._series_points(conn, k, run_pk, first, last)
            ends = (first, _value(pieces[0])), (last, _value(pieces[-1]))
        else:
            buckets = self._block_buckets(conn, k, run_pk, inner, base, width) if inner else []
            pieces = [*head, *buckets, *tail]
            ends = self._end_points(conn, k, run_pk, first, last)
        steps, values = _reduce_buckets(pieces, base, width)
        _keep_ends(steps, values, *ends)
        return Series(key, steps, values, total, True)

    def _end_points(
        self, conn: Connection, key_id: int, run_pk: int, first: int, last: int
    ) -> tuple[tuple[int, float], tuple[int, float]]:
        """The values at steps ``first`` and ``last`` (numeric points: a block's first and
        last step always are one)."""
        mark = "?" if self.is_sqlite else "%s"
        rows = conn.exec_driver_sql(
            f"SELECT step, value FROM metrics WHERE key_id = {mark} AND run_pk = {mark} "
            f"AND step IN ({mark}, {mark})",
            (key_id, run_pk, first, last),
        ).fetchall()
        found = {int(step): math.nan if value is None else float(value) for step, value in rows}
        return (first, found.get(first, math.nan)), (last, found.get(last, math.nan))

    def _series_parts(
        self, conn: Connection, key_id: int, run_pk: int, lo: int | None, hi: int | None
    ) -> tuple[list[_Piece], tuple[int, int, int, int, int] | None, list[_Piece]]:
        """The series within ``[lo, hi]`` as: the points of a first block the range cuts; the
        whole blocks in between, ``(points, first step, last step, first block, last block)``;
        the points of a last block the range cuts."""
        where = "key_id = :k AND run_pk = :r"
        params: dict[str, int] = {"k": key_id, "r": run_pk}
        if lo is not None:
            where += " AND block >= :blo"
            params["blo"] = lo >> S.BLOCK_BITS
        if hi is not None:
            where += " AND block <= :bhi"
            params["bhi"] = hi >> S.BLOCK_BITS
        edge = "SELECT block, first_step, last_step FROM metric_blocks WHERE {} ORDER BY block {}"
        first = conn.execute(sa.text(edge.format(where, "LIMIT 1")), params).first()
        if first is None:
            return [], None, []
        last = conn.execute(sa.text(edge.format(where, "DESC LIMIT 1")), params).first()
        assert last is not None
        b_lo, b_hi = int(first[0]), int(last[0])
        head: list[_Piece] = []
        tail: list[_Piece] = []
        if lo is not None and first[1] < lo:  # the range starts inside the first block
            head_hi = int(first[2]) if hi is None else min(hi, int(first[2]))
            head = self._series_points(conn, key_id, run_pk, lo, head_hi)
            b_lo += 1
        if hi is not None and last[2] > hi and b_hi >= b_lo:  # ... and ends inside the last
            tail = self._series_points(conn, key_id, run_pk, int(last[1]), hi)
            b_hi -= 1
        inner = None
        if b_lo <= b_hi:
            row = conn.execute(
                sa.text(
                    "SELECT sum(n), min(first_step), max(last_step) FROM metric_blocks "
                    "WHERE key_id = :k AND run_pk = :r AND block >= :blo AND block <= :bhi"
                ),
                {"k": key_id, "r": run_pk, "blo": b_lo, "bhi": b_hi},
            ).first()
            if row is not None and row[0]:
                inner = (int(row[0]), int(row[1]), int(row[2]), b_lo, b_hi)
        return head, inner, tail

    @staticmethod
    def _block_buckets(
        conn: Connection,
        key_id: int,
        run_pk: int,
        inner: tuple[int, int, int, int, int],
        base: int,
        width: int,
    ) -> list[_Piece]:
        """Per bucket of whole blocks (``width`` a multiple of the block size), one piece:
        min and max over the blocks, at the first block's step where each occurs."""
        sql = sa.text(
            "SELECT g.n, g.f, g.l, g.mn, "
            "(SELECT min(b.min_step) FROM metric_blocks b WHERE b.key_id = :k AND b.run_pk = :r "
            f"AND b.block >= (g.f >> {S.BLOCK_BITS}) AND b.block <= (g.l >> {S.BLOCK_BITS}) "
            "AND b.min_value = g.mn), "
            "g.mx, "
            "(SELECT min(b.max_step) FROM metric_blocks b WHERE b.key_id = :k AND b.run_pk = :r "
            f"AND b.block >= (g.f >> {S.BLOCK_BITS}) AND b.block <= (g.l >> {S.BLOCK_BITS}) "
            "AND b.max_value = g.mx) "
            "FROM (SELECT (first_step - CAST(:base AS BIGINT)) / CAST(:width AS BIGINT) "
            "AS bucket, sum(n) AS n, "
            "min(first_step) AS f, max(last_step) AS l, min(min_value) AS mn, "
            "max(max_value) AS mx FROM metric_blocks "
            "WHERE key_id = :k AND run_pk = :r AND block >= :blo AND block <= :bhi "
            "GROUP BY bucket) g ORDER BY g.f"
        )
        params = {"k": key_id, "r": run_pk, "blo": inner[3], "bhi": inner[4]}
        params.update(base=base, width=width)
        return [
            (int(n), int(f), int(la), mn, mn_s, mx, mx_s)
            for n, f, la, mn, mn_s, mx, mx_s in conn.execute(sql, params).fetchall()
        ]

    def _series_points(
        self, conn: Connection, key_id: int, run_pk: int, lo: int, hi: int
    ) -> list[_Piece]:
        """Numeric points with steps in ``[lo, hi]``, in step order, as pieces (``value`` None
        for NaN)."""
        mark = "?" if self.is_sqlite else "%s"
        rows = conn.exec_driver_sql(
            "SELECT step, value FROM metrics WHERE key_id = "
            f"{mark} AND run_pk = {mark} AND step >= {mark} AND step <= {mark} "
            f"AND kind IN ({S.KIND_FLOAT}, {S.KIND_NAN}, {S.KIND_BOOL}, {S.KIND_INT}) "
            "ORDER BY step",
            (key_id, run_pk, lo, hi),
        ).fetchall()
        return [_point(int(step), value) for step, value in rows]

    # -- files ----------------------------------------------------------------------------------

    @property
    def blobs(self) -> BlobStore:
        """The content-addressed blob store of run files and media: ``RUNYARD_BLOBS`` (a path
        or a registered URL scheme), else ``blobs/`` beside the files folder (for SQLite,
        ``<store dir>/blobs``: where the SDK's encoder writes, so media are never copied)."""
        if self._blobs is None:
            where = os.environ.get("RUNYARD_BLOBS") or self.files_root.parent / "blobs"
            self._blobs = open_blob_store(where)
        return self._blobs

    def files_dir(self, entity: str, project: str, run_id: str) -> Path:
        for part in (entity, project, run_id):
            if not part or "/" in part or part in (".", "..") or "\0" in part or len(part) > 255:
                raise StoreError(f"invalid run path component {part!r}")
        return self.files_root / entity / project / run_id

    def _file_path(self, entity: str, project: str, run_id: str, name: str) -> Path:
        base = self.files_dir(entity, project, run_id)
        parts = name.split("/")
        if (
            not name
            or len(name) > 1024
            or name.startswith("/")
            or "\0" in name
            or any(p in ("", ".", "..") or len(p.encode()) > 200 for p in parts)
            or _TMP_MARK in name
        ):
            raise StoreError(
                f"invalid file name {name!r}: use a relative path without '.', '..' or empty "
                f"parts (at most 1024 characters, 200 bytes per part)"
            )
        path = base.joinpath(*parts)
        # A symlink planted under the run's folder must not lead out of it.
        root = self.files_root.resolve()
        if not path.resolve().is_relative_to(root):
            raise StoreError(f"invalid file name {name!r}: it leads out of the run's folder")
        return path

    def _check_file_name(self, name: str) -> None:
        parts = name.split("/")
        if (
            not name
            or len(name) > 1024
            or name.startswith("/")
            or "\0" in name
            or any(p in ("", ".", "..") or len(p.encode()) > 200 for p in parts)
            or _TMP_MARK in name
        ):
            raise StoreError(
                f"invalid file name {name!r}: use a relative path without '.', '..' or empty "
                f"parts (at most 1024 characters, 200 bytes per part)"
            )

    def _run_pk(self, entity: str, project: str, run_id: str) -> int:
        run = self.find_run(entity, project, run_id)
        if run is None:
            raise StoreError(f"no run {entity}/{project}/{run_id}: its files cannot be stored")
        return run.pk

    def _put_blob(self, data: FileData, expected_key: str | None, max_size: int | None) -> BlobInfo:
        blobs = self.blobs
        try:
            if isinstance(data, Path):
                if expected_key is not None:
                    own = blobs.local_path(expected_key)
                    if own is not None and own.exists() and own.samefile(data):
                        return BlobInfo(expected_key, own.stat().st_size)
                return blobs.put_file(data, expected_key=expected_key, max_size=max_size)
            if isinstance(data, bytes | bytearray | memoryview):
                return blobs.put_bytes(data, expected_key=expected_key, max_size=max_size)
            return blobs.put_stream(data, expected_key=expected_key, max_size=max_size)
        except BlobTooLargeError as exc:
            raise FileTooLargeError(
                f"the file is larger than the limit of {exc.limit} bytes", exc.limit
            ) from None
        except BlobError as exc:
            raise StoreError(str(exc)) from None

    def _name_blob(self, run_pk: int, name: str, info: BlobInfo) -> FileRecord:
        now = time.time()
        row = {"run_pk": run_pk, "name": name, "blob_key": info.key, "size": info.size}
        if self.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        stmt = insert(S.run_files).values(**row, updated_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_pk", "name"],
            set_={"blob_key": info.key, "size": info.size, "updated_at": now},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
            # A run deletion may have removed the same content after it was put and before
            # this row (store/sql_manage.py): checked here, after the insert waited for the
            # deleter's locks, so one of the two always sees the other.
            if not self.blobs.exists(info.key):
                raise _ContentGone(info.key)
        return FileRecord(name, info.size, now, info.key.split(":", 1)[1])

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
        self._check_file_name(name)
        run_pk = self._run_pk(entity, project, run_id)
        info = self._put_blob(data, expected_key, max_size)
        try:
            return self._name_blob(run_pk, name, info)
        except _ContentGone:
            if not isinstance(data, bytes | bytearray | memoryview | Path):
                raise StoreUnavailableError(
                    f"the content of {name!r} was deleted with another run while it was "
                    f"stored; send it again"
                ) from None
            info = self._put_blob(data, expected_key, max_size)  # once more: it is rare
            return self._name_blob(run_pk, name, info)

    def link_file(
        self, entity: str, project: str, run_id: str, name: str, key: str
    ) -> FileRecord | None:
        self._check_file_name(name)
        try:
            info = self.blobs.stat(key)
        except BlobError as exc:
            raise StoreError(str(exc)) from None
        if info is None:
            return None
        F, R, P = S.run_files, S.runs, S.projects
        owned = (
            sa.select(F.c.run_pk)
            .select_from(F.join(R, R.c.pk == F.c.run_pk).join(P, P.c.id == R.c.project_id))
            .where(F.c.blob_key == key, P.c.entity == entity)
            .limit(1)
        )
        with self._read() as conn:
            if conn.execute(owned).first() is None:
                return None
        try:
            return self._name_blob(self._run_pk(entity, project, run_id), name, info)
        except _ContentGone:
            return None  # deleted meanwhile: the caller sends the content (put_file)

    def _file_row(self, entity: str, project: str, run_id: str, name: str) -> Any:
        F, R, P = S.run_files, S.runs, S.projects
        stmt = (
            sa.select(F.c.name, F.c.blob_key, F.c.size, F.c.updated_at)
            .select_from(F.join(R, R.c.pk == F.c.run_pk).join(P, P.c.id == R.c.project_id))
            .where(
                P.c.entity == entity, P.c.name == project, R.c.run_id == run_id, F.c.name == name
            )
        )
        with self._read() as conn:
            return conn.execute(stmt).first()

    def _legacy_file(self, entity: str, project: str, run_id: str, name: str) -> Path:
        path = self._file_path(entity, project, run_id, name)
        if not path.is_file():
            raise FileNotFoundError(f"run {entity}/{project}/{run_id} has no file {name!r}")
        return path

    def open_file(
        self, entity: str, project: str, run_id: str, name: str
    ) -> tuple[FileRecord, BinaryIO]:
        self._check_file_name(name)
        row = self._file_row(entity, project, run_id, name)
        if row is not None:
            record = FileRecord(
                row.name, int(row.size), float(row.updated_at), row.blob_key.split(":", 1)[1]
            )
            try:
                return record, self.blobs.open(row.blob_key)
            except BlobNotFoundError:
                raise FileNotFoundError(
                    f"the content of file {name!r} of run {entity}/{project}/{run_id} is "
                    f"missing from the blob store ({row.blob_key})"
                ) from None
        path = self._legacy_file(entity, project, run_id, name)
        stat = path.stat()
        return FileRecord(name, stat.st_size, stat.st_mtime), open(path, "rb")

    def local_file_path(self, entity: str, project: str, run_id: str, name: str) -> Path | None:
        self._check_file_name(name)
        row = self._file_row(entity, project, run_id, name)
        if row is not None:
            path = self.blobs.local_path(row.blob_key)
            if path is None and self.blobs.stat(row.blob_key) is None:
                raise FileNotFoundError(f"run {entity}/{project}/{run_id} has no file {name!r}")
            return path
        return self._legacy_file(entity, project, run_id, name)

    def list_files(self, entity: str, project: str, run_id: str) -> list[FileRecord]:
        out: dict[str, FileRecord] = {}
        base = self.files_dir(entity, project, run_id)
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file() and _TMP_MARK not in path.name:
                    stat = path.stat()
                    name = path.relative_to(base).as_posix()
                    out[name] = FileRecord(name, stat.st_size, stat.st_mtime)
        F, R, P = S.run_files, S.runs, S.projects
        stmt = (
            sa.select(F.c.name, F.c.blob_key, F.c.size, F.c.updated_at)
            .select_from(F.join(R, R.c.pk == F.c.run_pk).join(P, P.c.id == R.c.project_id))
            .where(P.c.entity == entity, P.c.name == project, R.c.run_id == run_id)
        )
        with self._read() as conn:
            for row in conn.execute(stmt):
                out[row.name] = FileRecord(
                    row.name, int(row.size), float(row.updated_at), row.blob_key.split(":", 1)[1]
                )
        return [out[n] for n in sorted(out)]

    # -- editing and deleting runs (store/sql_manage.py) -------------------------------------

    def update_run(self, entity: str, project: str, run_id: str, **changes: Any) -> RunRecord:
        from runyard.store import sql_manage

        return sql_manage.update_run(self, entity, project, run_id, changes)

    def delete_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        force: bool = False,
        dry_run: bool = False,
    ) -> RunDeletion:
        from runyard.store import sql_manage

        return sql_manage.delete_run(self, entity, project, run_id, force=force, dry_run=dry_run)

    def runs_by_id_prefix(
        self,
        prefix: str,
        entity: str | None = None,
        project: str | None = None,
        limit: int = 10,
        *,
        entities: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        from runyard.store import sql_manage

        return sql_manage.runs_by_id_prefix(self, prefix, entity, project, limit, entities)

    def console(self, run_pk: int, limit: int | None = None) -> list[tuple[str, float, str]]:
        stmt = sa.select(
            S.console_lines.c.stream, S.console_lines.c.timestamp, S.console_lines.c.text
        ).where(S.console_lines.c.run_pk == run_pk)
        if limit is not None:
            stmt = stmt.order_by(S.console_lines.c.id.desc()).limit(limit)
            with self._read() as conn:
                rows = list(conn.execute(stmt).all())
            rows.reverse()
        else:
            with self._read() as conn:
                rows = list(conn.execute(stmt.order_by(S.console_lines.c.id)).all())
        return [(s, float(t), x) for s, t, x in rows]


class _ContentGone(Exception):
    """A file's content went from the blob store before its row committed (a run deletion)."""


#: Names per INSERT/SELECT when registering metric keys (far below any driver's limit).
_NAMES_PER_STATEMENT = 5_000
#: Entries of ``meta.quarantined`` a run keeps (the count covers all of them).
#: an "attrs" record's fields -> the runs table's columns
_ATTR_COLUMNS = {
    "name": "name",
    "notes": "notes",
    "tags": "tags",
    "group": "group_name",
    "job_type": "job_type",
}
_QUARANTINE_KEPT = 100
#: SQLite errors (``OperationalError``) that pass: anything else it calls operational is
#: about the statement or the schema.
_SQLITE_PASSING = ("locked", "busy", "disk", "full", "unable to open", "readonly", "i/o")


#: What SQLite says about a file it cannot read as a database.
_SQLITE_DAMAGED = (
    "database disk image is malformed",
    "file is not a database",
    "malformed database schema",
)


def _damaged_sqlite(url: str, exc: BaseException) -> StoreDamagedError | None:
    """The runyard error for an SQLite file that is damaged, or None for any other error."""
    text = str(exc)
    if type(exc).__name__ not in ("DatabaseError", "OperationalError") or not any(
        phrase in text for phrase in _SQLITE_DAMAGED
    ):
        return None
    db = sa.engine.make_url(url).database or url
    folder = Path(db).parent
    return StoreDamagedError(
        f"the store {db} is damaged (SQLite: {text}); runyard can neither read nor write it. "
        f"Nothing logged is lost: each run's journal stays in {folder / 'journal'} until a "
        f"store has taken it. Stop the processes using the store and keep a copy of the file, "
        f"then repair it (`sqlite3 {db} .recover | sqlite3 {db}.recovered`, then move "
        f"{db}.recovered to {db}) or move it aside to start an empty store; `runyard sync "
        f"--dir {folder}` then applies the journals still there"
    )


class _StagedCaches:
    """Ids learnt inside an apply transaction, merged into the caches once it commits."""

    __slots__ = ("key_ids", "run_keys")

    def __init__(self) -> None:
        self.key_ids: dict[str, int] = {}
        self.run_keys: dict[int, set[int]] = {}


def _apply_error(exc: Exception) -> StoreError:
    """``Store.apply``'s error for ``exc`` (see the contract in base.py): unavailable when the
    database cannot write now, rejected when it can never hold this batch."""
    if isinstance(exc, RunConflictError | StoreUnavailableError | BatchRejectedError):
        return exc
    orig = getattr(exc, "orig", None) or exc  # the driver's error under SQLAlchemy's
    names = {cls.__name__ for cls in (*type(exc).__mro__, *type(orig).__mro__)}
    if "ProgramLimitExceeded" in names:  # PostgreSQL: a value too large for an index, ...
        return BatchRejectedError(f"{type(orig).__name__}: {orig}")
    message = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}"
    if isinstance(exc, OSError) or names & {"InterfaceError", "DisconnectionError", "TimeoutError"}:
        return StoreUnavailableError(f"the database cannot be written now ({message})")
    if "OperationalError" in names:
        text = str(exc).lower()
        is_sqlite = "sqlite" in type(orig).__module__
        if not is_sqlite or any(word in text for word in _SQLITE_PASSING):
            return StoreUnavailableError(f"the database cannot be written now ({message})")
    if "IntegrityError" in names:  # may be a race with another writer: retried before set aside
        return BatchRejectedError(message, certain=False)
    return BatchRejectedError(message)


def _to_record(row: Any) -> RunRecord:
    return RunRecord(
        pk=int(row["pk"]),
        entity=row["entity"],
        project=row["project"],
        run_id=row["run_id"],
        name=row["name"],
        group=row["group_name"],
        job_type=row["job_type"],
        tags=loads_doc(row["tags"]) or [],
        notes=row["notes"],
        state=row["state"],
        config=loads_doc(row["config"]) or {},
        summary=loads_doc(row["summary"]) or {},
        meta=loads_doc(row["meta"]) or {},
        metric_defs=loads_doc(row["metric_defs"]) or [],
        sweep_id=row["sweep_id"],
        host=row["host"],
        pid=row["pid"],
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        heartbeat_at=float(row["heartbeat_at"]),
        finished_at=row["finished_at"],
        runtime=float(row["runtime"] or 0.0),
        last_step=int(row["last_step"]),
        exit_code=row["exit_code"],
        failure=row["failure"],
        sweep_params=loads_doc(row["sweep_params"]),
        agent_id=row["agent_id"],
    )
