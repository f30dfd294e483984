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
]

_STORES: dict[tuple[int, int], ArtifactStore] = {}
_LOCK = threading.Lock()


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

            # the store's own blob store (run files and media live there too)
            made = SQLArtifactStore(store, blobs or store.blobs)
        _STORES[key] = made
        return made
