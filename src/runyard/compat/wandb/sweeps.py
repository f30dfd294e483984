"""``wandb sweep`` and ``wandb agent`` against runyard's sweeps: runyard's controller decides.

* ``upsertSweep`` creates a sweep from the YAML the client sends (checked by runyard's own
  :func:`load_sweep_config`: every problem is named in the GraphQL error), or changes a sweep's
  state (``wandb sweep --pause/--resume/--stop/--cancel``) or its ``run_cap``
  (``wandb sweep --update``; nothing else of a stored sweep changes, as with runyard's CLI).
* ``createAgent`` registers an agent; its id names the sweep, so each heartbeat finds it.
* ``agentHeartbeat`` is where the controller decides, in the server, inside the sweep's lock
  (:meth:`SweepControl.next_run`): an idle agent gets the next run (``run`` command with W&B's
  ``{"name": {"value": v}}`` args) or ``exit`` when the sweep is over (grid exhausted,
  ``run_cap`` reached, finished or canceled); a busy agent gets ``stop`` for a run that
  early termination chose, that was stopped from runyard or whose sweep was canceled. A run
  the agent no longer reports has ended: the controller settles it (``finish_trial``) if its
  own client did not.
* ``project { sweep(sweepName) }`` answers the sweep and its runs (``SweepWithRuns``).

The wandb agent polls every 5 s; a sweep run is created ``pending`` by the controller and the
program's ``wandb.init()`` joins it (``runs.py``), like a run of ``runyard agent``.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
import yaml

from runyard.compat.wandb import convert
from runyard.compat.wandb.context import Context
from runyard.compat.wandb.graphql import Field, GraphQLFieldError
from runyard.compat.wandb.ids import node_id, parse_node_id
from runyard.compat.wandb.nodes import PROJECT_FIELDS, iso, project_node, run_node
from runyard.compat.wandb.resolvers import RESOLVERS
from runyard.sdk.names import new_run_id
from runyard.store.base import StoreError, SweepRecord, TrialRecord
from runyard.sweeps.config import SweepConfigError, load_sweep_config
from runyard.sweeps.search.base import ACTIVE_STATES
from runyard.sweeps.space import nest

#: W&B's sweep states <-> runyard's (``wandb sweep --stop`` is W&B's FINISHED)
_TO_WANDB = {
    "pending": "PENDING",
    "running": "RUNNING",
    "paused": "PAUSED",
    "finished": "FINISHED",
    "canceled": "CANCELED",
}
_FROM_WANDB = {v: k for k, v in _TO_WANDB.items()}
#: runyard's command macros that the wandb agent does not expand (it drops them silently)
_RUNYARD_ONLY_MACROS = ("${args_hydra}",)


def _sweep_yaml(sweep: SweepRecord) -> str:
    return str(yaml.safe_dump(sweep.config, sort_keys=False))


def wandb_args(params: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """A trial's parameters as W&B's agent takes them: ``{"name": {"value": v}}``, nested
    parameters (``parameters: {opt: {parameters: {lr: ...}}}``) as one nested value, and a
    literal dotted name (``model.lr``, the Hydra way) kept whole."""
    args: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in params.items():
        if name in parameters or "." not in name:
            args[name] = {"value": value}
        else:
            top, rest = name.split(".", 1)
            nested.setdefault(top, {})[rest] = value
    for top, sub in nested.items():
        args[top] = {"value": nest(sub)}
    return args


def _trial_node(ctx: Context, sweep: SweepRecord, trial: TrialRecord) -> dict[str, Any]:
    run = ctx.store.find_run(sweep.entity, sweep.project, trial.run_id)
    node: dict[str, Any] = (
        run_node(ctx, run) if run is not None else {"name": trial.run_id, "state": trial.state}
    )
    node["sampledHistory"] = Field(lambda _args: [])
    return node


def sweep_node(ctx: Context, sweep: SweepRecord) -> dict[str, Any]:
    def runs(_args: dict[str, Any]) -> dict[str, Any]:
        trials = ctx.store.sweep_trials(sweep.id)
        edges = [{"node": _trial_node(ctx, sweep, t)} for t in trials]
        return {"edges": edges, "totalCount": len(edges), "pageInfo": {"hasNextPage": False}}

    run_cap = sweep.config.get("run_cap")
    return {
        "__typename": "Sweep",
        "id": node_id("Sweep", sweep.id),
        "name": sweep.id,
        "displayName": sweep.name or sweep.id,
        "method": sweep.method,
        "state": _TO_WANDB.get(sweep.state, sweep.state.upper()),
        "description": sweep.description,
        "config": _sweep_yaml(sweep),
        "createdAt": iso(sweep.created_at),
        "updatedAt": iso(sweep.updated_at),
        "heartbeatAt": iso(sweep.updated_at),
        "earlyStopJobRunning": False,
        "bestLoss": None,
        "controller": None,
        "scheduler": None,
        "runCount": sweep.run_count,
        "runCountExpected": run_cap if isinstance(run_cap, int) else None,
        "runs": Field(runs),
        "project": project_node(ctx, sweep.entity, sweep.project),
        "user": {"id": node_id("User", sweep.entity), "name": sweep.entity},
    }


def _find_sweep(ctx: Context, sweep_id: str) -> SweepRecord:
    sweep = ctx.store.get_sweep(sweep_id)
    if sweep is None:
        raise GraphQLFieldError(f"no sweep {sweep_id!r} in runyard")
    ctx.entity(sweep.entity)
    return sweep


def sweep_field(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any] | None:
        name = args.get("sweepName") or args.get("name")
        if not isinstance(name, str):
            return None
        sweep = ctx.store.get_sweep(name)
        if sweep is None or sweep.entity != entity or sweep.project != project:
            return None
        return sweep_node(ctx, sweep)

    return Field(resolve)


PROJECT_FIELDS["sweep"] = sweep_field


@RESOLVERS.field("upsertSweep", mutation=True)
def upsert_sweep(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input")
    if not isinstance(data, dict):
        raise GraphQLFieldError("upsertSweep needs an input object")
    ref = parse_node_id(data.get("id"), "Sweep")
    if data.get("id") and ref is None:
        raise GraphQLFieldError(f"{data.get('id')!r} is not a sweep id of this server")
    if ref is not None:
        return _change_sweep(ctx, _find_sweep(ctx, ref[0]), data)
    text = data.get("config")
    if not isinstance(text, str):
        raise GraphQLFieldError("upsertSweep needs the sweep config (YAML)")
    try:
        doc = yaml.safe_load(text)
        config = load_sweep_config(doc if isinstance(doc, dict) else {})
    except yaml.YAMLError as exc:
        raise GraphQLFieldError(f"the sweep config is not YAML: {exc}") from None
    except SweepConfigError as exc:
        raise GraphQLFieldError(f"the sweep config is not valid for runyard:\n{exc}") from None
    entity = ctx.entity(data.get("entityName") or config.entity)
    project = data.get("projectName") or config.project or "uncategorized"
    if "/" in project or "\x00" in project or len(project) > 128 or project in (".", ".."):
        raise GraphQLFieldError(f"invalid project name {project!r}")
    warnings = list(config.warnings)
    command = config.command or []
    for macro in _RUNYARD_ONLY_MACROS:
        if any(macro in str(item) for item in command):
            warnings.append(
                f"the command uses {macro}, which `wandb agent` does not expand (it drops it); "
                f"run this sweep with `runyard agent`"
            )
    sweep = ctx.store.create_sweep(
        sweep_id=new_run_id(),
        entity=entity,
        project=project,
        name=data.get("displayName") or config.name,
        description=data.get("description") or config.description,
        method=config.method,
        config=config.raw,
        seed=secrets.randbelow(2**31),
    )
    return {"sweep": sweep_node(ctx, sweep), "configValidationWarnings": warnings}


def _change_sweep(ctx: Context, sweep: SweepRecord, data: dict[str, Any]) -> dict[str, Any]:
    state = data.get("state")
    if isinstance(state, str) and state:
        wanted = _FROM_WANDB.get(state.upper())
        if wanted is None or wanted == "pending":
            raise GraphQLFieldError(f"runyard cannot set a sweep {state!r}")
        if sweep.state in ("finished", "canceled") and wanted in ("running", "paused"):
            raise GraphQLFieldError(f"sweep {sweep.id} is {sweep.state}; it cannot be {wanted}")
        sweep = ctx.store.set_sweep_state(sweep.id, wanted)
    text = data.get("config")
    if isinstance(text, str) and text.strip():
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise GraphQLFieldError(f"the sweep config is not YAML: {exc}") from None
        if not isinstance(doc, dict):
            raise GraphQLFieldError("the sweep config must be a mapping")
        before = {k: v for k, v in sweep.config.items() if k != "run_cap"}
        after = {k: v for k, v in doc.items() if k != "run_cap"}
        if before != after:
            raise GraphQLFieldError(
                "runyard changes only the run_cap of a stored sweep (its trials were drawn from "
                "its parameters); create a new sweep for other changes"
            )
        run_cap = doc.get("run_cap")
        if run_cap is not None and run_cap != sweep.config.get("run_cap"):
            try:
                sweep = ctx.store.controller(sweep.id).set_run_cap(run_cap)
            except StoreError as exc:
                raise GraphQLFieldError(str(exc)) from None
    return {"sweep": sweep_node(ctx, sweep), "configValidationWarnings": []}


@RESOLVERS.field("createAgent", mutation=True)
def create_agent(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    sweep_id = data.get("sweep")
    if not isinstance(sweep_id, str):
        raise GraphQLFieldError("createAgent needs the sweep id")
    sweep = _find_sweep(ctx, sweep_id)
    agent_id = new_run_id()
    host = data.get("host")
    ctx.store.register_agent(agent_id, sweep.id, str(host or "")[:256], 0)
    return {"agent": {"id": node_id("Agent", sweep.id, agent_id), "name": agent_id}}


def _run_states(value: Any) -> set[str]:
    if isinstance(value, str):
        try:
            value = convert.loads(value)
        except ValueError:
            return set()
    if not isinstance(value, dict):
        return set()
    return {str(k) for k, v in value.items() if v}


@RESOLVERS.field("agentHeartbeat", mutation=True)
def agent_heartbeat(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    ref = parse_node_id(data.get("id"), "Agent")
    if ref is None or len(ref) != 2:
        raise GraphQLFieldError(f"{data.get('id')!r} is not an agent id of this server")
    sweep_id, agent_id = ref
    sweep = _find_sweep(ctx, sweep_id)
    active = _run_states(data.get("runState"))
    control = ctx.store.controller(sweep.id)
    commands: list[dict[str, Any]] = []
    mine = [t for t in ctx.store.sweep_trials(sweep.id) if t.agent_id == agent_id]
    for trial in mine:
        if trial.state in ACTIVE_STATES and trial.run_id not in active:
            # The agent no longer runs it: its process ended. A run whose own client did not
            # finish it (a crash, a program without wandb.init) is settled by the controller.
            control.finish_trial(trial.run_id, None, control.stop_decisions(trial.run_id))
    for run_id in sorted(active):
        if not any(t.run_id == run_id for t in mine):
            continue
        run = ctx.store.find_run(sweep.entity, sweep.project, run_id)
        reason = run.failure if run is not None and run.state == "stopped" else None
        reason = reason or control.stop_decisions(run_id)
        if reason is not None:
            commands.append({"type": "stop", "run_id": run_id})
    done = sum(1 for t in mine if t.state not in ACTIVE_STATES)
    if not active:
        decision = control.next_run(agent_id)
        if decision.kind == "run" and decision.run_id is not None:
            parameters = sweep.config.get("parameters")
            commands.append(
                {
                    "type": "run",
                    "run_id": decision.run_id,
                    "program": sweep.config.get("program"),
                    "args": wandb_args(
                        decision.params, parameters if isinstance(parameters, dict) else {}
                    ),
                }
            )
            active = {decision.run_id}
        elif decision.kind == "done":
            commands.append({"type": "exit"})
    exiting = any(c["type"] == "exit" for c in commands)
    ctx.store.agent_heartbeat(
        agent_id, next(iter(sorted(active)), None), done, "finished" if exiting else "running"
    )
    return {
        "agent": {"id": data.get("id"), "name": agent_id},
        "commands": orjson.dumps(commands).decode(),
    }
