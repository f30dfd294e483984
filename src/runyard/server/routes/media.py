"""The dashboard's reads of media keys (docs/dashboard.md, "Media panels"): the steps at which
runs logged a key (a step slider), and the values at those steps (image references, tables,
histograms over time), for many runs in one request.

Thin routes over :meth:`Store.logged_steps` and :meth:`Store.logged_values`; access follows the
project's entity, and the files the references name are read through ``/runs/.../files``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from runyard.server.auth import require_entity
from runyard.server.errors import invalid
from runyard.server.models import StepsIn, ValuesIn, doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.routes.runs import Entity, Project, StoreDep, Who

router = APIRouter(tags=["dashboard"])

#: runs x samples of one values request at most
MAX_VALUES = 200_000


@router.post(
    "/projects/{entity}/{project}/steps",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 401, 403, 422),
)
def logged_steps(
    entity: Entity, project: Project, body: StepsIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The steps at which each of ``runs`` logged ``key``, ascending: ``{"key", "steps":
    {run_id: [step, ...]}}`` (a run id the project lacks is left out)."""
    require_entity(who, entity)
    pks = store.run_pks(entity, project, body.runs)
    ids = {pk: run_id for run_id, pk in pks.items()}
    got = store.logged_steps(list(ids), body.key)
    return json_response({"key": body.key, "steps": {ids[pk]: s for pk, s in got.items()}})


@router.post(
    "/projects/{entity}/{project}/values",
    response_class=ORJSONResponse,
    responses=doc(dict[str, Any], 401, 403, 422),
)
def logged_values(
    entity: Entity, project: Project, body: ValuesIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The values each of ``runs`` logged under ``key`` from ``min_step`` to ``max_step``, at
    most ``samples`` per run evenly spread over the range (first and last kept): ``{"key",
    "values": {run_id: {"steps", "values", "total", "thinned"}}}``. Values are as the history
    holds them (W&B's media references: docs/media.md)."""
    require_entity(who, entity)
    if len(body.runs) * body.samples > MAX_VALUES:
        raise invalid(
            f"runs x samples is {len(body.runs) * body.samples:,}, over {MAX_VALUES:,}: ask "
            f"for fewer samples (e.g. samples={max(1, MAX_VALUES // len(body.runs))}) or runs"
        )
    pks = store.run_pks(entity, project, body.runs)
    ids = {pk: run_id for run_id, pk in pks.items()}
    got = store.logged_values(
        list(ids), body.key, body.samples, min_step=body.min_step, max_step=body.max_step
    )
    values = {
        ids[pk]: {"steps": v.steps, "values": v.values, "total": v.total, "thinned": v.thinned}
        for pk, v in got.items()
    }
    return json_response({"key": body.key, "values": values})
