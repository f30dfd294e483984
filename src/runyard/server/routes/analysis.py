"""Reads the dashboard needs beyond the run and sweep basics (docs/server-api.md,
"Dashboard"): the config and summary keys of a project (the runs table's column picker), a
sweep's agents, parameter importance for a sweep's metric, and a metric against another x
axis (relative time, wall time or another metric) for comparison charts.

Included by the app under ``/api/v1`` like every other router; access follows the run's or
the sweep's entity.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import numpy as np
import sqlalchemy as sa
from fastapi import APIRouter, Depends, Query

from runyard.analysis.importance import METHOD, parameter_importance
from runyard.server.auth import require_entity
from runyard.server.models import doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.routes.runs import Entity, Project, RunId, Who, find_run
from runyard.server.routes.sweeps import SweepId, find_sweep
from runyard.server.state import get_store
from runyard.store import schema as S
from runyard.store.base import AgentRecord, RunQuery
from runyard.store.sql import SQLStore
from runyard.sweeps.controller import objective

router = APIRouter(tags=["dashboard"])

SQLStoreDep = Annotated[SQLStore, Depends(get_store)]

#: at most this many runs are read for a project's keys (the newest ones)
KEYS_RUN_LIMIT = 5000
#: a series with at most this many points maps steps to time exactly (one history read);
#: longer ones interpolate between anchors read one step each
EXACT_TIME_POINTS = 20_000
TIME_ANCHORS = 200


def _config_keys(node: Any, prefix: str, out: set[str]) -> None:
    if isinstance(node, Mapping) and node:
        if set(node) == {"value"} and prefix:  # W&B's {"value": x} form is a leaf
            out.add(prefix)
            return
        for key, value in node.items():
            _config_keys(value, f"{prefix}.{key}" if prefix else str(key), out)
    elif prefix:
        out.add(prefix)


@router.get(
    "/projects/{entity}/{project}/keys",
    response_class=ORJSONResponse,
    responses=doc(dict[str, list[str]], 401, 403),
)
def project_keys(entity: Entity, project: Project, store: SQLStoreDep, who: Who) -> ORJSONResponse:
    """Every config key (dotted, leaves only) and summary key (with ``.min``/``.max``/...
    sub-keys of aggregated metrics) of the project's newest runs, sorted: the names the runs
    filter and sort accept after ``config.`` and ``summary.``; and ``metrics``: every metric
    any run of the project logged (``Store.project_metric_names``)."""
    require_entity(who, entity)
    runs = store.list_runs(RunQuery(entity=entity, project=project, limit=KEYS_RUN_LIMIT))
    config: set[str] = set()
    summary: set[str] = set()
    for run in runs:
        _config_keys(run.config, "", config)
        for key, value in run.summary.items():
            summary.add(key)
            if isinstance(value, Mapping):
                summary.update(f"{key}.{sub}" for sub in value)
    metrics = store.project_metric_names(entity, project)
    return json_response({"config": sorted(config), "summary": sorted(summary), "metrics": metrics})


@router.get(
    "/sweeps/{sweep_id}/agents",
    response_class=ORJSONResponse,
    responses=doc(list[dict[str, Any]], 401, 403, 404),
)
def sweep_agents(sweep_id: SweepId, store: SQLStoreDep, who: Who) -> ORJSONResponse:
    """The sweep's agents, oldest first, with their state, current run and last heartbeat
    (read without taking the sweep's lock)."""
    find_sweep(store, who, sweep_id)
    t = S.sweep_agents
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t).where(t.c.sweep_id == sweep_id).order_by(t.c.created_at)
        ).all()
    agents = [
        AgentRecord(
            id=r.id,
            sweep_id=r.sweep_id,
            host=r.host,
            pid=r.pid,
            state=r.state,
            current_run_id=r.current_run_id,
            runs_done=int(r.runs_done),
            created_at=float(r.created_at),
            heartbeat_at=float(r.heartbeat_at),
        )
        for r in rows
    ]
    return json_response([a.__dict__ for a in agents])


_cache: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 64


def _param_names(config: Mapping[str, Any], trials_params: list[dict[str, Any]]) -> list[str]:
    declared = config.get("parameters") or {}
    names: list[str] = []
    for name, spec in declared.items() if isinstance(declared, Mapping) else ():
        if isinstance(spec, Mapping) and set(spec) == {"value"}:
            continue  # a constant
        names.append(str(name))
    for params in trials_params:
        for name in params:
            if name not in names and not (
                isinstance(declared, Mapping)
                and isinstance(declared.get(name), Mapping)
                and set(declared[name]) == {"value"}
            ):
                names.append(name)
    return names


@router.get(
    "/sweeps/{sweep_id}/importance",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 401, 403, 404),
)
def sweep_importance(
    sweep_id: SweepId,
    store: SQLStoreDep,
    who: Who,
    metric: Annotated[str | None, Query(max_length=512)] = None,
    goal: Annotated[Literal["minimize", "maximize"] | None, Query()] = None,
) -> ORJSONResponse:
    """Importance and correlation of each parameter for ``metric`` (default: the sweep's) over
    the runs that reported it: ``{"metric", "goal", "method", "n", "params": [{"name",
    "importance", "correlation", "kind"}]}``, most important first (method:
    :mod:`runyard.analysis.importance`)."""
    sweep = find_sweep(store, who, sweep_id)
    spec = sweep.config.get("metric") if isinstance(sweep.config.get("metric"), Mapping) else {}
    assert isinstance(spec, Mapping)
    metric = metric or (str(spec["name"]) if spec.get("name") else None)
    goal = goal or ("maximize" if spec.get("goal") == "maximize" else "minimize")
    trials = store.sweep_trials(sweep_id)
    names = _param_names(sweep.config, [t.params or {} for t in trials])
    rows: list[tuple[dict[str, Any], float]] = []
    if metric:
        for t in trials:
            value = objective(t.summary, metric, goal)
            if value is not None:
                rows.append((t.params or {}, value))
    declared = sweep.config.get("parameters") or {}
    log_params = {
        n
        for n in names
        if isinstance(declared, Mapping)
        and isinstance(declared.get(n), Mapping)
        and "log" in str(declared[n].get("distribution", ""))
    }
    key = (sweep_id, metric, goal, tuple(names), tuple((repr(p), v) for p, v in rows))
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return json_response(cached)
    result = parameter_importance([p for p, _ in rows], [v for _, v in rows], names, log_params)
    body = {
        "metric": metric,
        "goal": goal,
        "method": METHOD,
        "n": len(rows),
        "params": [r.__dict__ for r in result],
    }
    with _cache_lock:
        _cache[key] = body
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return json_response(body)


@router.get(
    "/runs/{entity}/{project}/{run_id}/xseries",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 401, 403, 404, 422),
)
def xseries(
    entity: Entity,
    project: Project,
    run_id: RunId,
    store: SQLStoreDep,
    who: Who,
    key: Annotated[str, Query(min_length=1, max_length=512)],
    x: Annotated[str, Query(min_length=1, max_length=512)] = "_step",
    samples: Annotated[int, Query(ge=2, le=100_000)] = 2000,
) -> ORJSONResponse:
    """The series of ``key`` (downsampled like ``/series``) with an x value per point:
    ``_step``, ``_runtime`` (seconds since the run started), ``_timestamp`` (unix seconds) or
    another metric's value at that step. ``{"key", "x", "steps", "xs", "values", "total",
    "downsampled"}``; points without an x value are left out. Time of a series longer than
    20,000 points, and a metric x whose own series is downsampled, are interpolated linearly
    over steps."""
    run = find_run(store, who, entity, project, run_id)
    series = store.series(run.pk, key, samples)
    steps = np.asarray(series.steps, dtype=float)
    values = list(series.values)
    xs: list[float]
    if x == "_step" or not series.steps:
        xs = [float(s) for s in series.steps]
    elif x in ("_runtime", "_timestamp"):
        xs = _time_at(store, run.pk, key, series.steps, series.total, x)
    else:
        other = store.series(run.pk, x, max(samples, 2000))
        if not other.steps:
            xs = []
            values = []
            steps = np.asarray([], dtype=float)
        else:
            ox = np.asarray(other.steps, dtype=float)
            oy = np.asarray(other.values, dtype=float)
            inside = (steps >= ox[0]) & (steps <= ox[-1])
            xs = [float(v) for v in np.interp(steps[inside], ox, oy)]
            values = [v for v, keep in zip(values, inside, strict=True) if keep]
            steps = steps[inside]
    out_steps = [int(s) for s in steps]
    keep = [i for i, v in enumerate(xs) if np.isfinite(v)]
    return json_response(
        {
            "key": key,
            "x": x,
            "steps": [out_steps[i] for i in keep],
            "xs": [xs[i] for i in keep],
            "values": [values[i] for i in keep],
            "total": series.total,
            "downsampled": series.downsampled,
        }
    )


def _time_at(
    store: SQLStore, run_pk: int, key: str, steps: list[int], total: int, field: str
) -> list[float]:
    """``_runtime``/``_timestamp`` at each of ``steps`` (exact for short series, else
    interpolated between ``TIME_ANCHORS`` steps read one by one)."""
    if total <= EXACT_TIME_POINTS:
        rows = store.history(run_pk, [key], steps[0], steps[-1])
        by_step = {int(r["_step"]): r.get(field) for r in rows}
        return [float(by_step.get(s) or np.nan) for s in steps]
    idx = np.unique(np.linspace(0, len(steps) - 1, TIME_ANCHORS).astype(int))
    ax: list[float] = []
    ay: list[float] = []
    for i in idx:
        rows = store.history(run_pk, [key], steps[i], steps[i])
        if rows and isinstance(rows[0].get(field), int | float):
            ax.append(float(steps[i]))
            ay.append(float(rows[0][field]))
    if not ax:
        return [float("nan")] * len(steps)
    return [float(v) for v in np.interp(np.asarray(steps, dtype=float), ax, ay)]
