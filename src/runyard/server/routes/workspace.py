"""The project workspace of the dashboard (docs/dashboard.md, "Workspace"): many runs' series
of a metric in one request, and the saved workspace layouts (per project, per user).

Thin routes: the work is :meth:`Store.series_many` and the ``*_workspace`` methods of the
store; access follows the project's entity.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Query
from fastapi.responses import Response

from runyard._json import float_marker
from runyard.server.auth import require_entity
from runyard.server.errors import invalid
from runyard.server.models import SeriesBatchIn, doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.routes.runs import Entity, Project, StoreDep, Who
from runyard.server.serialize import record
from runyard.store.base import TIME_AXES

router = APIRouter(tags=["dashboard"])

#: runs x keys x samples of one request at most (points the store may return)
MAX_POINTS = 20_000_000
#: a saved workspace document at most
MAX_WORKSPACE_BYTES = 512 * 1024

Scope = Literal["project", "user"]


@router.post(
    "/projects/{entity}/{project}/series",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 401, 403, 422),
)
def series_batch(
    entity: Entity, project: Project, body: SeriesBatchIn, store: StoreDep, who: Who
) -> Response:
    """The series of each of ``keys`` for each of ``runs`` (ids of the project), downsampled
    to at most ``samples`` points per run like ``/series`` (first and last point, min/max
    buckets; coarser for a large request), with ``xs`` (the x value of each point) unless
    ``x`` is ``_step``: ``{"x", "series": {key: {run_id: {"steps", "values", "total",
    "downsampled"[, "xs"]}}}}``. A run of ``since`` gets only the points after its step (a live
    chart's update); a run id the project lacks is left out (``Store.series_many``)."""
    require_entity(who, entity)
    points = len(body.runs) * len(body.keys) * body.samples
    if points > MAX_POINTS:
        raise invalid(
            f"runs x keys x samples is {points:,}, over {MAX_POINTS:,}: ask for fewer samples "
            f"per run (e.g. samples={max(2, MAX_POINTS // (len(body.runs) * len(body.keys)))}) "
            f"or fewer runs or keys per request"
        )
    pks = store.run_pks(entity, project, body.runs)
    ids = {pk: run_id for run_id, pk in pks.items()}
    since = {pks[r]: step for r, step in (body.since or {}).items() if r in pks}
    out: dict[str, dict[str, Any]] = {}
    for key in dict.fromkeys(body.keys):
        got = store.series_many(list(ids), key, body.samples, x=body.x, since=since)
        per_run: dict[str, Any] = {}
        for pk, s in got.items():
            item: dict[str, Any] = {
                "steps": s.steps,
                "values": _finite(s.values),
                "total": s.total,
                "downsampled": s.downsampled,
            }
            if body.x != "_step":
                item["xs"] = _finite(s.xs)
            per_run[ids[pk]] = item
        out[key] = per_run
    # Encoded here rather than by ORJSONResponse: its walk over every value (for non-finite
    # floats) costs more than the store's read for 500 runs; the values lists are checked
    # above, the steps are integers of the store (64-bit) and the rest are plain.
    doc_ = {"x": body.x, "time_axis": body.x in TIME_AXES, "series": out}
    return Response(orjson.dumps(doc_), media_type="application/json")


def _finite(values: list[float]) -> list[Any]:
    """``values`` with NaN and ±inf as markers (``runyard._json``): the list itself when its
    sum is finite (every value then is), else a copy with the markers."""
    if math.isfinite(sum(values)):
        return values
    return [v if math.isfinite(v) else float_marker(v) for v in values]


@router.get(
    "/projects/{entity}/{project}/workspace",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 401, 403),
)
def get_workspace(
    entity: Entity,
    project: Project,
    store: StoreDep,
    who: Who,
    scope: Annotated[Literal["auto", "project", "user"], Query()] = "auto",
) -> ORJSONResponse:
    """The saved workspace: with ``scope=auto`` the caller's own if they saved one, else the
    project's; ``{"entity", "project", "scope", "user", "doc", "updated_at"}``, or
    ``{"scope": null, "doc": null}`` when none was saved (the dashboard then builds one from
    the project's metrics)."""
    require_entity(who, entity)
    user: str | None = None if scope == "project" else _user(who.user)
    found = store.get_workspace(entity, project, user)
    if found is not None and scope == "user" and found.scope != "user":
        found = None
    if found is None:
        return json_response({"scope": None, "doc": None})
    return json_response(record(found))


@router.put(
    "/projects/{entity}/{project}/workspace",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 400, 401, 403, 422),
)
def put_workspace(
    entity: Entity,
    project: Project,
    store: StoreDep,
    who: Who,
    body: Annotated[dict[str, Any], Body(description="The workspace document.")],
    scope: Annotated[Scope, Query()] = "user",
) -> ORJSONResponse:
    """Save the workspace document: the caller's own (``scope=user``, the default) or the
    project's default for everyone (``scope=project``). At most 512 KiB of JSON."""
    require_entity(who, entity)
    try:
        size = len(orjson.dumps(body))
    except orjson.JSONEncodeError as exc:
        raise invalid(f"the workspace document cannot be stored as JSON: {exc}") from None
    if size > MAX_WORKSPACE_BYTES:
        raise invalid(
            f"the workspace document is {size:,} bytes, over {MAX_WORKSPACE_BYTES:,}: "
            f"remove panels or sections"
        )
    saved = store.put_workspace(entity, project, scope, _user(who.user), body)
    return json_response(record(saved))


@router.delete(
    "/projects/{entity}/{project}/workspace",
    response_class=ORJSONResponse,
    responses=doc(dict[str, bool], 401, 403),
)
def delete_workspace(
    entity: Entity,
    project: Project,
    store: StoreDep,
    who: Who,
    scope: Annotated[Scope, Query()] = "user",
) -> ORJSONResponse:
    """Forget a saved workspace (the caller's: back to the project's)."""
    require_entity(who, entity)
    return json_response(
        {"deleted": store.delete_workspace(entity, project, scope, _user(who.user))}
    )


def _user(user: str | None) -> str:
    """The workspace owner of a request: the key's user, or ``local`` on a server without
    auth (``runyard ui``: one person at one browser)."""
    return user if user is not None else "local"
