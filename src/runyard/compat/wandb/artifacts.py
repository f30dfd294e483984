"""W&B artifacts (``run.log_artifact``, ``run.use_artifact``, ``wandb.Api().artifact``) as
runyard artifacts: the same versions, aliases, blobs and lineage (runyard.artifacts).

How the client's protocol maps onto :class:`~runyard.artifacts.base.ArtifactStore`:

* ``createArtifact`` (name, type, aliases, metadata, the manifest's digest): a version with that
  digest already exists → it is the answer (``COMMITTED``, the aliases move to it, as W&B's
  digest deduplication does). Otherwise a *draft*: its document is stored as a blob of the
  entity (content-addressed, so the draft id — ``ArtifactDraft`` + entity + key — is all the
  state the client carries; nothing is kept in a server process).
* ``createArtifactFiles`` (path, base64 MD5): content the entity already holds gets no upload
  URL (the client skips it); other files get a signed ``PUT`` URL whose path names the MD5. The
  upload streams into the blob store (sha256-keyed), its MD5 checked against the URL's, and the
  blob is recorded with its MD5 (``SQLArtifactStore.record_blob``).
* ``createArtifactManifest`` / ``updateArtifactManifest``: a signed ``PUT`` URL for the
  manifest. Its upload commits the version (``ArtifactStore.commit``: v0, v1, ... atomically;
  entries name blobs by the MD5s their uploads recorded); ``commitArtifact`` answers it.
* ``useArtifact``: lineage (``ArtifactStore.use``).
* Reads: ``artifact(id)``, ``project { artifact(name) artifactCollectionMembership(name)
  artifactType(name) artifactCollection(name) }``, the manifest in W&B's format at a signed
  URL, and signed URLs for each file (``files``, ``filesByManifestEntries``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import zlib
from collections.abc import Iterator
from typing import Any

import orjson

from runyard.artifacts.base import (
    ArtifactNotFoundError,
    RunRef,
    VersionRecord,
)
from runyard.artifacts.manifest import ArtifactError, ManifestEntry
from runyard.compat.wandb import convert
from runyard.compat.wandb.context import Context
from runyard.compat.wandb.graphql import Field, GraphQLFieldError
from runyard.compat.wandb.ids import node_id, padded_node_id, parse_node_id
from runyard.compat.wandb.nodes import PROJECT_FIELDS, iso, project_node
from runyard.compat.wandb.resolvers import RESOLVERS
from runyard.compat.wandb.uploads import ARTIFACT_PREFIX, path_of, signed_url
from runyard.store.sql_auth import Principal

MANIFEST_NAME = "wandb_manifest.json"
MAX_MANIFEST_BYTES = 256 << 20


class DraftError(Exception):
    """A draft or manifest the door cannot use; the message is for the user."""


def _artifacts(ctx_state: Any) -> Any:
    store = getattr(ctx_state, "artifacts", None)
    if store is None:
        raise GraphQLFieldError("this runyard server serves no artifacts")
    return store


# -- ids --------------------------------------------------------------------------------------


def artifact_id(v: VersionRecord) -> str:
    return padded_node_id("Artifact", v.entity, v.project, v.name, str(v.version))


def parse_artifact_id(text: Any) -> tuple[str, str, str, int] | None:
    parts = parse_node_id(text if isinstance(text, str) else None, "Artifact")
    if not parts or len(parts) != 4 or not parts[3].isdigit():
        return None
    return parts[0], parts[1], parts[2], int(parts[3])


def draft_id(entity: str, key: str) -> str:
    return node_id("ArtifactDraft", entity, key)


def parse_draft_id(text: Any) -> tuple[str, str] | None:
    parts = parse_node_id(text if isinstance(text, str) else None, "ArtifactDraft")
    if not parts or len(parts) != 2:
        return None
    return parts[0], parts[1]


def project_internal_id(entity: str, project: str) -> str:
    """A stable number for a project (W&B clients want one; runyard's is not exposed)."""
    return str(zlib.crc32(f"{entity}/{project}".encode()))


def md5_hex(b64: str) -> str:
    try:
        return base64.b64decode(b64, validate=True).hex()
    except (binascii.Error, ValueError):
        raise GraphQLFieldError(f"{b64!r} is not a base64 MD5") from None


# -- drafts -----------------------------------------------------------------------------------


def _store_blob(artifacts: Any, entity: str, data: bytes) -> str:
    md5 = hashlib.md5(data, usedforsecurity=False)
    with artifacts.blobs.writer() as w:
        w.write(data)
        info = w.commit()
    artifacts.record_blob(entity, info, base64.b64encode(md5.digest()).decode())
    return str(info.key)


def _read_draft(artifacts: Any, entity: str, key: str) -> dict[str, Any]:
    try:
        data = b"".join(artifacts.open_blob(entity, key))
        doc = orjson.loads(data)
    except (ArtifactNotFoundError, orjson.JSONDecodeError):
        raise DraftError("this artifact draft is unknown to the server: log it again") from None
    if not isinstance(doc, dict) or doc.get("kind") != "wandb-artifact-draft":
        raise DraftError("this artifact draft is unknown to the server: log it again")
    return doc


def _draft_of(ctx: Context, text: Any) -> tuple[str, str, dict[str, Any]]:
    ref = parse_draft_id(text)
    if ref is None:
        raise GraphQLFieldError(f"{text!r} is not an artifact being logged on this server")
    entity, key = ref
    ctx.entity(entity)
    try:
        return entity, key, _read_draft(_artifacts(ctx.state), entity, key)
    except DraftError as exc:
        raise GraphQLFieldError(str(exc)) from None


# -- nodes ------------------------------------------------------------------------------------


def _project_info(ctx: Context, entity: str, project: str) -> dict[str, Any]:
    node = project_node(ctx, entity, project)
    node["internalId"] = project_internal_id(entity, project)
    return node


def _sequence(ctx: Context, v: VersionRecord) -> dict[str, Any]:
    return {
        "__typename": "ArtifactSequence",
        "id": node_id("ArtifactSequence", v.entity, v.project, v.name),
        "name": v.name,
        "project": _project_info(ctx, v.entity, v.project),
        "latestArtifact": Field(lambda _a: _latest_node(ctx, v.entity, v.project, v.name)),
        "artifactType": {"__typename": "ArtifactType", "name": v.type},
    }


def _latest_node(ctx: Context, entity: str, project: str, name: str) -> dict[str, Any] | None:
    try:
        latest = _artifacts(ctx.state).get(entity, project, name, "latest")
    except ArtifactNotFoundError:
        return None
    return artifact_node(ctx, latest)


def _alias_nodes(ctx: Context, v: VersionRecord) -> list[dict[str, Any]]:
    return [
        {
            "__typename": "ArtifactAlias",
            "id": node_id("ArtifactAlias", v.entity, v.project, v.name, a),
            "alias": a,
            "artifactCollectionName": v.name,
            "artifactCollection": _sequence(ctx, v),
        }
        for a in v.aliases
    ]


def _sign(ctx: Context, path: str, method: str) -> str:
    auth = ctx.state.auth_store if ctx.state.settings.auth else None
    return signed_url(ctx.base_url, path, method, auth, ctx.who)


def _file_nodes(
    ctx: Context, v: VersionRecord, args: dict[str, Any], wanted: list[str] | None = None
) -> dict[str, Any]:
    full = (
        v
        if v.entries is not None
        else _artifacts(ctx.state).get(v.entity, v.project, v.name, f"v{v.version}")
    )
    entries = [e for e in full.entries or [] if e.blob is not None]
    names = args.get("names")
    if wanted is not None:
        keep = set(wanted)
        entries = [e for e in entries if e.path in keep]
    elif isinstance(names, list) and names:
        keep = {str(n) for n in names}
        entries = [e for e in entries if e.path in keep]
    after = args.get("after")
    offset = int(after) if isinstance(after, str) and after.isdigit() else 0
    first = args.get("first")
    limit = first if isinstance(first, int) and first > 0 else 10_000
    page = entries[offset : offset + limit]
    edges = []
    for i, e in enumerate(page):
        url = _sign(ctx, path_of(ARTIFACT_PREFIX, v.entity, "blob", str(e.blob)), "GET")
        edges.append(
            {
                "node": {
                    "__typename": "File",
                    "id": node_id("File", v.entity, str(e.blob)),
                    "name": e.path,
                    "displayName": e.path.rsplit("/", 1)[-1],
                    "directUrl": url,
                    "url": url,
                    "sizeBytes": e.size,
                    "digest": e.digest,
                    "md5": e.digest,
                    "mimetype": None,
                    "storagePath": str(e.blob),
                },
                "cursor": str(offset + i + 1),
            }
        )
    end = offset + len(page)
    return {
        "edges": edges,
        "totalCount": len(entries),
        "pageInfo": {
            "__typename": "PageInfo",
            "endCursor": str(end),
            "hasNextPage": end < len(entries),
        },
    }


def artifact_node(ctx: Context, v: VersionRecord, state: str = "COMMITTED") -> dict[str, Any]:
    aid = artifact_id(v)
    manifest_path = path_of(
        ARTIFACT_PREFIX, v.entity, "manifest", v.project, v.name, str(v.version)
    )
    created_by = None
    if v.created_by:
        created_by = {
            "__typename": "Run",
            "id": node_id("Run", v.entity, v.project, v.created_by),
            "name": v.created_by,
            "displayName": v.created_by,
            "project": _project_info(ctx, v.entity, v.project),
        }

    def by_entries(args: dict[str, Any]) -> dict[str, Any]:
        wanted = [
            str(e.get("name"))
            for e in args.get("entries") or []
            if isinstance(e, dict) and e.get("name") is not None
        ]
        return _file_nodes(ctx, v, {}, wanted)

    return {
        "__typename": "Artifact",
        "id": aid,
        "state": state,
        "digest": v.digest,
        "digestAlgorithm": "MANIFEST_MD5",
        "commitHash": v.digest[:12],
        "versionIndex": v.version,
        "version": f"v{v.version}",
        "description": v.description,
        "metadata": convert.dumps_wandb(v.metadata or {}),
        "size": v.size,
        "fileCount": v.file_count,
        "createdAt": iso(v.created_at),
        "updatedAt": iso(v.created_at),
        "ttlDurationSeconds": -1,
        "ttlIsInherited": True,
        "historyStep": None,
        "tags": [],
        "labels": None,
        "aliases": _alias_nodes(ctx, v),
        "artifactType": {
            "__typename": "ArtifactType",
            "id": node_id("Type", v.type),
            "name": v.type,
        },
        "artifactSequence": _sequence(ctx, v),
        "artifactCollection": _sequence(ctx, v),
        "artifactCollections": {"edges": [{"node": _sequence(ctx, v)}]},
        "currentManifest": {
            "__typename": "ArtifactManifest",
            "id": node_id("ArtifactManifest", aid),
            "file": {
                "__typename": "File",
                "id": node_id("ManifestFile", aid),
                "name": MANIFEST_NAME,
                "directUrl": _sign(ctx, manifest_path, "GET"),
            },
        },
        "files": Field(lambda args: _file_nodes(ctx, v, args)),
        "filesByManifestEntries": Field(by_entries),
        "createdBy": created_by,
        "usedBy": {"edges": []},
    }


def membership_node(ctx: Context, v: VersionRecord) -> dict[str, Any]:
    return {
        "__typename": "ArtifactCollectionMembership",
        "id": node_id("Membership", artifact_id(v)),
        "versionIndex": v.version,
        "createdAt": iso(v.created_at),
        "aliases": _alias_nodes(ctx, v),
        "artifactCollection": _sequence(ctx, v),
        "artifact": artifact_node(ctx, v),
        "files": Field(lambda args: _file_nodes(ctx, v, args)),
    }


def _split_ref(name: str) -> tuple[str, str]:
    if ":" in name:
        base, ref = name.split(":", 1)
        return base, ref or "latest"
    return name, "latest"


def _version(ctx: Context, entity: str, project: str, name: str, ref: str) -> VersionRecord | None:
    try:
        found: VersionRecord = _artifacts(ctx.state).get(entity, project, name, ref)
    except ArtifactNotFoundError:
        return None
    return found


def _project_artifact(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any] | None:
        name = args.get("name")
        if not isinstance(name, str):
            return None
        base, ref = _split_ref(name)
        found = _version(ctx, entity, project, base, ref)
        return None if found is None else artifact_node(ctx, found)

    return Field(resolve)


def _project_membership(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any] | None:
        name = args.get("name")
        if not isinstance(name, str):
            return None
        base, ref = _split_ref(name)
        found = _version(ctx, entity, project, base, ref)
        return None if found is None else membership_node(ctx, found)

    return Field(resolve)


def _project_type(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any] | None:
        name = args.get("name")
        collections = _artifacts(ctx.state).collections(entity, project, name)
        if not collections:
            return None
        return {
            "__typename": "ArtifactType",
            "id": node_id("Type", str(name)),
            "name": name,
            "description": None,
            "createdAt": iso(min(c.created_at for c in collections)),
        }

    return Field(resolve)


def _project_collection(ctx: Context, entity: str, project: str) -> Field:
    def resolve(args: dict[str, Any]) -> dict[str, Any] | None:
        name = args.get("name")
        if not isinstance(name, str):
            return None
        found = _version(ctx, entity, project, name, "latest")
        if found is None:
            return None
        node = _sequence(ctx, found)

        def membership(margs: dict[str, Any]) -> dict[str, Any] | None:
            alias = margs.get("aliasName") or "latest"
            version = _version(ctx, entity, project, name, str(alias))
            return None if version is None else membership_node(ctx, version)

        node["artifactMembership"] = Field(membership)
        return node

    return Field(resolve)


PROJECT_FIELDS["artifact"] = _project_artifact
PROJECT_FIELDS["artifactCollectionMembership"] = _project_membership
PROJECT_FIELDS["artifactType"] = _project_type
PROJECT_FIELDS["artifactCollection"] = _project_collection
PROJECT_FIELDS["artifactSequence"] = _project_collection


# -- resolvers ------------------------------------------------------------------------------------


def version_of(ctx: Context, text: Any) -> VersionRecord | None:
    """The version an artifact id names: a version's id, or the id ``createArtifact`` gave
    while it was logged (the client keeps that one: ``Artifact.wait()``, ``use_artifact``).
    None for a draft not committed yet; :class:`GraphQLFieldError` for a foreign id."""
    ref = parse_artifact_id(text)
    if ref is not None:
        entity, project, name, version = ref
        ctx.entity(entity)
        return _version(ctx, entity, project, name, f"v{version}")
    if parse_draft_id(text) is None:
        raise GraphQLFieldError(f"{text!r} is not an artifact id of this server")
    entity, _key, draft = _draft_of(ctx, text)
    return _version(ctx, entity, draft["project"], draft["name"], draft["digest"])


@RESOLVERS.field("artifact")
def artifact(ctx: Context, args: dict[str, Any]) -> dict[str, Any] | None:
    found = version_of(ctx, args.get("id"))
    return None if found is None else artifact_node(ctx, found)


def _aliases(data: dict[str, Any]) -> list[str]:
    out = []
    for item in data.get("aliases") or []:
        alias = item.get("alias") if isinstance(item, dict) else item
        if isinstance(alias, str) and alias and alias != "latest":
            out.append(alias)
    return out


# What wandb-core's capability probes (``__type``) are told: the ``Artifact`` fields
# artifact_node answers and the ``CreateArtifactInput`` fields createArtifact reads (no
# ``tags``/``ttlDurationSeconds``: runyard does not keep them, so the client leaves them out).
RESOLVERS.describe(
    "Artifact",
    [
        "aliases",
        "artifactCollection",
        "artifactCollections",
        "artifactSequence",
        "artifactType",
        "commitHash",
        "createdAt",
        "createdBy",
        "currentManifest",
        "description",
        "digest",
        "digestAlgorithm",
        "displayName",
        "file",
        "fileCount",
        "files",
        "filesByManifestEntries",
        "historyStep",
        "id",
        "labels",
        "metadata",
        "name",
        "project",
        "size",
        "state",
        "tags",
        "ttlDurationSeconds",
        "ttlIsInherited",
        "updatedAt",
        "usedBy",
        "version",
        "versionIndex",
    ],
)
RESOLVERS.describe(
    "CreateArtifactInput",
    [
        "entityName",
        "projectName",
        "artifactTypeName",
        "artifactCollectionName",
        "artifactCollectionNames",
        "digest",
        "digestAlgorithm",
        "description",
        "aliases",
        "metadata",
        "runName",
        "clientID",
        "sequenceClientID",
        "historyStep",
        "enableDigestDeduplication",
        "distributedID",
    ],
    input_type=True,
)


@RESOLVERS.field("createArtifact", mutation=True)
def create_artifact(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input")
    if not isinstance(data, dict):
        raise GraphQLFieldError("createArtifact needs an input object")
    entity = ctx.entity(data.get("entityName"))
    names = data.get("artifactCollectionNames") or [data.get("artifactCollectionName")]
    fields = (
        data.get("projectName"),
        names[0] if names else None,
        data.get("artifactTypeName"),
        data.get("digest"),
    )
    if not all(isinstance(x, str) and x for x in fields):
        raise GraphQLFieldError(
            "createArtifact needs projectName, artifactCollectionName, artifactTypeName, digest"
        )
    project, name, kind, digest = (str(x) for x in fields)
    artifacts = _artifacts(ctx.state)
    metadata = convert.loads(data["metadata"]) if isinstance(data.get("metadata"), str) else None
    for existing in artifacts.collections(entity, project):
        if existing.name == name and existing.type != kind:
            raise GraphQLFieldError(
                f"artifact {entity}/{project}/{name} is of type {existing.type!r}, not "
                f"{kind!r}: log it with type={existing.type!r} or choose another name"
            )
    same = _version(ctx, entity, project, name, digest)
    if same is not None:
        # W&B's digest deduplication: the same content is the same version; aliases move.
        version = _commit(
            ctx,
            entity,
            project,
            {
                "name": name,
                "type": kind,
                "aliases": _aliases(data),
                "metadata": metadata if isinstance(metadata, dict) else same.metadata,
                "description": data.get("description") or same.description,
                "run": data.get("runName"),
            },
            same.entries or [],
        )
        return {"artifact": artifact_node(ctx, version)}
    draft = {
        "kind": "wandb-artifact-draft",
        "entity": entity,
        "project": project,
        "name": name,
        "type": kind,
        "digest": digest,
        "aliases": _aliases(data),
        "metadata": metadata if isinstance(metadata, dict) else {},
        "description": data.get("description"),
        "run": data.get("runName"),
        "client_id": data.get("clientID"),
    }
    key = _store_blob(artifacts, entity, orjson.dumps(convert.clean_doc(draft)))
    latest = _latest_node(ctx, entity, project, name)
    return {
        "artifact": {
            "__typename": "Artifact",
            "id": draft_id(entity, key),
            "state": "PENDING",
            "digest": digest,
            "artifactSequence": {
                "__typename": "ArtifactSequence",
                "name": name,
                "latestArtifact": None if latest is None else {"id": latest["id"]},
            },
        }
    }


def _manifest_answer(ctx: Context, entity: str, key: str, draft_text: str) -> dict[str, Any]:
    path = path_of(ARTIFACT_PREFIX, entity, "draft-manifest", key)
    return {
        "artifactManifest": {
            "__typename": "ArtifactManifest",
            "id": node_id("DraftManifest", draft_text),
            "file": {
                "__typename": "File",
                "id": node_id("DraftManifestFile", draft_text),
                "name": MANIFEST_NAME,
                "uploadUrl": _sign(ctx, path, "PUT"),
                "uploadHeaders": [],
            },
        }
    }


@RESOLVERS.field("createArtifactManifest", mutation=True)
def create_artifact_manifest(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    entity, key, _draft = _draft_of(ctx, data.get("artifactID"))
    return _manifest_answer(ctx, entity, key, str(data.get("artifactID")))


@RESOLVERS.field("updateArtifactManifest", mutation=True)
def update_artifact_manifest(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    parts = parse_node_id(data.get("artifactManifestID"), "DraftManifest")
    if not parts:
        raise GraphQLFieldError("runyard updates only the manifest of an artifact being logged")
    entity, key, _draft = _draft_of(ctx, parts[0])
    return _manifest_answer(ctx, entity, key, parts[0])


@RESOLVERS.field("createArtifactFiles", mutation=True)
def create_artifact_files(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    specs = data.get("artifactFiles")
    if not isinstance(specs, list):
        raise GraphQLFieldError("createArtifactFiles needs artifactFiles")
    artifacts = _artifacts(ctx.state)
    entities: dict[str, str] = {}
    for spec in specs:
        text = spec.get("artifactID") if isinstance(spec, dict) else None
        if text not in entities:
            entity, _key, _draft = _draft_of(ctx, text)
            entities[str(text)] = entity
    held: dict[str, set[str]] = {}
    for entity in set(entities.values()):
        md5s = [
            str(s.get("md5"))
            for s in specs
            if isinstance(s, dict) and entities.get(str(s.get("artifactID"))) == entity
        ]
        held[entity] = set(artifacts.keys_for_md5(entity, md5s))
    edges = []
    for spec in specs:
        entity = entities[str(spec.get("artifactID"))]
        md5 = str(spec.get("md5") or "")
        hexed = md5_hex(md5)
        url = None
        if md5 not in held[entity]:
            url = _sign(ctx, path_of(ARTIFACT_PREFIX, entity, "file", hexed), "PUT")
        edges.append(
            {
                "node": {
                    "__typename": "File",
                    "id": node_id("ArtifactFile", entity, hexed),
                    "name": spec.get("name"),
                    "displayName": str(spec.get("name") or "").rsplit("/", 1)[-1],
                    "storagePath": hexed,
                    "uploadUrl": url,
                    "uploadHeaders": [],
                    "uploadMultipartUrls": None,
                    "artifact": {"id": spec.get("artifactID")},
                }
            }
        )
    return {"files": {"edges": edges}}


@RESOLVERS.field("commitArtifact", mutation=True)
def commit_artifact(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    found = version_of(ctx, data.get("artifactID"))
    if found is None:
        raise GraphQLFieldError(
            "the artifact cannot be committed: its manifest never reached the server (or named "
            "files that were not uploaded); log it again"
        )
    return {"artifact": artifact_node(ctx, found)}


@RESOLVERS.field("useArtifact", mutation=True)
def use_artifact(ctx: Context, args: dict[str, Any]) -> dict[str, Any]:
    data = args.get("input") or {}
    entity = ctx.entity(data.get("entityName"))
    project = data.get("projectName")
    run_id = data.get("runName")
    found = version_of(ctx, data.get("artifactID"))
    if found is None or not isinstance(project, str) or not isinstance(run_id, str):
        raise GraphQLFieldError("useArtifact needs a run and an artifact that exist")
    _artifacts(ctx.state).use(found, RunRef(entity, project, run_id))
    return {"artifact": artifact_node(ctx, found)}


@RESOLVERS.field("clientIDMapping")
def client_id_mapping(_ctx: Context, _args: dict[str, Any]) -> dict[str, Any] | None:
    return None  # references between artifacts logged by the same client: not served


# -- the commit (on the manifest's upload) -----------------------------------------------------


def _commit(
    ctx_or_state: Any,
    entity: str,
    project: str,
    draft: dict[str, Any],
    entries: list[ManifestEntry],
) -> VersionRecord:
    state = ctx_or_state.state if isinstance(ctx_or_state, Context) else ctx_or_state
    try:
        version: VersionRecord = _artifacts(state).commit(
            entity,
            project,
            draft["name"],
            draft["type"],
            entries,
            metadata=draft.get("metadata") or {},
            description=draft.get("description"),
            aliases=draft.get("aliases") or [],
            run_id=draft.get("run"),
        )
    except ArtifactError as exc:
        raise GraphQLFieldError(str(exc)) from None
    return version


def commit_manifest(state: Any, entity: str, key: str, body: bytes) -> VersionRecord:
    """The manifest of draft ``key`` was uploaded: commit the version (DraftError if it cannot
    be: bad JSON, files that were not uploaded)."""
    artifacts = _artifacts(state)
    draft = _read_draft(artifacts, entity, key)
    try:
        manifest = convert.loads(body)
    except ValueError:
        raise DraftError("the artifact manifest is not JSON") from None
    contents = manifest.get("contents") if isinstance(manifest, dict) else None
    if not isinstance(contents, dict):
        raise DraftError("the artifact manifest has no contents")
    md5s = [
        str(e.get("digest")) for e in contents.values() if isinstance(e, dict) and not e.get("ref")
    ]
    keys = artifacts.keys_for_md5(entity, md5s)
    entries = []
    missing = []
    for path, e in contents.items():
        if not isinstance(e, dict):
            continue
        digest = str(e.get("digest") or "")
        size = int(e.get("size") or 0)
        extra: dict[str, Any] = e["extra"] if isinstance(e.get("extra"), dict) else {}
        if e.get("ref"):
            entries.append(ManifestEntry(path, digest, size, None, str(e["ref"]), extra))
        elif digest in keys:
            entries.append(ManifestEntry(path, digest, size, keys[digest], None, extra))
        else:
            missing.append(path)
    if missing:
        raise DraftError(
            f"{len(missing)} file(s) of the manifest were not uploaded (first: {missing[0]}); "
            f"log the artifact again"
        )
    try:
        version: VersionRecord = artifacts.commit(
            entity,
            draft["project"],
            draft["name"],
            draft["type"],
            entries,
            metadata=draft.get("metadata") or {},
            description=draft.get("description"),
            aliases=draft.get("aliases") or [],
            run_id=draft.get("run"),
        )
    except ArtifactError as exc:
        raise DraftError(str(exc)) from None
    return version


def store_file(state: Any, entity: str, md5hex: str, chunks: Iterator[bytes], limit: int) -> int:
    """An uploaded artifact file: into the blob store, checked against the MD5 of its URL."""
    artifacts = _artifacts(state)
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with artifacts.blobs.writer(max_size=limit) as w:
        for chunk in chunks:
            md5.update(chunk)
            size += len(chunk)
            w.write(chunk)
        if md5.hexdigest() != md5hex:
            raise DraftError(
                f"the uploaded content's MD5 {md5.hexdigest()} is not {md5hex}: upload it again"
            )
        info = w.commit()
    artifacts.record_blob(entity, info, base64.b64encode(md5.digest()).decode())
    return size


def manifest_json(state: Any, entity: str, project: str, name: str, version: int) -> bytes:
    """A version's manifest in W&B's format (what the client downloads to use it)."""
    found = _artifacts(state).get(entity, project, name, f"v{version}")
    aid = artifact_id(found)
    contents: dict[str, Any] = {}
    for e in found.entries or []:
        doc: dict[str, Any] = {"digest": e.digest, "size": e.size, "birthArtifactID": aid}
        if e.ref is not None:
            doc["ref"] = e.ref
        if e.extra:
            doc["extra"] = e.extra
        contents[e.path] = doc
    return orjson.dumps(
        {
            "version": 1,
            "storagePolicy": "wandb-storage-policy-v1",
            "storagePolicyConfig": {"storageLayout": "V2"},
            "contents": contents,
        }
    )


def blob_chunks(state: Any, who: Principal, entity: str, key: str) -> Iterator[bytes]:
    """An artifact file's content, for an entity that holds it."""
    if not who.may_access(entity):
        raise ArtifactNotFoundError(f"entity {entity!r} is not reachable with this key")
    chunks: Iterator[bytes] = _artifacts(state).open_blob(entity, key)
    return chunks
