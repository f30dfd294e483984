"""Server ingest: K client processes logging through the SDK to a tracking server, side by side.

Configurations (each a real server subprocess on a free port of 127.0.0.1, with a fresh store):

* ``runyard-sqlite``: ``runyard server --store sqlite:///<tmp>/runyard.db --workers 1``;
* ``runyard-pg-1`` / ``runyard-pg-2``: ``runyard server`` on PostgreSQL (a fresh schema of the
  machine's server, dropped afterwards) with 1 / 2 workers;
* ``mlflow``: ``mlflow server --backend-store-uri sqlite:///<tmp>/mlflow.db`` (MLflow's default
  worker count), clients calling ``mlflow.log_metrics(row, step=i)`` once per step;
* ``mlflow-batch``: the same server, clients sending ``MlflowClient.log_batch`` requests of 1,000
  metrics (100 steps), the fastest way an MLflow user can ingest.

For every configuration and every K in ``--clients``, K client processes start a run at the same
moment, log M steps of 10 metrics, and finish. Measured:

* points/s: K x M x 10 / (time from the start signal until a query through the server's API
  returns every point);
* p50 / p99 request latency (ms), timed in the clients: runyard's ``HTTPStore.apply`` (one batch
  request of the SDK's shipper thread), MLflow's ``log_metrics`` / ``log_batch`` calls;
* queryable after (s): from the last ``log()`` call of all clients to everything queryable;
* CPU % (100 = one core) during the cell: the clients, the server's process group, the
  machine's ``postgres`` processes, and the whole machine (anything else running shows there).

Then a 1M-step series: fetching it downsampled to 2,000 points through each server (runyard
``/series?samples=2000``; MLflow ``get-history-bulk-interval`` with ``max_results=2000``, what its
UI uses, and the whole series through ``metrics/get-history`` pages, the requests
``MlflowClient.get_metric_history`` makes).

Usage (see bench/README.md)::

    .venv-bench/bin/python bench/server_ingest.py --json bench/results/server_ingest.json
    .venv-bench/bin/python bench/server_ingest.py --quick
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from _common import free_port, print_tables

Result = dict[str, Any]

KEYS: tuple[str, ...] = tuple(f"m{j}" for j in range(10))
ENTITY = "bench"
SERIES_KEY = "s"
SAMPLES = 2000
#: MLflow's limit on metrics per log_batch request (``_validate_batch_log_limits``).
MLFLOW_BATCH_METRICS = 1000
PG_BASE_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
POLL_S = 0.025
START_TIMEOUT_S = 120.0
#: Seconds of timed fetches per series measurement (see ``_time_calls``).
SERIES_BUDGET_S = 20.0
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Config:
    name: str
    tool: str  # "runyard" | "mlflow"
    store: str  # "sqlite" | "pg"
    workers: int | None  # None: the server's default
    client: str  # child kind: "runyard" | "mlflow-log-metrics" | "mlflow-log-batch"
    what: str


CONFIGS: dict[str, Config] = {
    c.name: c
    for c in (
        Config(
            "runyard-sqlite",
            "runyard",
            "sqlite",
            1,
            "runyard",
            "runyard server, SQLite, 1 worker; runyard.log() per step",
        ),
        Config(
            "runyard-pg-1",
            "runyard",
            "pg",
            1,
            "runyard",
            "runyard server, PostgreSQL, 1 worker; runyard.log() per step",
        ),
        Config(
            "runyard-pg-2",
            "runyard",
            "pg",
            2,
            "runyard",
            "runyard server, PostgreSQL, 2 workers; runyard.log() per step",
        ),
        Config(
            "mlflow",
            "mlflow",
            "sqlite",
            None,
            "mlflow-log-metrics",
            "mlflow server, SQLite, default workers; mlflow.log_metrics(row, step=i) per step",
        ),
        Config(
            "mlflow-batch",
            "mlflow",
            "sqlite",
            None,
            "mlflow-log-batch",
            "mlflow server, SQLite, default workers; MlflowClient.log_batch, 1,000 metrics/request",
        ),
    )
}
#: Steps logged in total by the K clients of one cell (each client logs total // K), chosen so a
#: cell takes roughly 5-20 s on 2 cores. ``--steps`` / ``--mlflow-steps`` fix M per client.
TOTAL_STEPS = {"runyard": 100_000, "mlflow-log-metrics": 400, "mlflow-log-batch": 4_000}
QUICK_TOTAL_STEPS = {"runyard": 20_000, "mlflow-log-metrics": 200, "mlflow-log-batch": 2_000}
#: ... but never fewer steps per client than this (MLflow at K=16: enough requests per client).
MIN_STEPS = {"runyard": 1_000, "mlflow-log-metrics": 60, "mlflow-log-batch": 400}
SERIES_STEPS = 1_000_000
QUICK_SERIES_STEPS = 100_000


def _percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return float(ordered[index])


def _row(i: int) -> dict[str, float]:
    """One step's 10 metrics."""
    base = 1.0 / (i + 1)
    return {k: base + j for j, k in enumerate(KEYS)}


def _series_value(i: int) -> float:
    return math.sin(i / 5000.0) + (i % 97) / 97.0


# ---------------------------------------------------------------------------------------------
# child side: one client process; writes its result as JSON to --result
# ---------------------------------------------------------------------------------------------


def _wait_for_go(ready: str) -> float:
    """Tell the parent we are ready (a file), then block until it writes a line to stdin.
    Returns this process's CPU seconds so far (see :func:`_cpu_s`)."""
    Path(ready).write_text(str(os.getpid()))
    sys.stdin.readline()
    return _cpu_s()


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _instrument_runyard(lat: list[tuple[int, int]]) -> str:
    """Time every batch request of the SDK's shipper: wraps ``HTTPStore.apply`` (class level,
    in this client process only). Returns what was wrapped."""
    from runyard.store import http

    cls = http.HTTPStore
    original = cls.apply

    def apply(self: Any, batch: Any) -> int:
        t = time.perf_counter_ns()
        try:
            return original(self, batch)
        finally:
            lat.append((time.perf_counter_ns() - t, len(batch.records)))

    cls.apply = apply  # type: ignore[method-assign]
    return f"{cls.__module__}.{cls.__qualname__}.apply"


def child_runyard(args: argparse.Namespace) -> Result:
    lat: list[tuple[int, int]] = []
    wrapped = _instrument_runyard(lat)
    import runyard

    settings = runyard.Settings(silent=True, console="off", disable_git=True)
    cpu0 = _wait_for_go(args.ready)
    t_start = time.time()
    run = runyard.init(entity=args.entity, project=args.project, id=args.run_id, settings=settings)
    t_init = time.time()
    log = runyard.log
    for i in range(args.steps):
        log(_row(i))
    t_last_log = time.time()
    runyard.finish()
    t_finish = time.time()
    return {
        "t_start": t_start,
        "t_init": t_init,
        "t_last_log": t_last_log,
        "t_finish": t_finish,
        "cpu_s": _cpu_s() - cpu0,
        "requests_ms": [ns / 1e6 for ns, _ in lat],
        "request_records": [n for _, n in lat],
        "instrumented": wrapped,
        "run_path": run.path,
        "version": runyard.__version__,
    }


def child_mlflow_log_metrics(args: argparse.Namespace) -> Result:
    import mlflow

    mlflow.set_tracking_uri(args.url)
    cpu0 = _wait_for_go(args.ready)
    t_start = time.time()
    run = mlflow.start_run(experiment_id=args.experiment_id, run_name=args.run_id)
    t_init = time.time()
    clock = time.perf_counter_ns
    lat: list[float] = []
    log_metrics = mlflow.log_metrics
    for i in range(args.steps):
        row = _row(i)
        t = clock()
        log_metrics(row, step=i, synchronous=True)
        lat.append((clock() - t) / 1e6)
    t_last_log = time.time()
    mlflow.end_run()
    t_finish = time.time()
    return {
        "t_start": t_start,
        "t_init": t_init,
        "t_last_log": t_last_log,
        "t_finish": t_finish,
        "cpu_s": _cpu_s() - cpu0,
        "requests_ms": lat,
        "request_records": [1] * len(lat),
        "instrumented": "mlflow.log_metrics (one log-batch request of 10 metrics per call)",
        "run_id": run.info.run_id,
        "version": mlflow.__version__,
    }


def child_mlflow_log_batch(args: argparse.Namespace) -> Result:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(args.url)
    cpu0 = _wait_for_go(args.ready)
    t_start = time.time()
    run = client.create_run(args.experiment_id, run_name=args.run_id)
    run_id = run.info.run_id
    t_init = time.time()
    clock = time.perf_counter_ns
    lat: list[float] = []
    steps_per_request: list[int] = []
    pending: list[Metric] = []
    per_request = max(1, MLFLOW_BATCH_METRICS // len(KEYS))
    in_batch = 0
    for i in range(args.steps):
        ts = int(time.time() * 1000)
        pending.extend(Metric(k, v, ts, i) for k, v in _row(i).items())
        in_batch += 1
        if in_batch == per_request or i == args.steps - 1:
            t = clock()
            client.log_batch(run_id, metrics=pending, synchronous=True)
            lat.append((clock() - t) / 1e6)
            steps_per_request.append(in_batch)
            pending, in_batch = [], 0
    t_last_log = time.time()
    client.set_terminated(run_id)
    t_finish = time.time()
    return {
        "t_start": t_start,
        "t_init": t_init,
        "t_last_log": t_last_log,
        "t_finish": t_finish,
        "cpu_s": _cpu_s() - cpu0,
        "requests_ms": lat,
        "request_records": steps_per_request,
        "instrumented": f"MlflowClient.log_batch ({per_request * len(KEYS)} metrics per request)",
        "run_id": run_id,
        "version": mlflow.__version__,
    }


def child_series_runyard(args: argparse.Namespace) -> Result:
    """Log one ``args.steps``-step metric through the SDK straight into the store (embedded
    mode, ``RUNYARD_STORE``): the fast way to fill the store; fetching goes through the server."""
    import runyard

    settings = runyard.Settings(silent=True, console="off", disable_git=True)
    t0 = time.time()
    run = runyard.init(entity=args.entity, project=args.project, id=args.run_id, settings=settings)
    log = runyard.log
    for i in range(args.steps):
        log({SERIES_KEY: _series_value(i)})
    t_logged = time.time()
    runyard.finish()
    t_finish = time.time()
    return {
        "run_path": run.path,
        "log_s": t_logged - t0,
        "finish_s": t_finish - t_logged,
    }


CHILDREN: dict[str, Callable[[argparse.Namespace], Result]] = {
    "runyard": child_runyard,
    "mlflow-log-metrics": child_mlflow_log_metrics,
    "mlflow-log-batch": child_mlflow_log_batch,
    "series-runyard": child_series_runyard,
}


def run_child(args: argparse.Namespace) -> int:
    result = CHILDREN[args.child](args)
    result.update(child=args.child, steps=args.steps, pid=os.getpid())
    Path(args.result).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# parent side: processes, servers, stores
# ---------------------------------------------------------------------------------------------


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without any runyard/MLflow/wandb setting, plus ``extra``."""
    prefixes = ("RUNYARD_", "MLFLOW_", "WANDB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    # No network here: keep MLflow's telemetry thread from trying to phone home.
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env.update(extra or {})
    return env


def _kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal a process group we started (its leader's PID is the group id)."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _proc_stats() -> Iterator[tuple[tuple[int, int], str, list[str]]]:
    """((pid, start time), command name, /proc/<pid>/stat fields after the name) of every
    process (Linux)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        yield (int(entry), int(fields[19])), stat[stat.find("(") + 1 : stat.rfind(")")], fields


class PgBackends:
    """PIDs of the PostgreSQL backends serving one configuration's server: its store URL sets
    ``application_name``, and ``pg_stat_activity`` names their PIDs (other users of the same
    PostgreSQL, e.g. a test suite, are not counted)."""

    def __init__(self, base: str, application_name: str) -> None:
        import psycopg

        self.name = application_name
        self.conn = psycopg.connect(base, autocommit=True, connect_timeout=5)

    def pids(self) -> set[int]:
        rows = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (self.name,)
        ).fetchall()
        return {int(r[0]) for r in rows}

    def close(self) -> None:
        self.conn.close()


class CpuTracker:
    """CPU seconds used inside a time window by the server's process group and by its
    PostgreSQL backends, sampled at the start, now and then, and at the end: a process that
    starts inside the window counts from zero, one that exits counts up to its last sample
    (so a PostgreSQL backend that exits loses at most one sampling interval)."""

    def __init__(self, server_pgid: int, pg: PgBackends | None) -> None:
        self.pgid = server_pgid
        self.pg = pg
        self.ticks = os.sysconf("SC_CLK_TCK")
        self.first: dict[str, dict[tuple[int, int], int]] = {"server": {}, "postgres": {}}
        self.last: dict[str, dict[tuple[int, int], int]] = {"server": {}, "postgres": {}}
        self.sample(initial=True)

    def sample(self, initial: bool = False) -> None:
        backends = self.pg.pids() if self.pg is not None else set()
        for key, _, fields in _proc_stats():
            if int(fields[2]) == self.pgid:  # pgrp
                group = "server"
            elif key[0] in backends:
                group = "postgres"
            else:
                continue
            ticks = int(fields[11]) + int(fields[12])  # utime + stime
            if initial:
                self.first[group][key] = ticks
            else:
                self.first[group].setdefault(key, 0)
            self.last[group][key] = ticks

    def seconds(self, group: str) -> float:
        first, last = self.first[group], self.last[group]
        return sum(last[k] - first[k] for k in last) / self.ticks


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    with open("/proc/stat") as fh:
        parts = [int(x) for x in fh.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return float(sum(parts) - idle), float(sum(parts))


@dataclass
class Server:
    """A server subprocess in its own session; stopped by its PID's process group."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    health_url: str
    url: str
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    log_file: IO[bytes] | None = field(default=None, repr=False)
    note: str = ""

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        self.log_path = self.cwd / f"{self.name}-server.log"
        self.log_file = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with code {self.proc.returncode}:\n{self.tail()}"
                )
            try:
                r = httpx.get(self.health_url, timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} server not healthy after {timeout:.0f} s ({last})")

    def tail(self, n: int = 3000) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-n:]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM to the server's group, SIGKILL after a bounded wait."""
        if self.proc is not None and self.proc.poll() is None:
            _kill_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc.pid)
                self.proc.wait(STOP_TIMEOUT_S)
        if self.proc is not None:
            _kill_group(self.proc.pid)  # workers left behind in the group
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None


@contextlib.contextmanager
def pg_schema(base: str) -> Iterator[tuple[str, str]]:
    """A fresh schema of the PostgreSQL database at ``base``; yields its SQLAlchemy URL (whose
    connections carry the schema's name as ``application_name``) and that name."""
    import psycopg

    schema = f"bench_ingest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        url = base.replace("postgresql://", "postgresql+psycopg://", 1)
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}application_name={schema}&options=-csearch_path%3D{schema}", schema
    finally:
        with psycopg.connect(base, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def pg_available(base: str) -> str | None:
    """None if PostgreSQL at ``base`` answers, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    try:
        with psycopg.connect(base, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def mlflow_cmd() -> list[str]:
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlflow"]


@dataclass
class Target:
    """A configuration's running server and how to talk to it."""

    config: Config
    server: Server
    tmp: Path
    store_url: str = ""  # runyard: the server's store URL; mlflow: the sqlite URL
    pg: PgBackends | None = None

    @property
    def url(self) -> str:
        return self.server.url


@contextlib.contextmanager
def started(config: Config, args: argparse.Namespace) -> Iterator[Target]:
    """Start the configuration's server in a temporary folder; stop it and clean up after."""
    with contextlib.ExitStack() as stack:
        tmp = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix=f"ingest-{config.name}-"))
        )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        pg: PgBackends | None = None
        if config.tool == "runyard":
            if config.store == "pg":
                store_url, app_name = stack.enter_context(pg_schema(args.pg_url))
                pg = PgBackends(args.pg_url, app_name)
                stack.callback(pg.close)
            else:
                store_url = f"sqlite:///{tmp / 'store' / 'runyard.db'}"
                (tmp / "store").mkdir()
            cmd = [
                sys.executable,
                "-m",
                "runyard",
                "server",
                "--store",
                store_url,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(config.workers or 1),
            ]
            env = clean_env({"RUNYARD_FILES_ROOT": str(tmp / "files"), "HOME": str(tmp)})
            server = Server(config.name, cmd, env, tmp, f"{url}/api/v1/health", url)
            server.note = f"--workers {config.workers}"
        else:
            db = tmp / "mlflow.db"
            store_url = f"sqlite:///{db}"
            cmd = [
                *mlflow_cmd(),
                "server",
                "--backend-store-uri",
                store_url,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            if args.mlflow_workers:
                cmd += ["--workers", str(args.mlflow_workers)]
            env = clean_env({"HOME": str(tmp)})
            server = Server(config.name, cmd, env, tmp, f"{url}/health", url)
            server.note = (
                f"--workers {args.mlflow_workers}"
                if args.mlflow_workers
                else "default workers (4, uvicorn)"
            )
        stack.callback(server.stop)
        server.start()
        print(f"  server pid {server.pid} at {url} ({server.note})", file=sys.stderr)
        yield Target(config, server, tmp, store_url, pg)


# ---------------------------------------------------------------------------------------------
# one cell: K clients against one server
# ---------------------------------------------------------------------------------------------


@dataclass
class Client:
    index: int
    proc: subprocess.Popen[bytes]
    ready: Path
    result: Path
    log: Path


def spawn_client(
    kind: str, target: Target, workdir: Path, index: int, extra: list[str], env: dict[str, str]
) -> Client:
    workdir.mkdir(parents=True, exist_ok=True)
    ready, result, log = workdir / "ready", workdir / "result.json", workdir / "client.log"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--url",
        target.url,
        "--ready",
        str(ready),
        "--result",
        str(result),
        *extra,
    ]
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(
            cmd,
            cwd=workdir,
            env=env,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Client(index, proc, ready, result, log)


class Checker:
    """Polls a server until every point of a cell is queryable, then verifies counts."""

    def done(self) -> bool:
        raise NotImplementedError

    def verify(self) -> tuple[bool, str]:
        raise NotImplementedError


class RunyardChecker(Checker):
    """Timed: ``GET /runs`` (one request) until every run's ``last_step`` is M-1 (a batch's rows
    and the run's ``last_step`` commit together). Then, untimed: every key's point count from
    ``/series`` ``total``."""

    def __init__(self, url: str, project: str, run_ids: list[str], steps: int) -> None:
        self.api = f"{url}/api/v1"
        self.project, self.run_ids, self.steps = project, run_ids, steps
        self.http = httpx.Client(timeout=30.0)

    def done(self) -> bool:
        r = self.http.get(
            f"{self.api}/runs",
            params={
                "entity": ENTITY,
                "project": self.project,
                "run_id": ",".join(self.run_ids),
                "limit": len(self.run_ids) + 10,
            },
        )
        if r.status_code != 200:
            return False
        runs = {d["run_id"]: d for d in r.json().get("runs", [])}
        return all(
            rid in runs and int(runs[rid].get("last_step") or -1) >= self.steps - 1
            for rid in self.run_ids
        )

    def verify(self) -> tuple[bool, str]:
        bad = []
        for rid in self.run_ids:
            for key in KEYS:
                r = self.http.get(
                    f"{self.api}/runs/{ENTITY}/{self.project}/{rid}/series",
                    params={"key": key, "samples": 2},
                )
                total = r.json().get("total") if r.status_code == 200 else None
                if total != self.steps:
                    bad.append(f"{rid}/{key}: {total}")
        self.http.close()
        if bad:
            return False, f"point counts != {self.steps}: {', '.join(bad[:5])}"
        return True, f"/series total == {self.steps} for {len(self.run_ids)} runs x 10 keys"


class MlflowChecker(Checker):
    """Timed: ``runs/search`` (one request) until every run's latest ``m9`` step is M-1 (the
    client is synchronous and a request's metrics commit together). Then, untimed:
    ``get_metric_history`` point counts of every key."""

    def __init__(self, url: str, experiment_id: str, clients: int, steps: int) -> None:
        self.url, self.experiment_id, self.clients, self.steps = url, experiment_id, clients, steps
        self.http = httpx.Client(timeout=30.0)
        self.run_ids: list[str] = []

    def done(self) -> bool:
        r = self.http.post(
            f"{self.url}/api/2.0/mlflow/runs/search",
            json={"experiment_ids": [self.experiment_id], "max_results": 1000},
        )
        if r.status_code != 200:
            return False
        runs = r.json().get("runs", [])
        if len(runs) < self.clients:
            return False
        for run in runs:
            steps = [
                m.get("step", 0)
                for m in run.get("data", {}).get("metrics", [])
                if m["key"] == KEYS[-1]
            ]
            if not steps or int(max(steps)) < self.steps - 1:
                return False
        self.run_ids = [run["info"]["run_id"] for run in runs]
        return True

    def verify(self) -> tuple[bool, str]:
        from mlflow import MlflowClient

        client = MlflowClient(self.url)
        bad = []
        for rid in self.run_ids:
            for key in KEYS:
                n = len(client.get_metric_history(rid, key))
                if n != self.steps:
                    bad.append(f"{rid}/{key}: {n}")
        self.http.close()
        if bad:
            return False, f"point counts != {self.steps}: {', '.join(bad[:5])}"
        return True, f"get_metric_history == {self.steps} for {len(self.run_ids)} runs x 10 keys"


def mlflow_create_experiment(url: str, name: str) -> str:
    r = httpx.post(f"{url}/api/2.0/mlflow/experiments/create", json={"name": name}, timeout=30)
    r.raise_for_status()
    return str(r.json()["experiment_id"])


def run_cell(
    target: Target, clients: int, steps: int, rep: int, args: argparse.Namespace
) -> Result:
    """K client processes against ``target``'s server; every process is gone afterwards."""
    config = target.config
    tag = f"k{clients}-r{rep}-{uuid.uuid4().hex[:6]}"
    project = f"ingest-{tag}"
    cell_dir = target.tmp / "cells" / tag
    cell_dir.mkdir(parents=True)
    run_ids = [f"{tag}-c{i}" for i in range(clients)]
    checker: Checker
    if config.tool == "runyard":
        checker = RunyardChecker(target.url, project, run_ids, steps)
    else:
        experiment_id = mlflow_create_experiment(target.url, project)
        checker = MlflowChecker(target.url, experiment_id, clients, steps)
    started: list[Client] = []
    out: Result = {"config": config.name, "clients": clients, "steps": steps, "repeat": rep}
    try:
        for i in range(clients):
            workdir = cell_dir / f"c{i}"
            extra = ["--steps", str(steps), "--run-id", run_ids[i]]
            if config.tool == "runyard":
                extra += ["--entity", ENTITY, "--project", project]
                env = clean_env(
                    {
                        "RUNYARD_BASE_URL": target.url,
                        "RUNYARD_DIR": str(workdir / ".runyard"),
                        # finish() waits for the backlog (the default gives up after 30 s).
                        "RUNYARD_FINISH_TIMEOUT": str(args.cell_timeout),
                        "HOME": str(workdir),
                    }
                )
            else:
                extra += ["--experiment-id", experiment_id]
                env = clean_env({"HOME": str(workdir)})
            started.append(spawn_client(config.client, target, workdir, i, extra, env))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(c.ready.exists() for c in started):
            dead = [c for c in started if c.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = "exited before ready" if dead else "not ready in time"
                c = dead[0] if dead else started[0]
                raise RuntimeError(f"client {c.index} {why}:\n{c.log.read_text()[-2000:]}")
            time.sleep(0.02)

        cpu, machine0 = CpuTracker(target.server.pid, target.pg), machine_cpu()
        t_go = time.time()
        for c in started:
            assert c.proc.stdin is not None
            c.proc.stdin.write(b"go\n")
            c.proc.stdin.close()
        t_done: float | None = None
        polls = 0
        deadline = time.monotonic() + args.cell_timeout
        while time.monotonic() < deadline:
            polls += 1
            with contextlib.suppress(httpx.HTTPError):
                if checker.done():
                    t_done = time.time()
                    break
            failed = [c for c in started if c.proc.poll() not in (None, 0)]
            if failed:
                c = failed[0]
                raise RuntimeError(
                    f"client {c.index} exited with {c.proc.returncode}:\n"
                    f"{c.log.read_text()[-2000:]}"
                )
            if polls % 20 == 0:
                cpu.sample()
            time.sleep(POLL_S)
        cpu.sample()
        machine1 = machine_cpu()
        if t_done is None:
            raise RuntimeError(f"not everything queryable within {args.cell_timeout:.0f} s")
        for c in started:
            try:
                c.proc.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"client {c.index} did not exit in time") from exc
            if c.proc.returncode != 0 or not c.result.exists():
                raise RuntimeError(
                    f"client {c.index} exited with {c.proc.returncode}:\n"
                    f"{c.log.read_text()[-2000:]}"
                )
        results = [json.loads(c.result.read_text()) for c in started]
        ok, verified = checker.verify()
        elapsed = t_done - t_go
        lat = sorted(x for r in results for x in r["requests_ms"])
        records = [x for r in results for x in r["request_records"]]
        points = clients * steps * len(KEYS)
        busy = machine1[0] - machine0[0]
        total = machine1[1] - machine0[1]
        out.update(
            points=points,
            elapsed_s=elapsed,
            points_per_s=points / elapsed,
            p50_ms=_percentile(lat, 0.50) if lat else None,
            p99_ms=_percentile(lat, 0.99) if lat else None,
            requests=len(lat),
            points_per_request=points / len(lat) if lat else None,
            steps_per_request_median=statistics.median(records) if records else None,
            # A poll can see the last batch before its client's clock reads t_last_log.
            queryable_after_s=max(0.0, t_done - max(r["t_last_log"] for r in results)),
            log_loop_s_max=max(r["t_last_log"] - r["t_init"] for r in results),
            init_s_max=max(r["t_init"] - r["t_start"] for r in results),
            finish_call_s_max=max(r["t_finish"] - r["t_last_log"] for r in results),
            start_skew_s=max(r["t_start"] for r in results) - min(r["t_start"] for r in results),
            server_cpu_s=cpu.seconds("server"),
            server_cpu_pct=100.0 * cpu.seconds("server") / elapsed,
            postgres_cpu_pct=(
                100.0 * cpu.seconds("postgres") / elapsed if config.store == "pg" else None
            ),
            postgres_backends_seen=len(cpu.last["postgres"]),
            clients_cpu_pct=100.0 * sum(r["cpu_s"] for r in results) / elapsed,
            machine_cpu_pct=100.0 * os.cpu_count() * busy / total if total else None,  # type: ignore[operator]
            polls=polls,
            verified=ok,
            verification=verified,
            instrumented=results[0].get("instrumented"),
            version=results[0].get("version"),
        )
        if not ok:
            out["error"] = verified
        elif not lat:
            out["error"] = f"no request was timed ({out['instrumented']} never called)"
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        for c in started:
            if c.proc.poll() is None:
                _kill_group(c.proc.pid)
                c.proc.wait(10)
            else:
                _kill_group(c.proc.pid)  # anything the client left in its group
        shutil.rmtree(cell_dir, ignore_errors=True)
    return out


# ---------------------------------------------------------------------------------------------
# the 1M-step series
# ---------------------------------------------------------------------------------------------


def _time_calls(
    fn: Callable[[], Any], repeats: int, budget_s: float = SERIES_BUDGET_S
) -> tuple[list[float], Any]:
    """ms of ``repeats`` calls after one warm-up call. Slow calls stop early: once the calls
    have used ``budget_s`` seconds, the rest are skipped (a warm-up that alone takes over a
    tenth of the budget then counts as the first sample)."""
    t = time.perf_counter()
    last = fn()
    warm_s = time.perf_counter() - t
    times = [warm_s * 1000.0] if warm_s > budget_s / 10 else []
    spent = warm_s
    while len(times) < repeats and (spent < budget_s or not times):
        t = time.perf_counter()
        last = fn()
        times.append((time.perf_counter() - t) * 1000.0)
        spent += times[-1] / 1000.0
    return times, last


def series_runyard(target: Target, n: int, args: argparse.Namespace) -> Result:
    project, run_id = "series", f"series-{uuid.uuid4().hex[:8]}"
    workdir = target.tmp / "series-client"
    workdir.mkdir()
    result_path = workdir / "result.json"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "series-runyard",
        "--steps",
        str(n),
        "--entity",
        ENTITY,
        "--project",
        project,
        "--run-id",
        run_id,
        "--result",
        str(result_path),
    ]
    env = clean_env(
        {
            "RUNYARD_STORE": target.store_url,
            "RUNYARD_DIR": str(workdir / ".runyard"),
            "RUNYARD_FINISH_TIMEOUT": str(args.cell_timeout),
            "HOME": str(workdir),
        }
    )
    t0 = time.monotonic()
    with open(workdir / "client.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )  # fmt: skip
        try:
            rc = proc.wait(args.cell_timeout)
        except subprocess.TimeoutExpired:
            rc = None
        _kill_group(proc.pid)
        proc.wait(10)
    if rc != 0 or not result_path.exists():
        tail = (workdir / "client.log").read_text(errors="replace")[-2000:]
        return {"error": f"logging the series failed (rc {rc}):\n{tail}"}
    logged = json.loads(result_path.read_text())
    fill_s = time.monotonic() - t0
    api = f"{target.url}/api/v1"
    path = f"{api}/runs/{ENTITY}/{project}/{run_id}/series"
    with httpx.Client(timeout=120.0) as http:

        def fetch() -> Any:
            r = http.get(path, params={"key": SERIES_KEY, "samples": SAMPLES})
            r.raise_for_status()
            return r.json()

        times, doc = _time_calls(fetch, args.series_repeats)
    out: Result = {
        "points": n,
        "fill": f"SDK embedded (RUNYARD_STORE) into the server's store, {fill_s:.1f} s",
        "fill_s": fill_s,
        "fill_detail": logged,
        "server_ms": times,
        "returned": len(doc.get("steps", [])),
        "total": doc.get("total"),
        "downsampled": doc.get("downsampled"),
    }
    if doc.get("total") != n:
        out["error"] = f"/series total {doc.get('total')} != {n}"
    # Diagnostic: the same query in this process, without HTTP (SQLStore.series).
    try:
        from runyard.store import open_store

        store = open_store(target.store_url)
        record = store.find_run(ENTITY, project, run_id)
        assert record is not None
        out["store_ms"], _ = _time_calls(
            lambda: store.series(record.pk, SERIES_KEY, SAMPLES), args.series_repeats
        )
        store.close()
    except Exception as exc:
        out["store_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _mlflow_fill_sqlite(db: Path, run_id: str, n: int) -> None:
    """Insert ``n`` points of one metric into MLflow's own ``metrics`` table (what ``log_batch``
    would write, minus 1,000 REST requests), then ``latest_metrics``."""
    now = int(time.time() * 1000)
    con = sqlite3.connect(db, timeout=60)
    try:
        with con:
            con.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (?, ?, ?, ?, ?, 0)",
                ((SERIES_KEY, _series_value(i), now, run_id, i) for i in range(n)),
            )
            con.execute(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                "VALUES (?, ?, ?, ?, 0, ?)",
                (SERIES_KEY, _series_value(n - 1), now, n - 1, run_id),
            )
    finally:
        con.close()


def _mlflow_full_history(url: str, run_id: str, budget_s: float) -> tuple[float, int, bool]:
    """Every point of the series through ``metrics/get-history`` pages: (ms, points, complete)."""
    t0 = time.perf_counter()
    fetched, token = 0, None
    with httpx.Client(timeout=300.0) as http:
        while True:
            params = {"run_id": run_id, "metric_key": SERIES_KEY, "max_results": 25_000}
            if token:
                params["page_token"] = token
            r = http.get(f"{url}/api/2.0/mlflow/metrics/get-history", params=params)
            r.raise_for_status()
            doc = r.json()
            fetched += len(doc.get("metrics", []))
            token = doc.get("next_page_token")
            elapsed = time.perf_counter() - t0
            if not token:
                return elapsed * 1000.0, fetched, True
            if elapsed > budget_s:
                return elapsed * 1000.0, fetched, False


def series_mlflow(target: Target, n: int, args: argparse.Namespace) -> Result:
    from mlflow import MlflowClient

    client = MlflowClient(target.url)
    exp = client.create_experiment(f"series-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(exp).info.run_id
    db = Path(target.store_url.removeprefix("sqlite:///"))
    t0 = time.monotonic()
    _mlflow_fill_sqlite(db, run_id, n)
    client.set_terminated(run_id)
    fill_s = time.monotonic() - t0
    out: Result = {
        "points": n,
        "fill": f"sqlite3 rows in MLflow's metrics table, {fill_s:.1f} s",
        "fill_s": fill_s,
    }
    with httpx.Client(timeout=300.0) as http:

        def bulk() -> Any:
            r = http.get(
                f"{target.url}/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                params={"run_ids": run_id, "metric_key": SERIES_KEY, "max_results": SAMPLES},
            )
            r.raise_for_status()
            return r.json()

        times, doc = _time_calls(bulk, args.series_repeats)
    out.update(server_ms=times, returned=len(doc.get("metrics", [])))
    # The full history, the way MlflowClient.get_metric_history pages through it (25,000 points
    # a request), as raw JSON (no client-side proto objects), within a time budget.
    full_times, fetched = [], 0
    for _ in range(args.series_full_repeats):
        ms, fetched, complete = _mlflow_full_history(target.url, run_id, args.series_full_budget)
        if not complete:
            out["full_incomplete"] = (
                f"{fetched:,} of {n:,} points in {ms / 1000:.0f} s (budget "
                f"--series-full-budget {args.series_full_budget:.0f} s)"
            )
            break
        full_times.append(ms)
        if fetched != n:
            out["error"] = f"get-history returned {fetched:,} points, not {n:,}"
    out.update(full_ms=full_times, full_returned=fetched)
    return out


# ---------------------------------------------------------------------------------------------
# aggregation and output
# ---------------------------------------------------------------------------------------------

CELL_METRICS = (
    ("points_per_s", "points/s", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.1f}"),
    ("p99_ms", "p99 ms", "{:.1f}"),
    ("queryable_after_s", "queryable after (s)", "{:.2f}"),
)


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def aggregate_cells(cells: Sequence[Result]) -> dict[str, Any]:
    ok = [c for c in cells if "error" not in c]
    agg: dict[str, Any] = {"ok": len(ok), "runs": len(cells)}
    for key in (
        "points_per_s",
        "p50_ms",
        "p99_ms",
        "queryable_after_s",
        "elapsed_s",
        "points_per_request",
        "server_cpu_pct",
        "postgres_cpu_pct",
        "clients_cpu_pct",
        "machine_cpu_pct",
    ):
        s = _stats([c[key] for c in ok if c.get(key) is not None])
        if s:
            agg[key] = s
    return agg


def _cell(agg: dict[str, Any], key: str, fmt: str, repeats: int) -> str:
    s = agg.get(key)
    if not s:
        return "n/a"
    med = fmt.format(s["median"])
    if repeats > 1:
        return f"{med} ({fmt.format(s['min'])}-{fmt.format(s['max'])})"
    return med


def _fmt_ratio(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    if value >= 10:
        return f"{value:.0f}x"
    return f"{value:.1f}x" if value >= 0.1 else f"{value:.3f}x"


def _rate(summary: dict[str, dict[int, dict[str, Any]]], config: str, k: int) -> float | None:
    s = summary.get(config, {}).get(k, {}).get("points_per_s")
    return s["median"] if s else None


def best_mlflow(summary: dict[str, dict[int, dict[str, Any]]], k: int) -> tuple[str, float] | None:
    rates = [(c, _rate(summary, c, k)) for c in ("mlflow", "mlflow-batch")]
    present = [(c, r) for c, r in rates if r]
    return max(present, key=lambda x: x[1]) if present else None


def check_targets(
    summary: dict[str, dict[int, dict[str, Any]]], series: dict[str, Result]
) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met); met is None where the run cannot tell (a shorter series)."""
    checks: list[tuple[str, str, bool | None]] = []
    for config in summary:
        if not config.startswith("runyard"):
            continue
        ratios = []
        for k in summary[config]:
            best = best_mlflow(summary, k)
            rate = _rate(summary, config, k)
            if best and rate:
                ratios.append((rate / best[1], k, best[0]))
        if ratios:
            worst = min(ratios)
            checks.append(
                (
                    f"{config} >= 10x MLflow's best client (per K)",
                    f"min {_fmt_ratio(worst[0])} (K={worst[1]} vs {worst[2]})",
                    worst[0] >= 10,
                )
            )
    for config in summary:
        if "-pg-" not in config:
            continue
        rates = [(r, k) for k in summary[config] if (r := _rate(summary, config, k))]
        if rates:
            best_rate, k = max(rates)
            checks.append(
                (
                    f"{config} >= 100k points/s (best K)",
                    f"{best_rate:,.0f} (K={k})",
                    best_rate >= 100_000,
                )
            )
    for config, res in series.items():
        if config.startswith("runyard") and res.get("server_ms"):
            med = statistics.median(res["server_ms"])
            checks.append(
                (
                    f"{config}: {res['points']:,}-step series, {SAMPLES} points, < 200 ms",
                    f"{med:.0f} ms",
                    med < 200 if res["points"] >= SERIES_STEPS else None,
                )
            )
    return checks


def build_tables(
    configs: Sequence[Config],
    ks: Sequence[int],
    summary: dict[str, dict[int, dict[str, Any]]],
    steps: dict[str, dict[int, int]],
    series: dict[str, Result],
    notes: dict[str, str],
    repeats: int,
) -> list[tuple[str, list[str], list[list[str]]]]:
    rows = []
    for config in configs:
        for k in ks:
            agg = summary.get(config.name, {}).get(k)
            if agg is None:
                continue
            rows.append(
                [
                    config.name,
                    str(k),
                    f"{steps[config.name][k]:,}",
                    f"{agg['ok']}/{agg['runs']}",
                    *(_cell(agg, key, fmt, repeats) for key, _, fmt in CELL_METRICS),
                    _cell(agg, "points_per_request", "{:,.0f}", 1),
                    _cell(agg, "clients_cpu_pct", "{:.0f}", 1),
                    _cell(agg, "server_cpu_pct", "{:.0f}", 1),
                    _cell(agg, "postgres_cpu_pct", "{:.0f}", 1),
                    _cell(agg, "machine_cpu_pct", "{:.0f}", 1),
                ]
            )
    columns = [
        "config",
        "K",
        "M/client",
        "ok",
        *(title for _, title, _ in CELL_METRICS),
        "points/req",
        "CPU %: clients",
        "server",
        "postgres",
        "machine",
    ]
    title = "ingest: " + ("median (min-max) over repeats" if repeats > 1 else "one repeat")
    tables = [(title, columns, rows)]

    ratio_rows = []
    for config in configs:
        if config.tool != "runyard":
            continue
        for k in ks:
            rate = _rate(summary, config.name, k)
            if rate is None:
                continue
            cells = []
            for base in ("mlflow", "mlflow-batch"):
                b = _rate(summary, base, k)
                cells.append(_fmt_ratio(rate / b) if b else "n/a")
            ratio_rows.append([config.name, str(k), *cells])
    if ratio_rows and any(c.tool == "mlflow" for c in configs):
        tables.append(
            (
                "points/s ratio vs MLflow (same K)",
                ["config", "K", "/ mlflow (log_metrics)", "/ mlflow-batch (log_batch)"],
                ratio_rows,
            )
        )

    series_rows = []
    for name, res in series.items():
        if "server_ms" not in res:
            series_rows.append([name, "error", res.get("error", "?")[:60], "", "", ""])
            continue
        med = statistics.median(res["server_ms"])
        how = (
            f"GET /series?samples={SAMPLES}"
            if name.startswith("runyard")
            else f"get-history-bulk-interval max_results={SAMPLES}"
        )
        extra = ""
        if res.get("store_ms"):
            extra = f"SQLStore.series in-process: {statistics.median(res['store_ms']):.0f} ms"
        if res.get("full_ms"):
            extra = (
                f"get-history, all {res['full_returned']:,} points: "
                f"{statistics.median(res['full_ms']):,.0f} ms"
            )
        elif res.get("full_incomplete"):
            extra = f"get-history, all points: > budget ({res['full_incomplete']})"
        series_rows.append(
            [
                name,
                f"{res['points']:,}",
                how,
                f"{med:.0f} ({min(res['server_ms']):.0f}-{max(res['server_ms']):.0f})",
                f"{res.get('returned', 0):,}",
                extra,
            ]
        )
    if series_rows:
        tables.append(
            (
                "one long series, fetched downsampled through the server: ms, median (min-max)",
                ["config", "points", "request", "ms", "returned", "also"],
                series_rows,
            )
        )
    checks = check_targets(summary, series)
    if checks:
        tables.append(
            (
                "issue targets",
                ["target", "measured", "result"],
                [
                    [
                        d,
                        v,
                        "n/a (target is for 1M steps)" if ok is None else "PASS" if ok else "FAIL",
                    ]
                    for d, v, ok in checks
                ],
            )
        )
    if notes:
        tables.append(("servers", ["config", "server"], [[k, v] for k, v in notes.items()]))
    return tables


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--configs", default=",".join(CONFIGS), help=f"comma list of {', '.join(CONFIGS)}"
    )
    p.add_argument("--clients", default="1,4,16", help="comma list of K (client processes)")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help=f"M per runyard client (default {TOTAL_STEPS['runyard']:,} / K)",
    )
    p.add_argument(
        "--mlflow-steps",
        type=int,
        default=None,
        help=f"M per MLflow client (default {TOTAL_STEPS['mlflow-log-metrics']:,} / K for "
        f"log_metrics, at least {MIN_STEPS['mlflow-log-metrics']}; "
        f"{TOTAL_STEPS['mlflow-log-batch']:,} / K for log_batch, at least "
        f"{MIN_STEPS['mlflow-log-batch']})",
    )
    p.add_argument("--repeats", type=int, default=1, help="cells per config and K (default 1)")
    p.add_argument("--series-steps", type=int, default=None, help=f"default {SERIES_STEPS:,}")
    p.add_argument("--series-repeats", type=int, default=5, help="timed series fetches")
    p.add_argument(
        "--series-full-repeats", type=int, default=1, help="MLflow full get_metric_history fetches"
    )
    p.add_argument(
        "--series-configs",
        default="runyard-sqlite,runyard-pg-1,mlflow",
        help="configs whose server also serves the long series ('' for none)",
    )
    p.add_argument(
        "--series-full-budget",
        type=float,
        default=30.0,
        help="seconds for one full MLflow get-history fetch before giving up (reported as such)",
    )
    p.add_argument("--mlflow-workers", type=int, default=None, help="default: MLflow's (4)")
    p.add_argument("--pg-url", default=os.environ.get("RUNYARD_TEST_PG", PG_BASE_DEFAULT))
    p.add_argument("--cell-timeout", type=float, default=300.0, help="seconds per cell")
    p.add_argument("--quick", action="store_true", help="K=1,4, smaller M, 100k-step series")
    p.add_argument("--json", dest="json_out", default=None, help="write all results here")
    # internal: one client process
    p.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--ready", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--run-id", help=argparse.SUPPRESS)
    p.add_argument("--entity", default=ENTITY, help=argparse.SUPPRESS)
    p.add_argument("--project", help=argparse.SUPPRESS)
    p.add_argument("--experiment-id", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick and args.clients == "1,4,16":
        args.clients = "1,4"
    return args


def steps_for(config: Config, k: int, args: argparse.Namespace) -> int:
    fixed = args.steps if config.tool == "runyard" else args.mlflow_steps
    if fixed:
        return int(fixed)
    totals = QUICK_TOTAL_STEPS if args.quick else TOTAL_STEPS
    return max(MIN_STEPS[config.client], totals[config.client] // k)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args)
    # SIGTERM unwinds like Ctrl-C, so servers, clients, schemas and folders are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        print(f"unknown config(s) {unknown}; choose from {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    ks = [int(k) for k in args.clients.split(",") if k.strip()]
    series_names = {c.strip() for c in args.series_configs.split(",") if c.strip()}
    series_n = args.series_steps or (QUICK_SERIES_STEPS if args.quick else SERIES_STEPS)
    configs = [CONFIGS[c] for c in names]
    skipped: dict[str, str] = {}
    if any(c.store == "pg" for c in configs) and (why := pg_available(args.pg_url)):
        for c in configs:
            if c.store == "pg":
                skipped[c.name] = f"PostgreSQL at {args.pg_url} unavailable: {why}"
    for c in configs:
        module = "runyard.store.http" if c.tool == "runyard" else "mlflow"
        try:
            __import__(module)
        except ImportError as exc:
            skipped.setdefault(c.name, f"cannot import {module}: {exc}")
    for name, why in skipped.items():
        print(f"skipping {name}: {why}", file=sys.stderr)
    configs = [c for c in configs if c.name not in skipped]
    if not configs:
        return 2

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started_at = time.monotonic()
    cells: list[Result] = []
    series: dict[str, Result] = {}
    notes: dict[str, str] = {}
    steps = {c.name: {k: steps_for(c, k, args) for k in ks} for c in configs}
    loads: dict[str, str] = {}
    for config in configs:
        print(f"== {config.name}: {config.what}", file=sys.stderr)
        try:
            with started(config, args) as target:
                notes[config.name] = f"{config.what} ({target.server.note})"
                for rep in range(args.repeats):
                    for k in ks:
                        m = steps[config.name][k]
                        print(f"  [{rep + 1}/{args.repeats}] K={k} M={m:,} ...", file=sys.stderr)
                        cell = run_cell(target, k, m, rep, args)
                        if "error" in cell:
                            print(f"    failed: {cell['error']}", file=sys.stderr)
                            print(target.server.tail(1500), file=sys.stderr)
                        else:
                            print(
                                f"    {cell['points_per_s']:,.0f} points/s, "
                                f"p50 {cell['p50_ms']:.1f} ms, p99 {cell['p99_ms']:.1f} ms, "
                                f"queryable after {cell['queryable_after_s']:.2f} s",
                                file=sys.stderr,
                            )
                        cells.append(cell)
                if config.name in series_names:
                    print(f"  series: {series_n:,} steps ...", file=sys.stderr)
                    try:
                        if config.tool == "runyard":
                            res = series_runyard(target, series_n, args)
                        else:
                            res = series_mlflow(target, series_n, args)
                    except Exception as exc:
                        res = {"points": series_n, "error": f"{type(exc).__name__}: {exc}"}
                    if "error" in res:
                        print(f"    failed: {res['error']}", file=sys.stderr)
                    series[config.name] = res
            loads[config.name] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        except Exception as exc:
            print(f"  {config.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            cells.append({"config": config.name, "error": f"{type(exc).__name__}: {exc}"})

    summary: dict[str, dict[int, dict[str, Any]]] = {}
    for config in configs:
        for k in ks:
            mine = [c for c in cells if c.get("config") == config.name and c.get("clients") == k]
            if mine:
                summary.setdefault(config.name, {})[k] = aggregate_cells(mine)
    versions = sorted(
        {f"{c['config'].split('-')[0]} {c['version']}" for c in cells if c.get("version")}
    )
    header = (
        f"server ingest: K clients x M steps x {len(KEYS)} metrics | {args.repeats} repeat(s) | "
        f"Python {platform.python_version()} | {platform.platform()} | {os.cpu_count()} CPUs | "
        f"load avg before {load_before}, after {' '.join(f'{x:.2f}' for x in os.getloadavg())} | "
        + ", ".join(versions)
        + f" | total {time.monotonic() - started_at:.0f} s"
    )
    print_tables(build_tables(configs, ks, summary, steps, series, notes, args.repeats), header)
    print(
        "note: points/s = K x M x 10 / (start signal -> every point queryable through the "
        "server's API); the ratio target uses the faster MLflow client at each K"
    )
    if args.json_out:
        out = {
            "args": {k: v for k, v in vars(args).items() if k not in ("child", "url", "ready")},
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_before": load_before,
            "load_avg_after_config": loads,
            "steps": steps,
            "summary": {c: {str(k): v for k, v in s.items()} for c, s in summary.items()},
            "series": series,
            "targets": [
                {"target": d, "measured": v, "met": ok}
                for d, v, ok in check_targets(summary, series)
            ],
            "servers": notes,
            "skipped": skipped,
            "cells": cells,
        }
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path}")
    failed = any("error" in c for c in cells) or any("error" in r for r in series.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
