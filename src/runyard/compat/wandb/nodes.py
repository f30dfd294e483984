"""runyard records as W&B GraphQL nodes (W&B's names: a *bucket* or *run*, a *model* or
*project*), with :class:`~runyard.compat.wandb.graphql.Field` for what takes arguments."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

from runyard._time import as_datetime
from runyard.compat.wandb import convert
from runyard.compat.wandb.context import Context
from runyard.compat.wandb.graphql import Field
from runyard.compat.wandb.ids import node_id, run_storage_id
from runyard.compat.wandb.runs import history_tail
from runyard.store.base import RunRecord

#: Fields other modules add to project nodes: ``name -> (context, entity, project) -> Field``
#: (sweeps add ``sweep``, ``wandb.Api`` reads add ``runs``...).
PROJECT_FIELDS: dict[str, Callable[[Context, str, str], Field]] = {}
#: Likewise for run nodes: ``name -> (context, run) -> Field``.
RUN_FIELDS: dict[str, Callable[[Context, RunRecord], Field]] = {}

#: runyard run states as W&B names them (W&B has no ``pending``/``stopped``).
_STATES = {"pending": "pending", "stopped": "killed"}


def iso(ts: float | None) -> str | None:
    when = None if ts is None else as_datetime(ts, UTC)  # None too for a ts no date can show
    return None if when is None else when.strftime("%Y-%m-%dT%H:%M:%S")


def entity_node(ctx: Context, name: str) -> dict[str, Any]:
    is_team = name != ctx.who.user and name in ctx.who.entities
    return {
        "__typename": "Entity",
        "id": node_id("Entity", name),
        "name": name,
        "isTeam": is_team,
        "organization": None,
        "defaultAccess": "PRIVATE",
        "readOnly": False,
        "privateOnly": False,
        "codeSavingEnabled": True,
    }


def internal_config(run: RunRecord) -> dict[str, Any]:
    """The client's ``_wandb`` config block kept at upsert (empty for runyard-native runs)."""
    block = run.meta.get("wandb")
    config = block.get("config") if isinstance(block, dict) else None
    return dict(config) if isinstance(config, dict) else {}


def summary_json(run: RunRecord) -> str:
    summary = convert.unflatten_summary(run.summary)
    summary["_wandb"] = {"runtime": int(run.runtime)}
    return convert.dumps_wandb(summary)


def wandb_config_field(run: RunRecord) -> Field:
    def resolve(args: dict[str, Any]) -> str:
        internal = internal_config(run)
        internal.setdefault("t", {})  # the client resumes only runs whose block has "t"
        keys = args.get("keys")
        if isinstance(keys, list):
            internal = {k: v for k, v in internal.items() if k in keys}
        return convert.dumps_wandb(internal)

    return Field(resolve)


def run_node(ctx: Context, run: RunRecord, session: str | None = None) -> dict[str, Any]:
    tail = None

    def history_tail_json(_args: dict[str, Any]) -> str:
        nonlocal tail
        if tail is None:
            tail = [convert.dumps_wandb(r) for r in history_tail(ctx.store, run)]
        return convert.dumps_wandb(tail)

    state = _STATES.get(run.state, run.state)
    node = {
        "__typename": "Run",
        "id": run_storage_id(run.entity, run.project, run.run_id, session),
        "name": run.run_id,
        "displayName": run.name,
        "description": run.notes,
        "notes": run.notes,
        "config": convert.config_to_wandb(run.config, internal_config(run)),
        "summaryMetrics": summary_json(run),
        "wandbConfig": wandb_config_field(run),
        "sweepName": run.sweep_id,
        "state": state,
        "group": run.group,
        "jobType": run.job_type,
        "tags": list(run.tags),
        "host": run.host,
        "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
        "heartbeatAt": iso(run.heartbeat_at),
        "exitcode": run.exit_code,
        "running": run.state in ("running", "preempting"),
        "failed": run.state in ("failed", "crashed"),
        "stopped": run.state == "stopped",
        "shouldStop": run.state == "stopped",
        "historyLineCount": run.last_step + 1,
        "logLineCount": 0,
        "eventsLineCount": 0,
        "historyTail": Field(history_tail_json),
        "eventsTail": "[]",
        "project": project_node(ctx, run.entity, run.project),
        "user": {"id": node_id("User", run.entity), "name": run.entity, "username": run.entity},
        "readOnly": False,
    }
    for name, make in RUN_FIELDS.items():
        node[name] = make(ctx, run)
    return node


def project_node(ctx: Context, entity: str, name: str) -> dict[str, Any]:
    def run_field(args: dict[str, Any]) -> dict[str, Any] | None:
        run_id = args.get("name") or args.get("runName")
        if not isinstance(run_id, str):
            return None
        found = ctx.store.find_run(entity, name, run_id)
        return None if found is None else run_node(ctx, found)

    node: dict[str, Any] = {
        "__typename": "Project",
        "id": node_id("Project", entity, name),
        "name": name,
        "entityName": entity,
        "entity": entity_node(ctx, entity),
        "run": Field(run_field),
        "bucket": Field(run_field),
        "artifact": Field(lambda _args: None),
        "artifactType": Field(lambda _args: None),
        "readOnly": False,
    }
    for field_name, make in PROJECT_FIELDS.items():
        node[field_name] = make(ctx, entity, name)
    return node
