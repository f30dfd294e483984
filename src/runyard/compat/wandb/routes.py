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
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from runyard.compat.wandb import convert
from runyard.compat.wandb import public as _public  # noqa: F401 - registers its fields
from runyard.compat.wandb import sweeps as _sweeps  # noqa: F401 - registers its resolvers
from runyard.compat.wandb.context import LOCAL_ADMIN, AuthFailed, Context, authenticate
from runyard.compat.wandb.graphql import BadRequest, execute, parse_request
from runyard.compat.wandb.resolvers import RESOLVERS
from runyard.compat.wandb.runs import RunWriter
from runyard.compat.wandb.uploads import UPLOAD_PREFIX, BadSignature, check_signed
from runyard.server.responses import ORJSONResponse
from runyard.server.state import AppState, app_state
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
    """Who a file request acts as: a signed URL's key, or the request's own key."""
    if not state.settings.auth:
        return LOCAL_ADMIN
    if query.get("sig"):
        try:
            who = check_signed(
                method,
                state.auth_store,
                entity,
                project,
                run_id,
                name,
                query.get("key"),
                query.get("expires"),
                query.get("sig"),
            )
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


def _upload(
    state: AppState,
    query: dict[str, str],
    authorization: str | None,
    entity: str,
    project: str,
    run_id: str,
    name: str,
    data: bytes,
) -> ORJSONResponse:
    who = _file_principal(state, "PUT", query, authorization, entity, project, run_id, name)
    if isinstance(who, ORJSONResponse):
        return who
    run = state.store.find_run(entity, project, run_id)
    if run is None:
        return _error(404, f"no run {entity}/{project}/{run_id}")
    RunWriter(state.store).file_uploaded(run, name, data)
    return ORJSONResponse({"name": name, "size": len(data)})


@router.put(UPLOAD_PREFIX + "/{entity}/{project}/{run_id}/{name:path}")
async def upload(entity: str, project: str, run_id: str, name: str, request: Request) -> Response:
    data = await request.body()
    return await run_in_threadpool(
        _upload,
        app_state(request),
        dict(request.query_params),
        request.headers.get("authorization"),
        entity,
        project,
        run_id,
        name,
        data,
    )


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


@router.post("/sdk/otel/v1/{signal}")
async def client_telemetry(signal: str) -> Response:
    """The wandb client reports its own telemetry to its server; runyard keeps none of it."""
    return ORJSONResponse({})
