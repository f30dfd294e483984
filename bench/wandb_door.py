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
3. **runyard SDK -> runyard**: runyard's own SDK logs the same rows to the same server through
   ``/api/v1`` (journal batches); the server's CPU seconds per million points.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", default=None, help="store URL (default: SQLite in a tmp dir)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="runyard-bench-door-"))
    script = tmp / "client.py"
    script.write_text(textwrap.dedent(CLIENT))
    store = args.store or f"sqlite:///{tmp / 'runyard.db'}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = f"{url}/api/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "runyard", "server", "--store", store, "--port", str(port)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")},
            "RUNYARD_SILENT": "true",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "offline_finish",
            "online_finish",
            "native_finish",
            "queryable_after",
            "door_cpu",
            "native_cpu",
            "online_log",
            "offline_log",
            "query",
            "online1_finish",
            "online1_log",
            "queryable1_after",
        )
    }
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
                extra_env={"WANDB_X_FILE_STREAM_TRANSMIT_INTERVAL": "1"},
            )
            rows["online1_finish"].append(fin_s)
            rows["online1_log"].append(log_s)
            rows["queryable1_after"].append(max(0.0, ready_at - finished_at))

            cpu0 = server_cpu(server.pid)
            _log_s, fin_s, _, _ = client(script, home, "runyard", f"native{r}", args, url)
            wait_queryable(api, f"root/bench/native{r}", args.steps, args.keys)
            rows["native_cpu"].append((server_cpu(server.pid) - cpu0) / points)
            rows["native_finish"].append(fin_s)
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)

    def cell(values: list[float], unit: str = "s") -> str:
        med = statistics.median(values)
        return f"{med:.2f} {unit} ({min(values):.2f}-{max(values):.2f})"

    finish_ratio = [
        o / f for o, f in zip(rows["online_finish"], rows["offline_finish"], strict=True)
    ]
    finish1_ratio = [
        o / f for o, f in zip(rows["online1_finish"], rows["offline_finish"], strict=True)
    ]
    cpu_ratio = [d / n for d, n in zip(rows["door_cpu"], rows["native_cpu"], strict=True)]
    total_ratio = [
        (ol + of) / (fl + ff)
        for ol, of, fl, ff in zip(
            rows["online_log"],
            rows["online_finish"],
            rows["offline_log"],
            rows["offline_finish"],
            strict=True,
        )
    ]
    tables = [
        (
            f"{args.steps:,} steps x {args.keys} keys, median (min-max) of {args.repeats}",
            ["measure", "value", "target"],
            [
                ["wandb offline: finish()", cell(rows["offline_finish"]), ""],
                ["wandb -> runyard door: finish()", cell(rows["online_finish"]), ""],
                ["finish() online / offline", cell(finish_ratio, "x"), "<= 1.5 x"],
                ["log() loop + finish(), online / offline", cell(total_ratio, "x"), ""],
                [
                    "finish(), client posting every 1 s (see docs)",
                    cell(rows["online1_finish"]),
                    "",
                ],
                ["  ... / offline finish()", cell(finish1_ratio, "x"), "<= 1.5 x"],
                ["  ... every step queryable after", cell(rows["queryable1_after"]), "<= 2 s"],
                [
                    "  ... its log() loop",
                    f"{statistics.median(rows['online1_log']):.2f} s",
                    "",
                ],
                ["every step queryable after finish()", cell(rows["queryable_after"]), "<= 2 s"],
                ["server CPU / 1M points, wandb door", cell(rows["door_cpu"]), ""],
                ["server CPU / 1M points, runyard /api/v1", cell(rows["native_cpu"]), ""],
                ["door CPU / /api/v1 CPU", cell(cpu_ratio, "x"), "<= 2 x"],
                [
                    "wandb log() loop (online / offline)",
                    f"{statistics.median(rows['online_log']):.2f} s / "
                    f"{statistics.median(rows['offline_log']):.2f} s",
                    "",
                ],
                ["runyard SDK finish() (for reference)", cell(rows["native_finish"]), ""],
            ],
        )
    ]
    load = os.getloadavg()
    print_tables(
        tables,
        f"bench/wandb_door.py  (store {store.split(':')[0]}, load average "
        f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f})",
    )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
