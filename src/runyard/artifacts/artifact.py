"""``Artifact``: W&B's artifact object — build one and log it, or fetch a logged one and use it.

Build::

    art = runyard.Artifact("gpt-small", type="model", metadata={"step": 10})
    art.add_file("ckpt.pt"); art.add_dir("tokenizer/", name="tok")
    with art.new_file("notes.txt") as fh: fh.write("...")
    art.add_reference("s3://bucket/shards/")
    run.log_artifact(art, aliases=["best"])

Use::

    art = run.use_artifact("gpt-small:best")   # or "entity/project/name:v3"
    path = art.download()                      # ./artifacts/gpt-small:v3, verified
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from runyard.artifacts.base import (
    ArtifactStore,
    RunRef,
    VersionRecord,
    check_alias,
    check_name,
)
from runyard.artifacts.manifest import (
    ArtifactError,
    ManifestEntry,
    check_path,
    manifest_digest,
    manifest_json,
)


class Artifact:
    """An artifact: a draft until logged, then one stored version (W&B's ``wandb.Artifact``)."""

    def __init__(
        self,
        name: str,
        type: str,
        description: str | None = None,
        metadata: dict[str, Any] | None = None,
        incremental: bool = False,
        use_as: str | None = None,
    ) -> None:
        self._name = check_name(name)
        self._type = check_name(type, "artifact type")
        self.description = description
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.incremental = incremental
        self._entries: dict[str, ManifestEntry] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._record: VersionRecord | None = None
        self._store: ArtifactStore | None = None
        self._aliases: list[str] = []
        self._saved_aliases: list[str] = []
        #: what logging it did: files, how many were hashed (not in the hash cache) and
        #: uploaded (not stored yet), bytes uploaded (a runyard addition)
        self.log_stats: Any = None

    # -- identity -------------------------------------------------------------------------------

    @classmethod
    def _from_record(cls, record: VersionRecord, store: ArtifactStore) -> Artifact:
        art = cls(record.name, record.type, record.description, record.metadata)
        art._adopt(record, store)
        return art

    def _adopt(self, record: VersionRecord, store: ArtifactStore) -> None:
        self._record, self._store = record, store
        self.metadata = dict(record.metadata)
        if record.entries is not None:
            self._entries = {e.path: e for e in record.entries}
        self._aliases = list(record.aliases)
        self._saved_aliases = list(record.aliases)

    def _logged(self) -> VersionRecord:
        if self._record is None:
            raise ArtifactError(
                f"artifact {self._name!r} is not logged yet: run.log_artifact(art) first"
            )
        return self._record

    @property
    def name(self) -> str:
        """``name:vN`` once logged, else the name (as W&B)."""
        return f"{self._name}:v{self._record.version}" if self._record else self._name

    @property
    def source_name(self) -> str:
        return self.name

    @property
    def collection_name(self) -> str:
        return self._name

    @property
    def type(self) -> str:
        return self._type

    @property
    def version(self) -> str:
        return f"v{self._logged().version}"

    @property
    def entity(self) -> str:
        return self._logged().entity

    @property
    def project(self) -> str:
        return self._logged().project

    @property
    def qualified_name(self) -> str:
        return self._logged().qualified_name

    @property
    def id(self) -> str | None:
        return str(self._record.id) if self._record else None

    @property
    def state(self) -> str:
        return "COMMITTED" if self._record else "PENDING"

    @property
    def digest(self) -> str:
        if self._record is not None:
            return self._record.digest
        if any(not e.digest for e in self._entries.values()):
            raise ArtifactError("the digest of a draft with files is known once it is logged")
        return manifest_digest(self._entries.values())

    @property
    def size(self) -> int:
        if self._record is not None:
            return self._record.size
        return sum(
            e.size or (os.path.getsize(e.local_path) if e.local_path else 0)
            for e in self._entries.values()
        )

    @property
    def created_at(self) -> float | None:
        return self._record.created_at if self._record else None

    @property
    def aliases(self) -> list[str]:
        return self._aliases

    @aliases.setter
    def aliases(self, value: Sequence[str]) -> None:
        self._aliases = [check_alias(a) for a in value]

    @property
    def manifest(self) -> dict[str, Any]:
        return manifest_json(self._entries.values())

    def files(self) -> list[ManifestEntry]:
        return [self._entries[p] for p in sorted(self._entries)]

    def get_entry(self, name: str) -> ManifestEntry:
        try:
            return self._entries[check_path(name)]
        except KeyError:
            raise KeyError(f"artifact {self.name} has no file {name!r}") from None

    # -- building -------------------------------------------------------------------------------

    def _draft(self) -> None:
        if self._record is not None:
            raise ArtifactError(
                f"{self.name} is logged and immutable: make a new Artifact to change files"
            )

    def _add(self, entry: ManifestEntry, overwrite: bool) -> ManifestEntry:
        if entry.path in self._entries and not overwrite:
            old = self._entries[entry.path]
            if old.local_path != entry.local_path or old.ref != entry.ref:
                raise ArtifactError(
                    f"artifact {self._name!r} already has a file {entry.path!r}: pass "
                    "overwrite=True to replace it"
                )
        self._entries[entry.path] = entry
        return entry

    def add_file(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        is_tmp: bool = False,
        skip_cache: bool = False,
        policy: str = "mutable",
        overwrite: bool = False,
    ) -> ManifestEntry:
        """Add a file (read when the artifact is logged)."""
        self._draft()
        path = Path(local_path)
        if not path.is_file():
            raise ArtifactError(f"add_file: {path} is not a file")
        target = name or path.name
        if policy == "mutable":
            # W&B copies the file so that later changes do not leak into the version.
            path = self._stage(path)
        entry = ManifestEntry(check_path(str(target)), "", path.stat().st_size)
        entry.local_path = str(path.resolve())
        return self._add(entry, overwrite)

    def _stage(self, path: Path) -> Path:
        """A private copy of ``path``. Its key comes from the hash cache when ``path`` is
        unchanged since it was last hashed (and is remembered for the copy), so re-logging an
        unchanged file copies it but does not hash it again."""
        from runyard.artifacts.hashing import HashCache, hash_files

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="runyard-artifact-")
        staged = Path(self._tmp.name) / "staged" / f"{len(self._entries)}-{path.name}"
        staged.parent.mkdir(parents=True, exist_ok=True)
        cache = HashCache()
        source = str(path.resolve())
        before = os.stat(source)
        known = cache.lookup([source]).get(source)
        shutil.copy2(path, staged)
        copy = str(staged.resolve())
        unchanged = HashCache._stamp(os.stat(source)) == HashCache._stamp(before)
        if known is not None and unchanged:
            cache.remember([(copy, os.stat(copy), known[0])])
        else:
            key = hash_files([copy], cache)[copy][0]
            if unchanged:
                cache.remember([(source, before, key)])
        return staged

    def add_dir(
        self,
        local_path: str | os.PathLike[str],
        name: str | None = None,
        skip_cache: bool = False,
        policy: str = "mutable",
        merge: bool = False,
    ) -> None:
        """Add every file under a directory (as ``name/<relative path>`` if ``name``)."""
        self._draft()
        root = Path(local_path)
        if not root.is_dir():
            raise ArtifactError(f"add_dir: {root} is not a directory")
        prefix = (name.strip("/") + "/") if name else ""
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for fname in sorted(files):
                full = Path(dirpath) / fname
                rel = prefix + full.relative_to(root).as_posix()
                entry = ManifestEntry(check_path(rel), "", full.stat().st_size)
                # Directories are read in place (no copy): the hash cache keys each file by
                # its stat, and a file changed before log_artifact returns is hashed again.
                entry.local_path = str(full.resolve())
                self._add(entry, overwrite=True)

    @contextlib.contextmanager
    def new_file(
        self, name: str, mode: str = "x", encoding: str | None = None
    ) -> Iterator[IO[Any]]:
        """Open a new file to write into the artifact."""
        self._draft()
        rel = check_path(name)
        if rel in self._entries and "x" in mode:
            raise ArtifactError(f"artifact {self._name!r} already has a file {rel!r}")
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="runyard-artifact-")
        path = Path(self._tmp.name) / "new" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = mode.replace("x", "w") if "x" in mode else mode
        with open(path, mode, encoding=encoding if "b" not in mode else None) as fh:
            yield fh
        self.add_file(path, name=rel, policy="immutable", overwrite=True)

    def add_reference(
        self,
        uri: str,
        name: str | None = None,
        checksum: bool = True,
        max_objects: int | None = None,
    ) -> list[ManifestEntry]:
        """Track ``s3://`` or ``file://`` content by its ETag/MD5, without copying it."""
        from runyard.artifacts.refs import reference_entries

        self._draft()
        return [self._add(e, True) for e in reference_entries(uri, name, checksum, max_objects)]

    def remove(self, item: str | ManifestEntry) -> None:
        self._draft()
        path = item.path if isinstance(item, ManifestEntry) else check_path(item)
        if self._entries.pop(path, None) is None:
            prefix = path.rstrip("/") + "/"
            gone = [p for p in self._entries if p.startswith(prefix)]
            if not gone:
                raise ArtifactError(f"artifact {self._name!r} has no file {path!r}")
            for p in gone:
                del self._entries[p]

    # -- using ----------------------------------------------------------------------------------

    def download(
        self,
        root: str | os.PathLike[str] | None = None,
        allow_missing_references: bool = False,
        skip_cache: bool | None = None,
        path_prefix: str | None = None,
    ) -> str:
        """Fetch the files into ``root`` (default ``./artifacts/<name>:vN``); every file is
        verified against the manifest. Returns the folder."""
        from runyard.artifacts.cache import DownloadCache
        from runyard.artifacts.hashing import HashCache
        from runyard.artifacts.transfer import download_version

        record = self._logged()
        assert self._store is not None
        if record.entries is None:
            record = self._store.get(record.entity, record.project, record.name, self.version)
            self._adopt(record, self._store)
        target = Path(root) if root is not None else Path("artifacts") / self.name
        local = getattr(self._store, "local_blob_path", None)
        cache = None if local is not None else DownloadCache()
        download_version(
            self._store,
            record,
            target,
            cache=cache,
            hash_cache=HashCache(),
            allow_missing_references=allow_missing_references,
            path_prefix=path_prefix,
        )
        return str(target)

    def checkout(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download, then remove files under ``root`` that are not in the artifact."""
        path = Path(self.download(root))
        keep = {path / p for p in self._entries}
        for dirpath, _dirs, files in os.walk(path):
            for fname in files:
                full = Path(dirpath) / fname
                if full not in keep:
                    full.unlink()
        return str(path)

    def verify(self, root: str | os.PathLike[str] | None = None) -> None:
        """Raise ``ArtifactError`` unless ``root`` holds exactly the artifact's files."""
        from runyard.artifacts.hashing import sha256_file

        folder = Path(root) if root is not None else Path("artifacts") / self.name
        for entry in self._entries.values():
            if entry.blob is None:
                continue
            path = folder / entry.path
            if not path.is_file() or sha256_file(path) != entry.blob:
                raise ArtifactError(f"{path} is missing or differs from {self.name}")

    def file(self, root: str | os.PathLike[str] | None = None) -> str:
        """Download a one-file artifact; the file's path."""
        if len(self._entries) != 1:
            raise ArtifactError(f"{self.name} has {len(self._entries)} files, not one")
        folder = self.download(root)
        return str(Path(folder) / next(iter(self._entries)))

    def logged_by(self) -> RunRef | None:
        record = self._logged()
        if record.created_by is None:
            return None
        return RunRef(record.entity, record.project, record.created_by)

    def used_by(self) -> list[RunRef]:
        assert self._store is not None
        return self._store.used_by(self._logged())

    def save(self) -> None:
        """Store alias changes of a logged artifact (``art.aliases.append("prod")``)."""
        record = self._logged()
        assert self._store is not None
        add = [a for a in self._aliases if a not in self._saved_aliases]
        remove = [a for a in self._saved_aliases if a not in self._aliases]
        self._adopt(self._store.set_aliases(record, add, remove), self._store)

    def delete(self, delete_aliases: bool = False) -> None:
        assert self._store is not None
        self._store.delete(self._logged(), force=delete_aliases)

    def wait(self, timeout: float | None = None) -> Artifact:
        return self  # log_artifact returns once the version is committed

    def __repr__(self) -> str:
        return f"<runyard.Artifact {self.name} type={self._type} files={len(self._entries)}>"

    def __del__(self) -> None:
        if self._tmp is not None:
            with contextlib.suppress(Exception):
                self._tmp.cleanup()
