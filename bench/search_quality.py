"""Search quality and suggestion time: runyard bayes vs random, W&B sweeps bayes, Optuna.

Methods (same budget, same seeds):

* ``runyard-bayes``: :class:`runyard.sweeps.search._gp.BayesOptimizer` on Dims built directly;
* ``runyard-random``: uniform sampling of the same encoded space, ``default_rng([seed, t])``;
* ``wandb-bayes``: W&B's ``sweeps==0.2.0`` engine, ``sweeps.next_run`` with a ``method: bayes``
  config equivalent to the problem (``numpy.random`` seeded before every call, since the engine
  draws from the global state);
* ``optuna-tpe``: ``optuna.samplers.TPESampler(seed=seed)`` (defaults otherwise);
* ``optuna-gp``: ``optuna.samplers.GPSampler(seed=seed)`` (defaults otherwise; needs torch).

Problems (all minimised): Branin (2-D), Hartmann-6, and Hartmann-6 plus an unordered 8-level
categorical ``c`` that adds ``CAT_OFFSETS[c]`` (level 3 is the only best one, and the offsets are
not monotone in the level index).

Settings: ``sequential`` (one trial at a time) and ``batch4`` (4 suggestions are made, each one
seeing the earlier ones as pending / running, before the 4 results are told).

Timing: one suggestion after N random observations (uniform points, real objective values) of
Hartmann-6 + categorical, N in 50, 200, 1000; median over ``--timing-repeats`` fresh histories.

Usage (see bench/README.md)::

    .venv-bench/bin/python bench/search_quality.py                 # full run, 10 seeds
    .venv-bench/bin/python bench/search_quality.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

METHODS: tuple[str, ...] = (
    "runyard-bayes",
    "runyard-random",
    "wandb-bayes",
    "optuna-tpe",
    "optuna-gp",
)
PROBLEMS: tuple[str, ...] = ("branin", "hartmann6", "hartmann6-cat")
SETTINGS: tuple[str, ...] = ("sequential", "batch4")
BATCH = 4
#: additive offset of each level of the categorical parameter of ``hartmann6-cat``
CAT_OFFSETS: tuple[float, ...] = (0.9, 0.5, 1.3, 0.0, 0.7, 1.6, 0.25, 1.1)
TIMING_PROBLEM = "hartmann6-cat"

# ---------------------------------------------------------------------------------------------
# problems
# ---------------------------------------------------------------------------------------------

_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def branin(x1: float, x2: float) -> float:
    b = 5.1 / (4 * math.pi**2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(x: Sequence[float]) -> float:
    xa = np.asarray(x, dtype=float)
    inner = (_H6_A * (xa[None, :] - _H6_P) ** 2).sum(1)
    return float(-(_H6_ALPHA * np.exp(-inner)).sum())


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "float" or "categorical"
    low: float = 0.0
    high: float = 1.0
    n_choices: int = 0


@dataclass(frozen=True)
class Problem:
    name: str
    params: tuple[Param, ...]
    optimum: float

    def evaluate(self, p: dict[str, Any]) -> float:
        if self.name == "branin":
            return branin(float(p["x1"]), float(p["x2"]))
        x = [float(p[f"x{i}"]) for i in range(6)]
        value = hartmann6(x)
        if self.name == "hartmann6-cat":
            value += CAT_OFFSETS[int(p["c"])]
        return value

    def decode(self, u: Sequence[float | int]) -> dict[str, Any]:
        """Encoded point (runyard) → parameter values."""
        out: dict[str, Any] = {}
        for prm, v in zip(self.params, u, strict=True):
            if prm.kind == "categorical":
                out[prm.name] = int(v)
            else:
                out[prm.name] = prm.low + float(v) * (prm.high - prm.low)
        return out

    def encode(self, p: dict[str, Any]) -> list[float | int]:
        out: list[float | int] = []
        for prm in self.params:
            if prm.kind == "categorical":
                out.append(int(p[prm.name]))
            else:
                out.append((float(p[prm.name]) - prm.low) / (prm.high - prm.low))
        return out


_UNIT = [Param(f"x{i}", "float") for i in range(6)]
PROBLEM_DEFS: dict[str, Problem] = {
    "branin": Problem(
        "branin", (Param("x1", "float", -5, 10), Param("x2", "float", 0, 15)), 0.397887357729739
    ),
    "hartmann6": Problem("hartmann6", tuple(_UNIT), -3.32236801141551),
    "hartmann6-cat": Problem(
        "hartmann6-cat",
        (*_UNIT, Param("c", "categorical", n_choices=len(CAT_OFFSETS))),
        -3.32236801141551 + min(CAT_OFFSETS),
    ),
}


def runyard_dims(problem: Problem) -> list[Any]:
    from runyard.sweeps.search.encoding import Dim

    return [
        Dim("categorical", n_choices=p.n_choices, name=p.name)
        if p.kind == "categorical"
        else Dim("real", name=p.name)
        for p in problem.params
    ]


def random_encoded(problem: Problem, rng: np.random.Generator) -> list[float | int]:
    return [
        int(rng.integers(p.n_choices)) if p.kind == "categorical" else float(rng.random())
        for p in problem.params
    ]


def wandb_config(problem: Problem) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for p in problem.params:
        if p.kind == "categorical":
            params[p.name] = {"values": list(range(p.n_choices))}
        else:
            params[p.name] = {"min": float(p.low), "max": float(p.high)}
    return {
        "method": "bayes",
        "metric": {"name": "loss", "goal": "minimize"},
        "parameters": params,
    }


def _wandb_params(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in config.items()}


def _optuna_suggest(trial: Any, problem: Problem) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in problem.params:
        if p.kind == "categorical":
            out[p.name] = trial.suggest_categorical(p.name, list(range(p.n_choices)))
        else:
            out[p.name] = trial.suggest_float(p.name, p.low, p.high)
    return out


def _quiet() -> None:
    warnings.filterwarnings("ignore")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    except ImportError:
        pass


# ---------------------------------------------------------------------------------------------
# one optimisation run: the objective value of each trial, in the order they were told
# ---------------------------------------------------------------------------------------------


def run_runyard(problem: Problem, seed: int, n_trials: int, batch: int, bayes: bool) -> list[float]:
    values: list[float | None] = []
    observed: list[list[float | int]] = []
    opt = None
    if bayes:
        from runyard.sweeps.search._gp import BayesOptimizer

        opt = BayesOptimizer(runyard_dims(problem), "minimize", seed=seed)
    while len(observed) < n_trials:
        pending: list[list[float | int]] = []
        for _ in range(min(batch, n_trials - len(observed))):
            if opt is not None:
                pt = opt.suggest(observed, values, pending=pending)[0]
            else:
                rng = np.random.default_rng([seed, len(observed) + len(pending)])
                pt = random_encoded(problem, rng)
            pending.append(pt)
        for pt in pending:
            observed.append(pt)
            values.append(problem.evaluate(problem.decode(pt)))
    return [float(v) for v in values if v is not None]


def run_wandb(problem: Problem, seed: int, n_trials: int, batch: int) -> list[float]:
    from sweeps import RunState, SweepRun, next_run

    cfg = wandb_config(problem)
    runs: list[Any] = []
    values: list[float] = []
    while len(values) < n_trials:
        new: list[Any] = []
        for _ in range(min(batch, n_trials - len(values))):
            np.random.seed((seed * 100_003 + len(runs) + len(new)) % 2**32)
            run = next_run(cfg, runs + new)
            new.append(SweepRun(config=run.config, state=RunState.running))
        for run in new:
            value = problem.evaluate(_wandb_params(run.config))
            runs.append(_wandb_finished(run.config, value))
            values.append(value)
    return values


def _wandb_finished(config: dict[str, Any], value: float) -> Any:
    """A finished SweepRun with its metric.

    sweeps 0.2.0 is a pydantic-v1 model; under pydantic v2 (which wandb needs) populating by
    field name (``summary_metrics=``) is silently ignored, so the metric must be passed by its
    alias, else every run looks like a run without the metric (imputed as 0).
    """
    from sweeps import RunState, SweepRun

    run = SweepRun(config=config, state=RunState.finished, summaryMetrics={"loss": value})
    if run.summary_metrics != {"loss": value}:
        raise RuntimeError("sweeps.SweepRun dropped the metric (pydantic version mismatch?)")
    return run


def _optuna_sampler(method: str, seed: int) -> Any:
    import optuna

    if method == "optuna-tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.GPSampler(seed=seed)


def run_optuna(problem: Problem, seed: int, n_trials: int, batch: int, method: str) -> list[float]:
    import optuna

    study = optuna.create_study(direction="minimize", sampler=_optuna_sampler(method, seed))
    values: list[float] = []
    while len(values) < n_trials:
        asked = []
        for _ in range(min(batch, n_trials - len(values))):
            trial = study.ask()
            asked.append((trial, _optuna_suggest(trial, problem)))
        for trial, params in asked:
            value = problem.evaluate(params)
            study.tell(trial, value)
            values.append(value)
    return values


def run_one(job: tuple[str, str, str, int, int]) -> tuple[tuple[str, str, str, int], Any]:
    """Worker entry point: (method, problem, setting, seed, n_trials) → values or an error."""
    method, pname, setting, seed, n_trials = job
    _quiet()
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    problem = PROBLEM_DEFS[pname]
    batch = BATCH if setting == "batch4" else 1
    t0 = time.perf_counter()
    try:
        if method == "runyard-bayes":
            vals = run_runyard(problem, seed, n_trials, batch, bayes=True)
        elif method == "runyard-random":
            vals = run_runyard(problem, seed, n_trials, batch, bayes=False)
        elif method == "wandb-bayes":
            vals = run_wandb(problem, seed, n_trials, batch)
        else:
            vals = run_optuna(problem, seed, n_trials, batch, method)
    except Exception as exc:  # reported in the table, the benchmark goes on
        return (method, pname, setting, seed), {"error": f"{type(exc).__name__}: {exc}"}
    return (method, pname, setting, seed), {"values": vals, "seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------
# timing: one suggestion after N random observations
# ---------------------------------------------------------------------------------------------


def _random_history(problem: Problem, n: int, seed: int) -> tuple[list[Any], list[float]]:
    rng = np.random.default_rng([seed, 999])
    pts = [random_encoded(problem, rng) for _ in range(n)]
    return pts, [problem.evaluate(problem.decode(p)) for p in pts]


def time_suggest(method: str, problem: Problem, n_obs: int, seed: int) -> float:
    pts, vals = _random_history(problem, n_obs, seed)
    if method in ("runyard-bayes", "runyard-random"):
        if method == "runyard-random":
            t0 = time.perf_counter()
            random_encoded(problem, np.random.default_rng([seed, n_obs]))
            return time.perf_counter() - t0
        from runyard.sweeps.search._gp import BayesOptimizer

        opt = BayesOptimizer(runyard_dims(problem), "minimize", seed=seed)
        values: list[float | None] = list(vals)
        t0 = time.perf_counter()
        opt.suggest(pts, values)
        return time.perf_counter() - t0
    if method == "wandb-bayes":
        from sweeps import next_run

        cfg = wandb_config(problem)
        runs = []
        for p, v in zip(pts, vals, strict=True):
            conf = {k: {"value": x} for k, x in problem.decode(p).items()}
            runs.append(_wandb_finished(conf, v))
        np.random.seed(seed)
        t0 = time.perf_counter()
        next_run(cfg, runs)
        return time.perf_counter() - t0
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    dists: dict[str, Any] = {
        p.name: CategoricalDistribution(list(range(p.n_choices)))
        if p.kind == "categorical"
        else FloatDistribution(p.low, p.high)
        for p in problem.params
    }
    study = optuna.create_study(direction="minimize", sampler=_optuna_sampler(method, seed))
    study.add_trials(
        [
            optuna.trial.create_trial(params=problem.decode(p), distributions=dists, value=v)
            for p, v in zip(pts, vals, strict=True)
        ]
    )
    t0 = time.perf_counter()
    trial = study.ask()
    _optuna_suggest(trial, problem)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# reporting
# ---------------------------------------------------------------------------------------------


def _quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    q = np.quantile(np.asarray(xs, dtype=float), [0.25, 0.5, 0.75])
    return float(q[0]), float(q[1]), float(q[2])


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.4f}"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print(f"\n{title}")
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def available(method: str) -> str | None:
    """None when the method can run here, else why not."""
    import importlib.util

    needs = {
        "wandb-bayes": ["sweeps", "sklearn"],
        "optuna-tpe": ["optuna"],
        "optuna-gp": ["optuna", "torch"],
    }.get(method, [])
    for mod in needs:
        if importlib.util.find_spec(mod) is None:
            return f"module {mod!r} not installed"
    return None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="seeds per method x problem x setting")
    p.add_argument("--trials", type=int, default=50, help="trials per run (default 50)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--problems", default=",".join(PROBLEMS))
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--workers", type=int, default=2, help="processes for the quality runs")
    p.add_argument("--timing-counts", default="50,200,1000")
    p.add_argument("--timing-repeats", type=int, default=5)
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--no-quality", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 2 seeds, 20 trials, 1 repeat")
    p.add_argument("--json", help="write every result to this file")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds = min(args.seeds, 2)
        args.trials = min(args.trials, 20)
        args.timing_counts = "50,200"
        args.timing_repeats = 1
    return args


def checkpoints(n_trials: int) -> list[int]:
    return sorted({min(20, n_trials), n_trials})


def report_quality(results: dict[tuple[str, str, str, int], Any], args: argparse.Namespace) -> Any:
    methods = args.methods.split(",")
    summary: dict[str, Any] = {}
    cps = checkpoints(args.trials)
    for setting in args.settings.split(","):
        for pname in args.problems.split(","):
            prob = PROBLEM_DEFS[pname]
            rows = []
            regrets: dict[str, float] = {}
            for m in methods:
                runs = [results.get((m, pname, setting, s)) for s in range(args.seeds)]
                errs = [r["error"] for r in runs if r is None or "error" in r] if runs else []
                if any(r is None or "error" in r for r in runs):
                    why = next((str(e) for e in errs if e), "not run")
                    rows.append([m] + ["n/a"] * (3 * len(cps)) + ["n/a", why[:60]])
                    continue
                row = [m]
                for cp in cps:
                    bests = [min(r["values"][:cp]) for r in runs]
                    q1, med, q3 = _quartiles(bests)
                    row += [_fmt(med), _fmt(q1), _fmt(q3)]
                    summary[f"{setting}/{pname}/{m}/best@{cp}"] = {
                        "median": med,
                        "q1": q1,
                        "q3": q3,
                        "all": bests,
                    }
                final = [min(r["values"][: cps[-1]]) - prob.optimum for r in runs]
                regrets[m] = statistics.median(final)
                secs = statistics.median(r["seconds"] for r in runs)
                row += [_fmt(regrets[m]), f"{secs:.1f}s"]
                rows.append(row)
            base = regrets.get("runyard-bayes")
            for row in rows:
                r = regrets.get(row[0])
                ratio = r / base if (r is not None and base) else math.nan
                row.append(f"{ratio:.3g}x" if math.isfinite(ratio) else "n/a")
            header = ["method"]
            for cp in cps:
                header += [f"median@{cp}", "q1", "q3"]
            header += [f"regret@{cps[-1]}", "s/run", "regret/runyard"]
            print_table(
                f"{pname} ({setting}, {args.seeds} seeds, minimise, optimum {prob.optimum:.5f})",
                header,
                rows,
            )
            others = {m: r for m, r in regrets.items() if m != "runyard-bayes"}
            if base is not None and others:
                best_other = min(others, key=lambda k: others[k])
                if base < others[best_other]:
                    verdict = "best"
                elif base == others[best_other]:
                    verdict = "tied best"
                else:
                    verdict = "NOT best"
                line = (
                    f"{pname} ({setting}): runyard-bayes median best@{cps[-1]} is {verdict}: "
                    f"regret {_fmt(base)} vs {_fmt(others[best_other])} ({best_other})"
                )
                print("  " + line)
                summary.setdefault("verdicts", []).append(line)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    _quiet()
    started = time.perf_counter()
    methods = args.methods.split(",")
    skipped = {m: why for m in methods if (why := available(m)) is not None}
    print(
        f"search_quality: python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"load {os.getloadavg()[0]:.2f}, seeds {args.seeds}, trials {args.trials}"
    )
    for m, why in skipped.items():
        print(f"  skipping {m}: {why}")
    out: dict[str, Any] = {"args": vars(args)}
    if not args.no_quality:
        jobs = [
            (m, p, s, seed, args.trials)
            for m in methods
            if m not in skipped
            for p in args.problems.split(",")
            for s in args.settings.split(",")
            for seed in range(args.seeds)
        ]
        # slow methods first, so the two workers finish together
        cost = {"optuna-gp": 0, "runyard-bayes": 1, "wandb-bayes": 2}
        jobs.sort(key=lambda j: (cost.get(j[0], 3), j[1], j[2], j[3]))
        results: dict[tuple[str, str, str, int], Any] = {}
        saved = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        os.environ.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
        t_q = time.perf_counter()
        try:
            if args.workers > 1:
                import multiprocessing as mp

                ctx = mp.get_context("spawn")
                with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
                    for key, res in pool.map(run_one, jobs):
                        results[key] = res
            else:
                for job in jobs:
                    key, res = run_one(job)
                    results[key] = res
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        print(f"\nquality runs: {len(jobs)} in {time.perf_counter() - t_q:.0f}s")
        out["quality"] = report_quality(results, args)
        out["raw"] = {"/".join(map(str, k)): v for k, v in results.items()}
    if not args.no_timing:
        out["timing"] = report_timing(args, methods, skipped)
    print("\ntargets:")
    for line in out.get("quality", {}).get("verdicts", []):
        print("  " + line)
    if "target" in out.get("timing", {}):
        print("  " + out["timing"]["target"])
    total = time.perf_counter() - started
    print(f"\ntotal time: {total:.0f}s")
    out["total_seconds"] = total
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, default=float)
    return 0


def report_timing(
    args: argparse.Namespace, methods: Sequence[str], skipped: dict[str, str]
) -> dict[str, Any]:
    counts = [int(c) for c in args.timing_counts.split(",")]
    problem = PROBLEM_DEFS[TIMING_PROBLEM]
    timing: dict[str, Any] = {}
    rows = []
    for m in methods:
        if m in skipped:
            rows.append([m] + ["n/a"] * len(counts) + [skipped[m]])
            continue
        row = [m]
        time_suggest(m, problem, 20, 12345)  # warm-up: imports, first-call caches
        for n in counts:
            ts = [time_suggest(m, problem, n, seed) for seed in range(args.timing_repeats)]
            med = statistics.median(ts)
            timing[f"{m}/{n}"] = {"median_s": med, "all_s": ts}
            row.append(f"{med * 1e3:.1f}")
        row.append("GP on a random 100 of the runs" if m == "wandb-bayes" else "")
        rows.append(row)
    base = {n: timing.get(f"runyard-bayes/{n}", {}).get("median_s") for n in counts}
    for row in rows:
        for i, n in enumerate(counts):
            t = timing.get(f"{row[0]}/{n}", {}).get("median_s")
            if t is not None and base[n]:
                row[1 + i] += f" ({t / base[n]:.2g}x)"
    print_table(
        f"ms per suggestion on {TIMING_PROBLEM} after N random observations "
        f"(median of {args.timing_repeats}; (ratio to runyard-bayes))",
        ["method"] + [f"N={n}" for n in counts] + ["note"],
        rows,
    )
    t1000 = timing.get("runyard-bayes/1000", {}).get("median_s")
    if t1000 is not None:
        verdict = "met" if t1000 < 0.05 else "NOT met"
        line = f"runyard-bayes < 50 ms per suggestion at 1000 observations: {verdict} "
        line += f"({t1000 * 1e3:.1f} ms, BLAS threads: {_blas_threads()})"
        print("  " + line)
        timing["target"] = line
    return timing


def _blas_threads() -> str:
    return os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS") or "default"


if __name__ == "__main__":
    sys.exit(main())
