"""A run's files (``run.save``): list, upload (raw body) and download.

Names are relative paths with ``/`` separators; ``..``, ``.``, empty parts and absolute paths
are refused (400) by the store, which also keeps every file inside the run's folder. Uploads
are limited by ``--max-file-mb`` (413).
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from runyard.server.models import FileOut, doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.routes.runs import Entity, Project, RunId, StoreDep, Who, find_run
from runyard.server.serialize import record
from runyard.server.state import get_store

router = APIRouter(tags=["files"])

FileName = Annotated[str, Path(min_length=1, max_length=1024)]


@router.get(
    "/runs/{entity}/{project}/{run_id}/files",
    response_class=ORJSONResponse,
    responses=doc(list[FileOut], 401, 403, 404),
)
def list_files(
    entity: Entity, project: Project, run_id: RunId, store: StoreDep, who: Who
) -> ORJSONResponse:
    """The run's files, by name."""
    find_run(store, who, entity, project, run_id)
    return json_response([record(f) for f in store.list_files(entity, project, run_id)])


@router.put(
    "/runs/{entity}/{project}/{run_id}/files/{name:path}",
    response_class=ORJSONResponse,
    responses=doc(FileOut, 400, 401, 403, 404, 413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def put_file(
    entity: Entity,
    project: Project,
    run_id: RunId,
    name: FileName,
    request: Request,
    who: Who,
) -> ORJSONResponse:
    """Store (or replace) a file of the run; the body is the file's bytes."""
    store = get_store(request)
    await run_in_threadpool(find_run, store, who, entity, project, run_id)
    data = await request.body()
    saved = await run_in_threadpool(store.put_file, entity, project, run_id, name, data)
    return json_response(record(saved))


@router.get(
    "/runs/{entity}/{project}/{run_id}/files/{name:path}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        **{k: v for k, v in doc(None, 400, 401, 403, 404).items() if k != 200},
    },
)
def get_file(
    entity: Entity, project: Project, run_id: RunId, name: FileName, store: StoreDep, who: Who
) -> Response:
    """The file's bytes."""
    find_run(store, who, entity, project, run_id)
    data = store.read_file(entity, project, run_id, name)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(data, media_type=media_type)
