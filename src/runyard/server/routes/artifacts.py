"""Artifacts over HTTP (the routes stay thin: runyard.artifacts.sql does the work).

Logging a version: ``POST /artifacts/{entity}/blobs/begin`` (lease the manifest's keys, learn
which to upload), ``PUT /artifacts/{entity}/blobs/{key}`` for each (the body streams to the blob
store, verified against the key; ``?offset=N`` appends a part of a resumable upload and ``final``
completes it; ``GET .../blobs/{key}/upload`` says where an interrupted upload stands), then
``POST /artifacts/{entity}/{project}/versions`` commits it (409 with ``missing`` keys if a blob is
not stored for the entity). Reads: collections, versions, a version with its manifest, blobs
(streamed, with ``Range``; a 307 to a presigned URL when the server presigns), lineage. Every
route checks the caller's access to ``{entity}``; a blob is readable by an entity only once that
entity holds it (runyard.artifacts.base's contract).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from runyard.artifacts.base import (
    ArtifactNotFoundError,
    MissingBlobsError,
    RunRef,
    VersionRecord,
)
from runyard.artifacts.manifest import ArtifactError, ManifestEntry
from runyard.blobs import BlobDigestMismatchError, BlobError, BlobNotFoundError
from runyard.server.auth import admin_principal, principal, require_entity
from runyard.server.errors import error_response
from runyard.server.models import doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.state import app_state
from runyard.store.sql_auth import Principal

router = APIRouter(tags=["artifacts"])

Entity = Annotated[str, Path(min_length=1, max_length=128)]
Project = Annotated[str, Path(min_length=1, max_length=128)]
Name = Annotated[str, Path(min_length=1, max_length=128)]
Ref = Annotated[str, Path(min_length=1, max_length=128)]
Key = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^sha256:[0-9a-f]{64}$")]
Who = Annotated[Principal, Depends(principal)]
_GATHER = 1 << 20


class BeginIn(BaseModel):
    keys: list[Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]] = Field(max_length=200_000)


class EntryIn(BaseModel):
    digest: str = Field(default="", max_length=128)
    size: int = Field(default=0, ge=0, le=2**62)
    blob: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    ref: str | None = Field(default=None, max_length=4096)
    extra: dict[str, Any] = Field(default_factory=dict)


class CommitIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=64)
    contents: dict[str, EntryIn] = Field(max_length=1_000_000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    description: str | None = Field(default=None, max_length=100_000)
    aliases: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=100
    )
    run_id: str | None = Field(default=None, max_length=64)
    lease_id: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=512)


class AliasesIn(BaseModel):
    add: list[Annotated[str, Field(max_length=128)]] = Field(default_factory=list, max_length=100)
    remove: list[Annotated[str, Field(max_length=128)]] = Field(
        default_factory=list, max_length=100
    )


class UsageIn(BaseModel):
    entity: str = Field(min_length=1, max_length=128)
    project: str = Field(min_length=1, max_length=128)
    run_id: str = Field(min_length=1, max_length=64)


def open_artifacts(store: Any, location: str | None, presign: bool) -> Any:
    """The server's artifact store (blobs at ``location``, default beside the store)."""
    from runyard.artifacts.sql import SQLArtifactStore
    from runyard.blobs import open_blob_store

    blobs = open_blob_store(location) if location else store.blobs
    return SQLArtifactStore(store, blobs, presign=presign)


def install_handlers(app: FastAPI) -> None:
    """Artifact and blob errors as 4xx (registered by create_app)."""

    async def artifact_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, MissingBlobsError):
            return ORJSONResponse(
                {"error": {"code": "missing_blobs", "message": str(exc)}, "missing": exc.keys},
                status_code=409,
            )
        if isinstance(exc, ArtifactNotFoundError):
            return error_response(404, "not_found", str(exc))
        return error_response(400, "bad_request", str(exc))

    async def blob_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, BlobNotFoundError):
            return error_response(404, "not_found", str(exc))
        if isinstance(exc, BlobDigestMismatchError):
            return error_response(
                422, "digest_mismatch", f"{exc}: the upload was not stored; send the content again"
            )
        return error_response(400, "bad_request", str(exc))

    app.add_exception_handler(ArtifactError, artifact_error)
    app.add_exception_handler(BlobError, blob_error)


def _arts(request: Request) -> Any:
    return app_state(request).artifacts


def version_doc(v: VersionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": v.id,
        "entity": v.entity,
        "project": v.project,
        "name": v.name,
        "type": v.type,
        "version": v.version,
        "digest": v.digest,
        "size": v.size,
        "file_count": v.file_count,
        "metadata": v.metadata,
        "description": v.description,
        "aliases": v.aliases,
        "created_by": v.created_by,
        "created_at": v.created_at,
        "reused": v.reused,
        "source": v.source,
    }
    if v.entries is not None:
        out["contents"] = {e.path: e.to_json() for e in v.entries}
    return out


def _chunks_from(request: Request) -> Iterator[bytes]:
    """The request body as chunks of about 1 MiB, for a worker thread (bridged from the loop)."""
    stream: AsyncIterator[bytes] = request.stream().__aiter__()
    done = False

    async def gather() -> bytes:
        nonlocal done
        parts: list[bytes] = []
        size = 0
        while size < _GATHER:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                done = True
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)

    while not done:
        data = anyio.from_thread.run(gather)
        if data:
            yield data


@router.post(
    "/artifacts/{entity}/blobs/begin",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 422),
)
def begin(entity: Entity, body: BeginIn, request: Request, who: Who) -> ORJSONResponse:
    """Lease the keys of a manifest being logged; which ones this entity must upload."""
    require_entity(who, entity)
    plan = _arts(request).begin(entity, body.keys)
    return json_response(
        {"lease_id": plan.lease_id, "missing": plan.missing, "presigned": plan.presigned}
    )


@router.post(
    "/artifacts/{entity}/blobs/{key}/complete",
    response_class=ORJSONResponse,
    responses=doc(None, 400, 401, 403, 404, 422),
)
def complete_presigned(entity: Entity, key: Key, request: Request, who: Who) -> ORJSONResponse:
    """The client uploaded the blob to the presigned URL ``begin`` gave it: verify (the server
    reads it back) and store it."""
    require_entity(who, entity)
    info = _arts(request).complete_presigned(entity, key)
    return json_response({"stored": True, "size": info.size})


@router.get(
    "/artifacts/{entity}/blobs/{key}/upload",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 422),
)
def upload_state(entity: Entity, key: Key, request: Request, who: Who) -> ORJSONResponse:
    """Where an interrupted upload of the blob stands (``offset``: bytes stored)."""
    require_entity(who, entity)
    arts = _arts(request)
    if arts.owns(entity, key):
        return json_response({"offset": None, "stored": True})
    offset = 0
    if arts.blobs.supports_resumable:
        offset = arts.blobs.resumable(arts.upload_id(entity, key), expected_key=key).offset
    return json_response({"offset": offset, "stored": False})


@router.put(
    "/artifacts/{entity}/blobs/{key}",
    response_class=ORJSONResponse,
    responses=doc(None, 400, 401, 403, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def put_blob(
    entity: Entity,
    key: Key,
    request: Request,
    who: Who,
    offset: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    final: bool = True,
) -> ORJSONResponse:
    """Store a blob for the entity (verified against ``key``). Without ``offset`` the body is
    the whole content; with it, the body is the part at ``offset`` of a resumable upload, and
    ``final=true`` completes it."""
    require_entity(who, entity)
    arts = _arts(request)
    if offset is None:
        await run_in_threadpool(lambda: arts.ingest(entity, key, _chunks_from(request)))
        return json_response({"stored": True})
    if not arts.blobs.supports_resumable:
        raise BlobError("this server's blob store has no resumable uploads: send the whole blob")

    def part() -> dict[str, Any]:
        upload = arts.blobs.resumable(arts.upload_id(entity, key), expected_key=key)
        new = upload.append(_chunks_from(request), offset)
        if not final:
            return {"offset": new, "stored": False}
        import hashlib

        from runyard.artifacts.sql import md5_b64

        md5 = hashlib.md5(usedforsecurity=False)
        info = upload.complete([md5])
        arts.record_blob(entity, info, md5_b64(md5))
        return {"offset": new, "stored": True}

    return json_response(await run_in_threadpool(part))


@router.get(
    "/artifacts/{entity}/blobs/{key}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {"schema": {"type": "string"}}}},
        **{k: v for k, v in doc(None, 401, 403, 404, 422).items() if k != 200},
    },
)
def get_blob(entity: Entity, key: Key, request: Request, who: Who) -> Response:
    """The blob's bytes (``Range`` works), or a 307 to a presigned URL."""
    require_entity(who, entity)
    arts = _arts(request)
    if arts.presign:
        url = arts.blob_url(entity, key)
        if url:
            return RedirectResponse(url, status_code=307)
    path = arts.local_blob_path(entity, key)
    if path is not None:
        return FileResponse(path, media_type="application/octet-stream")
    info = arts.blobs.stat(key)
    if info is None:
        raise BlobNotFoundError(f"no blob {key}")
    return StreamingResponse(
        arts.blobs.iter_chunks(key),
        media_type="application/octet-stream",
        headers={"content-length": str(info.size)},
    )


@router.post(
    "/artifacts/{entity}/{project}/versions",
    response_class=ORJSONResponse,
    responses=doc(None, 400, 401, 403, 409, 422),
)
def commit(
    entity: Entity, project: Project, body: CommitIn, request: Request, who: Who
) -> ORJSONResponse:
    """Commit a version (or reuse the one with the same digest); 409 ``missing`` blobs."""
    require_entity(who, entity)
    if body.source is not None:
        require_entity(who, body.source.split("/", 1)[0])
    entries = [
        ManifestEntry(path, e.digest, e.size, e.blob, e.ref, e.extra)
        for path, e in body.contents.items()
    ]
    record = _arts(request).commit(
        entity,
        project,
        body.name,
        body.type,
        entries,
        metadata=body.metadata,
        description=body.description,
        aliases=body.aliases,
        run_id=body.run_id,
        lease_id=body.lease_id,
        source=body.source,
    )
    return json_response(version_doc(record))


@router.get(
    "/artifacts/{entity}/{project}",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 422),
)
def collections(
    entity: Entity, project: Project, request: Request, who: Who, type: str | None = None
) -> ORJSONResponse:
    """The project's artifact names, with their type, version count and latest version."""
    require_entity(who, entity)
    found = _arts(request).collections(entity, project, type)
    return json_response([c.__dict__ for c in found])


@router.get(
    "/artifacts/{entity}/{project}/{name}/versions",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 404, 422),
)
def versions(
    entity: Entity, project: Project, name: Name, request: Request, who: Who
) -> ORJSONResponse:
    """The name's versions, newest first."""
    require_entity(who, entity)
    return json_response([version_doc(v) for v in _arts(request).versions(entity, project, name)])


@router.get(
    "/artifacts/{entity}/{project}/{name}/versions/{ref}",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 404, 422),
)
def get_version(
    entity: Entity, project: Project, name: Name, ref: Ref, request: Request, who: Who
) -> ORJSONResponse:
    """A version (``vN``, an alias or a digest) with its manifest (``contents``)."""
    require_entity(who, entity)
    return json_response(version_doc(_arts(request).get(entity, project, name, ref)))


@router.post(
    "/artifacts/{entity}/{project}/{name}/versions/{ref}/aliases",
    response_class=ORJSONResponse,
    responses=doc(None, 400, 401, 403, 404, 422),
)
def set_aliases(
    entity: Entity,
    project: Project,
    name: Name,
    ref: Ref,
    body: AliasesIn,
    request: Request,
    who: Who,
) -> ORJSONResponse:
    """Add aliases to the version (moving them) and remove some of its aliases."""
    require_entity(who, entity)
    arts = _arts(request)
    record = arts.get(entity, project, name, ref)
    return json_response(version_doc(arts.set_aliases(record, body.add, body.remove)))


@router.delete(
    "/artifacts/{entity}/{project}/{name}/versions/{ref}",
    response_class=ORJSONResponse,
    responses=doc(None, 400, 401, 403, 404, 422),
)
def delete_version(
    entity: Entity,
    project: Project,
    name: Name,
    ref: Ref,
    request: Request,
    who: Who,
    force: bool = False,
) -> ORJSONResponse:
    """Delete the version (refused while it has aliases unless ``force``); bytes freed."""
    require_entity(who, entity)
    arts = _arts(request)
    record = arts.get(entity, project, name, ref)
    return json_response({"freed": arts.delete(record, force=force)})


@router.post(
    "/artifacts/{entity}/{project}/{name}/versions/{ref}/usage",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 404, 422),
)
def use(
    entity: Entity,
    project: Project,
    name: Name,
    ref: Ref,
    body: UsageIn,
    request: Request,
    who: Who,
) -> ORJSONResponse:
    """Record that a run used the version."""
    require_entity(who, entity)
    require_entity(who, body.entity)
    arts = _arts(request)
    record = arts.get(entity, project, name, ref)
    arts.use(record, RunRef(body.entity, body.project, body.run_id))
    return json_response({"ok": True})


@router.get(
    "/artifacts/{entity}/{project}/{name}/versions/{ref}/usage",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 404, 422),
)
def used_by(
    entity: Entity, project: Project, name: Name, ref: Ref, request: Request, who: Who
) -> ORJSONResponse:
    """The runs that used the version (only those of entities the caller may see)."""
    require_entity(who, entity)
    arts = _arts(request)
    runs = arts.used_by(arts.get(entity, project, name, ref))
    return json_response([r.__dict__ for r in runs if who.may_access(r.entity)])


@router.get(
    "/runs/{entity}/{project}/{run_id}/artifacts",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403, 422),
)
def run_artifacts(
    entity: Entity,
    project: Project,
    run_id: Annotated[str, Path(min_length=1, max_length=64)],
    request: Request,
    who: Who,
) -> ORJSONResponse:
    """The versions a run logged and used (those of entities the caller may see)."""
    require_entity(who, entity)
    logged, used = _arts(request).run_artifacts(entity, project, run_id)
    return json_response(
        {
            "logged": [version_doc(v) for v in logged],
            "used": [version_doc(v) for v in used if who.may_access(v.entity)],
        }
    )


@router.post(
    "/artifacts/gc",
    response_class=ORJSONResponse,
    responses=doc(None, 401, 403),
)
def gc(
    request: Request, who: Annotated[Principal, Depends(admin_principal)], dry_run: bool = False
) -> ORJSONResponse:
    """Delete blobs no version references and no upload in flight leases (admin)."""
    report = _arts(request).gc(dry_run=dry_run)
    return json_response(report.__dict__)
