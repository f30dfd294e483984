"""Artifacts on the embedded store: versions, aliases, dedup, lineage, deletion and GC (on SQLite
and PostgreSQL), the SDK's Artifact API, incremental logging, verified downloads, the CLI, and
concurrent / killed writers (real subprocesses)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import runyard
from runyard.artifacts import Artifact, ArtifactCorruptedError, ArtifactError, artifact_store_for
from runyard.artifacts.base import ArtifactNotFoundError, MissingBlobsError
from runyard.artifacts.manifest import ManifestEntry, manifest_digest
from runyard.artifacts.sql import SQLArtifactStore
from runyard.blobs import LocalBlobStore, key_of_bytes
from runyard.cli import main as cli
from runyard.store.sql import SQLStore


@pytest.fixture(params=["sqlite", "postgresql", "sqlite+s3"])
def arts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLArtifactStore]:
    """The artifact store over SQLite and PostgreSQL with blobs in a directory, and over SQLite
    with blobs in S3 (moto's server)."""
    if request.param == "postgresql":
        from tests import pg

        with pg.fresh_schema() as url:
            pg_store = SQLStore(url)
            yield SQLArtifactStore(pg_store, LocalBlobStore(tmp_path / "blobs"))
            pg_store.close()
        return
    store = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
    if request.param == "sqlite+s3":
        from runyard.blobs.s3 import S3BlobStore

        client = request.getfixturevalue("s3").client()
        bucket = f"a-{os.urandom(6).hex()}"
        client.create_bucket(Bucket=bucket)
        yield SQLArtifactStore(store, S3BlobStore(bucket, "blobs", client=client))
    else:
        yield SQLArtifactStore(store, LocalBlobStore(tmp_path / "blobs"))
    store.close()


def _log(arts: SQLArtifactStore, entity: str, name: str, files: dict[str, bytes], **kw: object):
    """Upload what begin() asks for, then commit (what the SDK does)."""
    entries, keyed = [], {}
    for path, data in files.items():
        key = key_of_bytes(data)
        keyed[key] = data
        entries.append(ManifestEntry(path, "", len(data), blob=key))
    plan = arts.begin(entity, list(keyed))
    for key in plan.missing:
        arts.ingest(entity, key, [keyed[key]])
    return arts.commit(
        entity, "p", name, kw.pop("type", "dataset"), entries, lease_id=plan.lease_id, **kw
    ), plan  # type: ignore[arg-type]


def test_versions_reuse_and_aliases(arts: SQLArtifactStore) -> None:
    v0, _ = _log(arts, "e", "ds", {"a.txt": b"a"}, aliases=["best"])
    v1, plan = _log(arts, "e", "ds", {"a.txt": b"a", "b.txt": b"b"})
    assert (v0.version, v1.version) == (0, 1) and not v1.reused
    assert plan.missing == [key_of_bytes(b"b")]  # a.txt's blob was stored already
    # the same content again: no new version; latest and the aliases move to it
    again, plan = _log(arts, "e", "ds", {"a.txt": b"a"}, aliases=["prod"])
    assert again.reused and again.version == 0 and plan.missing == []
    assert again.aliases == ["latest", "best", "prod"]
    assert arts.get("e", "p", "ds", "v1").aliases == []
    assert arts.get("e", "p", "ds", "latest").version == 0
    assert arts.get("e", "p", "ds", again.digest).version == 0
    # the digest is W&B's: MD5 over "path:md5" lines
    import base64
    import hashlib

    md5 = base64.b64encode(hashlib.md5(b"a").digest()).decode()
    assert again.entries is not None and again.entries[0].digest == md5
    assert again.digest == manifest_digest([ManifestEntry("a.txt", md5, 1)])
    # aliases are unique per name: moving "best" takes it from v0
    moved = arts.set_aliases(arts.get("e", "p", "ds", "v1"), ["best"])
    assert moved.aliases == ["best"] and "best" not in arts.get("e", "p", "ds", "v0").aliases
    assert [v.version for v in arts.versions("e", "p", "ds")] == [1, 0]
    with pytest.raises(ArtifactError, match="names a version"):
        arts.set_aliases(moved, ["v7"])
    with pytest.raises(ArtifactError, match="of type 'dataset', not 'model'"):
        _log(arts, "e", "ds", {"x": b"x"}, type="model")
    with pytest.raises(ArtifactNotFoundError, match="no version or alias 'nope'"):
        arts.get("e", "p", "ds", "nope")
    [coll] = arts.collections("e", "p")
    assert (coll.name, coll.type, coll.version_count, coll.latest) == ("ds", "dataset", 2, 1)


def test_blobs_are_shared_but_owned_per_entity(arts: SQLArtifactStore) -> None:
    _log(arts, "alice", "one", {"w.bin": b"weights"})
    _log(arts, "alice", "two", {"copy.bin": b"weights"})
    assert len(list(arts.blobs.keys())) == 1  # one copy for both artifacts
    key = key_of_bytes(b"weights")
    # bob is told to upload it (he learns nothing of alice's content) and cannot read it
    assert arts.begin("bob", [key]).missing == [key]
    with pytest.raises(ArtifactNotFoundError):
        arts.open_blob("bob", key)
    with pytest.raises(MissingBlobsError):
        arts.commit("bob", "p", "steal", "dataset", [ManifestEntry("w", "", 7, blob=key)])
    # once bob uploaded the content himself he holds it; storage still has one copy
    v, _ = _log(arts, "bob", "mine", {"w": b"weights"})
    assert v.version == 0 and len(list(arts.blobs.keys())) == 1
    assert b"".join(arts.open_blob("bob", key)) == b"weights"


def test_delete_and_gc_keep_what_is_still_needed(arts: SQLArtifactStore) -> None:
    _log(arts, "e", "ds", {"shared": b"shared", "old": b"only in v0"})
    _log(arts, "e", "ds", {"shared": b"shared", "new": b"only in v1"})
    v0 = arts.get("e", "p", "ds", "v0")
    assert arts.delete(v0) == len(b"shared") * 0 + len(b"only in v0")  # no aliases on v0
    assert not arts.blobs.exists(key_of_bytes(b"only in v0"))
    assert arts.blobs.exists(key_of_bytes(b"shared"))
    v1 = arts.get("e", "p", "ds", "v1")
    with pytest.raises(ArtifactError, match="has aliases \\(latest\\)"):
        arts.delete(v1)
    # a blob uploaded for a log still in flight (leased, not committed) survives GC
    pending = key_of_bytes(b"in flight")
    plan = arts.begin("e", [pending])
    arts.ingest("e", pending, [b"in flight"])
    report = arts.gc()
    assert report.deleted_blobs == 0 and report.kept_leased == 1
    arts.commit(
        "e",
        "p",
        "other",
        "dataset",
        [ManifestEntry("f", "", 9, blob=pending)],
        lease_id=plan.lease_id,
    )
    # forced delete of the only version with aliases: its blobs go, the shared one too
    assert arts.delete(v1, force=True) == len(b"shared") + len(b"only in v1")
    assert arts.versions("e", "p", "ds") == []
    assert sorted(arts.blobs.keys()) == [pending]
    assert arts.gc().deleted_blobs == 0


def test_concurrent_commits_get_distinct_gap_free_versions(arts: SQLArtifactStore) -> None:
    errors: list[BaseException] = []

    def log(i: int) -> None:
        try:
            _log(arts, "e", "race", {"f": f"content {i}".encode()})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    versions = arts.versions("e", "p", "race")
    assert sorted(v.version for v in versions) == list(range(8))
    assert len({v.digest for v in versions}) == 8
    assert [v.version for v in versions if "latest" in v.aliases] == [7]


# -- the SDK on the embedded store -----------------------------------------------------------


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_log_use_download_and_lineage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("alpha")
    (data / "sub" / "b.bin").write_bytes(os.urandom(3000))
    ref = tmp_path / "outside.csv"
    ref.write_text("x,y\n1,2\n")
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"weights")

    with runyard.init(project="p", job_type="train") as run:
        art = runyard.Artifact("ds", type="dataset", metadata={"rows": 2})
        art.add_dir(data, name="data")
        art.add_file(ckpt)
        with art.new_file("notes.txt") as fh:
            fh.write("hello")
        art.add_reference(ref.as_uri())
        logged = run.log_artifact(art, aliases=["best"])
        assert logged.name == "ds:v0" and logged.aliases == ["latest", "best"]
        assert logged.metadata == {"rows": 2} and logged.state == "COMMITTED"
        ckpt.write_bytes(b"changed after add_file")  # add_file copied it (W&B's "mutable")
        model = run.log_model(tmp_path / "data", name="net", aliases=["prod"])
        linked = run.link_model(tmp_path / "data", "registry-net", name="net")
    with runyard.init(project="p", job_type="eval") as user:
        used = user.use_artifact("ds:best")
        folder = Path(used.download(tmp_path / "out"))
        path = user.use_model("net:prod")
    assert _tree(folder) == {
        "ckpt.pt": b"weights",
        "data/a.txt": b"alpha",
        "data/sub/b.bin": (data / "sub" / "b.bin").read_bytes(),
        "notes.txt": b"hello",
        "outside.csv": b"x,y\n1,2\n",
    }
    assert Path(path).is_dir() and (Path(path) / "a.txt").read_text() == "alpha"
    assert model.type == "model" and linked.qualified_name.endswith(
        "/model-registry/registry-net:v0"
    )
    assert linked._record.source == model.qualified_name  # the same content: it links net:v0

    api = runyard.Api()
    stored = api.artifact("p/ds:latest")
    assert stored.logged_by().run_id == run.id
    assert [r.run_id for r in stored.used_by()] == [user.id]
    logged_names = [a.name for a in api.run(f"p/{run.id}").logged_artifacts()]
    assert logged_names == ["ds:v0", "net:v0"]  # the link lives in project model-registry
    assert [a.name for a in api.run(f"p/{user.id}").used_artifacts()] == ["ds:v0", "net:v0"]
    assert [a.name for a in api.artifacts("dataset", "p/ds")] == ["ds:v0"]


def test_relogging_is_incremental(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for i in range(20):
        (data / f"f{i:02}.bin").write_bytes(os.urandom(2000))
    with runyard.init(project="p") as run:
        first = Artifact("big", "dataset")
        first.add_dir(data)
        first = run.log_artifact(first)
        assert first.log_stats.uploaded == 20 and first.log_stats.hashed == 20
        again = Artifact("big", "dataset")
        again.add_dir(data)
        again = run.log_artifact(again)
        # unchanged: nothing read (the hash cache knows every file), nothing sent, no version
        assert again.name == "big:v0" and again._record.reused
        assert (again.log_stats.hashed, again.log_stats.uploaded) == (0, 0)
        # add_file copies the file (W&B's "mutable" policy) but knows its hash from the cache
        single = Artifact("one", "model")
        single.add_file(data / "f00.bin")
        assert run.log_artifact(single).log_stats.hashed == 0
        (data / "f07.bin").write_bytes(b"one changed file")
        third = Artifact("big", "dataset")
        third.add_dir(data)
        third = run.log_artifact(third)
        assert third.name == "big:v1"
        assert (third.log_stats.hashed, third.log_stats.uploaded) == (1, 1)


def test_a_corrupted_blob_is_named_on_download(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"good weights")
    with runyard.init(project="p") as run:
        art = Artifact("m", "model")
        art.add_file(tmp_path / "w.bin")
        logged = run.log_artifact(art)
        arts = artifact_store_for(run._open_store())
    blob = arts.blobs.path_of(key_of_bytes(b"good weights"))  # type: ignore[attr-defined]
    os.chmod(blob, 0o644)
    blob.write_bytes(b"bad weights!")
    with pytest.raises(ArtifactCorruptedError, match=r"file 'w.bin' of .*/p/m:v0.*sha256:"):
        logged.download(tmp_path / "out")
    assert not (tmp_path / "out" / "w.bin").exists()


def test_cli_put_ls_show_get_alias_rm_gc(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.txt").write_text("x")
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert "p/ds:v0" in ok(
        "artifact", "put", str(tmp_path / "d"), "--name", "p/ds", "--alias", "raw"
    )
    (tmp_path / "d" / "y.txt").write_text("y")
    assert "p/ds:v1" in ok("artifact", "put", str(tmp_path / "d"), "-n", "p/ds", "-t", "dataset")
    assert "same content" in ok("artifact", "put", str(tmp_path / "d"), "-n", "p/ds")
    listing = ok("artifact", "ls", "p")
    assert "ds" in listing and "dataset" in listing
    shown = ok("artifact", "show", "p/ds:raw")
    assert "ds:v0" in shown and "x.txt" in shown and "cli_put" not in shown
    ok("artifact", "get", "p/ds:v1", "--root", str(tmp_path / "got"))
    assert _tree(tmp_path / "got") == {"x.txt": b"x", "y.txt": b"y"}
    assert (
        "v0 aliases: raw, stable"
        in ok("artifact", "alias", "p/ds:v0", "stable").replace("p/ds:", "").split("/")[-1]
    )
    bad = runner.invoke(cli, ["artifact", "rm", "p/ds:v0"])
    assert bad.exit_code != 0 and "has aliases" in bad.output
    assert "deleted" in ok("artifact", "rm", "p/ds:v0", "--force")
    assert "deleted 0 blob(s)" in ok("artifact", "gc")
    missing = runner.invoke(cli, ["artifact", "get", "p/nope:v0"])
    assert missing.exit_code != 0 and "no artifact" in missing.output


def _log_one(i: int, root: str, out: Any) -> None:
    """One of the eight processes: a run that logs its own content under the shared name."""
    os.environ["RUNYARD_DIR"] = root
    Path(root, f"f{i}").write_text(f"process {i}")
    with runyard.init(project="p") as run:
        art = Artifact("shared-name", "dataset")
        art.add_file(Path(root, f"f{i}"), name="data.txt")
        out.put(run.log_artifact(art).version)


def test_eight_processes_log_one_name_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    root = str(tmp_path / ".runyard")
    monkeypatch.setenv("RUNYARD_DIR", root)
    runyard.Api()  # the store exists (migrated) before they start
    ctx = multiprocessing.get_context("fork")  # forked: no interpreter start-up per process
    out = ctx.Queue()
    procs = [ctx.Process(target=_log_one, args=(i, root, out)) for i in range(8)]
    for proc in procs:
        proc.start()
    versions = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0] * 8
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(8)]
    api = runyard.Api()
    contents = set()
    for v in range(8):
        art = api.artifact(f"p/shared-name:v{v}")
        contents.add(Path(art.download(tmp_path / f"v{v}"), "data.txt").read_text())
    assert contents == {f"process {i}" for i in range(8)}


KILLED = """
    import os, sys, runyard
    import runyard.blobs.local as local
    append = local._LocalResumable.append
    def append_then_hang(self, chunks, offset):
        new = append(self, chunks, offset)
        print("part stored", new, flush=True)
        if new >= 2 << 20:
            sys.stdin.read()  # blocks until the test kills us
        return new
    local._LocalResumable.append = append_then_hang
    with runyard.init(project="p") as run:
        art = runyard.Artifact("big", "model")
        art.add_file("big.bin", policy="immutable")
        art.add_file("small.txt", policy="immutable")
        run.log_artifact(art)
"""


def test_a_client_killed_mid_upload_leaves_no_version_and_the_next_log_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(5 << 20)
    (tmp_path / "big.bin").write_bytes(data)
    (tmp_path / "small.txt").write_text("small")
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(KILLED))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update(
        RUNYARD_SILENT="true",
        RUNYARD_DISABLE_GIT="true",
        RUNYARD_DIR=str(tmp_path / ".runyard"),
        RUNYARD_ARTIFACT_PART_SIZE=str(1 << 20),
        RUNYARD_CACHE_DIR=str(tmp_path / "cache"),
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        assert lines[-1].strip() == f"part stored {2 << 20}", lines
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path / ".runyard"))
    monkeypatch.setenv("RUNYARD_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("runyard.artifacts.base.PART_SIZE", 1 << 20)
    api = runyard.Api()
    with pytest.raises(ArtifactNotFoundError):
        api.artifact("p/big:latest")  # nothing half-visible
    appended: list[int] = []
    import runyard.blobs.local as local

    original = local._LocalResumable.append

    def counting(self: local._LocalResumable, chunks: object, offset: int) -> int:
        appended.append(offset)
        return original(self, chunks, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(local._LocalResumable, "append", counting)
    with runyard.init(project="p") as run:
        art = Artifact("big", "model")
        art.add_file(tmp_path / "big.bin", policy="immutable")
        art.add_file(tmp_path / "small.txt", policy="immutable")
        logged = run.log_artifact(art)
    assert appended == [2 << 20, 3 << 20, 4 << 20]  # resumed after the two stored parts
    out = Path(logged.download(tmp_path / "out"))
    assert (out / "big.bin").read_bytes() == data and (out / "small.txt").read_text() == "small"


def test_gc_keeps_a_blob_a_run_file_also_names(tmp_path: Path) -> None:
    """Run files and media share the store's blob store: deleting the only artifact version with
    some content must not delete the bytes a run file still names."""
    (tmp_path / "w.bin").write_bytes(b"shared by a run file")
    with runyard.init(project="p") as run:
        art = Artifact("m", "model")
        art.add_file(tmp_path / "w.bin")
        logged = run.log_artifact(art)
    store = run._open_store()
    store.put_file(run.entity, "p", run.id, "copy.bin", b"shared by a run file")
    arts = artifact_store_for(store)
    assert arts.delete(logged._record, force=True) == 0
    assert arts.gc().deleted_blobs == 0
    assert store.read_file(run.entity, "p", run.id, "copy.bin") == b"shared by a run file"
