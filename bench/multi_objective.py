"""Multi-objective search: runyard's ParEGO (``method: bayes`` with several ``metrics``) vs
Optuna's NSGA-II (its default multi-objective sampler) and TPE, by hypervolume.

Methods (same budget, same seeds, one trial at a time):

* ``runyard-parego``: :class:`runyard.sweeps.search.parego.ParEGOSearch` on the sweep's
  search space (``x0..x{d-1}`` uniform on [0, 1]), called as the controller calls it: every
  trial so far, the seed;
* ``runyard-random``: runyard's random search (the floor);
* ``optuna-nsga2``: ``optuna.samplers.NSGAIISampler(seed=seed)`` (defaults otherwise);
* ``optuna-tpe``: ``optuna.samplers.TPESampler(seed=seed)`` (defaults; it supports several
  objectives).

Problems (all minimised): ZDT1 and ZDT2 (2 objectives; convex and concave fronts) and DTLZ2
(3 objectives), each in ``--dims`` variables (default 6: standard ZDT has 30, which a
GP-based search of 50-100 trials cannot learn either and which costs far more time per
suggestion). Hypervolume of every evaluated point against the fixed reference points of
BoTorch's test problems: (11, 11) for ZDT, (1.1, 1.1, 1.1) for DTLZ2; also as a fraction of the
true front's hypervolume.

Usage (see bench/README.md)::

    .venv-bench/bin/python bench/multi_objective.py                # 5 seeds, 60 trials
    .venv-bench/bin/python bench/multi_objective.py --trials 100 --seeds 3
    .venv-bench/bin/python bench/multi_objective.py --quick        # smoke run
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

# One BLAS thread per process: the GP's small solves are 20x slower with OpenBLAS's threads on
# a busy machine, and the workers run side by side anyway.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

METHODS = ("runyard-parego", "runyard-random", "optuna-nsga2", "optuna-tpe")
PROBLEMS = ("zdt1", "zdt2", "dtlz2")
REFERENCE = {"zdt1": [11.0, 11.0], "zdt2": [11.0, 11.0], "dtlz2": [1.1, 1.1, 1.1]}


def evaluate(problem: str, x: list[float]) -> list[float]:
    d = len(x)
    if problem in ("zdt1", "zdt2"):
        f1 = x[0]
        g = 1.0 + 9.0 * sum(x[1:]) / (d - 1)
        h = 1.0 - math.sqrt(f1 / g) if problem == "zdt1" else 1.0 - (f1 / g) ** 2
        return [f1, g * h]
    m = 3  # DTLZ2: the last d - m + 1 variables are distance, the first m - 1 position
    g = sum((xi - 0.5) ** 2 for xi in x[m - 1 :])
    out = []
    for i in range(m):
        f = 1.0 + g
        for xj in x[: m - 1 - i]:
            f *= math.cos(xj * math.pi / 2)
        if i > 0:
            f *= math.sin(x[m - 1 - i] * math.pi / 2)
        out.append(f)
    return out


def true_front_hypervolume(problem: str) -> float:
    """The hypervolume of the problem's Pareto front (a dense sample) against REFERENCE."""
    from runyard.sweeps.pareto import hypervolume

    ref = REFERENCE[problem]
    if problem == "dtlz2":
        n = 60
        pts = []
        for i in range(n + 1):
            for j in range(n + 1):
                a, b = i / n * math.pi / 2, j / n * math.pi / 2
                pts.append([math.cos(a) * math.cos(b), math.cos(a) * math.sin(b), math.sin(a)])
        return hypervolume(pts, ref)
    xs = np.linspace(0, 1, 2001)
    f2 = 1 - np.sqrt(xs) if problem == "zdt1" else 1 - xs**2
    return hypervolume([[float(a), float(b)] for a, b in zip(xs, f2, strict=True)], ref)


def run_runyard(
    problem: str, method: str, d: int, n: int, seed: int
) -> tuple[list[list[float]], float]:
    from runyard.sweeps.config import load_sweep_config
    from runyard.sweeps.search import Trial, build_search

    m = len(REFERENCE[problem])
    config = load_sweep_config(
        {
            "method": "bayes" if method == "runyard-parego" else "random",
            "metrics": [{"name": f"f{i}", "goal": "minimize"} for i in range(m)],
            "parameters": {f"x{i}": {"min": 0.0, "max": 1.0} for i in range(d)},
        },
        require_program=False,
    )
    search = build_search(config.method, goals=[mm.goal for mm in config.metrics])
    trials: list[Trial] = []
    ys: list[list[float]] = []
    spent = 0.0
    for _ in range(n):
        t0 = time.perf_counter()
        params, _state = search.suggest_next(
            config.parameters, lambda: trials, len(trials), seed, {}
        )
        spent += time.perf_counter() - t0
        assert params is not None
        y = evaluate(problem, [float(params[f"x{i}"]) for i in range(d)])
        ys.append(y)
        trials.append(Trial(params=params, value=None, state="finished", values=tuple(y)))
    return ys, spent / n


def run_optuna(
    problem: str, method: str, d: int, n: int, seed: int
) -> tuple[list[list[float]], float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    m = len(REFERENCE[problem])
    sampler = (
        optuna.samplers.NSGAIISampler(seed=seed)
        if method == "optuna-nsga2"
        else optuna.samplers.TPESampler(seed=seed)
    )
    study = optuna.create_study(directions=["minimize"] * m, sampler=sampler)
    ys: list[list[float]] = []
    spent = 0.0
    for _ in range(n):
        t0 = time.perf_counter()
        trial = study.ask()
        x = [trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(d)]
        spent += time.perf_counter() - t0
        y = evaluate(problem, x)
        ys.append(y)
        study.tell(trial, y)
    return ys, spent / n


def one(job: tuple[str, str, int, int, int]) -> tuple[str, str, int, float, float]:
    from runyard.sweeps.pareto import hypervolume

    problem, method, d, n, seed = job
    runner = run_runyard if method.startswith("runyard") else run_optuna
    ys, per_suggestion = runner(problem, method, d, n, seed)
    return problem, method, seed, hypervolume(ys, REFERENCE[problem]), per_suggestion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dims", type=int, default=6)
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="2 seeds, 20 trials")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.seeds = 20, 2
    problems = args.problems.split(",")
    methods = args.methods.split(",")
    jobs = [
        (p, m, args.dims, args.trials, s)
        for p in problems
        for m in methods
        for s in range(args.seeds)
    ]
    t0 = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, jobs))
    hv: dict[tuple[str, str], list[float]] = {}
    per: dict[tuple[str, str], list[float]] = {}
    for problem, method, _seed, value, spent in results:
        hv.setdefault((problem, method), []).append(value)
        per.setdefault((problem, method), []).append(spent)

    sys.path.insert(0, os.path.dirname(__file__))
    from _common import print_tables

    columns = ["problem", *(f"{m} HV" for m in methods)]
    peers = [m for m in methods if m.startswith("optuna")]
    columns += [
        f"parego / {p.removeprefix('optuna-')}" for p in peers if "runyard-parego" in methods
    ]
    columns += ["parego wins (per seed)"] if "runyard-parego" in methods and peers else []
    rows = []
    for problem in problems:
        true_hv = true_front_hypervolume(problem)
        row = [f"{problem} (d={args.dims}, {len(REFERENCE[problem])} obj.)"]
        for m in methods:
            v = hv[(problem, m)]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            row.append(f"{statistics.mean(v):.4g} ± {sd:.2g} ({statistics.mean(v) / true_hv:.1%})")
        if "runyard-parego" in methods:
            mine = hv[(problem, "runyard-parego")]
            for p in peers:
                row.append(f"{statistics.mean(mine) / statistics.mean(hv[(problem, p)]):.3f}")
            if peers:
                wins = [
                    sum(a > b for a, b in zip(mine, hv[(problem, p)], strict=True)) for p in peers
                ]
                row.append(
                    ", ".join(
                        f"{w}/{len(mine)} vs {p.removeprefix('optuna-')}"
                        for w, p in zip(wins, peers, strict=True)
                    )
                )
        rows.append(row)
    timing = [
        [problem, *(f"{1000 * statistics.mean(per[(problem, m)]):.1f}" for m in methods)]
        for problem in problems
    ]
    import optuna

    header = (
        f"multi-objective search: {args.trials} trials, {args.seeds} seeds, {args.dims} variables; "
        f"hypervolume (mean ± sd, % of the true front's) vs fixed reference points "
        f"(ZDT (11, 11), DTLZ2 (1.1, 1.1, 1.1)); higher is better\n"
        f"optuna {optuna.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {time.time() - t0:.0f} s"
    )
    print_tables(
        [
            ("hypervolume (ratios > 1: runyard's front dominates more)", columns, rows),
            ("ms per suggestion (mean over the run)", ["problem", *methods], timing),
        ],
        header,
    )


if __name__ == "__main__":
    main()
