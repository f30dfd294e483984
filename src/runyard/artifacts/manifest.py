"""An artifact version's manifest: its files (path → content) and its digest.

W&B's manifest format, extended: each entry keeps W&B's fields (``digest``, the base64 MD5 of a
file or the ETag/checksum of a reference, ``size``, ``ref``, ``extra``) and adds ``blob``, the
content-addressed key (``sha256:<hex>``) of the file's bytes in the blob store. The artifact's
digest is W&B's: the MD5 hex of ``"wandb-artifact-manifest-v1\\n"`` followed by
``"{path}:{digest}\\n"`` for every entry in path order, so equal contents have equal digests
and a W&B client computes the same value.

A file's MD5 is computed once per distinct content, when its blob is first stored (the blob
store's table keeps it); clients address files by SHA-256 only (see docs/artifacts.md for the
measurements behind that choice).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MANIFEST_VERSION = 1
STORAGE_POLICY = "runyard-blobs-v1"
_DIGEST_HEADER = b"wandb-artifact-manifest-v1\n"
MAX_PATH = 1024


class ArtifactError(Exception):
    """An artifact operation failed; the message names the problem and the fix."""


def check_path(path: str) -> str:
    """A manifest path: relative, ``/``-separated, no ``.``/``..``/empty parts."""
    if not isinstance(path, str) or not path:
        raise ArtifactError(f"artifact path {path!r} is empty: give a relative file name")
    clean = path.replace("\\", "/")
    parts = clean.split("/")
    if (
        clean.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or "\x00" in clean
        or len(clean) > MAX_PATH
    ):
        raise ArtifactError(
            f"artifact path {path!r} is not a relative path inside the artifact "
            "(no leading '/', no '.' or '..' parts, at most 1024 characters)"
        )
    return clean


@dataclass
class ManifestEntry:
    """One file of an artifact (W&B's ``ArtifactManifestEntry``)."""

    path: str
    digest: str  # base64 MD5 of the content, or a reference's ETag/checksum; "" before commit
    size: int
    blob: str | None = None  # sha256:<hex>, None for a reference
    ref: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: client side only: the local file whose content this entry is
    local_path: str | None = None

    @property
    def is_reference(self) -> bool:
        return self.ref is not None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"digest": self.digest, "size": self.size}
        if self.blob is not None:
            doc["blob"] = self.blob
        if self.ref is not None:
            doc["ref"] = self.ref
        if self.extra:
            doc["extra"] = self.extra
        return doc

    @classmethod
    def from_json(cls, path: str, doc: Mapping[str, Any]) -> ManifestEntry:
        return cls(
            path=check_path(path),
            digest=str(doc.get("digest") or ""),
            size=int(doc.get("size") or 0),
            blob=doc.get("blob"),
            ref=doc.get("ref"),
            extra=dict(doc.get("extra") or {}),
        )


def manifest_digest(entries: Iterable[ManifestEntry]) -> str:
    """W&B's artifact digest of these entries (every entry's ``digest`` must be known)."""
    h = hashlib.md5(_DIGEST_HEADER, usedforsecurity=False)
    for entry in sorted(entries, key=lambda e: e.path):
        h.update(f"{entry.path}:{entry.digest}\n".encode())
    return h.hexdigest()


def manifest_json(entries: Iterable[ManifestEntry]) -> dict[str, Any]:
    """The manifest document (``wandb_manifest.json``'s shape plus ``blob`` keys)."""
    return {
        "version": MANIFEST_VERSION,
        "storagePolicy": STORAGE_POLICY,
        "storagePolicyConfig": {},
        "contents": {e.path: e.to_json() for e in sorted(entries, key=lambda e: e.path)},
    }


def entries_from_json(doc: Mapping[str, Any]) -> list[ManifestEntry]:
    contents = doc.get("contents")
    if not isinstance(contents, Mapping):
        raise ArtifactError("a manifest needs a 'contents' object of path -> entry")
    return [ManifestEntry.from_json(p, e) for p, e in contents.items()]
