"""SQLArtifactStore: artifacts in the tables of an SQL store, their bytes in a blob store.

The tables are in :mod:`runyard.store.schema` (migration 0006). Concurrency, per operation:

* ``commit`` locks the collection's row (SQLite: every writer holds the database's write lock,
  ``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT ... FOR UPDATE``), so version numbers come out
  distinct and gap-free, and reads the blob rows it references ``FOR SHARE``.
* Garbage collection locks the blob rows it is about to delete ``FOR UPDATE`` and checks again,
  under the lock, that no version references them and no lease holds them; it deletes the bytes
  before it commits. A ``begin`` that raced with it either took its lease first (GC keeps the
  blob) or waited for GC and then sees the blob gone (the client uploads it again).
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard._json import dumps_doc, loads_doc
from runyard.artifacts import base
from runyard.artifacts.base import (
    LEASE_SECONDS,
    ArtifactNotFoundError,
    ArtifactStore,
    CollectionRecord,
    GCReport,
    MissingBlobsError,
    RunRef,
    UploadPlan,
    VersionRecord,
    check_alias,
    check_name,
    parse_version,
)
from runyard.artifacts.manifest import ArtifactError, ManifestEntry, check_path, manifest_digest
from runyard.blobs import BlobInfo, BlobStore, parse_key
from runyard.store import schema as S
from runyard.store.sql import SQLStore

_CHUNK = 1 << 20

#: Other tables that name blob keys of the same blob store, as ``(table, column)``: GC keeps
#: every key one of them names (run files and media share the store's blob store). A room that
#: stores keys in the same blob store adds its own here.
EXTRA_BLOB_REFERENCES: list[tuple[str, str]] = [("run_files", "blob_key")]


def md5_b64(h: Any) -> str:
    return base64.b64encode(h.digest()).decode()


def _in_chunks(items: Sequence[str], n: int = 500) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield list(items[i : i + n])


class SQLArtifactStore(ArtifactStore):
    """Artifacts of ``store`` (its engine and tables) with their bytes in ``blobs``."""

    def __init__(self, store: SQLStore, blobs: BlobStore, *, presign: bool = False) -> None:
        self.store = store
        self.blobs = blobs
        #: hand out presigned URLs (downloads, and uploads of blobs up to PART_SIZE) when the
        #: blob store makes them (S3)
        self.presign = presign
        self._pg = not store.is_sqlite

    def __repr__(self) -> str:
        return f"<SQLArtifactStore {self.store.url} {self.blobs!r}>"

    # -- helpers --------------------------------------------------------------------------------

    def _project(self, conn: Connection, entity: str, project: str) -> int | None:
        found = conn.execute(
            sa.select(S.projects.c.id).where(
                S.projects.c.entity == entity, S.projects.c.name == project
            )
        ).scalar()
        return None if found is None else int(found)

    def _collection(
        self, conn: Connection, entity: str, project: str, name: str, lock: bool = False
    ) -> Any:
        query = (
            sa.select(S.artifact_collections)
            .join(S.projects, S.projects.c.id == S.artifact_collections.c.project_id)
            .where(
                S.projects.c.entity == entity,
                S.projects.c.name == project,
                S.artifact_collections.c.name == name,
            )
        )
        if lock and self._pg:
            query = query.with_for_update(of=S.artifact_collections)
        return conn.execute(query).first()

    def _versions_query(self) -> sa.Select[Any]:
        v, c, p = S.artifact_versions, S.artifact_collections, S.projects
        return (
            sa.select(
                v.c.id,
                p.c.entity,
                p.c.name.label("project"),
                c.c.name,
                c.c.type,
                v.c.version,
                v.c.digest,
                v.c.size,
                v.c.file_count,
                v.c.metadata,
                v.c.description,
                v.c.created_by,
                v.c.created_at,
                v.c.source_version_id,
            )
            .join(c, c.c.id == v.c.collection_id)
            .join(p, p.c.id == c.c.project_id)
        )

    def _records(self, conn: Connection, rows: Sequence[Any]) -> list[VersionRecord]:
        ids = [int(r.id) for r in rows]
        aliases: dict[int, list[str]] = {i: [] for i in ids}
        sources: dict[int, str] = {}
        for part in _in_chunks([str(i) for i in ids]):
            for vid, alias in conn.execute(
                sa.select(S.artifact_aliases.c.version_id, S.artifact_aliases.c.alias).where(
                    S.artifact_aliases.c.version_id.in_([int(i) for i in part])
                )
            ):
                aliases[int(vid)].append(alias)
        linked = {int(r.source_version_id) for r in rows if r.source_version_id is not None}
        if linked:
            for src in conn.execute(
                self._versions_query().where(S.artifact_versions.c.id.in_(linked))
            ):
                sources[int(src.id)] = f"{src.entity}/{src.project}/{src.name}:v{src.version}"
        return [
            VersionRecord(
                entity=r.entity,
                project=r.project,
                name=r.name,
                type=r.type,
                version=int(r.version),
                digest=r.digest,
                size=int(r.size),
                file_count=int(r.file_count),
                metadata=loads_doc(r.metadata) or {},
                description=r.description,
                aliases=sorted(aliases[int(r.id)], key=lambda a: (a != "latest", a)),
                created_by=r.created_by,
                created_at=float(r.created_at),
                id=int(r.id),
                source=sources.get(int(r.source_version_id))
                if r.source_version_id is not None
                else None,
            )
            for r in rows
        ]

    def _entries(self, conn: Connection, version_id: int) -> list[ManifestEntry]:
        f = S.artifact_files
        return [
            ManifestEntry(
                path=row.path,
                digest=row.digest,
                size=int(row.size),
                blob=row.blob_key,
                ref=row.ref,
                extra=loads_doc(row.extra) if row.extra else {},
            )
            for row in conn.execute(
                sa.select(f).where(f.c.version_id == version_id).order_by(f.c.path)
            )
        ]

    def _set_alias(self, conn: Connection, collection_id: int, version_id: int, alias: str) -> None:
        a = S.artifact_aliases
        conn.execute(a.delete().where(a.c.collection_id == collection_id, a.c.alias == alias))
        conn.execute(
            a.insert().values(collection_id=collection_id, alias=alias, version_id=version_id)
        )

    # -- logging --------------------------------------------------------------------------------

    def begin(self, entity: str, keys: Sequence[str]) -> UploadPlan:
        unique = sorted(set(keys))
        for key in unique:
            parse_key(key)
        lease_id = uuid.uuid4().hex
        expires = time.time() + LEASE_SECONDS
        held: set[str] = set()
        with self.store.engine.begin() as conn:
            if unique:
                conn.execute(
                    S.blob_leases.insert(),
                    [{"lease_id": lease_id, "key": k, "expires_at": expires} for k in unique],
                )
            for part in _in_chunks(unique):
                query = (
                    sa.select(S.blobs.c.key)
                    .join(S.blob_owners, S.blob_owners.c.key == S.blobs.c.key)
                    .where(S.blobs.c.key.in_(part), S.blob_owners.c.entity == entity)
                )
                if self._pg:
                    query = query.with_for_update(read=True, of=S.blobs)
                held.update(conn.execute(query).scalars())
        missing = [k for k in unique if k not in held]
        presigned: dict[str, dict[str, Any]] = {}
        if self.presign:
            for key in missing:
                found = self.blobs.presign_upload(self.upload_id(entity, key))
                if found is None:
                    break
                presigned[key] = found
        return UploadPlan(lease_id=lease_id, missing=missing, presigned=presigned)

    def complete_presigned(self, entity: str, key: str) -> BlobInfo:
        """Verify and record a blob the client uploaded to a presigned URL of :meth:`begin`."""
        md5 = hashlib.md5(usedforsecurity=False)
        info = self.blobs.complete_presigned(
            self.upload_id(entity, key), expected_key=key, hashers=[md5]
        )
        self.record_blob(entity, info, md5_b64(md5))
        return info

    def record_blob(self, entity: str, info: BlobInfo, md5: str) -> None:
        """The blob is stored (verified): remember its MD5 and that ``entity`` holds it."""
        now = time.time()
        with self.store.engine.begin() as conn:
            conn.execute(
                self.store._insert_ignore(S.blobs).values(
                    key=info.key, size=info.size, md5=md5, created_at=now
                )
            )
            conn.execute(
                self.store._insert_ignore(S.blob_owners).values(
                    entity=entity, key=info.key, created_at=now
                )
            )

    def upload_id(self, entity: str, key: str) -> str:
        return f"{entity}.{parse_key(key)[1]}"

    def ingest(self, entity: str, key: str, chunks: Iterator[bytes] | Sequence[bytes]) -> BlobInfo:
        """Store one whole blob from ``chunks`` (verified; MD5 computed on the way)."""
        md5 = hashlib.md5(usedforsecurity=False)
        with self.blobs.writer(expected_key=key) as w:
            for chunk in chunks:
                md5.update(chunk)
                w.write(chunk)
            info = w.commit()
        self.record_blob(entity, info, md5_b64(md5))
        return info

    def upload(self, entity: str, key: str, path: Path, size: int) -> None:
        if size <= base.PART_SIZE or not self.blobs.supports_resumable:
            with open(path, "rb") as fh:
                self.ingest(entity, key, iter(lambda: fh.read(_CHUNK), b""))
            return
        upload = self.blobs.resumable(self.upload_id(entity, key), expected_key=key)
        offset = upload.offset
        with open(path, "rb") as fh:
            fh.seek(offset)
            while offset < size:
                part = min(base.PART_SIZE, size - offset)
                offset = upload.append(_read_part(fh, part), offset)
        md5 = hashlib.md5(usedforsecurity=False)
        info = upload.complete([md5])
        self.record_blob(entity, info, md5_b64(md5))

    def commit(
        self,
        entity: str,
        project: str,
        name: str,
        type: str,
        entries: Sequence[ManifestEntry],
        *,
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
        lease_id: str | None = None,
        source: str | None = None,
    ) -> VersionRecord:
        check_name(name)
        check_name(type, "artifact type")
        wanted = ["latest", *[check_alias(a) for a in aliases if a != "latest"]]
        entries = [
            ManifestEntry(check_path(e.path), e.digest, e.size, e.blob, e.ref, dict(e.extra))
            for e in entries
        ]
        paths = [e.path for e in entries]
        if len(set(paths)) != len(paths):
            raise ArtifactError("a manifest names the same path twice")
        keys = sorted({e.blob for e in entries if e.blob is not None})
        for key in keys:
            parse_key(key)
        now = time.time()
        with self.store.engine.begin() as conn:
            project_id = self.store._project_id(conn, entity, project, now)
            conn.execute(
                self.store._insert_ignore(S.artifact_collections).values(
                    project_id=project_id,
                    name=name,
                    type=type,
                    description=None,
                    next_version=0,
                    created_at=now,
                )
            )
            coll = self._collection(conn, entity, project, name, lock=True)
            if coll.type != type:
                raise ArtifactError(
                    f"artifact {entity}/{project}/{name} is of type {coll.type!r}, not "
                    f"{type!r}: log it with type={coll.type!r} or choose another name"
                )
            stored: dict[str, tuple[str, int]] = {}
            for part in _in_chunks(keys):
                query = (
                    sa.select(S.blobs.c.key, S.blobs.c.md5, S.blobs.c.size)
                    .join(S.blob_owners, S.blob_owners.c.key == S.blobs.c.key)
                    .where(S.blobs.c.key.in_(part), S.blob_owners.c.entity == entity)
                )
                if self._pg:
                    query = query.with_for_update(read=True, of=S.blobs)
                for key, md5, size in conn.execute(query):
                    stored[key] = (md5, int(size))
            missing = [k for k in keys if k not in stored]
            if missing:
                raise MissingBlobsError(missing)
            for e in entries:
                if e.blob is not None:
                    e.digest, e.size = stored[e.blob]
                elif not e.ref or not e.digest:
                    raise ArtifactError(f"entry {e.path!r} has neither a blob nor a reference")
            digest = manifest_digest(entries)
            v = S.artifact_versions
            existing = conn.execute(
                sa.select(v.c.id)
                .where(v.c.collection_id == coll.id, v.c.digest == digest)
                .order_by(v.c.version.desc())
                .limit(1)
            ).scalar()
            source_id = None
            if source is not None:
                source_id = self._version_id_of(conn, source)
            if existing is not None:
                version_id, reused = int(existing), True
            else:
                number = int(coll.next_version)
                conn.execute(
                    S.artifact_collections.update()
                    .where(S.artifact_collections.c.id == coll.id)
                    .values(next_version=number + 1)
                )
                inserted = conn.execute(
                    v.insert().values(
                        collection_id=coll.id,
                        version=number,
                        digest=digest,
                        size=sum(e.size for e in entries),
                        file_count=len(entries),
                        metadata=dumps_doc(metadata or {}),
                        description=description,
                        created_by=run_id,
                        source_version_id=source_id,
                        created_at=now,
                    )
                )
                pk = inserted.inserted_primary_key
                assert pk is not None
                version_id, reused = int(pk[0]), False
                if entries:
                    conn.execute(
                        S.artifact_files.insert(),
                        [
                            {
                                "version_id": version_id,
                                "path": e.path,
                                "blob_key": e.blob,
                                "digest": e.digest,
                                "size": e.size,
                                "ref": e.ref,
                                "extra": dumps_doc(e.extra) if e.extra else None,
                            }
                            for e in entries
                        ],
                    )
            for alias in wanted:
                self._set_alias(conn, int(coll.id), version_id, alias)
            if lease_id:
                conn.execute(S.blob_leases.delete().where(S.blob_leases.c.lease_id == lease_id))
            row = conn.execute(
                self._versions_query().where(S.artifact_versions.c.id == version_id)
            ).one()
            record = self._records(conn, [row])[0]
        record.reused = reused
        record.entries = sorted(entries, key=lambda e: e.path)
        return record

    def _version_id_of(self, conn: Connection, qualified: str) -> int:
        entity, project, rest = qualified.split("/", 2)
        name, _, ref = rest.partition(":")
        return int(self._get(conn, entity, project, name, ref or "latest").id)

    # -- reading --------------------------------------------------------------------------------

    def collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        c, p, v = S.artifact_collections, S.projects, S.artifact_versions
        query = (
            sa.select(
                c.c.name,
                c.c.type,
                c.c.description,
                c.c.created_at,
                sa.func.count(v.c.id),
                sa.func.max(v.c.version),
            )
            .join(p, p.c.id == c.c.project_id)
            .outerjoin(v, v.c.collection_id == c.c.id)
            .where(p.c.entity == entity, p.c.name == project)
            .group_by(c.c.id, c.c.name, c.c.type, c.c.description, c.c.created_at)
            .order_by(c.c.name)
        )
        if type is not None:
            query = query.where(c.c.type == type)
        with self.store._read() as conn:
            return [
                CollectionRecord(
                    entity, project, n, t, d, float(at), int(count), None if mx is None else int(mx)
                )
                for n, t, d, at, count, mx in conn.execute(query)
            ]

    def versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        with self.store._read() as conn:
            coll = self._collection(conn, entity, project, name)
            if coll is None:
                raise ArtifactNotFoundError(f"no artifact {entity}/{project}/{name}")
            rows = conn.execute(
                self._versions_query()
                .where(S.artifact_versions.c.collection_id == coll.id)
                .order_by(S.artifact_versions.c.version.desc())
            ).all()
            return self._records(conn, rows)

    def _get(self, conn: Connection, entity: str, project: str, name: str, ref: str) -> Any:
        coll = self._collection(conn, entity, project, name)
        if coll is None:
            raise ArtifactNotFoundError(
                f"no artifact {entity}/{project}/{name}: check the name (and the project), "
                "or log it first"
            )
        v = S.artifact_versions
        query = self._versions_query().where(v.c.collection_id == coll.id)
        number = parse_version(ref)
        if number is not None:
            row = conn.execute(query.where(v.c.version == number)).first()
        else:
            row = conn.execute(
                query.join(S.artifact_aliases, S.artifact_aliases.c.version_id == v.c.id).where(
                    S.artifact_aliases.c.alias == ref
                )
            ).first()
            if row is None and len(ref) == 32:
                row = conn.execute(query.where(v.c.digest == ref)).first()
        if row is None:
            raise ArtifactNotFoundError(
                f"artifact {entity}/{project}/{name} has no version or alias {ref!r}"
            )
        return row

    def get(self, entity: str, project: str, name: str, ref: str = "latest") -> VersionRecord:
        with self.store._read() as conn:
            row = self._get(conn, entity, project, name, ref)
            record = self._records(conn, [row])[0]
            record.entries = self._entries(conn, record.id)
        return record

    def owns(self, entity: str, key: str) -> bool:
        with self.store._read() as conn:
            return (
                conn.execute(
                    sa.select(S.blob_owners.c.key).where(
                        S.blob_owners.c.entity == entity, S.blob_owners.c.key == key
                    )
                ).first()
                is not None
            )

    def keys_for_md5(self, entity: str, md5s: Sequence[str]) -> dict[str, str]:
        """The blob keys of contents ``entity`` holds, by base64 MD5: how a client that
        addresses files by MD5, as W&B's does (runyard.compat.wandb), names stored content.
        Only the entity's own blobs are found."""
        found: dict[str, str] = {}
        b, o = S.blobs, S.blob_owners
        with self.store._read() as conn:
            for part in _in_chunks(sorted(set(md5s))):
                rows = conn.execute(
                    sa.select(b.c.key, b.c.md5)
                    .join(o, o.c.key == b.c.key)
                    .where(b.c.md5.in_(part), o.c.entity == entity)
                )
                for key, md5 in rows:
                    found.setdefault(str(md5), str(key))
        return found

    def _check_owner(self, entity: str, key: str) -> None:
        parse_key(key)
        if not self.owns(entity, key):
            raise ArtifactNotFoundError(f"entity {entity!r} has no blob {key}")

    def open_blob(self, entity: str, key: str) -> Iterator[bytes]:
        self._check_owner(entity, key)
        return self.blobs.iter_chunks(key)

    def local_blob_path(self, entity: str, key: str) -> Path | None:
        self._check_owner(entity, key)
        return self.blobs.local_path(key)

    def blob_url(self, entity: str, key: str) -> str | None:
        self._check_owner(entity, key)
        return self.blobs.presign_get(key) if self.presign else None

    # -- lineage --------------------------------------------------------------------------------

    def use(self, version: VersionRecord, run: RunRef) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(
                self.store._insert_ignore(S.artifact_usage).values(
                    version_id=version.id,
                    run_entity=run.entity,
                    run_project=run.project,
                    run_id=run.run_id,
                    created_at=time.time(),
                )
            )

    def used_by(self, version: VersionRecord) -> list[RunRef]:
        u = S.artifact_usage
        with self.store._read() as conn:
            return [
                RunRef(e, p, r)
                for e, p, r in conn.execute(
                    sa.select(u.c.run_entity, u.c.run_project, u.c.run_id)
                    .where(u.c.version_id == version.id)
                    .order_by(u.c.created_at)
                )
            ]

    def run_artifacts(
        self, entity: str, project: str, run_id: str
    ) -> tuple[list[VersionRecord], list[VersionRecord]]:
        v, p, u = S.artifact_versions, S.projects, S.artifact_usage
        with self.store._read() as conn:
            logged = conn.execute(
                self._versions_query()
                .where(p.c.entity == entity, p.c.name == project, v.c.created_by == run_id)
                .order_by(v.c.created_at)
            ).all()
            used = conn.execute(
                self._versions_query()
                .join(u, u.c.version_id == v.c.id)
                .where(u.c.run_entity == entity, u.c.run_project == project, u.c.run_id == run_id)
                .order_by(u.c.created_at)
            ).all()
            return self._records(conn, logged), self._records(conn, used)

    # -- editing --------------------------------------------------------------------------------

    def set_aliases(
        self, version: VersionRecord, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> VersionRecord:
        add = [check_alias(a) for a in add]
        remove = [check_alias(a) for a in remove]
        a = S.artifact_aliases
        with self.store.engine.begin() as conn:
            row = self._get(
                conn, version.entity, version.project, version.name, f"v{version.version}"
            )
            coll = self._collection(conn, version.entity, version.project, version.name, lock=True)
            for alias in add:
                self._set_alias(conn, int(coll.id), int(row.id), alias)
            for alias in remove:
                conn.execute(
                    a.delete().where(
                        a.c.collection_id == coll.id, a.c.alias == alias, a.c.version_id == row.id
                    )
                )
        return self.get(version.entity, version.project, version.name, f"v{version.version}")

    def delete(self, version: VersionRecord, *, force: bool = False) -> int:
        v, a, f = S.artifact_versions, S.artifact_aliases, S.artifact_files
        with self.store.engine.begin() as conn:
            coll = self._collection(conn, version.entity, version.project, version.name, lock=True)
            row = self._get(
                conn, version.entity, version.project, version.name, f"v{version.version}"
            )
            vid = int(row.id)
            aliases = list(
                conn.execute(sa.select(a.c.alias).where(a.c.version_id == vid)).scalars()
            )
            if aliases and not force:
                raise ArtifactError(
                    f"{version.qualified_name} has aliases ({', '.join(sorted(aliases))}): "
                    "remove them first, or delete with force (--force / delete_aliases=True)"
                )
            keys = sorted(
                {
                    k
                    for k in conn.execute(
                        sa.select(f.c.blob_key).where(f.c.version_id == vid)
                    ).scalars()
                    if k
                }
            )
            conn.execute(f.delete().where(f.c.version_id == vid))
            conn.execute(a.delete().where(a.c.version_id == vid))
            conn.execute(S.artifact_usage.delete().where(S.artifact_usage.c.version_id == vid))
            conn.execute(v.delete().where(v.c.id == vid))
            if "latest" in aliases:
                newest = conn.execute(
                    sa.select(v.c.id)
                    .where(v.c.collection_id == coll.id)
                    .order_by(v.c.version.desc())
                    .limit(1)
                ).scalar()
                if newest is not None:
                    self._set_alias(conn, int(coll.id), int(newest), "latest")
            freed, _deleted, _kept = self._collect(conn, keys, dry_run=False)
        return freed

    def _collect(
        self, conn: Connection, keys: Sequence[str], *, dry_run: bool
    ) -> tuple[int, int, int]:
        """Delete the blobs among ``keys`` that nothing references and no lease holds:
        ``(bytes freed, blobs deleted, blobs kept for a lease)``."""
        now = time.time()
        b, f, lease = S.blobs, S.artifact_files, S.blob_leases
        freed = deleted = kept = 0
        for part in _in_chunks(list(keys)):
            query = sa.select(b.c.key, b.c.size).where(b.c.key.in_(part))
            if self._pg:
                query = query.with_for_update(of=b)
            rows = conn.execute(query).all()  # locked; now check again under the lock
            if not rows:
                continue
            present = [r.key for r in rows]
            referenced = set(
                conn.execute(sa.select(f.c.blob_key).where(f.c.blob_key.in_(present))).scalars()
            )
            for table, column in EXTRA_BLOB_REFERENCES:
                t = sa.table(table, sa.column(column))
                referenced.update(
                    conn.execute(sa.select(t.c[column]).where(t.c[column].in_(present))).scalars()
                )
            leased = set(
                conn.execute(
                    sa.select(lease.c.key).where(lease.c.key.in_(present), lease.c.expires_at > now)
                ).scalars()
            )
            kept += len(leased - referenced)
            doomed = [r for r in rows if r.key not in referenced and r.key not in leased]
            if not doomed or dry_run:
                freed += sum(int(r.size) for r in doomed)
                deleted += len(doomed)
                continue
            for r in doomed:
                self.blobs.delete(r.key)
                freed += int(r.size)
                deleted += 1
            gone = [r.key for r in doomed]
            conn.execute(b.delete().where(b.c.key.in_(gone)))
            conn.execute(S.blob_owners.delete().where(S.blob_owners.c.key.in_(gone)))
        return freed, deleted, kept

    def gc(self, *, dry_run: bool = False) -> GCReport:
        b, f, lease = S.blobs, S.artifact_files, S.blob_leases
        now = time.time()
        with self.store.engine.begin() as conn:
            if not dry_run:
                conn.execute(lease.delete().where(lease.c.expires_at <= now))
            candidates = list(
                conn.execute(
                    sa.select(b.c.key).where(~sa.exists().where(f.c.blob_key == b.c.key))
                ).scalars()
            )
            freed, deleted, kept = self._collect(conn, candidates, dry_run=dry_run)
        return GCReport(deleted_blobs=deleted, freed_bytes=freed, kept_leased=kept)


def _read_part(fh: Any, size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = fh.read(min(_CHUNK, left))
        if not chunk:
            raise ArtifactError(f"{fh.name} got shorter while it was uploaded")
        left -= len(chunk)
        yield chunk
