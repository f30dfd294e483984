"""What ``Run.log_artifact`` / ``use_artifact`` / ``log_model`` / ``use_model`` /
``link_model`` / ``link_artifact`` and ``Api.artifact`` do (the SDK's hooks delegate here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.artifacts import artifact_store_for
from runyard.artifacts.artifact import Artifact
from runyard.artifacts.base import ArtifactStore, RunRef, check_name
from runyard.artifacts.manifest import ArtifactError

if TYPE_CHECKING:
    from runyard.sdk.run import Run


def split_ref(ref: str, entity: str, project: str) -> tuple[str, str, str, str]:
    """``(entity, project, name, version-or-alias)`` of ``[[entity/]project/]name[:ref]``."""
    path, _, version = ref.partition(":")
    parts = [p for p in path.split("/") if p]
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        project, name = parts
    elif len(parts) == 3:
        entity, project, name = parts
    else:
        raise ArtifactError(
            f"{ref!r} is not an artifact reference: use 'name', 'name:alias', 'name:v3', "
            "'project/name:v3' or 'entity/project/name:v3'"
        )
    return entity, project, check_name(name), version or "latest"


def _store(run: Run) -> ArtifactStore:
    if run.mode != "online" or run._root is None:
        raise ArtifactError(
            f"artifacts need a store, and run {run.path} is {run.mode}: log artifacts from an "
            "online run (the embedded store or a server)"
        )
    return artifact_store_for(run._open_store())


def _as_artifact(
    run: Run,
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None,
    type: str | None,
) -> Artifact:
    if isinstance(artifact_or_path, Artifact):
        return artifact_or_path
    path = Path(artifact_or_path)
    if "://" in str(artifact_or_path):
        art = Artifact(name or f"run-{run.id}-ref", type or "unspecified")
        art.add_reference(str(artifact_or_path))
        return art
    art = Artifact(name or f"run-{run.id}-{path.name}".replace(" ", "_"), type or "unspecified")
    if path.is_dir():
        art.add_dir(path)
    else:
        art.add_file(path)
    return art


def log_artifact(
    run: Run,
    artifact_or_path: Artifact | str | os.PathLike[str],
    name: str | None = None,
    type: str | None = None,
    aliases: list[str] | None = None,
    tags: list[str] | None = None,
) -> Artifact:
    """Log a version of the artifact from ``run`` (returns once it is committed)."""
    from runyard.artifacts.hashing import HashCache
    from runyard.artifacts.transfer import LogStats, log_entries

    art = _as_artifact(run, artifact_or_path, name, type)
    if art._record is not None:
        raise ArtifactError(f"{art.name} is logged already; use_artifact() it instead")
    if run.disabled:
        return art
    store = _store(run)
    stats = LogStats()
    record = log_entries(
        store,
        run.entity,
        run.project,
        art.collection_name,
        art.type,
        art.files(),
        metadata=art.metadata,
        description=art.description,
        aliases=list(aliases or []) + [a for a in art.aliases if a not in (aliases or [])],
        run_id=run.id,
        hash_cache=HashCache(),
        stats=stats,
    )
    art._adopt(record, store)
    art.log_stats = stats
    return art


def use_artifact(
    run: Run,
    artifact_or_name: Artifact | str,
    type: str | None = None,
    aliases: list[str] | None = None,
    use_as: str | None = None,
) -> Artifact:
    """Fetch a logged version and record that ``run`` uses it (lineage)."""
    if isinstance(artifact_or_name, Artifact):
        if artifact_or_name._record is None:
            raise ArtifactError(
                f"use_artifact: {artifact_or_name.name} is a draft; log it first or pass its name"
            )
        store = _store(run)
        record = artifact_or_name._record
    else:
        store = _store(run)
        entity, project, name, ref = split_ref(artifact_or_name, run.entity, run.project)
        record = store.get(entity, project, name, ref)
    if type is not None and record.type != type:
        raise ArtifactError(f"{record.qualified_name} is of type {record.type!r}, not {type!r}")
    store.use(record, RunRef(run.entity, run.project, run.id))
    if aliases:
        record = store.set_aliases(record, aliases)
    return Artifact._from_record(record, store)


def log_model(
    run: Run,
    path: str | os.PathLike[str],
    name: str | None = None,
    aliases: list[str] | None = None,
) -> Artifact:
    """W&B's ``run.log_model``: the file or folder as a ``model`` artifact."""
    return log_artifact(run, path, name=name, type="model", aliases=aliases)


def use_model(run: Run, name: str) -> str:
    """W&B's ``run.use_model``: use a model artifact and download it; its local path."""
    art = use_artifact(run, name)
    if art.type != "model":
        raise ArtifactError(f"use_model: {art.qualified_name} is of type {art.type!r}, not model")
    folder = art.download()
    files = art.files()
    return str(Path(folder) / files[0].path) if len(files) == 1 else folder


def link_artifact(
    run: Run, artifact: Artifact, target_path: str, aliases: list[str] | None = None
) -> Artifact:
    """Link a logged version into another collection (W&B's ``link_artifact``): a version of
    ``target_path`` (``[[entity/]project/]name``) with the same files (no copy: the blobs are
    shared) that remembers the version it links."""
    if artifact._record is None:
        artifact = log_artifact(run, artifact)
    source = artifact._logged()
    store = _store(run)
    if source.entries is None:
        source = store.get(source.entity, source.project, source.name, f"v{source.version}")
    entity, project, name, _ = split_ref(target_path, run.entity, run.project)
    if entity != source.entity:
        raise ArtifactError("link_artifact: the target must be in the artifact's entity")
    record = store.commit(
        entity,
        project,
        name,
        source.type,
        source.entries or [],
        metadata=source.metadata,
        description=source.description,
        aliases=aliases or [],
        run_id=run.id,
        source=source.qualified_name,
    )
    return Artifact._from_record(record, store)


def link_model(
    run: Run,
    path: str | os.PathLike[str],
    registered_model_name: str,
    name: str | None = None,
    aliases: list[str] | None = None,
) -> Artifact:
    """W&B's ``run.link_model``: log the model, then link it into the registry collection
    ``<entity>/model-registry/<registered_model_name>``."""
    art = log_model(run, path, name=name)
    return link_artifact(run, art, f"model-registry/{registered_model_name}", aliases)


def api_artifact(store: Any, default_entity: str, ref: str, type: str | None = None) -> Artifact:
    """``Api().artifact("entity/project/name:alias")``."""
    parts = ref.split(":", 1)[0].split("/")
    if len(parts) < 2:
        raise ArtifactError(
            f"Api().artifact({ref!r}): give 'project/name:alias' or 'entity/project/name:alias'"
        )
    entity, project, name, version = split_ref(ref, default_entity, "")
    arts = artifact_store_for(store)
    record = arts.get(entity, project, name, version)
    if type is not None and record.type != type:
        raise ArtifactError(f"{record.qualified_name} is of type {record.type!r}, not {type!r}")
    return Artifact._from_record(record, arts)


def run_artifacts(
    store: Any, entity: str, project: str, run_id: str
) -> tuple[list[Artifact], list[Artifact]]:
    arts = artifact_store_for(store)
    logged, used = arts.run_artifacts(entity, project, run_id)
    return (
        [Artifact._from_record(r, arts) for r in logged],
        [Artifact._from_record(r, arts) for r in used],
    )
