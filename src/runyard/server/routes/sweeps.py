"""Sweeps and agents. Every controller decision (next run, stop, finish) runs here, in
:class:`~runyard.sweeps.controller.SweepController` inside the store's sweep transaction, so
agents on any number of machines never share an assignment. Access follows the sweep's
entity."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Path, Query

from runyard._json import restore
from runyard.sdk.names import new_run_id
from runyard.server.auth import require_entity
from runyard.server.errors import ApiError, invalid, not_found
from runyard.server.models import (
    AbandonIn,
    AgentHeartbeatIn,
    AgentIn,
    AgentOut,
    BestOut,
    CrashedOut,
    DecisionOut,
    FrontOut,
    OkOut,
    ReapIn,
    RequeuedOut,
    RequeueIn,
    RunCapIn,
    SkippedOut,
    StopOut,
    SweepIn,
    SweepOut,
    SweepStateIn,
    TrialFailIn,
    TrialFinishIn,
    TrialOut,
    TrialResultsIn,
    doc,
)
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.routes.runs import StoreDep, Who
from runyard.server.serialize import record
from runyard.store.base import Store, SweepRecord
from runyard.store.sql_auth import Principal
from runyard.sweeps.config import SweepConfigError, load_sweep_config
from runyard.sweeps.controller import TrialResult

router = APIRouter(tags=["sweeps"])

SweepId = Annotated[str, Path(min_length=1, max_length=64)]
AgentId = Annotated[str, Path(min_length=1, max_length=64)]
RunId = Annotated[str, Path(min_length=1, max_length=64)]


def find_sweep(store: Store, who: Principal, sweep_id: str) -> SweepRecord:
    sweep = store.get_sweep(sweep_id)
    if sweep is None:
        raise not_found(f"no sweep {sweep_id!r}; list sweeps with GET /api/v1/sweeps")
    require_entity(who, sweep.entity)
    return sweep


@router.post("/sweeps", response_class=ORJSONResponse, responses=doc(SweepOut, 401, 403, 409, 422))
def create_sweep(body: SweepIn, store: StoreDep, who: Who) -> ORJSONResponse:
    """Validate the sweep config and store the sweep (state ``running``)."""
    raw = restore(body.config)
    try:
        # A sweep for runyard.agent(id, function=...) has no program: the client checks
        # what its command needs (runyard sweep FILE requires one).
        config = load_sweep_config(raw, require_program=False)
    except SweepConfigError as exc:
        raise invalid(f"the sweep config is not valid:\n{exc}") from None
    if body.method is not None and body.method != config.method:
        raise invalid(f"method {body.method!r} differs from the config's {config.method!r}")
    entity = body.entity or config.entity or who.user
    if not entity:
        raise invalid("give the sweep's entity (in the body or the config's 'entity' key)")
    project = body.project or config.project or "uncategorized"
    for part, what in ((entity, "entity"), (project, "project")):
        if "/" in part or "\x00" in part or len(part) > 128 or part in (".", ".."):
            raise invalid(f"invalid {what} {part!r}")
    require_entity(who, entity)
    sweep_id = body.sweep_id or new_run_id()
    if store.get_sweep(sweep_id) is not None:
        raise ApiError(409, f"sweep {sweep_id!r} already exists; choose another id", "conflict")
    created = store.create_sweep(
        sweep_id=sweep_id,
        entity=entity,
        project=project,
        name=body.name or config.name,
        description=body.description or config.description,
        method=config.method,
        config=config.raw,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
    )
    return json_response(record(created))


@router.get("/sweeps", response_class=ORJSONResponse, responses=doc(list[SweepOut], 401, 403))
def list_sweeps(
    store: StoreDep,
    who: Who,
    entity: Annotated[str | None, Query(max_length=128)] = None,
    project: Annotated[str | None, Query(max_length=128)] = None,
) -> ORJSONResponse:
    """Sweeps the key may see, newest first."""
    if entity is not None:
        require_entity(who, entity)
    found = [s for s in store.list_sweeps(entity, project) if who.may_access(s.entity)]
    return json_response([record(s) for s in found])


@router.get(
    "/sweeps/{sweep_id}", response_class=ORJSONResponse, responses=doc(SweepOut, 401, 403, 404)
)
def get_sweep(sweep_id: SweepId, store: StoreDep, who: Who) -> ORJSONResponse:
    return json_response(record(find_sweep(store, who, sweep_id)))


@router.post(
    "/sweeps/{sweep_id}/state",
    response_class=ORJSONResponse,
    responses=doc(SweepOut, 401, 403, 404, 409, 422),
)
def set_sweep_state(
    sweep_id: SweepId, body: SweepStateIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """Pause, resume, finish (no new runs) or cancel (running runs are stopped too)."""
    sweep = find_sweep(store, who, sweep_id)
    if sweep.state in ("finished", "canceled") and body.state in ("running", "paused"):
        raise ApiError(
            409, f"sweep {sweep_id} is {sweep.state}; it cannot be {body.state}", "conflict"
        )
    return json_response(record(store.set_sweep_state(sweep_id, body.state)))


@router.get(
    "/sweeps/{sweep_id}/runs",
    response_class=ORJSONResponse,
    responses=doc(list[TrialOut], 401, 403, 404),
)
def sweep_runs(sweep_id: SweepId, store: StoreDep, who: Who) -> ORJSONResponse:
    """The sweep's runs, oldest first."""
    find_sweep(store, who, sweep_id)
    return json_response([record(t) for t in store.sweep_trials(sweep_id)])


@router.get(
    "/sweeps/{sweep_id}/best",
    response_class=ORJSONResponse,
    responses=doc(list[BestOut], 401, 403, 404),
)
def best(
    sweep_id: SweepId,
    store: StoreDep,
    who: Who,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10,
) -> ORJSONResponse:
    """The sweep's runs by its metric, best first (runs without a value last)."""
    find_sweep(store, who, sweep_id)
    ranked = store.controller(sweep_id).best(limit)
    return json_response([{"trial": record(t), "value": v} for t, v in ranked])


@router.get(
    "/sweeps/{sweep_id}/front",
    response_class=ORJSONResponse,
    responses=doc(FrontOut, 401, 403, 404),
)
def front(sweep_id: SweepId, store: StoreDep, who: Who) -> ORJSONResponse:
    """The sweep's Pareto front over its ``metrics`` (a single ``metric``: its best runs, ties
    included), with its hypervolume and reference point (:mod:`runyard.sweeps.front`)."""
    from runyard.sweeps.front import sweep_front

    sweep = find_sweep(store, who, sweep_id)
    config = load_sweep_config(sweep.config, require_program=False)
    return json_response(sweep_front(config, store.sweep_trials(sweep_id)).to_json())


@router.post(
    "/sweeps/{sweep_id}/agents",
    response_class=ORJSONResponse,
    responses=doc(AgentOut, 401, 403, 404, 409, 422),
)
def register_agent(sweep_id: SweepId, body: AgentIn, store: StoreDep, who: Who) -> ORJSONResponse:
    """Register an agent of the sweep (409 if the agent id is taken)."""
    find_sweep(store, who, sweep_id)
    agent = store.register_agent(body.agent_id, sweep_id, body.host, body.pid)
    return json_response(record(agent))


@router.post(
    "/sweeps/{sweep_id}/agents/{agent_id}/heartbeat",
    response_class=ORJSONResponse,
    responses=doc(OkOut, 401, 403, 404, 422),
)
def agent_heartbeat(
    sweep_id: SweepId, agent_id: AgentId, body: AgentHeartbeatIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The agent is alive (and what it is doing)."""
    find_sweep(store, who, sweep_id)
    store.agent_heartbeat(agent_id, body.current_run_id, body.runs_done, body.state)
    return json_response({"ok": True})


@router.post(
    "/sweeps/{sweep_id}/agents/{agent_id}/next",
    response_class=ORJSONResponse,
    responses=doc(DecisionOut, 401, 403, 404, 422),
)
def next_run(
    sweep_id: SweepId, agent_id: AgentId, store: StoreDep, who: Who, reclaim: bool = False
) -> ORJSONResponse:
    """The agent's next run (``run``), or ``wait`` (paused) or ``done`` (the sweep is over).

    With ``reclaim=true`` a run already handed to this agent and not started yet is handed out
    again rather than a new one, so an agent may repeat a request whose answer it lost.
    """
    find_sweep(store, who, sweep_id)
    decision = store.controller(sweep_id).next_run(agent_id, reclaim=reclaim)
    return json_response(
        {
            "kind": decision.kind,
            "reason": decision.reason,
            "run_id": decision.run_id,
            "run_name": decision.run_name,
            "params": decision.params,
        }
    )


@router.post(
    "/sweeps/{sweep_id}/run_cap",
    response_class=ORJSONResponse,
    responses=doc(SweepOut, 400, 401, 403, 404, 422),
)
def set_run_cap(sweep_id: SweepId, body: RunCapIn, store: StoreDep, who: Who) -> ORJSONResponse:
    """Change the sweep's ``run_cap``; a finished sweep below the new cap runs again."""
    find_sweep(store, who, sweep_id)
    return json_response(record(store.controller(sweep_id).set_run_cap(body.run_cap)))


@router.get(
    "/sweeps/{sweep_id}/runs/{run_id}/stop",
    response_class=ORJSONResponse,
    responses=doc(StopOut, 401, 403, 404),
)
def stop_decision(sweep_id: SweepId, run_id: RunId, store: StoreDep, who: Who) -> ORJSONResponse:
    """Why the run should stop now (early termination, canceled sweep), or null."""
    find_sweep(store, who, sweep_id)
    return json_response({"reason": store.controller(sweep_id).stop_decisions(run_id)})


@router.post(
    "/sweeps/{sweep_id}/runs/{run_id}/finish",
    response_class=ORJSONResponse,
    responses=doc(TrialOut | None, 401, 403, 404, 422),
)
def finish_trial(
    sweep_id: SweepId, run_id: RunId, body: TrialFinishIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The run's process ended: settle its final state; the run (null if not in the sweep)."""
    find_sweep(store, who, sweep_id)
    trial = store.controller(sweep_id).finish_trial(run_id, body.exit_code, body.stop_reason)
    return json_response(None if trial is None else record(trial))


@router.post(
    "/sweeps/{sweep_id}/runs/{run_id}/fail",
    response_class=ORJSONResponse,
    responses=doc(OkOut, 401, 403, 404, 422),
)
def fail_trial(
    sweep_id: SweepId, run_id: RunId, body: TrialFailIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The run could not even be started: mark it failed."""
    find_sweep(store, who, sweep_id)
    store.controller(sweep_id).fail_trial(run_id, body.reason)
    return json_response({"ok": True})


@router.post(
    "/sweeps/{sweep_id}/reap",
    response_class=ORJSONResponse,
    responses=doc(CrashedOut, 401, 403, 404, 422),
)
def reap(sweep_id: SweepId, body: ReapIn, store: StoreDep, who: Who) -> ORJSONResponse:
    """Mark the agents the caller found dead ``dead`` and their pending/running runs
    ``crashed``, in one transaction. An agent no longer ``running``, or heard from after the
    ``heartbeat_at`` the caller saw, is left alone."""
    find_sweep(store, who, sweep_id)
    dead = {a.agent_id: a.heartbeat_at for a in body.agents}
    crashed = store.controller(sweep_id).reap(dead, body.failure)
    return json_response({"crashed": crashed})


@router.post(
    "/sweeps/{sweep_id}/results",
    response_class=ORJSONResponse,
    responses=doc(SkippedOut, 400, 401, 403, 404, 422),
)
def record_results(
    sweep_id: SweepId, body: TrialResultsIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """Settle runs whose outcome the caller knows (merge the summary, set the state, failure
    and optionally the config), all in one transaction; the run ids skipped (not in the sweep,
    or no longer in ``expect_state``)."""
    find_sweep(store, who, sweep_id)
    results = [
        TrialResult(
            run_id=r.run_id,
            state=r.state,
            summary=restore(r.summary),
            config=None if r.config is None else restore(r.config),
            failure=r.failure,
            expect_state=r.expect_state,
        )
        for r in body.results
    ]
    skipped = store.controller(sweep_id).record_results(results)
    return json_response({"skipped": skipped})


@router.post(
    "/sweeps/{sweep_id}/agents/{agent_id}/abandon",
    response_class=ORJSONResponse,
    responses=doc(CrashedOut, 401, 403, 404, 422),
)
def abandon(
    sweep_id: SweepId, agent_id: AgentId, body: AbandonIn, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The agent stops early: its runs not started yet (``pending``) become ``crashed``."""
    find_sweep(store, who, sweep_id)
    crashed = store.controller(sweep_id).abandon(agent_id, body.failure)
    return json_response({"crashed": crashed})


@router.post(
    "/sweeps/{sweep_id}/requeue",
    response_class=ORJSONResponse,
    responses=doc(RequeuedOut, 401, 403, 404, 422),
)
def requeue(sweep_id: SweepId, body: RequeueIn, store: StoreDep, who: Who) -> ORJSONResponse:
    """Queue interrupted trials (crashed, killed, or active under a stopped agent) to run
    again, in one transaction; the run ids queued."""
    find_sweep(store, who, sweep_id)
    requeued = store.controller(sweep_id).requeue(body.run_ids)
    return json_response({"requeued": requeued})
