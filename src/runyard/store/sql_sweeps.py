"""The sweep half of the SQL store: sweeps, agents, and the locked sweep transaction."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from runyard._json import dumps_doc, loads_doc
from runyard.store import schema as S
from runyard.store.base import (
    AgentRecord,
    StoreError,
    SweepRecord,
    SweepTransaction,
    TrialRecord,
)
from runyard.store.codec import decode_metric

if TYPE_CHECKING:
    from contextlib import AbstractContextManager


def _to_sweep(row: Any) -> SweepRecord:
    return SweepRecord(
        id=row["id"],
        entity=row["entity"],
        project=row["project"],
        name=row["name"],
        description=row["description"],
        method=row["method"],
        state=row["state"],
        config=loads_doc(row["config"]) or {},
        seed=int(row["seed"]),
        method_state=loads_doc(row["method_state"]) or {},
        run_count=int(row["run_count"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
    )


def _to_agent(row: Any) -> AgentRecord:
    return AgentRecord(
        id=row["id"],
        sweep_id=row["sweep_id"],
        host=row["host"],
        pid=row["pid"],
        state=row["state"],
        current_run_id=row["current_run_id"],
        runs_done=int(row["runs_done"]),
        created_at=float(row["created_at"]),
        heartbeat_at=float(row["heartbeat_at"]),
    )


class _SQLSweepTransaction(SweepTransaction):
    def __init__(self, conn: Connection, sweep: SweepRecord, project_id: int) -> None:
        self._conn = conn
        self.sweep = sweep
        self._project_id = project_id

    def trial_count(self) -> int:
        count = self._conn.execute(
            sa.select(sa.func.count())
            .select_from(S.runs)
            .where(S.runs.c.sweep_id == self.sweep.id, S.runs.c.project_id == self._project_id)
        ).scalar()
        return int(count or 0)

    def trials(
        self, *, states: Sequence[str] | None = None, agent_id: str | None = None
    ) -> list[TrialRecord]:
        where = [S.runs.c.sweep_id == self.sweep.id, S.runs.c.project_id == self._project_id]
        if states is not None:
            where.append(S.runs.c.state.in_(list(states)))
        if agent_id is not None:
            where.append(S.runs.c.agent_id == agent_id)
        rows = self._conn.execute(
            sa.select(
                S.runs.c.pk,
                S.runs.c.run_id,
                S.runs.c.name,
                S.runs.c.state,
                S.runs.c.sweep_params,
                S.runs.c.summary,
                S.runs.c.agent_id,
                S.runs.c.created_at,
                S.runs.c.heartbeat_at,
                S.runs.c.failure,
            )
            .where(*where)
            .order_by(S.runs.c.pk)
        ).all()
        return [
            TrialRecord(
                pk=int(r.pk),
                run_id=r.run_id,
                name=r.name,
                state=r.state,
                params=loads_doc(r.sweep_params) or {},
                summary=loads_doc(r.summary) or {},
                agent_id=r.agent_id,
                created_at=float(r.created_at),
                heartbeat_at=float(r.heartbeat_at),
                failure=r.failure,
            )
            for r in rows
        ]

    def agents(self) -> list[AgentRecord]:
        rows = self._conn.execute(
            sa.select(S.sweep_agents)
            .where(S.sweep_agents.c.sweep_id == self.sweep.id)
            .order_by(S.sweep_agents.c.created_at)
        ).all()
        return [_to_agent(r._mapping) for r in rows]

    def add_trial(
        self,
        run_id: str,
        name: str,
        params: dict[str, Any],
        config: dict[str, Any],
        agent_id: str | None,
    ) -> None:
        now = time.time()
        self._conn.execute(
            S.runs.insert().values(
                project_id=self._project_id,
                run_id=run_id,
                name=name,
                tags="[]",
                state="pending",
                config=dumps_doc(config),
                summary="{}",
                meta="{}",
                metric_defs="[]",
                sweep_id=self.sweep.id,
                sweep_params=dumps_doc(params),
                agent_id=agent_id,
                created_at=now,
                updated_at=now,
                heartbeat_at=now,
                runtime=0.0,
                last_step=-1,
            )
        )

    def set_trial_state(self, run_id: str, state: str, failure: str | None = None) -> None:
        now = time.time()
        self._conn.execute(
            S.runs.update()
            .where(
                S.runs.c.project_id == self._project_id,
                S.runs.c.run_id == run_id,
                S.runs.c.sweep_id == self.sweep.id,
            )
            .values(state=state, failure=failure, updated_at=now, finished_at=now)
        )

    def set_trial_result(
        self,
        run_id: str,
        state: str,
        summary: dict[str, Any],
        config: dict[str, Any] | None = None,
        failure: str | None = None,
    ) -> None:
        where = (
            S.runs.c.project_id == self._project_id,
            S.runs.c.run_id == run_id,
            S.runs.c.sweep_id == self.sweep.id,
        )
        current = self._conn.execute(sa.select(S.runs.c.summary).where(*where)).scalar()
        if current is None:
            raise StoreError(f"run {run_id!r} is not in sweep {self.sweep.id!r}")
        merged = loads_doc(current) or {}
        merged.update(summary)
        now = time.time()
        values: dict[str, Any] = {
            "state": state,
            "summary": dumps_doc(merged),
            "failure": failure,
            "updated_at": now,
            "finished_at": now,
        }
        if config is not None:
            values["config"] = dumps_doc(config)
        self._conn.execute(S.runs.update().where(*where).values(**values))

    def set_agent_state(self, agent_id: str, state: str) -> None:
        self._conn.execute(
            S.sweep_agents.update().where(S.sweep_agents.c.id == agent_id).values(state=state)
        )

    def update_sweep(
        self,
        *,
        state: str | None = None,
        method_state: dict[str, Any] | None = None,
        run_count: int | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        values: dict[str, Any] = {"updated_at": time.time()}
        if config is not None:
            values["config"] = dumps_doc(config)
            self.sweep.config = config
        if state is not None:
            values["state"] = state
            self.sweep.state = state
        if method_state is not None:
            values["method_state"] = dumps_doc(method_state)
            self.sweep.method_state = method_state
        if run_count is not None:
            values["run_count"] = run_count
            self.sweep.run_count = run_count
        self._conn.execute(S.sweeps.update().where(S.sweeps.c.id == self.sweep.id).values(**values))


class SweepMethods:
    """Mixin: the sweep part of SQLStore (kept apart for readability)."""

    engine: Engine
    is_sqlite: bool

    def _read(self) -> AbstractContextManager[Connection]:  # provided by SQLStore
        raise NotImplementedError

    def _project_id(self, conn: Connection, entity: str, name: str, now: float) -> int:
        raise NotImplementedError  # provided by SQLStore

    def _sweep_select(self) -> sa.Select[Any]:
        return sa.select(S.sweeps, S.projects.c.entity, S.projects.c.name.label("project")).join(
            S.projects, S.projects.c.id == S.sweeps.c.project_id
        )

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
        now = time.time()
        with self.engine.begin() as conn:
            project_id = self._project_id(conn, entity, project, now)
            conn.execute(
                S.sweeps.insert().values(
                    id=sweep_id,
                    project_id=project_id,
                    name=name,
                    description=description,
                    method=method,
                    state="running",
                    config=dumps_doc(config),
                    seed=seed,
                    method_state="{}",
                    run_count=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        sweep = self.get_sweep(sweep_id)
        assert sweep is not None
        return sweep

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        with self._read() as conn:
            row = conn.execute(self._sweep_select().where(S.sweeps.c.id == sweep_id)).first()
        return _to_sweep(row._mapping) if row is not None else None

    def list_sweeps(
        self, entity: str | None = None, project: str | None = None
    ) -> list[SweepRecord]:
        stmt = self._sweep_select().order_by(S.sweeps.c.created_at.desc())
        if entity is not None:
            stmt = stmt.where(S.projects.c.entity == entity)
        if project is not None:
            stmt = stmt.where(S.projects.c.name == project)
        with self._read() as conn:
            return [_to_sweep(r._mapping) for r in conn.execute(stmt).all()]

    def set_sweep_state(self, sweep_id: str, state: str) -> SweepRecord:
        with self.engine.begin() as conn:
            result = conn.execute(
                S.sweeps.update()
                .where(S.sweeps.c.id == sweep_id)
                .values(state=state, updated_at=time.time())
            )
            if not result.rowcount:
                raise StoreError(f"no sweep {sweep_id!r}")
        sweep = self.get_sweep(sweep_id)
        assert sweep is not None
        return sweep

    @contextmanager
    def sweep_transaction(self, sweep_id: str) -> Iterator[SweepTransaction]:
        with self.engine.begin() as conn:
            # SQLite: BEGIN IMMEDIATE (see _on_begin) already serializes writers.
            # PostgreSQL: lock the sweep's row until commit.
            stmt = self._sweep_select().where(S.sweeps.c.id == sweep_id)
            if not self.is_sqlite:
                stmt = stmt.with_for_update(of=S.sweeps)
            row = conn.execute(stmt).first()
            if row is None:
                raise StoreError(f"no sweep {sweep_id!r}")
            yield _SQLSweepTransaction(
                conn,
                _to_sweep(row._mapping),
                int(row._mapping["project_id"]),
            )

    def sweep_trials(self, sweep_id: str) -> list[TrialRecord]:
        with self._read() as conn:
            row = conn.execute(self._sweep_select().where(S.sweeps.c.id == sweep_id)).first()
            if row is None:
                raise StoreError(f"no sweep {sweep_id!r}")
            tx = _SQLSweepTransaction(
                conn, _to_sweep(row._mapping), int(row._mapping["project_id"])
            )
            return tx.trials()

    def register_agent(self, agent_id: str, sweep_id: str, host: str, pid: int) -> AgentRecord:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                S.sweep_agents.insert().values(
                    id=agent_id,
                    sweep_id=sweep_id,
                    host=host,
                    pid=pid,
                    state="running",
                    runs_done=0,
                    created_at=now,
                    heartbeat_at=now,
                )
            )
        return AgentRecord(agent_id, sweep_id, host, pid, "running", None, 0, now, now)

    def agent_heartbeat(
        self, agent_id: str, current_run_id: str | None, runs_done: int, state: str = "running"
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                S.sweep_agents.update()
                .where(S.sweep_agents.c.id == agent_id)
                .values(
                    heartbeat_at=time.time(),
                    current_run_id=current_run_id,
                    runs_done=runs_done,
                    state=state,
                )
            )

    def metric_values(self, run_pks: Sequence[int], key: str) -> dict[int, list[Any]]:
        out: dict[int, list[Any]] = {pk: [] for pk in run_pks}
        if not run_pks:
            return out
        with self._read() as conn:
            key_id = conn.execute(
                sa.select(S.metric_keys.c.id).where(S.metric_keys.c.name == key)
            ).scalar()
            if key_id is None:
                return out
            rows = conn.execute(
                sa.select(S.metrics.c.run_pk, S.metrics.c.value, S.metrics.c.kind, S.metrics.c.text)
                .where(S.metrics.c.key_id == key_id, S.metrics.c.run_pk.in_(list(run_pks)))
                .order_by(S.metrics.c.run_pk, S.metrics.c.step)
            )
            for run_pk, value, kind, text in rows:
                out[int(run_pk)].append(decode_metric(value, kind, text))
        return out
