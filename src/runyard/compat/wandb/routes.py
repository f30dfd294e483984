"""The HTTP routes of the W&B door (thin: each parses, authenticates and hands over).

=========================================================  ======================================
``POST /graphql``                                          GraphQL (:mod:`.resolvers` & co.)
``POST /files/{entity}/{project}/{run}/file_stream``       history, summary, console, exit
``PUT  /wandb-files/{entity}/{project}/{run}/{name}``      run files (signed URLs, :mod:`.uploads`)
``POST /sdk/otel/v1/{signal}``                             the client's own telemetry: dropped
=========================================================  ======================================

Statuses the client acts on: GraphQL always answers 200 (errors in the body); 401 for a missing
or bad key, 403 for an entity the key may not use, 404 for an unknown run, 400 for a body that
is not what the route takes. The wandb client gives up on those at once; it retries a 5xx for
minutes, so none is answered on purpose.
"""

from __future__ import annotations

import gzip
import logging
import mimetypes
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from runyard.artifacts.base import ArtifactNotFoundError
from runyard.compat.wandb import artifacts as wandb_artifacts
from runyard.compat.wandb import convert
from runyard.compat.wandb import public as _public  # noqa: F401 - registers its fields
from runyard.compat.wandb import sweeps as _sweeps  # noqa: F401 - registers its resolvers
from runyard.compat.wandb.context import LOCAL_ADMIN, AuthFailed, Context, authenticate
from runyard.compat.wandb.graphql import BadRequest, execute, parse_request
from runyard.compat.wandb.resolvers import RESOLVERS
from runyard.compat.wandb.runs import RunWriter
from runyard.compat.wandb.uploads import (
    ARTIFACT_PREFIX,
    UPLOAD_PREFIX,
    BadSignature,
    check_signed,
    path_of,
    run_file_path,
)
from runyard.server.responses import ORJSONResponse
from runyard.server.state import AppState, app_state
from runyard.server.uploads import put_streamed
from runyard.store.base import RunRecord
from runyard.store.sql_auth import Principal

log = logging.getLogger("runyard.compat.wandb")

router = APIRouter(include_in_schema=False)


def _error(status: int, message: str) -> ORJSONResponse:
    # Both shapes: GraphQL clients read "errors", runyard's own tools "error".
    return ORJSONResponse(
        {"errors": [{"message": message}], "error": {"code": status, "message": message}},
        status_code=status,
    )


def _body(raw: bytes, encoding: str | None) -> Any:
    if encoding and "gzip" in encoding.lower():
        raw = gzip.decompress(raw)
    return convert.loads(raw)


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _graphql(
    state: AppState, authorization: str | None, base_url: str, raw: bytes, encoding: str | None
) -> ORJSONResponse:
    try:
        who = authenticate(state, authorization)
    except AuthFailed as exc:
        return _error(401, str(exc))
    try:
        body = _body(raw, encoding)
    except (ValueError, OSError) as exc:
        return _error(400, f"the GraphQL request body is not JSON: {exc}")
    ctx = Context(state=state, who=who, base_url=base_url)
    try:
        if isinstance(body, list):  # a batch of operations
            return ORJSONResponse([execute(parse_request(b), RESOLVERS, ctx) for b in body])
        return ORJSONResponse(execute(parse_request(body), RESOLVERS, ctx))
    except BadRequest as exc:
        return _error(400, str(exc))


@router.post("/graphql")
async def graphql_endpoint(request: Request) -> Response:
    raw = await request.body()
    return await run_in_threadpool(
        _graphql,
        app_state(request),
        request.headers.get("authorization"),
        _base_url(request),
        raw,
        request.headers.get("content-encoding"),
    )


def _forbidden(who: Principal, entity: str) -> ORJSONResponse:
    return _error(
        403,
        f"user {who.user!r} may not access entity {entity!r}: log to your own entity or a team "
        f"you belong to",
    )


def _file_stream(
    state: AppState,
    authorization: str | None,
    entity: str,
    project: str,
    run_id: str,
    raw: bytes,
    encoding: str | None,
) -> ORJSONResponse:
    try:
        who = authenticate(state, authorization)
    except AuthFailed as exc:
        return _error(401, str(exc))
    if not who.may_access(entity):
        return _forbidden(who, entity)
    try:
        body = _body(raw, encoding) if raw else {}
    except (ValueError, OSError) as exc:
        return _error(400, f"the file-stream body is not JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, 'the file-stream body is a JSON object {"files": ..., "complete": ...}')
    run = state.store.find_run(entity, project, run_id)
    if run is None:
        return _error(
            404, f"no run {entity}/{project}/{run_id}: the client creates it (upsertBucket) first"
        )
    result = RunWriter(state.store).stream(run, body)
    return ORJSONResponse({"exitcode": None, "limits": {}, "stopped": result.stopped})


@router.post("/files/{entity}/{project}/{run_id}/file_stream")
async def file_stream(entity: str, project: str, run_id: str, request: Request) -> Response:
    raw = await request.body()
    return await run_in_threadpool(
        _file_stream,
        app_state(request),
        request.headers.get("authorization"),
        entity,
        project,
        run_id,
        raw,
        request.headers.get("content-encoding"),
    )


def _file_principal(
    state: AppState,
    method: str,
    query: dict[str, str],
    authorization: str | None,
    entity: str,
    project: str,
    run_id: str,
    name: str,
) -> Principal | ORJSONResponse:
    """Who a run-file request acts as: a signed URL's key, or the request's own key."""
    path = run_file_path(entity, project, run_id, name)
    return _signed_principal(state, method, path, query, authorization, entity)


def _signed_principal(
    state: AppState,
    method: str,
    path: str,
    query: dict[str, str],
    authorization: str | None,
    entity: str,
) -> Principal | ORJSONResponse:
    """Who a request to a URL the door signed acts as (or the request's own key)."""
    if not state.settings.auth:
        return LOCAL_ADMIN
    if query.get("sig"):
        try:
            who = check_signed(method, path, query, state.auth_store)
        except BadSignature as exc:
            return _error(403, str(exc))
    else:
        try:
            who = authenticate(state, authorization)
        except AuthFailed as exc:
            return _error(401, str(exc))
    if not who.may_access(entity):
        return _forbidden(who, entity)
    return who


def _upload_target(
    state: AppState,
    query: dict[str, str],
    authorization: str | None,
    entity: str,
    project: str,
    run_id: str,
    name: str,
) -> RunRecord | ORJSONResponse:
    who = _file_principal(state, "PUT", query, authorization, entity, project, run_id, name)
    if isinstance(who, ORJSONResponse):
        return who
    run = state.store.find_run(entity, project, run_id)
    if run is None:
        return _error(404, f"no run {entity}/{project}/{run_id}")
    return run


@router.put(UPLOAD_PREFIX + "/{entity}/{project}/{run_id}/{name:path}")
async def upload(entity: str, project: str, run_id: str, name: str, request: Request) -> Response:
    """A run file the client PUTs to the URL createRunFiles gave: streamed into the store (the
    server never holds it whole), up to the server's file limit."""
    state = app_state(request)
    target = await run_in_threadpool(
        _upload_target,
        state,
        dict(request.query_params),
        request.headers.get("authorization"),
        entity,
        project,
        run_id,
        name,
    )
    if isinstance(target, ORJSONResponse):
        return target
    writer = RunWriter(state.store)
    limit = state.settings.max_file
    size = await put_streamed(
        request, lambda chunks: writer.file_uploaded(target, name, chunks, max_size=limit)
    )
    return ORJSONResponse({"name": name, "size": size})


def _download(
    state: AppState,
    query: dict[str, str],
    authorization: str | None,
    entity: str,
    project: str,
    run_id: str,
    name: str,
) -> Response:
    who = _file_principal(state, "GET", query, authorization, entity, project, run_id, name)
    if isinstance(who, ORJSONResponse):
        return who
    try:
        data = state.store.read_file(entity, project, run_id, name)
    except FileNotFoundError:
        return _error(404, f"run {entity}/{project}/{run_id} has no file {name!r}")
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(data, media_type=media_type)


@router.get(UPLOAD_PREFIX + "/{entity}/{project}/{run_id}/{name:path}")
async def download(entity: str, project: str, run_id: str, name: str, request: Request) -> Response:
    return await run_in_threadpool(
        _download,
        app_state(request),
        dict(request.query_params),
        request.headers.get("authorization"),
        entity,
        project,
        run_id,
        name,
    )


# -- artifacts (see artifacts.py) -------------------------------------------------------------


def _artifact_principal(
    request: Request, method: str, path: str, entity: str
) -> Principal | ORJSONResponse:
    return _signed_principal(
        app_state(request),
        method,
        path,
        dict(request.query_params),
        request.headers.get("authorization"),
        entity,
    )


@router.put(ARTIFACT_PREFIX + "/{entity}/file/{md5hex}")
async def artifact_file(entity: str, md5hex: str, request: Request) -> Response:
    """An artifact file (the URL names its MD5): streamed into the blob store."""
    path = path_of(ARTIFACT_PREFIX, entity, "file", md5hex)
    who = await run_in_threadpool(_artifact_principal, request, "PUT", path, entity)
    if isinstance(who, ORJSONResponse):
        return who
    state = app_state(request)
    try:
        size = await put_streamed(
            request,
            lambda chunks: wandb_artifacts.store_file(
                state, entity, md5hex, chunks, state.settings.max_file
            ),
        )
    except wandb_artifacts.DraftError as exc:
        return _error(400, str(exc))
    return ORJSONResponse({"size": size})


@router.put(ARTIFACT_PREFIX + "/{entity}/draft-manifest/{key}")
async def artifact_manifest_upload(entity: str, key: str, request: Request) -> Response:
    """The manifest of an artifact being logged: its upload commits the version."""
    path = path_of(ARTIFACT_PREFIX, entity, "draft-manifest", key)
    who = await run_in_threadpool(_artifact_principal, request, "PUT", path, entity)
    if isinstance(who, ORJSONResponse):
        return who
    body = await request.body()
    state = app_state(request)
    try:
        version = await run_in_threadpool(wandb_artifacts.commit_manifest, state, entity, key, body)
    except wandb_artifacts.DraftError as exc:
        return _error(400, str(exc))
    return ORJSONResponse({"version": version.qualified_name})


@router.get(ARTIFACT_PREFIX + "/{entity}/manifest/{project}/{name}/{version}")
async def artifact_manifest(
    entity: str, project: str, name: str, version: int, request: Request
) -> Response:
    path = path_of(ARTIFACT_PREFIX, entity, "manifest", project, name, str(version))
    who = await run_in_threadpool(_artifact_principal, request, "GET", path, entity)
    if isinstance(who, ORJSONResponse):
        return who
    state = app_state(request)
    try:
        data = await run_in_threadpool(
            wandb_artifacts.manifest_json, state, entity, project, name, version
        )
    except ArtifactNotFoundError as exc:
        return _error(404, str(exc))
    return Response(data, media_type="application/json")


@router.get(ARTIFACT_PREFIX + "/{entity}/blob/{key}")
async def artifact_blob(entity: str, key: str, request: Request) -> Response:
    path = path_of(ARTIFACT_PREFIX, entity, "blob", key)
    who = await run_in_threadpool(_artifact_principal, request, "GET", path, entity)
    if isinstance(who, ORJSONResponse):
        return who
    state = app_state(request)
    try:
        chunks = await run_in_threadpool(wandb_artifacts.blob_chunks, state, who, entity, key)
    except (ArtifactNotFoundError, ValueError) as exc:
        return _error(404, str(exc))
    return StreamingResponse(iterate_in_threadpool(chunks), media_type="application/octet-stream")


@router.post("/sdk/otel/v1/{signal}")
async def client_telemetry(signal: str) -> Response:
    """The wandb client reports its own telemetry to its server; runyard keeps none of it."""
    return ORJSONResponse({})
