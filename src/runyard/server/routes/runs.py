"""Reads of projects and runs: listing with filter/sort/pagination, a run, its history,
series (downsampled for charts), console, and marking a run's state."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query

from runyard._json import restore
from runyard.limits import MAX_FILTER_DEPTH, too_deep
from runyard.query import QueryError, parse_expression
from runyard.server.auth import principal, require_entity
from runyard.server.errors import ApiError, invalid, not_found
from runyard.server.models import (
    AlertsOut,
    ChangedOut,
    ConsoleOut,
    HistoryOut,
    ProjectOut,
    RunDeletionOut,
    RunsOut,
    RunStateIn,
    RunUpdateIn,
    SeriesOut,
    SystemOut,
    doc,
)
from runyard.server.models import RunOut as RunModel
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.serialize import record, run_doc
from runyard.server.state import get_store
from runyard.store.base import RunActiveError, RunRecord, Store, StoreError
from runyard.store.sql_auth import Principal

router = APIRouter(tags=["runs"])

Entity = Annotated[str, Path(min_length=1, max_length=128)]
Project = Annotated[str, Path(min_length=1, max_length=128)]
RunId = Annotated[str, Path(min_length=1, max_length=64)]
Step = Annotated[int | None, Query(ge=-(2**63) + 1, le=2**63 - 1)]
MAX_LIMIT = 10_000

StoreDep = Annotated[Store, Depends(get_store)]
Who = Annotated[Principal, Depends(principal)]


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items


def find_run(store: Store, who: Principal, entity: str, project: str, run_id: str) -> RunRecord:
    """The run, after checking the key may see its entity; 404 if absent."""
    require_entity(who, entity)
    run = store.find_run(entity, project, run_id)
    if run is None:
        raise not_found(f"no run {entity}/{project}/{run_id}; list runs with GET /api/v1/runs")
    return run


@router.get("/projects", response_class=ORJSONResponse, responses=doc(list[ProjectOut], 401))
def projects(store: StoreDep, who: Who) -> ORJSONResponse:
    """Projects the key may see, with their number of runs."""
    return json_response(
        [
            {"entity": e, "project": p, "runs": n}
            for e, p, n in store.list_projects()
            if who.may_access(e)
        ]
    )


def _filter_spec(filters: list[str]) -> dict[str, Any]:
    specs: list[dict[str, Any]] = []
    for text in filters:
        text = text.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                raw = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise invalid(f"filter is not valid JSON: {exc}") from None
            # Each $and/$or level is an object and a list: twice the filter's own limit.
            if too_deep(raw, 2 * MAX_FILTER_DEPTH + 2) is not None:
                raise invalid(
                    f"filter is nested more than {MAX_FILTER_DEPTH} levels deep "
                    f"($and/$or/$not; runyard.limits.MAX_FILTER_DEPTH): write it flatter"
                )
            spec = restore(raw)
            if not isinstance(spec, dict):
                raise invalid('a JSON filter must be an object, e.g. {"state": "finished"}')
            specs.append(spec)
        else:
            specs.append(parse_expression(text))
    if not specs:
        return {}
    return specs[0] if len(specs) == 1 else {"$and": specs}


@router.get("/runs", response_class=ORJSONResponse, responses=doc(RunsOut, 401, 403, 422))
def list_runs(
    store: StoreDep,
    who: Who,
    entity: Annotated[str | None, Query(max_length=128)] = None,
    project: Annotated[str | None, Query(max_length=128)] = None,
    state: Annotated[str | None, Query(description="Comma-separated states.")] = None,
    sweep_id: Annotated[str | None, Query(max_length=64)] = None,
    run_id: Annotated[str | None, Query(description="Comma-separated run ids.")] = None,
    filter: Annotated[
        list[str] | None,
        Query(description="`FIELD OP VALUE` or a MongoDB-style JSON object (repeatable)."),
    ] = None,
    sort: Annotated[str | None, Query(description="Field, `-field` for descending.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    id_prefix: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Runs whose id starts with this."),
    ] = None,
) -> ORJSONResponse:
    """Runs the key may see, newest first unless ``sort`` says otherwise; ``total`` counts the
    matching runs before ``limit``/``offset``. Filtered, sorted and paged by the store
    (``Store.query_runs``: in SQL for the SQL store). With ``id_prefix`` (and nothing else
    but ``entity``, ``project``, ``limit``): the newest runs whose id starts with it, how a
    short id is found (``Store.runs_by_id_prefix``)."""
    if entity is not None:
        require_entity(who, entity)
    if id_prefix is not None:
        found = store.runs_by_id_prefix(
            id_prefix,
            entity,
            project,
            limit or 10,
            entities=None if who.admin else sorted(who.entities),
        )
        return json_response({"runs": [run_doc(r) for r in found], "total": len(found)})
    try:
        specs = [_filter_spec(filter or [])]
        states = _csv(state)
        if states:
            specs.append({"state": {"$in": states}})
        if sweep_id is not None:
            specs.append({"sweep_id": {"$eq": sweep_id}})
        run_ids = _csv(run_id)
        if run_ids is not None:
            specs.append({"run_id": {"$in": run_ids}})
        specs = [s for s in specs if s]
        spec = {} if not specs else specs[0] if len(specs) == 1 else {"$and": specs}
        page, total = store.query_runs(
            entity,
            project,
            spec,
            sort,
            limit,
            offset,
            entities=None if who.admin else sorted(who.entities),
        )
    except QueryError as exc:
        raise invalid(str(exc)) from None
    except (TypeError, ValueError) as exc:  # e.g. a value the database cannot compare
        raise invalid(f"cannot apply the filter: {exc}") from None
    return json_response({"runs": [run_doc(r) for r in page], "total": total})


@router.get(
    "/runs/{entity}/{project}/{run_id}",
    response_class=ORJSONResponse,
    responses=doc(RunModel, 401, 403, 404),
)
def get_run(
    entity: Entity, project: Project, run_id: RunId, store: StoreDep, who: Who
) -> ORJSONResponse:
    """One run (every stored field)."""
    return json_response(run_doc(find_run(store, who, entity, project, run_id)))


@router.post(
    "/runs/{entity}/{project}/{run_id}/state",
    response_class=ORJSONResponse,
    responses=doc(ChangedOut, 401, 403, 404, 422),
)
def set_run_state(
    entity: Entity, project: Project, run_id: RunId, body: RunStateIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """Set a run's state outside its journal (e.g. crashed after a stale heartbeat)."""
    run = find_run(store, who, entity, project, run_id)
    changed = store.mark_run_state(run.pk, body.state, body.failure, body.only_if_running)
    return json_response({"changed": changed})


@router.patch(
    "/runs/{entity}/{project}/{run_id}",
    response_class=ORJSONResponse,
    responses=doc(RunModel, 401, 403, 404, 422),
)
def update_run(
    entity: Entity, project: Project, run_id: RunId, body: RunUpdateIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """Change a run's name, tags, notes, group, job type, config or summary: the fields
    given replace the stored ones (``Store.update_run``). The run after."""
    find_run(store, who, entity, project, run_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("name", "") is None:
        raise invalid("name cannot be null: give the run's new name")
    try:
        updated = store.update_run(entity, project, run_id, **restore(changes))
    except LookupError as exc:
        raise not_found(str(exc)) from None
    except StoreError as exc:
        raise invalid(str(exc)) from None
    return json_response(run_doc(updated))


@router.delete(
    "/runs/{entity}/{project}/{run_id}",
    response_class=ORJSONResponse,
    responses=doc(RunDeletionOut, 401, 403, 404, 409),
)
def delete_run(
    entity: Entity,
    project: Project,
    run_id: RunId,
    store: StoreDep,
    who: Who,
    force: bool = False,
    dry_run: bool = False,
) -> ORJSONResponse:
    """Delete a run and what it logged; its files' content that nothing else holds goes from
    the blob store (``Store.delete_run``). 409 for a running run unless ``force``.
    ``dry_run``: what would be deleted."""
    find_run(store, who, entity, project, run_id)
    try:
        report = store.delete_run(entity, project, run_id, force=force, dry_run=dry_run)
    except LookupError as exc:
        raise not_found(str(exc)) from None
    except RunActiveError as exc:
        raise ApiError(409, str(exc), "conflict") from None
    return json_response(record(report))


@router.get(
    "/runs/{entity}/{project}/{run_id}/metrics",
    response_class=ORJSONResponse,
    responses=doc(list[str], 401, 403, 404),
)
def metric_names(
    entity: Entity, project: Project, run_id: RunId, store: StoreDep, who: Who
) -> ORJSONResponse:
    """Names of the metrics the run logged, sorted."""
    run = find_run(store, who, entity, project, run_id)
    return json_response(store.metric_names(run.pk))


@router.get(
    "/runs/{entity}/{project}/{run_id}/history",
    response_class=ORJSONResponse,
    responses=doc(HistoryOut, 401, 403, 404, 422),
)
def history(
    entity: Entity,
    project: Project,
    run_id: RunId,
    store: StoreDep,
    who: Who,
    keys: Annotated[str | None, Query(description="Comma-separated metric names.")] = None,
    min_step: Step = None,
    max_step: Step = None,
) -> ORJSONResponse:
    """History rows by step (with ``keys``: rows where one of them was logged)."""
    run = find_run(store, who, entity, project, run_id)
    rows = store.history(run.pk, _csv(keys), min_step, max_step)
    return json_response({"rows": rows})


@router.get(
    "/runs/{entity}/{project}/{run_id}/series",
    response_class=ORJSONResponse,
    responses=doc(SeriesOut, 401, 403, 404, 422),
)
def series(
    entity: Entity,
    project: Project,
    run_id: RunId,
    store: StoreDep,
    who: Who,
    key: Annotated[str, Query(min_length=1, max_length=512)],
    samples: Annotated[int, Query(ge=2, le=100_000)] = 2000,
    min_step: Step = None,
    max_step: Step = None,
) -> ORJSONResponse:
    """One numeric metric for a chart: at most ``samples`` points; when more were logged,
    each bucket of consecutive steps keeps its minimum and maximum."""
    run = find_run(store, who, entity, project, run_id)
    return json_response(record(store.series(run.pk, key, samples, min_step, max_step)))


@router.get(
    "/runs/{entity}/{project}/{run_id}/console",
    response_class=ORJSONResponse,
    responses=doc(ConsoleOut, 401, 403, 404, 422),
)
def console(
    entity: Entity,
    project: Project,
    run_id: RunId,
    store: StoreDep,
    who: Who,
    limit: Annotated[int | None, Query(ge=1, le=1_000_000)] = None,
) -> ORJSONResponse:
    """Console lines ``[stream, timestamp, text]`` in order (the last ``limit``)."""
    run = find_run(store, who, entity, project, run_id)
    return json_response({"lines": store.console(run.pk, limit)})


@router.get(
    "/runs/{entity}/{project}/{run_id}/system",
    response_class=ORJSONResponse,
    responses=doc(SystemOut, 401, 403, 404, 422),
)
def system_metrics(
    entity: Entity,
    project: Project,
    run_id: RunId,
    store: StoreDep,
    who: Who,
    samples: Annotated[int | None, Query(ge=1, le=MAX_LIMIT)] = None,
    keys: Annotated[str | None, Query(description="Comma-separated metric names.")] = None,
) -> ORJSONResponse:
    """The run's system metrics (a series by time, apart from the history's steps): at most
    ``samples`` evenly spaced samples, with ``keys`` only those metrics. W&B's
    ``run.history(stream="system")``."""
    run = find_run(store, who, entity, project, run_id)
    result = store.system_metrics(run.pk, samples, _csv(keys))
    names = sorted({k for row in result.rows for k in row if k[:1] != "_"})
    return json_response(
        {
            "rows": result.rows,
            "keys": names,
            "total": result.total,
            "downsampled": result.downsampled,
        }
    )


@router.get(
    "/runs/{entity}/{project}/{run_id}/alerts",
    response_class=ORJSONResponse,
    responses=doc(AlertsOut, 401, 403, 404),
)
def alerts(
    entity: Entity, project: Project, run_id: RunId, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The run's alerts (``run.alert``), oldest first, with their webhook delivery state."""
    run = find_run(store, who, entity, project, run_id)
    return json_response({"alerts": [record(a) for a in store.alerts(run.pk)]})
