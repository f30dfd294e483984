"""A run's files (``run.save``, media): list, upload (streamed body) and download.

Names are relative paths with ``/`` separators; ``..``, ``.``, empty parts and absolute paths
are refused (400) by the store. Uploads stream into the store's content-addressed blob store
(runyard.server.uploads; the same content is stored once) and are limited by
``--max-file-mb`` (413). ``x-runyard-blob: sha256:<hex>`` makes the server verify the content;
``x-runyard-link: sha256:<hex>`` with an empty body names content that a file of the same
entity already has (409 if none: upload it), so a client need not send it twice.

Downloads stream (``sendfile`` from a local blob store, ranges supported) with the guessed
content type, ``X-Content-Type-Options: nosniff`` and ``Content-Security-Policy: sandbox``:
a user's HTML (or SVG) opened from here runs in an opaque origin, never the dashboard's, so it
cannot read the dashboard's API key.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from runyard.server.errors import ApiError
from runyard.server.models import FileOut, doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.routes.runs import Entity, Project, RunId, StoreDep, Who, find_run
from runyard.server.serialize import record
from runyard.server.state import get_store
from runyard.server.uploads import put_streamed

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
    """Store (or replace) a file of the run; the body is the file's bytes (streamed)."""
    store = get_store(request)
    await run_in_threadpool(find_run, store, who, entity, project, run_id)
    link = request.headers.get("x-runyard-link")
    if link is not None:
        linked = await run_in_threadpool(store.link_file, entity, project, run_id, name, link)
        if linked is None:
            raise ApiError(409, f"no file of {entity} has {link}: upload the content")
        return json_response(record(linked))
    expected = request.headers.get("x-runyard-blob")
    limit = request.app.state.runyard.settings.max_file
    saved = await put_streamed(
        request,
        lambda chunks: store.put_file(
            entity, project, run_id, name, chunks, expected_key=expected, max_size=limit
        ),
    )
    return json_response(record(saved))


#: Content types for media files whose extension mimetypes does not know.
_TYPES = {".json": "application/json", ".wav": "audio/wav", ".webm": "video/webm"}
#: Everything served from here is sandboxed when opened as a page; HTML may run scripts there.
_SANDBOX = "sandbox"
_SANDBOX_HTML = "sandbox allow-scripts"


def content_type(name: str) -> str:
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    return _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


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
    """The file's bytes (streamed; see the module docstring for the headers)."""
    find_run(store, who, entity, project, run_id)
    media_type = content_type(name)
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": _SANDBOX_HTML if media_type == "text/html" else _SANDBOX,
        "Cache-Control": "private, max-age=3600",
    }
    path = store.local_file_path(entity, project, run_id, name)
    if path is not None:
        return FileResponse(path, media_type=media_type, headers=headers)
    info, stream = store.open_file(entity, project, run_id, name)
    if info.sha256:
        headers["X-Runyard-Sha256"] = info.sha256
    if info.size >= 0:
        headers["Content-Length"] = str(info.size)

    def body() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(1 << 20):
                yield chunk

    return StreamingResponse(body(), media_type=media_type, headers=headers)
