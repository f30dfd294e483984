"""Artifacts: versioned datasets and models, content-addressed and deduplicated, with lineage.

Interface and contract: :mod:`runyard.artifacts.base` (``ArtifactStore``). Implementations:
:class:`~runyard.artifacts.sql.SQLArtifactStore` (embedded/SQL store + a blob store) and
:class:`~runyard.artifacts.http.HTTPArtifactStore` (a runyard server). The user-facing object is
:class:`Artifact`; the SDK's ``run.log_artifact``/``use_artifact`` delegate to
:mod:`runyard.artifacts.sdk`. See docs/artifacts.md.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from runyard.artifacts.artifact import Artifact
from runyard.artifacts.base import (
    ArtifactCorruptedError,
    ArtifactNotFoundError,
    ArtifactStore,
    MissingBlobsError,
    RunRef,
    VersionRecord,
)
from runyard.artifacts.manifest import ArtifactError, ManifestEntry

__all__ = [
    "Artifact",
    "ArtifactCorruptedError",
    "ArtifactError",
    "ArtifactNotFoundError",
    "ArtifactStore",
    "ManifestEntry",
    "MissingBlobsError",
    "RunRef",
    "VersionRecord",
    "artifact_store_for",
    "default_blobs_location",
]

_STORES: dict[tuple[int, int], ArtifactStore] = {}
_LOCK = threading.Lock()


def default_blobs_location(store_url: str) -> str:
    """Where an SQL store keeps artifact blobs: ``RUNYARD_BLOBS`` (a directory or
    ``s3://bucket/prefix``), else ``<folder of the SQLite file>/blobs``, else
    ``~/.runyard/blobs``."""
    explicit = os.environ.get("RUNYARD_BLOBS")
    if explicit:
        return explicit
    if store_url.startswith("sqlite"):
        import sqlalchemy as sa

        db = sa.engine.make_url(store_url).database
        if db and db != ":memory:":
            return str(Path(db).resolve().parent / "blobs")
    return str(Path.home() / ".runyard" / "blobs")


def artifact_store_for(store: Any, blobs: Any = None) -> ArtifactStore:
    """The artifact store behind a :class:`~runyard.store.Store` (one per store and process)."""
    key = (id(store), os.getpid())
    with _LOCK:
        found = _STORES.get(key)
        if found is not None and blobs is None:
            return found
        from runyard.store.http import HTTPStore

        made: ArtifactStore
        if isinstance(store, HTTPStore):
            from runyard.artifacts.http import HTTPArtifactStore

            made = HTTPArtifactStore(store)
        else:
            from runyard.artifacts.sql import SQLArtifactStore
            from runyard.blobs import open_blob_store

            made = SQLArtifactStore(
                store, blobs or open_blob_store(default_blobs_location(store.url))
            )
        _STORES[key] = made
        return made
