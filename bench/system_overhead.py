"""What system metrics cost: the sampler's CPU, and the effect on ``log()`` latency.

Three measurements, each in fresh subprocesses (one per repeat), on this machine:

1. **Sampler CPU per sample.** A real run with ``stats_sampling_interval=0.1`` for
   ``--seconds`` seconds; the CPU time of the ``runyard-system`` thread alone (Linux
   ``/proc/self/task/<tid>/stat``: user + system ticks) divided by the samples it took gives
   the cost of one sample (psutil reads plus the journal append). At the default interval (15 s)
   the sampler's share of one core is that cost / 15 s. The shipper's extra work (one ``stats``
   record per interval in its next batch) is within the same run's process CPU, shown too.
2. **The same for wandb** (0.31, offline), when it is installed (``make bench``): wandb samples
   in its ``wandb-core`` service process, so its cost per sample is the difference in that
   process's CPU time between ``x_stats_sampling_interval=0.1`` and ``x_disable_stats=True``
   over the same time, divided by the samples.
3. **log() latency**: ``log({"loss", "acc"})`` timed per call (``perf_counter_ns``) in a tight
   loop for ``--log-seconds`` seconds with system metrics off, on at the default 15 s, and on at 0.1 s (150 times
   the default rate, to make any interference visible): median, p99, p99.9, max, and the ratios
   to "off".

Usage::

    .venv/bin/python bench/system_overhead.py            # runyard only
    .venv-bench/bin/python bench/system_overhead.py      # and wandb, when installed
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from _common import print_tables

DEFAULT_INTERVAL = 15.0

_RUNYARD_SAMPLER = """
import json, os, sys, threading, time
os.environ["RUNYARD_SILENT"] = "true"
os.environ["RUNYARD_DISABLE_GIT"] = "true"
import runyard

TICK = os.sysconf("SC_CLK_TCK")

def thread_cpu(native_id):
    with open(f"/proc/self/task/{native_id}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK

seconds = float(sys.argv[1])
run = runyard.init(project="bench", settings={"stats_sampling_interval": 0.1})
thread = next(t for t in threading.enumerate() if t.name == "runyard-system")
run._system.wait_for_samples(1, 30)
cpu0, n0, proc0 = thread_cpu(thread.native_id), run._system.samples, time.process_time()
time.sleep(seconds)
cpu1, n1, proc1 = thread_cpu(thread.native_id), run._system.samples, time.process_time()
run.finish()
print(json.dumps({"thread_cpu": cpu1 - cpu0, "samples": n1 - n0, "process_cpu": proc1 - proc0,
                  "collectors": run._system.collector_names}))
"""

_WANDB_SAMPLER = """
import json, os, sys, time
os.environ["WANDB_SILENT"] = "true"
import psutil, wandb

seconds, disabled = float(sys.argv[1]), sys.argv[2] == "off"
settings = wandb.Settings(x_disable_stats=disabled, x_stats_sampling_interval=0.1)
run = wandb.init(mode="offline", project="bench", settings=settings)
me = psutil.Process()
def core_cpu():
    total = 0.0
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total
time.sleep(1.0)
cpu0 = core_cpu()
time.sleep(seconds)
cpu1 = core_cpu()
run.finish()
print(json.dumps({"core_cpu": cpu1 - cpu0}))
"""

_RUNYARD_LOG = """
import json, os, sys, time
os.environ["RUNYARD_SILENT"] = "true"
os.environ["RUNYARD_DISABLE_GIT"] = "true"
import runyard

seconds, mode = float(sys.argv[1]), sys.argv[2]
settings = {"disable_stats": True} if mode == "off" else {"stats_sampling_interval": float(mode)}
run = runyard.init(project="bench", settings=settings)
if run._system is not None:
    run._system.wait_for_samples(0, 1)
log, clock = run.log, time.perf_counter_ns
times = []
append = times.append
end = clock() + int(seconds * 1e9)
i = 0
while True:
    t0 = clock()
    log({"loss": 1.0 / (i + 1), "acc": i * 1e-6})
    t1 = clock()
    append(t1 - t0)
    i += 1
    if t1 > end:
        break
samples = run._system.samples if run._system is not None else 0
run.finish()
print(json.dumps({"times_ns": times, "samples": samples}))
"""


def _run(code: str, *args: str, python: str = sys.executable) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="runyard-bench-system-") as folder:
        script = Path(folder) / "script.py"
        script.write_text(textwrap.dedent(code))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "WANDB_"))}
        env["RUNYARD_DIR"] = str(Path(folder) / ".runyard")
        env["WANDB_DIR"] = folder
        out = subprocess.run(
            [python, str(script), *args],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"benchmark child failed:\n{out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result


def _spread(values: list[float], fmt: str) -> str:
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def _percentile(sorted_values: list[int], q: float) -> float:
    index = min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))
    return float(sorted_values[index])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="sampling time per repeat")
    parser.add_argument("--log-seconds", type=float, default=4.0, help="log() loop per repeat")
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count()}
    sampler = [_run(_RUNYARD_SAMPLER, str(args.seconds)) for _ in range(args.repeats)]
    results["runyard_sampler"] = sampler
    per_sample = [s["thread_cpu"] / max(s["samples"], 1) for s in sampler]
    rows = [
        [
            "runyard (runyard-system thread)",
            _spread([p * 1e3 for p in per_sample], "{:.3f}"),
            _spread([p / DEFAULT_INTERVAL * 100 for p in per_sample], "{:.4f}"),
            ", ".join(sampler[0]["collectors"]),
        ]
    ]
    wandb_python = sys.executable if importlib.util.find_spec("wandb") else None
    if wandb_python is not None:
        costs = []
        for _ in range(args.repeats):
            on = _run(_WANDB_SAMPLER, str(args.seconds), "on", python=wandb_python)["core_cpu"]
            off = _run(_WANDB_SAMPLER, str(args.seconds), "off", python=wandb_python)["core_cpu"]
            costs.append(max(on - off, 0.0) / (args.seconds / 0.1))
        results["wandb_sampler_per_sample"] = costs
        rows.append(
            [
                "wandb 0.31 offline (wandb-core, on - off)",
                _spread([c * 1e3 for c in costs], "{:.3f}"),
                _spread([c / DEFAULT_INTERVAL * 100 for c in costs], "{:.4f}"),
                "wandb-core",
            ]
        )
        ratio = statistics.median(per_sample) / max(statistics.median(costs), 1e-9)
        rows.append(["runyard / wandb", f"{ratio:.2f}", f"{ratio:.2f}", ""])
    tables = [
        (
            "Sampler CPU (median, min-max over repeats)",
            ["", "CPU ms / sample", "% of one core at 15 s", "sources"],
            rows,
        )
    ]

    log_rows = []
    medians: dict[str, float] = {}
    results["log"] = {}
    for label, mode in (("off", "off"), ("on, 15 s (default)", "15"), ("on, 0.1 s", "0.1")):
        stats = []
        for _ in range(args.repeats):
            out = _run(_RUNYARD_LOG, str(args.log_seconds), mode)
            times = sorted(out["times_ns"])
            stats.append(
                {
                    "p50": _percentile(times, 0.5) / 1e3,
                    "p99": _percentile(times, 0.99) / 1e3,
                    "p999": _percentile(times, 0.999) / 1e3,
                    "max": times[-1] / 1e3,
                    "samples": out["samples"],
                    "calls": len(times),
                }
            )
        results["log"][label] = stats
        medians[label] = statistics.median(s["p50"] for s in stats)
        log_rows.append(
            [
                label,
                _spread([s["p50"] for s in stats], "{:.2f}"),
                _spread([s["p99"] for s in stats], "{:.2f}"),
                _spread([s["p999"] for s in stats], "{:.1f}"),
                _spread([s["max"] for s in stats], "{:.0f}"),
                f"{medians[label] / medians['off']:.2f}",
                _spread([float(s["samples"]) for s in stats], "{:.0f}"),
            ]
        )
    tables.append(
        (
            f"log() latency in a {args.log_seconds:g} s loop, µs (median, min-max over repeats)",
            ["system metrics", "p50", "p99", "p99.9", "max", "p50 / off", "samples taken"],
            log_rows,
        )
    )
    print_tables(tables, f"system metrics overhead ({results['machine']}, {results['cpus']} CPUs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
