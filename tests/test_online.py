"""Online mode against a real `runyard server` subprocess: the SDK, `runyard sync`, the Api.

The server's own store (SQLite here) is read directly to check what landed: every history row
exactly once, NaN/inf intact, console lines once, files byte for byte.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.store import open_store
from runyard.store.base import RunRecord, Store, StoreError
from runyard.store.http import HTTPStore, StoreUnavailableError
from tests.conftest import run_python
from tests.serverproc import ServerProc, create_key, free_port, running_server

CLI = [sys.executable, "-m", "runyard"]


def _server_db(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'server.db'}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """One server (no auth) shared by the tests that only add runs."""
    with running_server(_server_db(tmp_path_factory.mktemp("server"))) as proc:
        yield proc


def _server_on(port: int, store_url: str, *, auth: bool = False) -> ServerProc:
    """A server bound to ``port`` (not started): for tests where clients come first."""
    args = [
        *CLI,
        "server",
        "--store",
        store_url,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--auth" if auth else "--no-auth",
    ]
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RUNYARD_") or k.startswith("RUNYARD_TEST_")
    }
    return ServerProc(store_url=store_url, port=port, args=args, env=env)


def _client_env(url: str, root: Path, **extra: str) -> dict[str, str]:
    return {"RUNYARD_BASE_URL": url, "RUNYARD_DIR": str(root), **extra}


def _stored(store_url: str, project: str) -> tuple[Store, RunRecord]:
    """The server's store (read directly) and the one run of ``project``."""
    from runyard.store.base import RunQuery

    store = open_store(store_url)
    found = store.list_runs(RunQuery(project=project))
    assert len(found) == 1, [r.path for r in found]
    return store, found[0]


def _steps(store: Store, run: RunRecord) -> list[int]:
    return [row["_step"] for row in store.history(run.pk)]


def _sync_command(stderr: str) -> list[str]:
    found = re.findall(r"`(runyard sync [^`]+)`", stderr)
    assert len(found) == 1, stderr
    return [*CLI, *shlex.split(found[0])[1:]]


# -- the SDK through the server -----------------------------------------------------------------

LOGGER = """
import math, runyard
run = runyard.init(project="intact", config={"lr": 0.01, "model": {"layers": 3, "act": "relu"}})
runyard.define_metric("acc", summary="max")
for step in range(200):
    odd = {5: math.nan, 6: math.inf, 7: -math.inf}.get(step, step)
    runyard.log({"loss": 1.0 / (step + 1), "acc": step / 200, "odd": odd, "text": f"s{step}"})
    if step % 50 == 0:
        print(f"line {step}", flush=True)
run.summary["note"] = "done"
runyard.finish()
"""


def test_run_through_the_server_lands_intact(server: ServerProc, tmp_path: Path) -> None:
    run_python(LOGGER, tmp_path, env=_client_env(server.url, tmp_path / ".runyard"))
    store, run = _stored(server.store_url, "intact")
    assert run.state == "finished"
    assert run.config == {"lr": 0.01, "model": {"layers": 3, "act": "relu"}}
    assert run.summary["loss"] == pytest.approx(1 / 200)
    assert run.summary["acc"] == {"max": pytest.approx(199 / 200)}
    assert run.summary["note"] == "done"
    rows = store.history(run.pk)
    assert [r["_step"] for r in rows] == list(range(200))
    assert math.isnan(rows[5]["odd"]) and rows[6]["odd"] == math.inf
    assert rows[7]["odd"] == -math.inf and rows[8]["odd"] == 8 and rows[9]["text"] == "s9"
    printed = [text for stream, _, text in store.console(run.pk) if stream == "stdout"]
    assert printed == ["line 0", "line 50", "line 100", "line 150"]
    # The client's journal was applied and retired; nothing was written to a local database.
    assert list((tmp_path / ".runyard" / "journal").glob("*.journal")) == []
    assert not (tmp_path / ".runyard" / "runyard.db").exists()

    # runyard.Api over HTTP reads the same run.
    api = runyard.Api(store=server.url)
    found = api.runs("intact", filters={"summary.note": "done"})
    assert [r.id for r in found] == [run.run_id]
    remote = api.run(f"{run.entity}/intact/{run.run_id}")
    assert remote.config == run.config and remote.state == "finished"
    assert remote.metric_names() == ["acc", "loss", "odd", "text"]
    http_rows = list(remote.scan_history())
    assert len(http_rows) == 200 and math.isnan(http_rows[5]["odd"])
    assert http_rows[6]["odd"] == math.inf and http_rows[199]["loss"] == rows[199]["loss"]
    assert remote.history(keys=["loss"], samples=None, pandas=False)[0] == {
        "_step": 0,
        "_runtime": rows[0]["_runtime"],
        "_timestamp": rows[0]["_timestamp"],
        "loss": 1.0,
    }
    assert [t for s, _, t in remote.console() if s == "stdout"] == printed
    series = api.store.series(remote.record.pk, "loss", samples=20)
    assert series.total == 200 and series.downsampled and len(series.steps) <= 20

    # ... and so does the command line.
    out = subprocess.run(
        [*CLI, "runs", "ls", "intact", "--store", server.url, "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert f'"id": "{run.run_id}"' in out.stdout


def test_files_round_trip(server: ServerProc, tmp_path: Path) -> None:
    data = bytes(range(256)) * 100
    (tmp_path / "weights.bin").write_bytes(data)
    run = runyard.init(project="files", settings=runyard.Settings(store=server.url))
    run.save("weights.bin")
    runyard.finish()
    store = open_store(server.url)
    assert isinstance(store, HTTPStore)
    files = store.list_files(run.entity, "files", run.id)
    assert [(f.name, f.size) for f in files] == [("weights.bin", len(data))]
    assert store.read_file(run.entity, "files", run.id, "weights.bin") == data

    odd_name = "ckpt/epoch 1 #2.txt"
    store.put_file(run.entity, "files", run.id, odd_name, b"second")
    assert store.read_file(run.entity, "files", run.id, odd_name) == b"second"
    assert {f.name for f in store.list_files(run.entity, "files", run.id)} == {
        "weights.bin",
        odd_name,
    }
    with pytest.raises(FileNotFoundError):
        store.read_file(run.entity, "files", run.id, "missing.txt")
    for bad in ("../escape", "/abs", "a//b"):
        with pytest.raises(StoreError, match="invalid file name"):
            store.put_file(run.entity, "files", run.id, bad, b"x")


def test_offline_run_synced_to_the_server(server: ServerProc, tmp_path: Path) -> None:
    root = tmp_path / ".runyard"
    run_python(
        """
        import runyard
        run = runyard.init(project="offline", mode="offline", config={"x": 1})
        for i in range(30):
            runyard.log({"v": i})
        runyard.finish()
        """,
        tmp_path,
        env={"RUNYARD_DIR": str(root)},
    )
    out = subprocess.run(
        [*CLI, "sync", "--dir", str(root), "--store", server.url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "1 run(s) synced" in out.stdout
    store, run = _stored(server.store_url, "offline")
    assert run.state == "finished" and run.config == {"x": 1}
    assert _steps(store, run) == list(range(30))


# -- the server down or killed ------------------------------------------------------------------

WAITER = """
import os, sys, time
from pathlib import Path
import runyard

run = runyard.init(project="{project}")
worst = 0.0
def log_many(start, n):
    global worst
    for i in range(start, start + n):
        t0 = time.perf_counter()
        runyard.log({{"i": i}})
        worst = max(worst, time.perf_counter() - t0)
        if i % 100 == 0:
            print(f"tick {{i}}", flush=True)
        time.sleep({sleep})
log_many(0, {first})
Path("phase1").touch()
deadline = time.time() + 60
while not Path("go").exists() and time.time() < deadline:
    time.sleep(0.02)
log_many({first}, {second})
print(f"WORST {{worst:.4f}}", file=sys.stderr)
runyard.finish()
"""


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _start_script(code: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    script = cwd / "script_under_test.py"
    script.write_text(code)
    full = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    full.update({"RUNYARD_SILENT": "true", "RUNYARD_DISABLE_GIT": "true", **env})
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=cwd,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _worst_log(stderr: str) -> float:
    match = re.search(r"WORST ([0-9.]+)", stderr)
    assert match, stderr
    return float(match.group(1))


def _ticks(store: Store, run: RunRecord) -> list[str]:
    return [t for s, _, t in store.console(run.pk) if s == "stdout"]


def test_server_down_at_init_then_up(tmp_path: Path) -> None:
    """log() stays fast while nothing listens; once the server comes up, everything lands
    exactly once and finish() completes without any sync."""
    port = free_port()
    server = _server_on(port, _server_db(tmp_path / "server"))
    code = WAITER.format(project="late", first=400, second=400, sleep=0.001)
    proc = _start_script(code, tmp_path, _client_env(server.url, tmp_path / ".runyard"))
    try:
        _wait_for(lambda: (tmp_path / "phase1").exists() or proc.poll() is not None, 60, "phase1")
        assert proc.poll() is None, proc.communicate()
        server.start()
        (tmp_path / "go").touch()
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
    assert proc.returncode == 0, stderr
    # A log() that waited on the shipper would take seconds (retry backoff >= 0.5 s, connect
    # timeout 5 s); 1 s leaves room for scheduling noise on a loaded 2-core machine.
    assert _worst_log(stderr) < 1.0, stderr
    assert "cannot write to the store yet" in stderr  # said once, not per retry
    assert stderr.count("cannot write to the store yet") == 1
    assert "runyard sync" not in stderr  # the backlog made it before the finish deadline
    store, run = _stored(server.store_url, "late")
    assert run.state == "finished"
    assert _steps(store, run) == list(range(800))
    assert _ticks(store, run) == [f"tick {i}" for i in range(0, 800, 100)]


def test_server_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    store_url = _server_db(tmp_path / "server")
    with running_server(store_url) as server:
        code = WAITER.format(project="killed", first=1500, second=1500, sleep=0.0005)
        env = _client_env(server.url, tmp_path / ".runyard", RUNYARD_FLUSH_INTERVAL="0.05")
        proc = _start_script(code, tmp_path, env)
        try:
            reader = open_store(store_url)

            def landed() -> int:
                from runyard.store.base import RunQuery

                runs = reader.list_runs(RunQuery(project="killed"))
                return runs[0].last_step if runs else -1

            _wait_for(lambda: landed() >= 200 or proc.poll() is not None, 60, "first rows")
            server.kill()  # SIGKILL, mid-stream
            killed_at = landed()
            (tmp_path / "go").touch()
            time.sleep(1.0)  # the run keeps logging into its journal meanwhile
            server.start()
            _, stderr = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, stderr
        assert killed_at < 2999, "the run ended before the server was killed"
        assert _worst_log(stderr) < 1.0, stderr  # see above: no log() waited for the server
        store, run = _stored(store_url, "killed")
        assert run.state == "finished"
        assert _steps(store, run) == list(range(3000))
        assert _ticks(store, run) == [f"tick {i}" for i in range(0, 3000, 100)]


def test_bounded_wait_at_exit_then_sync_uploads_once(tmp_path: Path) -> None:
    port = free_port()
    server = _server_on(port, _server_db(tmp_path / "server"))
    root = tmp_path / ".runyard"
    (tmp_path / "model.txt").write_text("weights")
    started = time.monotonic()
    proc = run_python(
        """
        import runyard
        run = runyard.init(project="bounded")
        for i in range(100):
            runyard.log({"v": i})
        run.save("model.txt")
        """,
        tmp_path,
        env=_client_env(server.url, root, RUNYARD_FINISH_TIMEOUT="1.5"),
    )
    elapsed = time.monotonic() - started
    assert elapsed < 20, elapsed  # 1.5 s of waiting plus the interpreter
    lines = [line for line in proc.stderr.splitlines() if "runyard sync" in line]
    assert len(lines) == 2, proc.stderr  # the records line and the files line
    assert "record(s) did not reach the store within 1.5s" in proc.stderr
    assert "Traceback" not in proc.stderr
    command = _sync_command(lines[0])
    server.start()
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "1 run(s) synced" in out.stdout and "1 file(s) uploaded" in out.stdout
        again = subprocess.run(command, capture_output=True, text=True, check=True)
        assert "nothing to sync" in again.stdout
        store, run = _stored(server.store_url, "bounded")
        assert run.state == "finished"
        assert _steps(store, run) == list(range(100))
        assert store.read_file(run.entity, "bounded", run.run_id, "model.txt") == b"weights"
    finally:
        server.close()


# -- keys ---------------------------------------------------------------------------------------


def test_wrong_key_is_one_clear_error_and_login_fixes_it(tmp_path: Path) -> None:
    store_url = _server_db(tmp_path / "server")
    good = create_key(store_url, "alice")
    root = tmp_path / ".runyard"
    config_dir = tmp_path / "config"
    with running_server(store_url, auth=True) as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")} | {
            "RUNYARD_CONFIG_DIR": str(config_dir),
            "RUNYARD_DIR": str(root),
        }
        bad = subprocess.run(
            [*CLI, "runs", "ls", "--store", server.url],
            env=env | {"RUNYARD_API_KEY": "ry_nope_nope"},
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 1
        assert "refused" in bad.stderr and "RUNYARD_API_KEY" in bad.stderr
        assert "runyard login" in bad.stderr and "Traceback" not in bad.stderr

        # A training run with a wrong key still finishes; its records wait for a sync.
        proc = run_python(
            """
            import runyard
            runyard.init(project="keys")
            for i in range(10):
                runyard.log({"v": i})
            """,
            tmp_path,
            env={
                "RUNYARD_BASE_URL": server.url,
                "RUNYARD_API_KEY": "ry_nope_nope",
                "RUNYARD_ENTITY": "alice",
                "RUNYARD_DIR": str(root),
                "RUNYARD_FINISH_TIMEOUT": "1",
            },
        )
        assert "refused" in proc.stderr and "runyard sync" in proc.stderr
        assert "Traceback" not in proc.stderr

        wrong_login = subprocess.run(
            [*CLI, "login", server.url, "--key", "ry_nope_nope"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert wrong_login.returncode == 1 and "refused" in wrong_login.stderr
        login = subprocess.run(
            [*CLI, "login", server.url, "--key", good],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert "logged in" in login.stdout and "alice" in login.stdout
        saved = config_dir / "credentials.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600

        # No --store, no variables: the login's server and key are used.
        synced = subprocess.run([*CLI, "sync"], env=env, capture_output=True, text=True, check=True)
        assert "1 run(s) synced to " + server.url in synced.stdout
        listed = subprocess.run(
            [*CLI, "runs", "ls", "keys", "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert '"project": "alice/keys"' in listed.stdout
        store, run = _stored(store_url, "keys")
        assert _steps(store, run) == list(range(10))

        subprocess.run([*CLI, "logout"], env=env, check=True, capture_output=True)
        assert server.url not in saved.read_text()


# -- without a server ---------------------------------------------------------------------------


def test_store_selection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runyard.store import resolve_store_url

    monkeypatch.setenv("RUNYARD_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("RUNYARD_STORE", "sqlite:///elsewhere.db")
    assert runyard.Settings().resolved().store == "sqlite:///elsewhere.db"
    monkeypatch.setenv("RUNYARD_BASE_URL", "http://runyard.test:8080/")
    assert runyard.Settings().resolved().store == "http://runyard.test:8080/"
    assert runyard.Settings(store="sqlite:///x.db").resolved().store == "sqlite:///x.db"
    assert resolve_store_url(None, tmp_path) == "http://runyard.test:8080/"
    assert runyard.Settings().resolved().finish_timeout == 30.0
    monkeypatch.setenv("RUNYARD_FINISH_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="RUNYARD_FINISH_TIMEOUT"):
        runyard.Settings().resolved()
    assert "api_key" not in repr(runyard.Settings(api_key="ry_secret"))

    store = open_store("http://runyard.test:8080/api/v1/")
    assert isinstance(store, HTTPStore) and store.url == "http://runyard.test:8080"
    assert open_store("http://runyard.test:8080") is store
    with pytest.raises(StoreError, match="controller"):
        store.sweep_transaction("abc")


def test_unreachable_server_is_store_unavailable() -> None:
    store = HTTPStore(f"http://127.0.0.1:{free_port()}", connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="cannot reach the runyard server"):
        store.journal_progress("x")
    assert time.monotonic() - started < 5
