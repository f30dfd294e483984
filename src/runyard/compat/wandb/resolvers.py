"""The top-level GraphQL fields the W&B door serves, for the wandb client's run path.

Each resolver checks the caller may use the entity it touches (:meth:`Context.entity`) before
reading or writing anything. Sweeps and agents are in :mod:`.sweeps`, ``wandb.Api`` reads in
:mod:`.public`; they register in the same table.
"""

from __future__ import annotations

from typing import Any

from runyard import __version__
from runyard.compat.wandb.context import Context
from runyard.compat.wandb.graphql import GraphQLFieldError, Resolvers
from runyard.compat.wandb.ids import node_id, parse_run_storage_id, run_storage_id
from runyard.compat.wandb.nodes import entity_node, project_node, run_node
from runyard.compat.wandb.runs import UpsertInput
from runyard.compat.wandb.uploads import run_file_path, signed_url

RESOLVERS: Resolvers[Context] = Resolvers()


@RESOLVERS.field("viewer")
def viewer(ctx: Context, _args: dict[str, Any]) -> dict[str, Any]:
    name = ctx.default_entity
    return {
        "__typename": "User",
        "id": node_id("User", name),
        "entity": name,
        "username": name,
        "name": name,
        "email": None,
        "admin": ctx.who.admin,
        "flags": "{}",
        "photoUrl": None,
        "defaultFramework": None,
        "teams": {"edges": [{"node": entity_node(ctx, t)} for t in ctx.teams()]},
        "apiKeys": {"edges": []},
        "defaultEntity": entity_node(ctx, name),
        "userEntity": entity_node(ctx, name),
        "entities": {"edges": [{"node": entity_node(ctx, e)} for e in (name, *ctx.teams())]},
    }


@RESOLVERS.field("serverInfo")
def server_info(_ctx: Context, _args: dict[str, Any]) -> dict[str, Any]:
    # No optional server features: the client then uses the protocol every server speaks.
    return {
        "features": [],
        "cliVersionInfo": {"max_cli_version": None},
        "latestLocalVersionInfo": None,
        "availableBucketProviders": [],
        "isGoogleIap": False,
        "frontendHost": None,
        "version": f"runyard {__version__}",
    }


RESOLVERS.describe("ServerInfo", list(server_info(None, {})))  # type: ignore[arg-type]


@RESOLVERS.field("entity")
def entity(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    return entity_node(ctx, ctx.entity(args.get("name") or args.get("entityName")))


@RESOLVERS.field("project", "model")
def project(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    name = args.get("name") or args.get("projectName")
    if not isinstance(name, str) or not name:
        raise GraphQLFieldError("the project name is missing (project(name: ...))")
    return project_node(ctx, ctx.entity(args.get("entityName")), name)


@RESOLVERS.field("upsertBucket", mutation=True)
def upsert_bucket(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input")
    if not isinstance(data, dict):
        raise GraphQLFieldError("upsertBucket needs an input object")
    inp = UpsertInput.from_args(data)
    if inp.name is None and inp.storage_id is not None and inp.project is None:
        raise GraphQLFieldError(
            "runyard does not take run edits through wandb.Api (Run.update); change tags and "
            "notes from runyard's dashboard or `runyard` CLI"
        )
    entity_name = ctx.entity(inp.entity)
    project_name = inp.project or "uncategorized"
    run, session, inserted = ctx.writer.upsert(entity_name, project_name, inp)
    return {"bucket": run_node(ctx, run, session), "inserted": inserted}


@RESOLVERS.field("createRunFiles", mutation=True)
def create_run_files(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    entity_name = ctx.entity(data.get("entityName"))
    project_name = data.get("projectName")
    run_id = data.get("runName")
    names = data.get("files")
    if not isinstance(project_name, str) or not isinstance(run_id, str):
        raise GraphQLFieldError("createRunFiles needs projectName and runName")
    if not isinstance(names, list):
        raise GraphQLFieldError("createRunFiles needs a list of file names")
    run = ctx.store.find_run(entity_name, project_name, run_id)
    if run is None:
        raise GraphQLFieldError(f"no run {entity_name}/{project_name}/{run_id}")
    auth_store = ctx.state.auth_store if ctx.state.settings.auth else None
    files = [
        {
            "name": name,
            "uploadUrl": signed_url(
                ctx.base_url,
                run_file_path(entity_name, project_name, run_id, name),
                "PUT",
                auth_store,
                ctx.who,
            ),
        }
        for name in names
        if isinstance(name, str)
    ]
    return {
        "runID": run_storage_id(entity_name, project_name, run_id),
        "uploadHeaders": [],
        "files": files,
    }


@RESOLVERS.field("notifyScriptableRunAlert", mutation=True)
def notify_alert(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``run.alert(title, text, level, wait_duration)``: the run's ``alert`` record, rate
    limited and notified by runyard's alerts (docs/system.md)."""
    data = args.get("input") or {}
    entity_name = ctx.entity(data.get("entityName"))
    project_name = data.get("projectName")
    run_id = data.get("runName")
    if not isinstance(project_name, str) or not isinstance(run_id, str):
        raise GraphQLFieldError("notifyScriptableRunAlert needs projectName and runName")
    run = ctx.store.find_run(entity_name, project_name, run_id)
    if run is None:
        raise GraphQLFieldError(f"no run {entity_name}/{project_name}/{run_id}")
    ctx.writer.alert(
        run,
        title=str(data.get("title") or ""),
        text=str(data.get("text") or ""),
        level=str(data.get("severity") or "INFO"),
        wait_duration=data.get("waitDuration"),
    )
    return {"success": True}


@RESOLVERS.field("stopRun", mutation=True)
def stop_run(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    """``wandb.Api().run(path)``'s stop: the run becomes ``stopped``; its client is told on its
    next file-stream post (as with runyard's own stop)."""
    data = args.get("input") or {}
    ref = parse_run_storage_id(data.get("id"))
    if ref is None:
        raise GraphQLFieldError(f"{data.get('id')!r} is not a run id of this server")
    ctx.entity(ref.entity)
    run = ctx.store.find_run(ref.entity, ref.project, ref.run_id)
    if run is None:
        raise GraphQLFieldError(f"no run {ref.entity}/{ref.project}/{ref.run_id}")
    changed = ctx.store.mark_run_state(run.pk, "stopped", "stopped through wandb.Api")
    return {"success": changed or run.state == "stopped"}
