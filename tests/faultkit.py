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
import runyard
t0 = time.perf_counter()  # init() itself, not the import
steps, pace_every = int(sys.argv[1]), int(sys.argv[2])
run = runyard.init(
    project="faults", id=os.environ["FAULT_RUN_ID"], resume=os.environ.get("FAULT_RESUME")
)
init_s = time.perf_counter() - t0
worst = 0.0
out = sys.stdout
pauses = {int(s) for s in os.environ.get("FAULT_PAUSE_AT", "").split(",") if s}
for i in range(steps):
    if i in pauses:  # the driver injects a fault here, then lets the training go on
        out.write(f"paused {i}\n")
        out.flush()
        deadline = time.monotonic() + 120
        while not os.path.exists(f"go{i}") and time.monotonic() < deadline:
            time.sleep(0.002)
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


# -- the server stops or dies around init() (issue 16 item 1) ----------------------------------

#: Steps of the run's earlier session, stored before the fault (the training resumes after them).
EARLIER = 100


def _store_earlier_session(store_url: str, run_id: str) -> None:
    """An earlier session of ``run_id`` with :data:`EARLIER` steps, written into the store."""
    from runyard.store.base import JournalBatch
    from runyard.store.sql import SQLStore

    header = {
        "entity": "faults",
        "project": "faults",
        "run_id": run_id,
        "start_time": time.time() - 60,
    }
    rows = [
        (seq, "row", {"_step": seq - 2, "_runtime": 0.1, "_timestamp": time.time(), "before": 1})
        for seq in range(2, EARLIER + 2)
    ]
    store = SQLStore(store_url)
    try:
        finish = (EARLIER + 2, "finish", {"state": "finished", "time": time.time()})
        store.apply(
            JournalBatch(f"earlier-{run_id}", header, [(1, "run", header), *rows, finish], {}, [])
        )
    finally:
        store.close()


def _placed(store_url: str, run_id: str) -> tuple[list[int], str, bool, dict[str, Any]]:
    """The stored ``i`` values, the run's state, whether every one sits at step EARLIER + i,
    and the stored resume decision."""
    from runyard.store.sql import SQLStore

    store = SQLStore(store_url)
    try:
        runs = [r for r in store.list_runs(_query()) if r.run_id == run_id]
        if not runs:
            return [], "missing", False, {}
        rows = [row for row in store.history(runs[0].pk) if "i" in row]
        placed = all(int(row["_step"]) == EARLIER + int(row["i"]) for row in rows)
        earlier = [row for row in store.history(runs[0].pk) if "before" in row]
        placed = placed and [int(r["_step"]) for r in earlier] == list(range(EARLIER))
        return [int(r["i"]) for r in rows], runs[0].state, placed, runs[0].meta.get("resume") or {}
    finally:
        store.close()


@dataclass
class ServerFaultResult(FaultResult):
    #: every step after the earlier session's, in order (what W&B would have recorded)
    placed: bool = False
    decided_by: str = ""


def _server_fault(
    workdir: Path,
    server: Any,
    run_id: str,
    label: str,
    steps: int,
    actions: dict[int, Any],
    before: Any,
) -> ServerFaultResult:
    """Run the trainer (``resume='allow'``) against ``server``; ``before()`` injects the first
    fault before it starts, ``actions[step]()`` runs while it waits at ``step``."""
    workdir.mkdir(parents=True, exist_ok=True)
    _store_earlier_session(server.store_url, run_id)
    before()
    env = {
        "FAULT_RUN_ID": run_id,
        "FAULT_RESUME": "allow",
        "FAULT_PAUSE_AT": ",".join(str(s) for s in sorted(actions)),
        "RUNYARD_BASE_URL": server.url,
        "RUNYARD_ENTITY": "faults",
        "RUNYARD_FLUSH_INTERVAL": "0.05",
    }
    proc = start_trainer(workdir, steps, 0, env)
    assert proc.stdout is not None
    try:
        for step in sorted(actions):
            if read_until(proc.stdout, "paused", step) != step:
                raise AssertionError(f"the trainer did not reach step {step}: {proc.stderr}")
            actions[step]()
            (workdir / f"go{step}").touch()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        raise AssertionError(f"the trainer failed ({proc.returncode}):\n{err}")
    values, state, placed, decision = _placed(server.store_url, run_id)
    result = _timed(_counts(label, steps, values, state), out)
    return ServerFaultResult(
        **result.row(), placed=placed, decided_by=str(decision.get("decided_by", ""))
    )


def server_stopped_at_init_and_while_logging(
    workdir: Path, server: Any, steps: int = 3_000
) -> ServerFaultResult:
    """The server frozen (SIGSTOP: connections accepted, nothing answered) while the run starts
    with ``init(id=..., resume='allow')`` and logs a third of its steps, thawed for a third,
    frozen again for the last third, thawed before ``finish()``."""
    third = steps // 3
    actions = {
        third: lambda: server._signal(signal.SIGCONT),
        2 * third: lambda: server._signal(signal.SIGSTOP),
        steps - 1: lambda: server._signal(signal.SIGCONT),
    }
    try:
        return _server_fault(
            workdir,
            server,
            "stopped1",
            "server SIGSTOP during init() and logging",
            steps,
            actions,
            lambda: server._signal(signal.SIGSTOP),
        )
    finally:
        server._signal(signal.SIGCONT)


def server_killed_at_init_and_restarted(
    workdir: Path, server: Any, steps: int = 3_000, *, again: bool = False
) -> ServerFaultResult:
    """The server killed (-9) before the run's ``init(id=..., resume='allow')`` (connections
    refused) and restarted half way through the steps; with ``again``, killed once more while
    logging and restarted before ``finish()``."""
    half = steps // 2
    actions: dict[int, Any] = {half: server.start}
    if again:
        actions = {steps // 3: server.start, 2 * steps // 3: server.kill, steps - 1: server.start}
    return _server_fault(
        workdir,
        server,
        "killed1",
        "server kill -9 before init(), restarted"
        + ("; kill -9 + restart while logging" if again else " while logging"),
        steps,
        actions,
        server.kill,
    )
