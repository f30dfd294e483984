"""The artifact store interface: versions, aliases, lineage and blobs of artifacts.

Implementations: :class:`runyard.artifacts.sql.SQLArtifactStore` (the tables of an SQL store
plus a :class:`~runyard.blobs.BlobStore`) and :class:`runyard.artifacts.http.HTTPArtifactStore`
(a ``runyard server``'s ``/api/v1/artifacts``). :func:`runyard.artifacts.artifact_store_for`
picks the one behind a :class:`~runyard.store.Store`.

Contract
--------
* **Logging is two-phase.** :meth:`ArtifactStore.begin` takes a *lease* on every blob key of
  the manifest (garbage collection never deletes a leased blob) and says which keys this entity
  must upload; the caller uploads them (:meth:`upload`, resumable), then :meth:`commit` makes
  the version visible, atomically: a reader sees the whole version or nothing. A client killed
  before ``commit`` leaves no version; the blobs it did upload stay and the next log skips them.
* **Versions.** ``commit`` of a name gives the next version ``v0, v1, ...`` — distinct and
  gap-free whatever the number of concurrent committers (the collection's row is locked) —
  unless the manifest digest equals an existing version's, which is returned instead
  (``reused``). Either way ``latest`` and the given aliases move to it. Aliases are unique per
  name; ``vN`` is not an alias.
* **Blobs are shared and owned.** One copy of each content serves every version and artifact
  of the store. An entity may reference a blob in a manifest, or read it, only once it has
  proven it holds it (uploaded it, or it is in one of the entity's versions): ``begin`` asks
  another entity's known content to be uploaded again, so no entity learns what another stores.
  Every upload is verified against its key; every download is verified by the client.
* **Thread and process safety**: any number of threads and processes (and server workers) may
  use stores over the same database and blob store at once.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard.artifacts.manifest import ArtifactError, ManifestEntry

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ALIAS = re.compile(r"^[A-Za-z0-9_.\-+=@]{1,128}$")
_VERSION = re.compile(r"^v(\d+)$")
#: Files above this size are uploaded (and downloaded) in resumable parts of this size
#: (``RUNYARD_ARTIFACT_PART_SIZE`` bytes; S3 needs at least 5 MiB).
PART_SIZE = int(os.environ.get("RUNYARD_ARTIFACT_PART_SIZE") or 64 << 20)
#: How long a lease of :meth:`ArtifactStore.begin` protects its blobs (seconds).
LEASE_SECONDS = 24 * 3600


class ArtifactNotFoundError(ArtifactError, LookupError):
    """No such artifact, version or alias."""


class MissingBlobsError(ArtifactError):
    """``commit`` named blobs this entity has not uploaded (or GC removed meanwhile)."""

    def __init__(self, keys: Sequence[str]) -> None:
        super().__init__(
            f"{len(keys)} blob(s) of the manifest are not stored for this entity "
            f"(first: {keys[0] if keys else '-'}): upload them, then commit again"
        )
        self.keys = list(keys)


class ArtifactCorruptedError(ArtifactError):
    """A downloaded file's content is not what the manifest says."""


def check_name(name: str, what: str = "artifact name") -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ArtifactError(
            f"invalid {what} {name!r}: use letters, digits, '-', '_' and '.' "
            "(at most 128, starting with a letter or digit)"
        )
    return name


def check_alias(alias: str) -> str:
    if not isinstance(alias, str) or not _ALIAS.match(alias) or _VERSION.match(alias):
        raise ArtifactError(
            f"invalid alias {alias!r}: letters, digits and -_.+=@ (at most 128); 'v<N>' names "
            "a version and cannot be an alias"
        )
    return alias


def parse_version(ref: str) -> int | None:
    """``3`` for ``"v3"``; ``None`` for an alias."""
    m = _VERSION.match(ref)
    return int(m.group(1)) if m else None


@dataclass
class CollectionRecord:
    """An artifact name in a project (W&B's artifact collection)."""

    entity: str
    project: str
    name: str
    type: str
    description: str | None
    created_at: float
    version_count: int
    latest: int | None = None


@dataclass
class VersionRecord:
    """One version of an artifact."""

    entity: str
    project: str
    name: str
    type: str
    version: int
    digest: str
    size: int
    file_count: int
    metadata: dict[str, Any]
    description: str | None
    aliases: list[str]
    created_by: str | None  # run id in (entity, project)
    created_at: float
    id: int = 0
    reused: bool = False
    entries: list[ManifestEntry] | None = None
    #: for a version made by link(): "entity/project/name:vN" of what it links
    source: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}:v{self.version}"


@dataclass
class UploadPlan:
    """What :meth:`ArtifactStore.begin` answers."""

    lease_id: str
    missing: list[str]
    #: key → presigned upload instructions, when the server hands them out (else empty)
    presigned: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class RunRef:
    entity: str
    project: str
    run_id: str

    @property
    def path(self) -> str:
        return f"{self.entity}/{self.project}/{self.run_id}"


@dataclass
class GCReport:
    deleted_blobs: int
    freed_bytes: int
    kept_leased: int


class ArtifactStore(abc.ABC):
    """Abstract base of the artifact stores. See the module docstring for the contract."""

    # -- logging --------------------------------------------------------------------------------

    @abc.abstractmethod
    def begin(self, entity: str, keys: Sequence[str]) -> UploadPlan:
        """Lease ``keys`` and say which of them ``entity`` must upload."""

    @abc.abstractmethod
    def upload(self, entity: str, key: str, path: Path, size: int) -> None:
        """Store the file ``path`` (``size`` bytes) as blob ``key`` for ``entity``, resuming an
        interrupted upload of the same key; the content is verified against ``key``."""

    @abc.abstractmethod
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
        """Make the version (or reuse the one with the same digest); see the contract.
        :class:`MissingBlobsError` if a blob is not stored for ``entity``."""

    # -- reading --------------------------------------------------------------------------------

    @abc.abstractmethod
    def collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        """The project's artifact names (of ``type`` if given), by name."""

    @abc.abstractmethod
    def versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        """The name's versions, newest first (without entries)."""

    @abc.abstractmethod
    def get(self, entity: str, project: str, name: str, ref: str = "latest") -> VersionRecord:
        """The version ``ref`` (``vN``, an alias, or a digest) with its entries;
        :class:`ArtifactNotFoundError` if absent."""

    @abc.abstractmethod
    def open_blob(self, entity: str, key: str) -> Iterator[bytes]:
        """The blob's content in chunks (unverified: the caller verifies)."""

    def blob_url(self, entity: str, key: str) -> str | None:
        """A presigned URL reading the blob directly, or ``None``."""
        return None

    # -- lineage --------------------------------------------------------------------------------

    @abc.abstractmethod
    def use(self, version: VersionRecord, run: RunRef) -> None:
        """Record that ``run`` used ``version`` (idempotent)."""

    @abc.abstractmethod
    def used_by(self, version: VersionRecord) -> list[RunRef]:
        """The runs that used the version."""

    @abc.abstractmethod
    def run_artifacts(
        self, entity: str, project: str, run_id: str
    ) -> tuple[list[VersionRecord], list[VersionRecord]]:
        """``(logged, used)`` versions of a run."""

    # -- editing --------------------------------------------------------------------------------

    @abc.abstractmethod
    def set_aliases(
        self,
        version: VersionRecord,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> VersionRecord:
        """Add aliases to the version (moving them from another version of the name) and
        remove some of its aliases."""

    @abc.abstractmethod
    def delete(self, version: VersionRecord, *, force: bool = False) -> int:
        """Delete the version and the blobs no other version needs; return the bytes freed.
        Refused while it has aliases unless ``force`` (then ``latest`` moves to the newest
        remaining version)."""

    @abc.abstractmethod
    def gc(self, *, dry_run: bool = False) -> GCReport:
        """Delete blobs that no version references and no lease protects."""
