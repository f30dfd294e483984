"""Faults injected into real training processes, for tests/test_faults.py and bench/faults.py.

Each scenario runs a real training script in a subprocess against a real store (SQLite, a
PostgreSQL cluster of its own, a ``runyard server``), injects one fault, and returns what a user
cares about: records acknowledged (``log()`` returned) vs stored, duplicates, and the worst
``log()``/``init()``/``finish()`` latencies the training process saw. The tests assert on the
counts; bench/faults.py prints the whole table.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent

TRAINER = r"""
import json, os, sys, time
t0 = time.perf_counter()
import runyard
steps, pace_every = int(sys.argv[1]), int(sys.argv[2])
run = runyard.init(project="faults", id=os.environ["FAULT_RUN_ID"])
init_s = time.perf_counter() - t0
worst = 0.0
out = sys.stdout
for i in range(steps):
    t = time.perf_counter()
    run.log({"i": i, "loss": 1.0 / (i + 1)})
    d = time.perf_counter() - t
    if d > worst:
        worst = d
    if os.environ.get("FAULT_ACK"):
        out.write(f"ack {i}\n")
        out.flush()
    if pace_every and i % pace_every == pace_every - 1:
        out.write(f"progress {i + 1}\n")
        out.flush()
        time.sleep(0.01)
t = time.perf_counter()
run.finish()
finish_s = time.perf_counter() - t
out.write("RESULT " + json.dumps({"init_s": init_s, "worst_log_s": worst, "finish_s": finish_s}) + "\n")
out.flush()
"""


@dataclass
class FaultResult:
    fault: str
    acknowledged: int
    stored: int
    duplicates: int
    missing: int
    state: str
    worst_log_ms: float | None = None
    init_ms: float | None = None
    finish_s: float | None = None

    def row(self) -> dict[str, Any]:
        return asdict(self)


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "WANDB_"))}
    env.update(
        RUNYARD_SILENT="true",
        RUNYARD_DISABLE_GIT="true",
        RUNYARD_CONSOLE="off",
        PYTHONPATH=str(REPO / "src"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def start_trainer(
    workdir: Path, steps: int, pace_every: int, env: dict[str, str]
) -> subprocess.Popen[str]:
    script = workdir / "trainer.py"
    script.write_text(TRAINER)
    return subprocess.Popen(
        [sys.executable, str(script), str(steps), str(pace_every)],
        cwd=workdir,
        env=_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(stream: IO[str], prefix: str, value: int, timeout: float = 120.0) -> int:
    """Read lines ``<prefix> N`` until N >= value; returns the last N (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if line.startswith(prefix + " "):
            last = int(line.split()[1])
            if last >= value:
                break
    return last


def stored_steps(store_url: str, run_id: str) -> tuple[list[int], str]:
    from runyard.store.sql import SQLStore

    store = SQLStore(store_url)
    try:
        runs = [r for r in store.list_runs(_query()) if r.run_id == run_id]
        if not runs:
            return [], "missing"
        return [int(row["i"]) for row in store.history(runs[0].pk) if "i" in row], runs[0].state
    finally:
        store.close()


def _query() -> Any:
    from runyard.store.base import RunQuery

    return RunQuery(project="faults")


def _counts(fault: str, acked: int, steps: list[int], state: str) -> FaultResult:
    unique = set(steps)
    return FaultResult(
        fault=fault,
        acknowledged=acked,
        stored=len(unique),
        duplicates=len(steps) - len(unique),
        missing=sum(1 for i in range(acked) if i not in unique),
        state=state,
    )


def _result_line(out: str) -> dict[str, float]:
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[7:]))
    return {}


def _timed(result: FaultResult, out: str) -> FaultResult:
    timings = _result_line(out)
    if timings:
        result.worst_log_ms = round(timings["worst_log_s"] * 1e3, 3)
        result.init_ms = round(timings["init_s"] * 1e3, 1)
        result.finish_s = round(timings["finish_s"], 3)
    return result


def sync(root: Path, store_url: str | None = None) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "runyard", "sync", "--dir", str(root)]
    if store_url:
        args += ["--store", store_url]
    return subprocess.run(
        args, capture_output=True, text=True, timeout=300, env=_env({}), check=False
    )


def kill9_at_random(workdir: Path, seed: int, steps: int = 6_000) -> FaultResult:
    """``kill -9`` of the training process after a seeded random number of acknowledged logs;
    then ``runyard sync``: every acknowledged step must be stored, once."""
    rng = random.Random(seed)
    at = rng.randrange(50, steps // 2)
    run_id = f"kill{seed:04d}"
    workdir.mkdir(parents=True, exist_ok=True)
    proc = start_trainer(workdir, steps, 0, {"FAULT_RUN_ID": run_id, "FAULT_ACK": "1"})
    assert proc.stdout is not None
    acked = read_until(proc.stdout, "ack", at) + 1
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    root = workdir / ".runyard"
    from runyard.sdk.recovery import recover_journals
    from runyard.store.sql import SQLStore

    store = SQLStore(f"sqlite:///{root / 'runyard.db'}")
    try:
        recover_journals(root, store)  # what `runyard sync` and the next init() do
    finally:
        store.close()
    steps_in, state = stored_steps(f"sqlite:///{root / 'runyard.db'}", run_id)
    return _counts(f"kill -9 after {acked} logs (seed {seed})", acked, steps_in, state)


def postgresql_restart(
    workdir: Path, cluster: Any, *, via_server: bool, steps: int = 30_000
) -> FaultResult:
    """PostgreSQL (``cluster``: a ``tests.pg.PrivateCluster``) restarted with ``pg_ctl restart
    -m fast`` while a run logs into it, directly or through a ``runyard server``: training goes
    on, and every step is stored once."""
    from tests.serverproc import running_server

    run_id = "pgrestart" + ("s" if via_server else "d")
    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        env = {"FAULT_RUN_ID": run_id}
        if via_server:
            server = stack.enter_context(running_server(cluster.sqlalchemy_url))
            env["RUNYARD_BASE_URL"] = server.url
        else:
            env["RUNYARD_STORE"] = cluster.sqlalchemy_url
        proc = start_trainer(workdir, steps, 500, env)
        assert proc.stdout is not None
        read_until(proc.stdout, "progress", steps // 3)
        cluster.restart()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        steps_in, state = stored_steps(cluster.sqlalchemy_url, run_id)
        where = "through a server" if via_server else "direct"
        return _timed(
            _counts(f"PostgreSQL restarted mid-ingest ({where})", steps, steps_in, state), out
        )
