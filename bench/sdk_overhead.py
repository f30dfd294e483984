"""SDK overhead of runyard vs wandb (offline) vs MLflow (SQLite), side by side.

Each tool runs in a fresh subprocess per repeat, in its own temporary folder, with the same
workload: ``log({"loss": x, "acc": y})`` for N steps. Measured per run:

* init: from the start of ``import <tool>`` to the first ``log()`` returning (ms);
* log: the time of each ``log()`` call (``time.perf_counter_ns`` around the call), median and
  p99 (µs);
* finish: from calling ``finish()`` / ``end_run()`` until every logged value can be read back
  from the tool's store (s). wandb offline has no queryable store: there it is ``finish()``
  returning with the ``.wandb`` file written.

Usage (see bench/README.md)::

    .venv-bench/bin/python bench/sdk_overhead.py --repeats 3 --json bench/results/out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import print_tables

TOOLS: tuple[str, ...] = ("runyard", "wandb", "mlflow-sync", "mlflow-async")
#: The module each tool needs (the tool is skipped when it is not importable).
TOOL_MODULES: dict[str, str] = {
    "runyard": "runyard",
    "wandb": "wandb",
    "mlflow-sync": "mlflow",
    "mlflow-async": "mlflow",
}
#: MLflow writes one SQLite transaction per synchronous call: it runs fewer steps by default.
MLFLOW_SYNC_FRACTION = 0.02
MLFLOW_ASYNC_FRACTION = 0.2
PROJECT = "sdk-overhead"
POLL_INTERVAL_S = 0.005

Result = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# child side: one tool, one run, results written as JSON to --result
# ---------------------------------------------------------------------------------------------


def _percentile(sorted_ns: Sequence[int], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = min(len(sorted_ns) - 1, max(0, round(q * (len(sorted_ns) - 1))))
    return float(sorted_ns[index])


def _values(i: int, n: int) -> dict[str, float]:
    return {"loss": 1.0 / (i + 1), "acc": i / n}


def _latency_stats(lat_ns: list[int]) -> dict[str, float]:
    ordered = sorted(lat_ns)
    return {
        "log_median_us": statistics.median(ordered) / 1e3,
        "log_p99_us": _percentile(ordered, 0.99) / 1e3,
        "log_p9999_us": _percentile(ordered, 0.9999) / 1e3,
        "log_max_us": ordered[-1] / 1e3,
        "log_over_1ms": float(sum(1 for v in ordered if v > 1_000_000)),
        "log_mean_us": sum(ordered) / len(ordered) / 1e3,
    }


def _loop_implicit_step(log: Callable[[dict[str, float]], Any], n: int) -> tuple[list[int], int]:
    """``log(data)`` n times (W&B style, one row per call); returns latencies and t(first log)."""
    clock = time.perf_counter_ns
    lat = [0] * n
    first_done = 0
    for i in range(n):
        data = _values(i, n)
        t = clock()
        log(data)
        end = clock()
        lat[i] = end - t
        if i == 0:
            first_done = end
    return lat, first_done


def _loop_mlflow(
    log_metrics: Callable[..., Any], n: int, synchronous: bool
) -> tuple[list[int], int]:
    clock = time.perf_counter_ns
    lat = [0] * n
    first_done = 0
    for i in range(n):
        data = _values(i, n)
        t = clock()
        log_metrics(data, step=i, synchronous=synchronous)
        end = clock()
        lat[i] = end - t
        if i == 0:
            first_done = end
    return lat, first_done


def _wait_until(check: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``check`` until it is true or ``timeout_s`` passes (bounded)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)


def _runyard_count_sqlite(db_path: Path, run_id: str) -> int:
    if not db_path.exists():
        return 0
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute(
            "SELECT count(*) FROM metrics WHERE run_pk = (SELECT pk FROM runs WHERE run_id = ?)",
            (run_id,),
        ).fetchone()
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        con.close()
    return int(row[0]) if row else 0


def _runyard_count_api(path: str, root: Path) -> int:
    """Values readable through ``runyard.Api`` (W&B-style ``run(path).scan_history``)."""
    from runyard.api import Api

    api = Api(dir=str(root))
    run = api.run(path)
    count = 0
    for row in run.scan_history(keys=["loss", "acc"]):
        count += sum(1 for k in ("loss", "acc") if row.get(k) is not None)
    return count


def _runyard_backlog(run: Any) -> int | None:
    """Journal records not yet in the store when finish() is called (diagnostic, best effort).

    Reads private attributes, so any change inside runyard just gives ``None``.
    """
    try:
        return int(run._journal.seq) - int(run._shipper.applied_seq)
    except Exception:
        return None


def child_runyard(n: int, workdir: Path, timeout_s: float) -> Result:
    t0 = time.perf_counter_ns()
    import runyard

    root = workdir / ".runyard"
    settings = runyard.Settings(silent=True, console="off", disable_git=True, disable_stats=True)
    run = runyard.init(project=PROJECT, dir=str(root), settings=settings)
    lat, first_done = _loop_implicit_step(runyard.log, n)

    backlog = _runyard_backlog(run)
    expected = 2 * n
    db_path = root / "runyard.db"
    use_api = importlib.util.find_spec("runyard.api") is not None
    readback = "runyard.Api" if use_api else "sqlite3 (runyard.Api not available)"

    def readable() -> bool:
        nonlocal use_api, readback
        if use_api:
            try:
                return _runyard_count_api(run.path, root) >= expected
            except Exception as exc:  # Api shape unknown: fall back to sqlite3
                use_api = False
                readback = f"sqlite3 (runyard.Api failed: {type(exc).__name__}: {exc})"[:200]
        return _runyard_count_sqlite(db_path, run.id) >= expected

    t_fin = time.perf_counter_ns()
    runyard.finish()
    t_finish_returned = time.perf_counter_ns()
    ok = _wait_until(readable, timeout_s)
    t_read = time.perf_counter_ns()
    count = _runyard_count_sqlite(db_path, run.id)
    return {
        "version": runyard.__version__,
        "init_ms": (first_done - t0) / 1e6,
        "finish_s": (t_read - t_fin) / 1e9,
        "readable": ok,
        "readback": readback,
        "rows_read": count,
        "rows_expected": expected,
        "backlog_at_finish": backlog,
        "finish_call_s": (t_finish_returned - t_fin) / 1e9,
        **_latency_stats(lat),
    }


def child_wandb(n: int, workdir: Path, timeout_s: float) -> Result:
    t0 = time.perf_counter_ns()
    import wandb

    settings = wandb.Settings(silent=True, console="off", disable_git=True, x_disable_stats=True)
    run = wandb.init(project=PROJECT, dir=str(workdir), mode="offline", settings=settings)
    lat, first_done = _loop_implicit_step(wandb.log, n)

    sync_file = Path(run.settings.sync_file)
    t_fin = time.perf_counter_ns()
    wandb.finish()
    ok = sync_file.is_file() and sync_file.stat().st_size > 0
    t_read = time.perf_counter_ns()
    size_at_finish = sync_file.stat().st_size if sync_file.is_file() else 0
    wandb.teardown()  # stops wandb-core; not timed
    size_after_teardown = sync_file.stat().st_size if sync_file.is_file() else 0
    return {
        "version": wandb.__version__,
        "init_ms": (first_done - t0) / 1e6,
        "finish_s": (t_read - t_fin) / 1e9,
        "readable": ok,
        "readback": "finish() returned and the .wandb file exists (no queryable store offline)",
        "wandb_file_bytes": size_at_finish,
        "wandb_file_grew_after_finish": size_after_teardown != size_at_finish,
        **_latency_stats(lat),
    }


def _child_mlflow(n: int, workdir: Path, timeout_s: float, synchronous: bool) -> Result:
    t0 = time.perf_counter_ns()
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    run = mlflow.start_run()
    lat, first_done = _loop_mlflow(mlflow.log_metrics, n, synchronous)

    run_id = run.info.run_id
    client = MlflowClient()
    counts: dict[str, int] = {}

    def readable() -> bool:
        counts["loss"] = len(client.get_metric_history(run_id, "loss"))
        return counts["loss"] >= n

    t_fin = time.perf_counter_ns()
    mlflow.end_run()
    t_finish_returned = time.perf_counter_ns()
    ok = _wait_until(readable, timeout_s)
    t_read = time.perf_counter_ns()
    return {
        "version": mlflow.__version__,
        "init_ms": (first_done - t0) / 1e6,
        "finish_s": (t_read - t_fin) / 1e9,
        "readable": ok,
        "readback": "MlflowClient().get_metric_history(run_id, 'loss')",
        "rows_read": counts.get("loss", 0),
        "rows_expected": n,
        "finish_call_s": (t_finish_returned - t_fin) / 1e9,
        **_latency_stats(lat),
    }


def child_mlflow_sync(n: int, workdir: Path, timeout_s: float) -> Result:
    return _child_mlflow(n, workdir, timeout_s, synchronous=True)


def child_mlflow_async(n: int, workdir: Path, timeout_s: float) -> Result:
    return _child_mlflow(n, workdir, timeout_s, synchronous=False)


CHILDREN: dict[str, Callable[[int, Path, float], Result]] = {
    "runyard": child_runyard,
    "wandb": child_wandb,
    "mlflow-sync": child_mlflow_sync,
    "mlflow-async": child_mlflow_async,
}


def run_child(args: argparse.Namespace) -> int:
    result = CHILDREN[args.child](args.steps, Path(args.workdir), args.readback_timeout)
    result.update(tool=args.child, steps=args.steps)
    Path(args.result).write_text(json.dumps(result))
    return 0


# ---------------------------------------------------------------------------------------------
# parent side: spawn children, aggregate, print
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    fmt: str


METRICS: tuple[Metric, ...] = (
    Metric("init_ms", "init→first log (ms)", "{:.1f}"),
    Metric("log_median_us", "log median (µs)", "{:.2f}"),
    Metric("log_p99_us", "log p99 (µs)", "{:.2f}"),
    Metric("log_p9999_us", "log p99.99 (µs)", "{:.0f}"),
    Metric("log_max_us", "log max (µs)", "{:.0f}"),
    Metric("log_over_1ms", "log >1 ms (calls)", "{:.0f}"),
    Metric("finish_s", "finish→readable (s)", "{:.3f}"),
)


def child_env(tool: str, workdir: Path) -> dict[str, str]:
    """The environment of a child: no inherited tool settings, everything under ``workdir``."""
    prefixes = ("RUNYARD_", "WANDB_", "MLFLOW_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env["PYTHONUNBUFFERED"] = "1"
    if tool == "wandb":
        env.update(
            WANDB_MODE="offline",
            WANDB_SILENT="true",
            WANDB_DIR=str(workdir),
            WANDB_CONFIG_DIR=str(workdir / "wandb-config"),
            WANDB_CACHE_DIR=str(workdir / "wandb-cache"),
            WANDB_DATA_DIR=str(workdir / "wandb-data"),
            WANDB_ARTIFACT_DIR=str(workdir / "wandb-artifacts"),
        )
    elif tool.startswith("mlflow"):
        # No network here: keep MLflow's telemetry thread from trying to phone home.
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


def _kill_group(pgid: int) -> bool:
    """SIGKILL what is left of a child's process group; True if anything was there."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def spawn(tool: str, steps: int, args: argparse.Namespace) -> Result:
    """Run one measurement in a fresh subprocess inside a temporary folder (always removed)."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{tool}-") as tmp:
        workdir = Path(tmp)
        result_path = workdir / "result.json"
        # --realtime: the child runs under SCHED_FIFO (root), so that other processes on a busy
        # machine cannot preempt it: what is left in the tail is the tool's own doing.
        prefix = ["chrt", "-f", "10"] if args.realtime else []
        cmd = [
            *prefix,
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            tool,
            "--steps",
            str(steps),
            "--workdir",
            str(workdir),
            "--result",
            str(result_path),
            "--readback-timeout",
            str(args.readback_timeout),
        ]
        log_path = workdir / "child.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                cmd,
                cwd=workdir,
                env=child_env(tool, workdir),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
                rc = None
        leftovers = _kill_group(proc.pid)
        tail = log_path.read_text(errors="replace")[-2000:]
        if rc != 0 or not result_path.is_file():
            why = "timed out" if rc is None else f"exit code {rc}"
            return {"tool": tool, "steps": steps, "error": f"{why}; output tail:\n{tail}"}
        result: Result = json.loads(result_path.read_text())
        if leftovers:
            result["leftover_processes_killed"] = True
        if tail.strip():
            result["child_output_tail"] = tail[-500:]
        return result


def warm_up(tools: Sequence[str]) -> None:
    """Import each tool once so .pyc files and the page cache are warm for every repeat."""
    for module in sorted({TOOL_MODULES[t] for t in tools}):
        with tempfile.TemporaryDirectory(prefix="bench-warmup-") as tmp:
            subprocess.run(
                [sys.executable, "-c", f"import {module}"],
                cwd=tmp,
                env=child_env(module, Path(tmp)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=300,
                check=False,
                start_new_session=True,
            )


def steps_for(tool: str, args: argparse.Namespace) -> int:
    if tool == "mlflow-sync":
        return int(args.mlflow_sync_steps or max(1, round(args.steps * MLFLOW_SYNC_FRACTION)))
    if tool == "mlflow-async":
        return int(args.mlflow_async_steps or max(1, round(args.steps * MLFLOW_ASYNC_FRACTION)))
    return int(args.steps)


def aggregate(runs: Sequence[Result]) -> dict[str, dict[str, float]]:
    """Median, min and max over the successful repeats of one tool."""
    ok = [r for r in runs if "error" not in r]
    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        values = [float(r[metric.key]) for r in ok if r.get(metric.key) is not None]
        if values:
            out[metric.key] = {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
    return out


def _cell(agg: dict[str, dict[str, float]], metric: Metric) -> str:
    stats = agg.get(metric.key)
    if stats is None:
        return "n/a"
    med, lo, hi = (metric.fmt.format(stats[k]) for k in ("median", "min", "max"))
    return f"{med} ({lo}-{hi})"


def _ratio(agg: dict[str, dict[str, float]], base: dict[str, dict[str, float]], key: str) -> float:
    if key not in agg or key not in base or base[key]["median"] <= 0:
        return float("nan")
    return agg[key]["median"] / base[key]["median"]


def _fmt_ratio(value: float) -> str:
    if value != value:  # NaN
        return "n/a"
    if value >= 10:
        return f"{value:.0f}x"
    return f"{value:.1f}x" if value >= 0.1 else f"{value:.3f}x"


def check_targets(summary: dict[str, dict[str, dict[str, float]]]) -> list[tuple[str, str, bool]]:
    """The issue's targets: (description, measured, met)."""
    base = summary.get("runyard")
    if not base or "log_median_us" not in base:
        return []
    checks: list[tuple[str, str, bool]] = []
    med = base["log_median_us"]["median"]
    checks.append(("runyard log() median < 10 µs", f"{med:.2f} µs", med < 10.0))
    if "log_max_us" in base:
        worst = base["log_max_us"]["max"]
        checks.append(("runyard worst log() < 1 ms (all repeats)", f"{worst:.0f} µs", worst < 1e3))
        tail = base["log_p9999_us"]["max"]
        checks.append(("runyard log() p99.99 < 100 µs (all repeats)", f"{tail:.0f} µs", tail < 100))
    for tool in ("wandb", "mlflow-sync", "mlflow-async"):
        if tool in summary and "log_median_us" in summary[tool]:
            r = _ratio(summary[tool], base, "log_median_us")
            checks.append((f"log() median ≥ 20x below {tool}", _fmt_ratio(r), r >= 20))
    if "wandb" in summary and "init_ms" in summary["wandb"]:
        r = _ratio(summary["wandb"], base, "init_ms")
        checks.append(("init ≥ 20x faster than wandb", _fmt_ratio(r), r >= 20))
    return checks


def _tables(
    tools: Sequence[str],
    summary: dict[str, dict[str, dict[str, float]]],
    steps: dict[str, int],
    repeats: dict[str, str],
) -> list[tuple[str, list[str], list[list[str]]]]:
    main_rows = [
        [t, f"{steps[t]:,}", repeats[t], *(_cell(summary[t], m) for m in METRICS)] for t in tools
    ]
    main = ("median (min-max) over repeats", ["tool", "N", "ok/runs"] + [m.title for m in METRICS])
    tables = [(main[0], main[1], main_rows)]
    base = summary.get("runyard")
    if base:
        ratio_rows = [
            [f"{t} / runyard", *(_fmt_ratio(_ratio(summary[t], base, m.key)) for m in METRICS)]
            for t in tools
            if t != "runyard"
        ]
        if ratio_rows:
            tables.append(
                ("ratio of medians vs runyard", ["", *(m.title for m in METRICS)], ratio_rows)
            )
    checks = check_targets(summary)
    if checks:
        rows = [[d, v, "PASS" if ok else "FAIL"] for d, v, ok in checks]
        tables.append(("issue targets", ["target", "measured", "result"], rows))
    return tables


def notes(tools: Sequence[str], runs: dict[str, list[Result]]) -> list[str]:
    """Caveats worth printing under the tables."""
    out: list[str] = []
    if "wandb" in tools:
        out.append(
            "wandb finish->readable is finish() returning with the .wandb file written: offline "
            "wandb has no queryable store, so there is no read-back (not comparable)"
        )
    for tool in tools:
        readbacks = {str(r.get("readback")) for r in runs[tool] if "readback" in r}
        if tool == "runyard" and any(rb.startswith("sqlite3") for rb in readbacks):
            out.append(f"runyard read-back: {'; '.join(sorted(readbacks))}")
        if any(r.get("leftover_processes_killed") for r in runs[tool]):
            out.append(f"{tool}: processes were left in the child's group and were killed")
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma list of {', '.join(TOOLS)}")
    p.add_argument("--steps", type=int, default=100_000, help="N for runyard and wandb")
    p.add_argument(
        "--mlflow-sync-steps",
        type=int,
        default=None,
        help=f"N for mlflow-sync (default: {MLFLOW_SYNC_FRACTION} x --steps)",
    )
    p.add_argument(
        "--mlflow-async-steps",
        type=int,
        default=None,
        help=f"N for mlflow-async (default: {MLFLOW_ASYNC_FRACTION} x --steps)",
    )
    p.add_argument("--repeats", type=int, default=3, help="fresh subprocesses per tool")
    p.add_argument("--json", dest="json_out", default=None, help="write all results here")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child run")
    p.add_argument(
        "--readback-timeout", type=float, default=300.0, help="seconds to wait for read-back"
    )
    p.add_argument("--no-warmup", action="store_true", help="skip the import warm-up")
    p.add_argument(
        "--realtime",
        action="store_true",
        help="run each child under SCHED_FIFO (chrt -f 10; root): other processes cannot "
        "preempt it, so tail latencies (p99.99, max) are the tool's own",
    )
    # internal: one measurement in this process
    p.add_argument("--child", choices=TOOLS, help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.steps < 1 or args.repeats < 1:
        p.error("--steps and --repeats must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return run_child(args)

    requested = [t.strip() for t in args.tools.split(",") if t.strip()]
    unknown = [t for t in requested if t not in TOOLS]
    if unknown:
        print(f"unknown tool(s) {unknown}; choose from {', '.join(TOOLS)}", file=sys.stderr)
        return 2
    tools = [t for t in requested if importlib.util.find_spec(TOOL_MODULES[t]) is not None]
    for t in sorted(set(requested) - set(tools)):
        print(f"skipping {t}: module {TOOL_MODULES[t]!r} is not installed", file=sys.stderr)
    if not tools:
        return 2
    if not args.no_warmup:
        warm_up(tools)

    steps = {t: steps_for(t, args) for t in tools}
    runs: dict[str, list[Result]] = {t: [] for t in tools}
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.monotonic()
    for rep in range(args.repeats):  # repeat-major, so drift hits every tool alike
        for tool in tools:
            print(f"[{rep + 1}/{args.repeats}] {tool} N={steps[tool]:,} ...", file=sys.stderr)
            result = spawn(tool, steps[tool], args)
            if "error" in result:
                print(f"  {tool} failed: {result['error']}", file=sys.stderr)
            elif not result.get("readable", False):
                print(f"  {tool}: data not readable within the timeout", file=sys.stderr)
            runs[tool].append(result)

    summary = {t: aggregate(runs[t]) for t in tools}
    repeats = {t: f"{sum('error' not in r for r in runs[t])}/{len(runs[t])}" for t in tools}
    versions = {t: next((str(r["version"]) for r in runs[t] if "version" in r), "?") for t in tools}
    header = (
        f"SDK overhead: log({{'loss': x, 'acc': y}}), {args.repeats} repeat(s), fresh process "
        f"per tool per repeat | Python {platform.python_version()} | {platform.platform()} | "
        f"{os.cpu_count()} CPUs | load avg before {load_before} | "
        + ", ".join(f"{t} {v}" for t, v in versions.items())
        + f" | total {time.monotonic() - started:.0f} s"
    )
    print_tables(_tables(tools, summary, steps, repeats), header)
    for note in notes(tools, runs):
        print(f"note: {note}")

    if args.json_out:
        out = {
            "args": {
                k: v for k, v in vars(args).items() if k not in ("child", "workdir", "result")
            },
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_before": load_before,
            "steps": steps,
            "summary": summary,
            "targets": [
                {"target": d, "measured": v, "met": ok} for d, v, ok in check_targets(summary)
            ],
            "runs": runs,
        }
        path = Path(args.json_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(out, indent=2))
        print(f"wrote {path}")
    failed = any("error" in r or not r.get("readable", False) for rs in runs.values() for r in rs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
