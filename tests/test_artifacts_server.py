"""Artifacts through a real ``runyard server`` (auth on, two users): logging and downloading
over HTTP (resumable parts, the machine's verified cache and its LRU cap), corruption named on
download, entity isolation for artifacts and blobs, a client and a server killed mid-upload,
and the S3 backend (moto's S3 server) with presigned downloads, multipart resumption and
``s3://`` references with ETags."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import runyard
from runyard.artifacts import Artifact, ArtifactCorruptedError, ArtifactError
from runyard.artifacts.base import ArtifactNotFoundError
from runyard.artifacts.cache import DownloadCache
from runyard.blobs import key_of_bytes
from tests.serverproc import ServerProc, auth_headers, create_key, running_server

PART = 1 << 20


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProc, dict[str, str], Path]]:
    folder = tmp_path_factory.mktemp("artifacts-server")
    url = f"sqlite:///{folder / 'store.db'}"
    keys = {user: create_key(url, user) for user in ("alice", "bob")}
    with running_server(url, auth=True, extra_args=["--artifacts", str(folder / "blobs")]) as proc:
        yield proc, keys, folder / "blobs"


@pytest.fixture
def alice(
    server: tuple[ServerProc, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch
) -> ServerProc:
    proc, keys, _ = server
    monkeypatch.setenv("RUNYARD_BASE_URL", proc.url)
    monkeypatch.setenv("RUNYARD_API_KEY", keys["alice"])
    monkeypatch.setattr("runyard.artifacts.base.PART_SIZE", PART)
    return proc


def _blob_file(root: Path, data: bytes) -> Path:
    hexdigest = key_of_bytes(data).split(":")[1]
    return root / "sha256" / hexdigest[:2] / hexdigest


def test_log_and_download_through_the_server_and_the_cache(
    alice: ServerProc, server: tuple[ServerProc, dict[str, str], Path], tmp_path: Path
) -> None:
    blobs = server[2]
    data = tmp_path / "data"
    data.mkdir()
    big = os.urandom(PART * 2 + 777)  # three resumable parts
    (data / "big.bin").write_bytes(big)
    (data / "small.txt").write_text("small")
    with runyard.init(project="p", entity="alice") as run:
        art = Artifact("ds", "dataset", metadata={"n": 2})
        art.add_dir(data)
        logged = run.log_artifact(art, aliases=["best"])
        assert (logged.name, logged.log_stats.uploaded) == ("ds:v0", 2)
        again = Artifact("ds", "dataset")
        again.add_dir(data)
        again = run.log_artifact(again)
        assert again._record.reused and (again.log_stats.hashed, again.log_stats.uploaded) == (0, 0)
    with runyard.init(project="p", entity="alice", job_type="eval") as user:
        used = user.use_artifact("alice/p/ds:best")
        out = Path(used.download(tmp_path / "out"))
    assert (out / "big.bin").read_bytes() == big and (out / "small.txt").read_text() == "small"
    api = runyard.Api()
    assert [a.name for a in api.run(f"alice/p/{user.id}").used_artifacts()] == ["ds:v0"]
    assert api.artifact("alice/p/ds:v0").logged_by().run_id == run.id
    # the second download comes from the machine's cache: the server's copy is not needed
    _blob_file(blobs, big).unlink()
    out2 = Path(api.artifact("alice/p/ds:v0").download(tmp_path / "out2"))
    assert (out2 / "big.bin").read_bytes() == big


def test_a_corrupted_server_blob_is_detected_and_named(
    alice: ServerProc, server: Any, tmp_path: Path
) -> None:
    (tmp_path / "w.bin").write_bytes(b"fine weights")
    with runyard.init(project="p", entity="alice") as run:
        art = Artifact("corrupt-me", "model")
        art.add_file(tmp_path / "w.bin")
        run.log_artifact(art)
    path = _blob_file(server[2], b"fine weights")
    os.chmod(path, 0o644)
    path.write_bytes(b"evil weights")
    with pytest.raises(
        ArtifactCorruptedError,
        match=r"file 'w.bin' of alice/p/corrupt-me:v0.*server's blob sha256:",
    ):
        runyard.Api().artifact("alice/p/corrupt-me:v0").download(tmp_path / "out")
    assert not (tmp_path / "out" / "w.bin").exists()


def test_the_download_cache_keeps_under_its_cap(
    alice: ServerProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_ARTIFACT_CACHE_SIZE", "3000")
    with runyard.init(project="p", entity="alice") as run:
        for i in range(3):
            (tmp_path / "f.bin").write_bytes(bytes([i]) * 2000)
            art = Artifact("lru", "dataset")
            art.add_file(tmp_path / "f.bin")
            run.log_artifact(art)
    api = runyard.Api()
    for i in range(3):
        api.artifact(f"alice/p/lru:v{i}").download(tmp_path / f"o{i}")
    cache = DownloadCache()
    total, _files = cache.usage()
    assert total <= 3000
    assert cache.path(key_of_bytes(bytes([2]) * 2000)) is not None  # the most recent stays
    assert cache.path(key_of_bytes(bytes([0]) * 2000)) is None


def test_entity_isolation_for_artifacts_and_blobs(
    alice: ServerProc, server: Any, tmp_path: Path
) -> None:
    proc, keys, _ = server
    secret = b"alice's secret dataset"
    (tmp_path / "s.bin").write_bytes(secret)
    with runyard.init(project="p", entity="alice") as run:
        art = Artifact("private", "dataset")
        art.add_file(tmp_path / "s.bin")
        run.log_artifact(art)
    key = key_of_bytes(secret)
    bob = httpx.Client(base_url=proc.api, headers=auth_headers(keys["bob"]), timeout=30)
    for path in (
        "/artifacts/alice/p",
        "/artifacts/alice/p/private/versions/v0",
        f"/artifacts/alice/blobs/{key}",
    ):
        assert bob.get(path).status_code == 403, path
    # bob cannot read the blob through his own entity, nor learn that it exists
    assert bob.get(f"/artifacts/bob/blobs/{key}").status_code == 404
    assert bob.post("/artifacts/bob/blobs/begin", json={"keys": [key]}).json()["missing"] == [key]
    body = {
        "name": "stolen",
        "type": "dataset",
        "contents": {"s.bin": {"size": len(secret), "blob": key}},
    }
    refused = bob.post("/artifacts/bob/p/versions", json=body)
    assert refused.status_code == 409 and refused.json()["missing"] == [key]
    assert bob.post("/artifacts/alice/p/versions", json=body).status_code == 403
    # an upload whose content is not its key is refused and stores nothing
    forged = bob.put(f"/artifacts/bob/blobs/{key}", content=b"not the secret")
    assert forged.status_code == 422 and "digest" in forged.json()["error"]["message"]
    assert bob.post("/artifacts/gc").status_code == 403  # admin only


CLIENT = """
    import sys, runyard
    from runyard.artifacts import http
    original = http.HTTPArtifactStore._stream_request
    parts = []
    def hang_after_two_parts(self, method, path, **kw):
        response = original(self, method, path, **kw)
        if method == "PUT" and "offset" in (kw.get("params") or {}):
            parts.append(kw["params"]["offset"])
            print("part", len(parts), flush=True)
            if len(parts) == 2:
                sys.stdin.read()
        return response
    http.HTTPArtifactStore._stream_request = hang_after_two_parts
    with runyard.init(project="p", entity="alice") as run:
        art = runyard.Artifact("resumed", "model")
        art.add_file("big.bin", policy="immutable")
        run.log_artifact(art)
"""


def test_a_client_killed_mid_upload_resumes_over_http(
    alice: ServerProc, server: Any, tmp_path: Path
) -> None:
    proc, keys, _ = server
    big = os.urandom(PART * 4)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "client.py").write_text(textwrap.dedent(CLIENT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update(
        RUNYARD_SILENT="true",
        RUNYARD_DISABLE_GIT="true",
        RUNYARD_BASE_URL=proc.url,
        RUNYARD_API_KEY=keys["alice"],
        RUNYARD_ARTIFACT_PART_SIZE=str(PART),
        RUNYARD_CACHE_DIR=str(tmp_path / "cache"),
    )
    child = subprocess.Popen(
        [sys.executable, "client.py"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert [child.stdout.readline().strip() for _ in range(2)] == ["part 1", "part 2"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    http = httpx.Client(base_url=proc.api, headers=auth_headers(keys["alice"]), timeout=30)
    assert http.get("/artifacts/alice/p/resumed/versions/latest").status_code == 404  # no version
    key = key_of_bytes(big)
    assert http.get(f"/artifacts/alice/blobs/{key}/upload").json()["offset"] == 2 * PART
    sent: list[int] = []
    from runyard.artifacts import http as http_store

    original = http_store.HTTPArtifactStore._stream_request

    def spy(self: Any, method: str, path: str, **kw: Any) -> httpx.Response:
        if method == "PUT":
            sent.append(kw["params"]["offset"])
        return original(self, method, path, **kw)

    http_store.HTTPArtifactStore._stream_request = spy  # type: ignore[method-assign]
    try:
        with runyard.init(project="p", entity="alice") as run:
            art = Artifact("resumed", "model")
            art.add_file(tmp_path / "big.bin", policy="immutable")
            logged = run.log_artifact(art)
    finally:
        http_store.HTTPArtifactStore._stream_request = original  # type: ignore[method-assign]
    assert sent == [2 * PART, 3 * PART]
    assert (Path(logged.download(tmp_path / "out")) / "big.bin").read_bytes() == big


def test_a_server_killed_mid_upload_keeps_what_it_acknowledged(
    alice: ServerProc, server: Any, tmp_path: Path
) -> None:
    proc, keys, _ = server
    data = os.urandom(PART * 3)
    key = key_of_bytes(data)
    headers = auth_headers(keys["alice"])
    http = httpx.Client(base_url=proc.api, headers=headers, timeout=30)
    first = http.put(
        f"/artifacts/alice/blobs/{key}", params={"offset": 0, "final": "false"}, content=data[:PART]
    )
    assert first.json() == {"offset": PART, "stored": False}

    def body() -> Iterator[bytes]:
        yield data[PART : PART + 4096]
        proc.kill()  # kill -9 while the second part is in flight
        yield data[PART + 4096 : 2 * PART]

    with pytest.raises(httpx.HTTPError):
        http.put(
            f"/artifacts/alice/blobs/{key}",
            params={"offset": PART, "final": "false"},
            content=body(),
        )
    proc.start()  # the same store and port
    http = httpx.Client(base_url=proc.api, headers=headers, timeout=30)
    assert http.get(f"/artifacts/alice/blobs/{key}/upload").json()["offset"] == PART
    (tmp_path / "d.bin").write_bytes(data)
    with runyard.init(project="p", entity="alice") as run:
        art = Artifact("after-crash", "dataset")
        art.add_file(tmp_path / "d.bin")
        logged = run.log_artifact(art)
    assert (Path(logged.download(tmp_path / "out")) / "d.bin").read_bytes() == data


# -- S3 backend ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server(
    tmp_path_factory: pytest.TempPathFactory, s3: Any
) -> Iterator[tuple[ServerProc, dict[str, str], Any]]:
    folder = tmp_path_factory.mktemp("artifacts-s3")
    url = f"sqlite:///{folder / 'store.db'}"
    client = s3.client()
    client.create_bucket(Bucket="artifacts")
    keys = {user: create_key(url, user) for user in ("alice", "bob")}
    args = ["--artifacts", "s3://artifacts/team", "--presign"]
    with running_server(url, auth=True, extra_args=args, env=s3.env) as proc:
        yield proc, keys, client


def test_s3_backend_presigned_downloads_multipart_and_isolation(
    s3_server: Any, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, keys, client = s3_server
    monkeypatch.setenv("RUNYARD_BASE_URL", proc.url)
    monkeypatch.setenv("RUNYARD_API_KEY", keys["alice"])
    monkeypatch.setattr("runyard.artifacts.base.PART_SIZE", 5 << 20)  # S3's smallest part
    big = os.urandom((5 << 20) + 1000)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "a.txt").write_text("a")
    from runyard.artifacts.http import HTTPArtifactStore

    direct: list[str] = []
    original = HTTPArtifactStore.upload_presigned

    def spy(self: Any, entity: str, key: str, *args: Any) -> None:
        direct.append(key)
        original(self, entity, key, *args)

    monkeypatch.setattr(HTTPArtifactStore, "upload_presigned", spy)
    with runyard.init(project="p", entity="alice") as run:
        art = Artifact("s3ds", "dataset")
        art.add_file(tmp_path / "big.bin")
        art.add_file(tmp_path / "a.txt")
        logged = run.log_artifact(art)
    # the small file went straight to the bucket by a presigned URL, the large one in parts
    # through the server; nothing is left in the staging area
    assert direct == [key_of_bytes(b"a")]
    assert client.list_objects_v2(Bucket="artifacts", Prefix="team/.uploads/").get("KeyCount") == 0
    key = key_of_bytes(big)
    stored = client.list_objects_v2(Bucket="artifacts", Prefix="team/sha256/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in stored} >= {key.split(":")[1]}
    assert not client.list_multipart_uploads(Bucket="artifacts").get("Uploads")  # completed
    http = httpx.Client(base_url=proc.api, headers=auth_headers(keys["alice"]), timeout=30)
    redirect = http.get(f"/artifacts/alice/blobs/{key}")
    assert redirect.status_code == 307 and redirect.headers["location"].startswith(s3.url)
    assert httpx.get(redirect.headers["location"]).content == big  # no API key needed there
    out = Path(logged.download(tmp_path / "out"))
    assert (out / "big.bin").read_bytes() == big and (out / "a.txt").read_text() == "a"
    bob = httpx.Client(base_url=proc.api, headers=auth_headers(keys["bob"]), timeout=30)
    assert bob.get(f"/artifacts/alice/blobs/{key}").status_code == 403
    assert bob.get(f"/artifacts/bob/blobs/{key}").status_code == 404  # no URL for bob
    # bob's presigned upload URL writes to bob's staging object only, and completing without
    # an upload (hoping to adopt alice's object) finds nothing
    plan = bob.post("/artifacts/bob/blobs/begin", json={"keys": [key]}).json()
    assert plan["missing"] == [key] and "p-bob." in plan["presigned"][key]["url"]
    assert bob.post(f"/artifacts/bob/blobs/{key}/complete").status_code == 404
    forged = httpx.put(plan["presigned"][key]["url"], content=b"not it")
    assert forged.status_code == 200
    assert bob.post(f"/artifacts/bob/blobs/{key}/complete").status_code == 422
    assert bob.get(f"/artifacts/bob/blobs/{key}").status_code == 404


def test_s3_references_are_tracked_by_etag(
    s3_server: Any, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, keys, client = s3_server
    for name, value in s3.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RUNYARD_BASE_URL", proc.url)
    monkeypatch.setenv("RUNYARD_API_KEY", keys["alice"])
    client.create_bucket(Bucket="refs")
    client.put_object(Bucket="refs", Key="shards/0.bin", Body=b"zero")
    client.put_object(Bucket="refs", Key="shards/1.bin", Body=b"one")
    with runyard.init(project="p", entity="alice") as run:
        art = Artifact("shards", "dataset")
        entries = art.add_reference("s3://refs/shards/")
        assert sorted(e.path for e in entries) == ["0.bin", "1.bin"]
        assert all(e.blob is None and e.digest for e in entries)  # ETags, nothing copied
        logged = run.log_artifact(art)
    assert client.list_objects_v2(Bucket="artifacts", Prefix="team/").get("KeyCount", 0) >= 0
    out = Path(logged.download(tmp_path / "out"))
    assert (out / "0.bin").read_bytes() == b"zero" and (out / "1.bin").read_bytes() == b"one"
    client.put_object(Bucket="refs", Key="shards/1.bin", Body=b"changed")
    with pytest.raises(ArtifactError, match="changed since it was logged"):
        runyard.Api().artifact("alice/p/shards:v0").download(tmp_path / "out2")
    with pytest.raises(ArtifactNotFoundError):
        runyard.Api().artifact("alice/p/shards:v9")
