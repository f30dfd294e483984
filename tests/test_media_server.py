"""Media and run files through a real ``runyard server --auth``: entity isolation (read, list,
upload, link by hash), streamed saves (bounded memory on both sides), offline runs with media
carried by ``runyard sync``."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest

import runyard
from runyard.api import Api
from runyard.media import Image, Table
from tests.conftest import run_python
from tests.serverproc import ServerProc, auth_headers, create_key, running_server

CLI = [sys.executable, "-m", "runyard"]
IMG = np.random.default_rng(7).integers(0, 256, (32, 48, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, dict[str, str]]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('media-server') / 'store.db'}"
    keys = {user: create_key(url, user) for user in ("alice", "bob")}
    with running_server(url, auth=True, extra_args=["--max-file-mb", "512"]) as proc:
        yield proc, keys


def http(proc: ServerProc, key: str) -> httpx.Client:
    return httpx.Client(base_url=proc.api, headers=auth_headers(key), timeout=60)


def as_user(monkeypatch: pytest.MonkeyPatch, proc: ServerProc, key: str) -> None:
    monkeypatch.setenv("RUNYARD_BASE_URL", proc.url)
    monkeypatch.setenv("RUNYARD_API_KEY", key)
    monkeypatch.setenv("RUNYARD_CONSOLE", "off")
    monkeypatch.setenv("RUNYARD_DISABLE_STATS", "true")


def cached(root: Path) -> list[str]:
    """The client's blob cache: cached blobs and pins left under ``root/blobs``."""
    base = root / "blobs"
    found = [p for sub in ("sha256", ".pins") for p in (base / sub).rglob("*") if p.is_file()]
    return sorted(str(p.relative_to(base)) for p in found)


def new_run(client: httpx.Client, entity: str, project: str, run_id: str) -> None:
    body = {
        "header": {"entity": entity, "project": project, "run_id": run_id},
        "records": [[1, "run", {}]],
    }
    response = client.post(f"/journals/{entity}-{run_id}/batches", content=orjson.dumps(body))
    assert response.status_code == 200, response.text


def test_another_entity_can_neither_read_nor_write_nor_link_media(
    server: tuple[ServerProc, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, keys = server
    as_user(monkeypatch, proc, keys["alice"])
    run = runyard.init(project="vision", entity="alice", id="alicemedia")
    run.log({"img": Image(IMG), "t": Table(columns=["i", "im"], data=[[1, Image(IMG[::-1])]])})
    run.finish()
    assert run._root is not None and cached(run._root) == []  # acknowledged: pruned
    (row,) = list(Api().run("alice/vision/alicemedia").scan_history())
    ref = row["img"]
    files = "/runs/alice/vision/alicemedia/files"
    with http(proc, keys["alice"]) as alice, http(proc, keys["bob"]) as bob:
        names = {f["name"] for f in alice.get(files).json()}
        assert ref["path"] in names and row["t"]["path"] in names
        assert alice.get(f"{files}/{ref['path']}").content[:4] == b"\x89PNG"
        # Reading, listing, writing and linking into alice's run: 403, whatever is asked.
        assert bob.get(files).status_code == 403
        assert bob.get(f"{files}/{ref['path']}").status_code == 403
        assert bob.get(f"{files}/{row['t']['path']}").status_code == 403
        assert bob.put(f"{files}/{ref['path']}", content=b"evil").status_code == 403
        link = {"x-runyard-link": f"sha256:{ref['sha256']}"}
        assert bob.put(f"{files}/x.png", content=b"", headers=link).status_code == 403
        assert alice.get(f"{files}/{ref['path']}").content[:4] == b"\x89PNG"  # untouched
        # Linking alice's content into bob's own run: refused exactly like a hash nobody
        # has (same status, same message but for the hash), so bob learns nothing.
        new_run(bob, "bob", "thief", "bobrun1")
        theirs = bob.put("/runs/bob/thief/bobrun1/files/stolen.png", content=b"", headers=link)
        nobody = "sha256:" + hashlib.sha256(b"nobody has this").hexdigest()
        unknown = bob.put(
            "/runs/bob/thief/bobrun1/files/stolen.png",
            content=b"",
            headers={"x-runyard-link": nobody},
        )
        assert theirs.status_code == unknown.status_code == 409
        assert theirs.json()["error"]["message"].replace(ref["sha256"], "H") == unknown.json()[
            "error"
        ]["message"].replace(nobody.split(":")[1], "H")
        assert bob.get("/runs/bob/thief/bobrun1/files/stolen.png").status_code == 404
        assert bob.get("/runs/bob/thief/bobrun1/files").json() == []
        # bob can store the same bytes by sending them; then he may link his own copy.
        png = alice.get(f"{files}/{ref['path']}").content
        sent = bob.put("/runs/bob/thief/bobrun1/files/own.png", content=png)
        assert sent.status_code == 200 and sent.json()["sha256"] == ref["sha256"]
        new_run(bob, "bob", "thief", "bobrun2")
        linked = bob.put("/runs/bob/thief/bobrun2/files/again.png", content=b"", headers=link)
        assert linked.status_code == 200
        assert bob.get("/runs/bob/thief/bobrun2/files/again.png").content == png
    # Through the Api too: bob's key reads nothing of alice's run.
    with pytest.raises(Exception, match=r"may not access entity 'alice'"):
        Api(api_key=keys["bob"]).run("alice/vision/alicemedia").files()


def _vm(pid: int, field: str) -> int:
    """``field`` of /proc/PID/status in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.slow
def test_a_large_save_streams_on_both_sides(
    server: tuple[ServerProc, dict[str, str]], tmp_path: Path
) -> None:
    """run.save() of a 128 MiB file: neither the client nor the server holds it in memory
    (peak RSS growth well under the file's size); it arrives whole."""
    proc, keys = server
    assert proc.proc is not None
    size = 128 << 20
    big = tmp_path / "weights.bin"
    with open(big, "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(size >> 20):
            fh.write(block)
    digest = hashlib.sha256()
    with open(big, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    Path(f"/proc/{proc.proc.pid}/clear_refs").write_text("5")  # reset the server's peak RSS
    server_before = _vm(proc.proc.pid, "VmRSS")
    out = run_python(
        f"""
        import runyard
        def kib(field):
            return next(int(l.split()[1]) for l in open("/proc/self/status")
                        if l.startswith(field + ":"))
        run = runyard.init(project="big", entity="alice", id="bigsave1")
        before = kib("VmRSS")
        run.save({str(big)!r})
        run.finish()
        print(before, kib("VmHWM"))
        """,
        tmp_path,
        env={
            "RUNYARD_BASE_URL": proc.url,
            "RUNYARD_API_KEY": keys["alice"],
            "RUNYARD_DIR": str(tmp_path / ".runyard"),
            "RUNYARD_CONSOLE": "off",
            "RUNYARD_DISABLE_STATS": "true",
        },
        timeout=300,
    )
    client_before, client_peak = map(int, out.stdout.split())
    server_growth = _vm(proc.proc.pid, "VmHWM") - server_before
    assert client_peak - client_before < 48 << 10, (client_before, client_peak)
    assert server_growth < 48 << 10, server_growth
    with http(proc, keys["alice"]) as alice:
        (listed,) = alice.get("/runs/alice/big/bigsave1/files").json()
    # an absolute path keeps its folder's name, as in W&B (base_path = the folder above it)
    assert (listed["name"], listed["size"], listed["sha256"]) == (
        f"{tmp_path.name}/weights.bin",
        size,
        digest.hexdigest(),
    )


OFFLINE = """
import os, signal, threading
import numpy as np
import runyard
from runyard.media import Histogram, Image, Table, _worker

img = np.random.default_rng(7).integers(0, 256, (32, 48, 3), dtype=np.uint8)
run = runyard.init(project="off", entity="alice", id="offdone", mode="offline")
run.log({"img": Image(img, caption="c"), "many": [Image(img), Image(img[::-1])],
         "t": Table(columns=["i", "im"], data=[[1, Image(img[:, ::-1])]]),
         "h": Histogram(np.arange(50_000.0) % 17)})
run.save("notes.txt")
run.finish()
_worker.encode_entry = lambda *a, **k: threading.Event().wait()  # the next run never encodes
run = runyard.init(project="off", entity="alice", id="offkilled", mode="offline")
run.log({"img": Image(img[::-1]), "h": np.arange(50_000.0) % 5})
print("logged", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_offline_media_reach_the_server_through_sync(
    server: tuple[ServerProc, dict[str, str]], tmp_path: Path
) -> None:
    """Offline runs (one finished, one killed before anything was encoded) synced with
    ``runyard sync --store http://...``: the files are on the server and every reference of
    the history resolves to them."""
    proc, keys = server
    root = tmp_path / ".runyard"
    (tmp_path / "notes.txt").write_text("notes")
    env = {"RUNYARD_DIR": str(root), "RUNYARD_CONSOLE": "off", "RUNYARD_DISABLE_STATS": "true"}
    killed = run_python(OFFLINE, tmp_path, env=env, check=False)
    assert "logged" in killed.stdout, killed.stderr
    assert any(c.startswith(".pins/") for c in cached(root))  # kept for sync by each journal
    sync_env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    sync_env.update(RUNYARD_API_KEY=keys["alice"], RUNYARD_SILENT="true")
    out = subprocess.run(
        [*CLI, "sync", "--dir", str(root), "--store", proc.url],
        capture_output=True,
        text=True,
        env=sync_env,
        timeout=300,
    )
    assert out.returncode == 0 and "2 run(s) synced" in out.stdout, out.stdout + out.stderr
    assert cached(root) == []  # the server has them: the local cache is empty again
    api = Api(store=proc.url, api_key=keys["alice"], dir=tmp_path / "elsewhere")
    done = api.run("alice/off/offdone")
    (row,) = list(done.scan_history())
    assert np.array_equal(done.load(row["img"], as_numpy=True), IMG)
    assert row["img"]["caption"] == "c"
    first, second = done.load(row["many"], as_numpy=True)
    assert np.array_equal(first, IMG) and np.array_equal(second, IMG[::-1])
    table = done.load(row["t"])
    assert np.array_equal(done.load(table["im"][0], as_numpy=True), IMG[:, ::-1])
    counts, edges = np.histogram(np.arange(50_000.0) % 17, bins=64)
    assert row["h"]["values"] == counts.tolist() and row["h"]["bins"] == edges.tolist()
    names = {f.name for f in done.files()}
    assert {row["img"]["path"], row["t"]["path"], "notes.txt", *row["many"]["filenames"]} <= names
    assert done.summary["img"] == row["img"]
    crashed = api.run("alice/off/offkilled")
    assert crashed.state == "crashed"
    (row,) = list(crashed.scan_history())
    assert np.array_equal(crashed.load(row["img"], as_numpy=True), IMG[::-1])
    counts, edges = np.histogram(np.arange(50_000.0) % 5, bins=32)
    assert row["h"]["values"] == counts.tolist()
