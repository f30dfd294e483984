"""A 20-trial Hydra sweep of a toy objective: ``hydra/sweeper=runyard`` against
hydra-optuna-sweeper, wall time of the whole ``python app.py -m ...`` command.

The app (written to a temporary folder) returns ``(x - 0.3)**2 + (y + 0.5)**2`` at once, so the
time is the sweepers' own: Hydra's start, composing each trial's config, launching it (basic
launcher, in-process), recording it. Both sweep ``x=interval(-1,1) y=interval(-1,1)`` for
``--trials`` trials, runyard with random search and optuna with its default TPE sampler (the
cost of either search is small next to a trial's), each into a fresh store / study. Repeated
``--repeats`` times, interleaved; median and spread.

Runs in .venv-bench-hydra (hydra-optuna-sweeper needs optuna<3, which .venv-bench's optuna 5
excludes)::

    make bench-hydra
    .venv-bench-hydra/bin/python bench/hydra_sweep.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import print_tables

APP = """
import hydra


@hydra.main(version_base=None, config_path="conf", config_name="config")
def main(cfg):
    return (cfg.x - 0.3) ** 2 + (cfg.y + 0.5) ** 2


if __name__ == "__main__":
    main()
"""


def _run(root: Path, argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "app.py", "-m", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:1])} failed:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    space = ["x=interval(-1,1)", "y=interval(-1,1)", f"hydra.sweeper.n_trials={args.trials}"]
    sweepers = {
        "runyard": ["hydra/sweeper=runyard", "hydra.sweeper.method=random", *space],
        "optuna": [
            "hydra/sweeper=optuna",
            "hydra.sweeper.n_jobs=1",
            *space,
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in sweepers}
    with tempfile.TemporaryDirectory(prefix="runyard-hydra-bench-") as tmp:
        root = Path(tmp)
        (root / "conf").mkdir()
        (root / "conf" / "config.yaml").write_text("x: 0.0\ny: 0.0\n")
        (root / "app.py").write_text(APP)
        for repeat in range(args.repeats):
            for name, argv in sweepers.items():
                env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
                env.update(
                    RUNYARD_DIR=str(root / f"store-{repeat}"),
                    RUNYARD_SILENT="true",
                    RUNYARD_DISABLE_GIT="true",
                )
                out = f"hydra.sweep.dir=multirun/{name}-{repeat}"
                times[name].append(_run(root, [*argv, out], env))
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / 2
        rows.append(
            [
                name,
                f"{median:.2f} s (±{spread:.2f})",
                f"{median / args.trials * 1000:.0f} ms",
                f"{median / statistics.median(times['optuna']):.2f}",
            ]
        )
    print_tables(
        [
            (
                f"{args.trials}-trial sweep of a toy objective (basic launcher)",
                ["sweeper", "wall time", "per trial", "vs optuna"],
                rows,
            )
        ],
        f"hydra sweepers, python {sys.version.split()[0]}, median of {args.repeats}",
    )


if __name__ == "__main__":
    main()
