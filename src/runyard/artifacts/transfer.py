"""Moving an artifact's files: logging (hash, lease, upload what is missing, commit) and
downloading (verified, through the machine's cache for a remote store, in parallel)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runyard.artifacts import base
from runyard.artifacts.base import (
    ArtifactCorruptedError,
    ArtifactStore,
    MissingBlobsError,
    VersionRecord,
)
from runyard.artifacts.cache import DownloadCache
from runyard.artifacts.hashing import HashCache, hash_files, hash_workers
from runyard.artifacts.manifest import ManifestEntry
from runyard.blobs import BlobDigestMismatchError

#: Parallel uploads and downloads.
TRANSFER_WORKERS = 8
_CHUNK = 1 << 20


@dataclass
class LogStats:
    files: int = 0
    hashed: int = 0
    uploaded: int = 0
    uploaded_bytes: int = 0


def log_entries(
    store: ArtifactStore,
    entity: str,
    project: str,
    name: str,
    type: str,
    entries: Sequence[ManifestEntry],
    *,
    metadata: dict[str, Any] | None,
    description: str | None,
    aliases: Sequence[str],
    run_id: str | None,
    hash_cache: HashCache | None,
    stats: LogStats | None = None,
) -> VersionRecord:
    """Log a version whose file entries have ``local_path`` set (see base's contract)."""
    stats = stats if stats is not None else LogStats()
    files = [e for e in entries if e.local_path is not None]
    paths = sorted({e.local_path for e in files if e.local_path})
    cached_before = hash_cache.lookup(paths) if hash_cache is not None else {}
    keys = hash_files(paths, hash_cache)
    stats.files, stats.hashed = len(files), len(paths) - len(cached_before)
    by_key: dict[str, tuple[Path, int]] = {}
    for e in files:
        assert e.local_path is not None
        e.blob, e.size = keys[e.local_path]
        by_key.setdefault(e.blob, (Path(e.local_path), e.size))
    plan = store.begin(entity, sorted(by_key))

    def upload(missing: Sequence[str]) -> None:
        direct = getattr(store, "upload_presigned", None)

        def one(key: str) -> None:
            path, size = by_key[key]
            instructions = plan.presigned.get(key)
            if instructions is not None and direct is not None and size <= base.PART_SIZE:
                direct(entity, key, path, size, instructions)
            else:
                store.upload(entity, key, path, size)

        if len(missing) == 1:
            one(missing[0])
        elif missing:
            with ThreadPoolExecutor(min(TRANSFER_WORKERS, len(missing))) as pool:
                list(pool.map(one, missing))
        stats.uploaded += len(missing)
        stats.uploaded_bytes += sum(by_key[k][1] for k in missing)

    upload(plan.missing)
    for attempt in range(2):
        try:
            return store.commit(
                entity,
                project,
                name,
                type,
                entries,
                metadata=metadata,
                description=description,
                aliases=aliases,
                run_id=run_id,
                lease_id=plan.lease_id,
            )
        except MissingBlobsError as exc:
            if attempt or any(k not in by_key for k in exc.keys):
                raise
            upload(exc.keys)  # garbage-collected before our lease, or never recorded
    raise AssertionError("unreachable")


def _copy_verified(chunks: Iterator[bytes], dest: Path, key: str, what: str) -> None:
    tmp = dest.with_name(f".{dest.name}.runyard-part")
    h = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                h.update(chunk)
                out.write(chunk)
        actual = "sha256:" + h.hexdigest()
        if actual != key:
            raise ArtifactCorruptedError(
                f"{what}: the stored blob {key} is corrupted (its content hashes to {actual}); "
                "re-log the artifact from the original files, or delete this version"
            )
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield chunk


def download_version(
    store: ArtifactStore,
    record: VersionRecord,
    root: Path,
    *,
    cache: DownloadCache | None,
    hash_cache: HashCache | None,
    allow_missing_references: bool = False,
    path_prefix: str | None = None,
) -> Path:
    """Materialise the version's files under ``root``: files already there with the right
    content are kept, the others are fetched and verified against the manifest."""
    from runyard.artifacts.refs import fetch_reference

    entries = [
        e for e in record.entries or [] if path_prefix is None or e.path.startswith(path_prefix)
    ]
    root.mkdir(parents=True, exist_ok=True)
    targets = {e.path: root / e.path for e in entries}
    present = [str(p) for p in targets.values() if p.is_file()]
    have = hash_files(present, hash_cache) if present else {}
    what = record.qualified_name
    entity = record.entity
    local = getattr(store, "local_blob_path", None)
    used: set[str] = set()

    def one(entry: ManifestEntry) -> None:
        dest = targets[entry.path]
        dest.parent.mkdir(parents=True, exist_ok=True)
        if entry.blob is None:
            if entry.ref is not None and entry.ref != entry.digest:
                try:
                    fetch_reference(entry, dest)
                except Exception:
                    if not allow_missing_references:
                        raise
            return
        key = entry.blob
        found = have.get(str(dest))
        if found is not None and found[0] == key:
            return
        label = f"file {entry.path!r} of {what}"
        source = local(entity, key) if local is not None else None
        if source is not None:
            _copy_verified(_file_chunks(source), dest, key, label)
            return
        assert cache is not None
        cached = cache.path(key)
        used.add(key)
        if cached is None:
            try:
                if entry.size <= base.PART_SIZE:
                    # one pass: into the cache (verified by its writer) and into place
                    _fetch_to(store, entity, key, cache, dest)
                    return
                fetch_into_cache(store, entity, key, entry.size, cache)
            except BlobDigestMismatchError as exc:
                raise ArtifactCorruptedError(
                    f"{label}: the server's blob {key} is corrupted (its content hashes to "
                    f"{exc.actual}); re-log the artifact from the original files"
                ) from None
            cached = cache.path(key)
            assert cached is not None
        try:
            _copy_verified(_file_chunks(cached), dest, key, label)
        except ArtifactCorruptedError:
            cached.unlink(missing_ok=True)  # a damaged cache copy: fetch it again, once
            fetch_into_cache(store, entity, key, entry.size, cache)
            cached = cache.path(key)
            assert cached is not None
            _copy_verified(_file_chunks(cached), dest, key, label)

    if len(entries) <= 1:
        for entry in entries:
            one(entry)
    else:
        with ThreadPoolExecutor(min(TRANSFER_WORKERS, hash_workers() * 4, len(entries))) as pool:
            list(pool.map(one, entries))
    if cache is not None and used:
        cache.evict(keep=used)
    return root


def _fetch_to(
    store: ArtifactStore, entity: str, key: str, cache: DownloadCache, dest: Path
) -> None:
    tmp = dest.with_name(f".{dest.name}.runyard-part")
    try:
        with cache.blobs.writer(expected_key=key) as writer, open(tmp, "wb") as out:
            for chunk in store.open_blob(entity, key):
                writer.write(chunk)
                out.write(chunk)
            writer.commit()  # BlobDigestMismatchError: neither the cache nor dest get it
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def fetch_into_cache(
    store: ArtifactStore, entity: str, key: str, size: int, cache: DownloadCache
) -> None:
    """Download a blob into the cache, verified; large blobs in resumable parts."""
    opener = store.open_blob
    if size <= base.PART_SIZE:
        cache.blobs.put_stream(opener(entity, key), expected_key=key)
        return
    upload = cache.blobs.resumable(f"dl.{key.split(':', 1)[1]}", expected_key=key)
    offset = upload.offset
    ranged = getattr(store, "open_blob_range", None)
    while offset < size:
        end = min(size, offset + base.PART_SIZE)
        if ranged is not None:
            chunks = ranged(entity, key, offset, end)
        else:
            chunks = _skip(opener(entity, key), offset, end)
        offset = upload.append(chunks, offset)
    upload.complete()


def _skip(chunks: Iterator[bytes], start: int, end: int) -> Iterator[bytes]:
    pos = 0
    for chunk in chunks:
        lo, hi = max(start - pos, 0), min(end - pos, len(chunk))
        if lo < hi:
            yield chunk[lo:hi]
        pos += len(chunk)
        if pos >= end:
            return


def copy_tree(src: Path, dest: Path) -> None:  # pragma: no cover - helper for callers
    shutil.copytree(src, dest, dirs_exist_ok=True)
