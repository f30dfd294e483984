"""The real wandb client against runyard server's W&B door, side by side with references.

    python bench/wandb_door.py [--steps 100000] [--keys 10] [--repeats 3] [--store URL]

One runyard server (SQLite in a temporary folder unless ``--store``), then for each repeat:

1. **wandb offline**: the real client (the project's venv pins wandb 0.31.0) logs ``--steps``
   rows of ``--keys`` metrics with ``WANDB_MODE=offline``; the time ``finish()`` takes.
2. **wandb -> runyard**: the same script online against the server; the time ``finish()``
   takes, then how long after ``finish()`` returned until every step is queryable through
   runyard's API (the run's ``last_step`` and one key's full series), and the server process's
   CPU seconds for the run, per million history points.
   Once more with ``WANDB_X_FILE_STREAM_TRANSMIT_INTERVAL=1``: the client then posts its file
   stream every second instead of every 15 s, so ``finish()`` sends (and waits for) one second
   of rows, not up to fifteen.
3. **wandb -> null server** (``bench/_null_wandb.py``): the same script online against a W&B
   protocol server that answers at once and stores nothing, with both intervals: the client's
   floor, what ``finish()`` costs against any server. What runyard takes beyond it is
   runyard's to remove.
4. **runyard SDK -> runyard**: runyard's own SDK logs the same rows to the same server through
   ``/api/v1`` (journal batches); the server's CPU seconds per million points.

runyard server runs with each request handler's start and end recorded (``PROFILED_SERVER``
below: two clock reads a request), so the table also says how long the server was busy inside
each door run's ``finish()``: that, not the difference of two runs' ``finish()`` (the last
post holds 0-15 s of rows, by chance), is runyard's part. ``--profile FILE`` (one repeat is
enough) adds cProfile (each handler in its worker thread, plus the event loop's thread; the
bench sets ``RUNYARD_BENCH_PROFILE`` for the server process only) and prints the functions;
timings with ``--profile`` are the profiler's, not the table's.

Targets (issue 12): finish() online <= 1.5 x offline; every step queryable within 2 s of
finish(); the door's server CPU per point <= 2 x the /api/v1 path's. Printed as ratios, median
and spread over the repeats. The machine's load average is printed too: on a shared 2-core
machine absolute numbers move with it, ratios less.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil
from _common import free_port, print_tables

HERE = Path(__file__).resolve().parent

#: ``runyard server``, timed: each function handed to starlette's thread pool (the door's
#: handlers: file stream, GraphQL, uploads) has its (name, start, end) recorded into
#: RUNYARD_BENCH_CALLS when the server stops (two clock reads a request); with
#: RUNYARD_BENCH_PROFILE=1 each also runs under a cProfile of its thread, and the event loop's
#: thread under one more (merged into RUNYARD_BENCH_CALLS + ".prof"). Only the bench sets them.
PROFILED_SERVER = """
import cProfile, json, os, pstats, runpy, signal, sys, threading, time
import starlette.concurrency as concurrency

out = os.environ["RUNYARD_BENCH_CALLS"]
profiling = os.environ.get("RUNYARD_BENCH_PROFILE") == "1"
lock = threading.Lock()
calls, stats = [], []
main = cProfile.Profile()
original = concurrency.run_in_threadpool

async def profiled(func, *args, **kwargs):
    def call():
        prof = cProfile.Profile() if profiling else None
        start = time.time()
        if prof is not None:
            prof.enable()
        try:
            return func(*args, **kwargs)
        finally:
            if prof is not None:
                prof.disable()
            end = time.time()
            with lock:
                calls.append((getattr(func, "__name__", str(func)), start, end))
                if prof is not None:
                    stats.append(prof)
    return await original(call)

concurrency.run_in_threadpool = profiled

def dump():
    if profiling:
        main.disable()
        merged = pstats.Stats(main)
        for prof in stats:
            merged.add(prof)
        merged.dump_stats(out + ".prof")
    with open(out, "w") as fh:
        json.dump(calls, fh)

# uvicorn re-raises the SIGTERM it handled once it has shut down: exit through Python then
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
sys.argv = ["runyard", *sys.argv[1:]]
if profiling:
    main.enable()
try:
    runpy.run_module("runyard", run_name="__main__")
finally:
    dump()
"""

CLIENT = """
import os, sys, time
steps, keys, mode, run_id = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
names = [f"metric_{k}" for k in range(keys)]
if mode == "runyard":
    import runyard as wandb
else:
    import wandb
run = wandb.init(project="bench", id=run_id)
t0 = time.perf_counter()
for i in range(steps):
    run.log({n: i * 0.001 + k for k, n in enumerate(names)})
t1 = time.perf_counter()
run.finish()
t2 = time.perf_counter()
print("RESULT", t1 - t0, t2 - t1, time.time(), flush=True)
"""


def server_cpu(pid: int) -> float:
    proc = psutil.Process(pid)
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def client(
    script: Path,
    home: Path,
    mode: str,
    run_id: str,
    args: argparse.Namespace,
    url: str,
    on_finish: Callable[[], Any] | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[float, float, float, Any]:
    """Run the client; ``on_finish`` runs the moment the client reports that ``finish()``
    returned (while its interpreter is still exiting: wandb's service shutdown takes a while
    and is not part of finish()). ``(log loop s, finish s, finished at, on_finish result)``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RUNYARD_"))}
    env.update(
        {
            "HOME": str(home),
            "WANDB_DIR": str(home),
            "WANDB_SILENT": "true",
            "WANDB_ERROR_REPORTING": "false",
            "WANDB_X_DISABLE_UPDATE_CHECK": "true",
            "WANDB_API_KEY": "x" * 40,
            "WANDB_BASE_URL": url,
            "RUNYARD_STORE": url,
            "RUNYARD_SILENT": "true",
            # runyard's finish() waits this long for its shipper (then leaves the rest to
            # `runyard sync`): long enough here for every row to reach the server
            "RUNYARD_FINISH_TIMEOUT": "1800",
            "RUNYARD_DIR": str(home / ".runyard"),
            "NO_PROXY": "127.0.0.1",
        }
    )
    if mode == "offline":
        env["WANDB_MODE"] = "offline"
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [sys.executable, str(script), str(args.steps), str(args.keys), mode, run_id],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    result = None
    extra = None
    for line in proc.stdout:
        if line.startswith("RESULT"):
            result = line.split()
            extra = on_finish() if on_finish is not None else None
            break
    proc.stdout.read()
    proc.wait(timeout=1800)
    if proc.returncode != 0 or result is None:
        raise RuntimeError(f"{mode} client failed ({proc.returncode})")
    _, log_s, finish_s, finished_at = result
    return float(log_s), float(finish_s), float(finished_at), extra


def wait_queryable(
    api: str, path: str, steps: int, keys: int, deadline_s: float = 600
) -> tuple[float, float]:
    """``(t, d)``: a query started at time ``t`` (the first one that did) found the run's last
    step stored and one key's series with every step; ``d`` is how long that query took."""
    end = time.time() + deadline_s
    while time.time() < end:
        started = time.time()
        run = httpx.get(f"{api}/runs/{path}", timeout=30)
        if run.status_code == 200 and run.json().get("last_step") == steps - 1:
            series = httpx.get(
                f"{api}/runs/{path}/series",
                params={"key": f"metric_{keys - 1}", "samples": 2},
                timeout=60,
            ).json()
            if series.get("total") == steps:
                return started, time.time() - started
        time.sleep(0.05)
    raise RuntimeError(f"run {path} never had all {steps} steps")


def start_null_server() -> tuple[subprocess.Popen[str], str]:
    """``bench/_null_wandb.py`` in a process of its own; ``(process, its URL)``."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "_null_wandb.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY "):
        raise RuntimeError(f"bench/_null_wandb.py did not start: {line!r}")
    return proc, line.split()[1]


def stop(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM to the process group we started, SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", default=None, help="store URL (default: SQLite in a tmp dir)")
    parser.add_argument(
        "--profile", default=None, metavar="FILE", help="cProfile runyard server into FILE"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="runyard-bench-door-"))
    script = tmp / "client.py"
    script.write_text(textwrap.dedent(CLIENT))
    store = args.store or f"sqlite:///{tmp / 'runyard.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = f"{url}/api/v1"
    server_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")},
        "RUNYARD_SILENT": "true",
    }
    calls_file = str(Path(args.profile).resolve()) if args.profile else str(tmp / "calls.json")
    server_env["RUNYARD_BENCH_CALLS"] = calls_file
    if args.profile:
        server_env["RUNYARD_BENCH_PROFILE"] = "1"
    server = subprocess.Popen(
        [sys.executable, "-c", PROFILED_SERVER, "server", "--store", store, "--port", str(port)],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    null_server, null_url = start_null_server()
    names = (
        "offline_finish",
        "offline_log",
        "online_finish",
        "online_log",
        "online1_finish",
        "online1_log",
        "null_finish",
        "null_log",
        "null1_finish",
        "null1_log",
        "native_finish",
        "queryable_after",
        "queryable1_after",
        "query",
        "door_cpu",
        "native_cpu",
        "busy",
        "busy1",
    )
    rows: dict[str, list[float]] = {k: [] for k in names}
    #: (run, finish() started, finish() returned): the door runs, for the profile's calls
    windows: list[tuple[str, float, float]] = []
    one_second = {"WANDB_X_FILE_STREAM_TRANSMIT_INTERVAL": "1"}
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{api}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        points = args.steps * args.keys / 1e6
        for r in range(args.repeats):
            home = tmp / f"repeat{r}"
            home.mkdir()
            log_s, fin_s, _, _ = client(script, home, "offline", f"off{r}", args, url)
            rows["offline_finish"].append(fin_s)
            rows["offline_log"].append(log_s)

            # the client's floor: a server that answers at once and stores nothing
            for suffix, extra in (("", None), ("1", one_second)):
                log_s, fin_s, _, _ = client(
                    script, home, "online", f"null{suffix}{r}", args, null_url, extra_env=extra
                )
                rows[f"null{suffix}_finish"].append(fin_s)
                rows[f"null{suffix}_log"].append(log_s)

            cpu0 = server_cpu(server.pid)
            log_s, fin_s, finished_at, (ready_at, query_s) = client(
                script,
                home,
                "online",
                f"door{r}",
                args,
                url,
                lambda r=r: wait_queryable(api, f"root/bench/door{r}", args.steps, args.keys),
            )
            windows.append((f"door{r}", finished_at - fin_s, finished_at))
            rows["query"].append(query_s)
            rows["door_cpu"].append((server_cpu(server.pid) - cpu0) / points)
            rows["online_finish"].append(fin_s)
            rows["online_log"].append(log_s)
            rows["queryable_after"].append(max(0.0, ready_at - finished_at))

            # The client posts its file stream at most every 15 s, so finish() sends up to 15 s
            # of rows and waits for them to be stored; posting every second shrinks that post.
            log_s, fin_s, finished_at, (ready_at, _q) = client(
                script,
                home,
                "online",
                f"door1s{r}",
                args,
                url,
                lambda r=r: wait_queryable(api, f"root/bench/door1s{r}", args.steps, args.keys),
                extra_env=one_second,
            )
            windows.append((f"door1s{r}", finished_at - fin_s, finished_at))
            rows["online1_finish"].append(fin_s)
            rows["online1_log"].append(log_s)
            rows["queryable1_after"].append(max(0.0, ready_at - finished_at))

            cpu0 = server_cpu(server.pid)
            _log_s, fin_s, _, _ = client(script, home, "runyard", f"native{r}", args, url)
            wait_queryable(api, f"root/bench/native{r}", args.steps, args.keys)
            rows["native_cpu"].append((server_cpu(server.pid) - cpu0) / points)
            rows["native_finish"].append(fin_s)
    finally:
        stop(null_server)
        stop(server)

    # the server's handlers at work inside each door run's finish() (the union of their calls)
    calls = json.loads(Path(calls_file).read_text())
    for run, start, end in windows:
        spans = sorted((max(s, start), min(e, end)) for _n, s, e in calls if e > start and s < end)
        busy, reach = 0.0, start
        for s, e in spans:
            busy += max(0.0, e - max(s, reach))
            reach = max(reach, e)
        rows["busy1" if run.startswith("door1s") else "busy"].append(busy)

    def cell(values: list[float], unit: str = "s") -> str:
        med = statistics.median(values)
        return f"{med:.2f} {unit} ({min(values):.2f}-{max(values):.2f})"

    def ratio(a: str, b: str) -> list[float]:
        return [x / y for x, y in zip(rows[a], rows[b], strict=True)]

    def total(prefix: str) -> list[float]:
        return [
            log + fin
            for log, fin in zip(rows[f"{prefix}_log"], rows[f"{prefix}_finish"], strict=True)
        ]

    def less(a: str, b: str) -> list[float]:
        return [x - y for x, y in zip(rows[a], rows[b], strict=True)]

    offline_total = total("offline")

    def finish_rows(label: str, interval: str) -> list[list[str]]:
        """``finish()``, runyard's busy time inside it and the ratios to offline, for the file
        stream's default interval (``interval`` "") or the 1-s one ("1")."""
        null, online = f"null{interval}_finish", f"online{interval}_finish"
        return [
            [
                label,
                cell(rows["offline_finish"]),
                cell(rows[null]),
                cell(rows[online]),
                cell(less(online, null)),
                "",
            ],
            ["  ... runyard server busy inside it", "", "", cell(rows[f"busy{interval}"]), "", ""],
            [
                "  ... / offline finish()",
                "1.00 x",
                cell(ratio(null, "offline_finish"), "x"),
                cell(ratio(online, "offline_finish"), "x"),
                "",
                "<= 1.5 x",
            ],
        ]

    side = (
        f"finish(), {args.steps:,} steps x {args.keys} keys, median (min-max) of "
        f"{args.repeats}: the wandb client against nothing, a null server and runyard server",
        [
            "measure",
            "wandb offline",
            "null server: the client's floor",
            "runyard server",
            "runyard - null",
            "target",
        ],
        [
            *finish_rows("finish()", ""),
            *finish_rows("finish(), client posting every 1 s", "1"),
            [
                "log() loop",
                cell(rows["offline_log"]),
                cell(rows["null_log"]),
                cell(rows["online_log"]),
                "",
                "",
            ],
            [
                "log() loop + finish() / offline's",
                "1.00 x",
                cell([t / o for t, o in zip(total("null"), offline_total, strict=True)], "x"),
                cell([t / o for t, o in zip(total("online"), offline_total, strict=True)], "x"),
                "",
                "",
            ],
        ],
    )
    cpu_ratio = ratio("door_cpu", "native_cpu")
    other = (
        "runyard server: queryable, server CPU",
        ["measure", "value", "target"],
        [
            ["every step queryable after finish()", cell(rows["queryable_after"]), "<= 2 s"],
            ["  ... client posting every 1 s", cell(rows["queryable1_after"]), "<= 2 s"],
            ["server CPU / 1M points, wandb door", cell(rows["door_cpu"]), ""],
            ["server CPU / 1M points, runyard /api/v1", cell(rows["native_cpu"]), ""],
            ["door CPU / /api/v1 CPU", cell(cpu_ratio, "x"), "<= 2 x"],
            ["runyard SDK finish() (for reference)", cell(rows["native_finish"]), ""],
        ],
    )
    load = os.getloadavg()
    print_tables(
        [side, other],
        f"bench/wandb_door.py  (store {store.split(':')[0]}, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f})",
    )
    print(json.dumps(rows))
    if args.profile:
        report_profile(args.profile, windows)


def report_profile(profile: str, windows: list[tuple[str, float, float]]) -> None:
    """The server's handler calls inside each door run's finish() and the top functions."""
    import pstats

    calls = json.loads(Path(profile).read_text())
    for run, start, end in windows:
        inside = [(n, max(s, start), min(e, end)) for n, s, e in calls if e > start and s < end]
        busy: dict[str, float] = {}
        for name, s, e in inside:
            busy[name] = busy.get(name, 0.0) + (e - s)
        shown = ", ".join(f"{n} {t:.3f} s" for n, t in sorted(busy.items(), key=lambda x: -x[1]))
        print(f"{run}: finish() {end - start:.3f} s; server handlers busy inside it: {shown}")
    stats = pstats.Stats(profile + ".prof")
    stats.sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
