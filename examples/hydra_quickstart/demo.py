"""`make demo`: the Hydra quickstart, end to end, on the embedded store.

1. `runyard sweep sweep.yaml` creates a Bayesian sweep over `+experiment` (a config group absent
   from the defaults list), `model` (a group in it) and `train.lr` (a plain key);
2. `runyard agent <id> --count N` runs it, formatting each trial as Hydra overrides;
3. `python main.py -m hydra/sweeper=runyard` tunes the same app in-process, in batches through
   Hydra's joblib launcher (when the runyard sweeper is installed);
4. the best runs are listed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
AGENT_RUNS = int(os.environ.get("DEMO_AGENT_RUNS", "6"))
SWEEPER_TRIALS = int(os.environ.get("DEMO_SWEEPER_TRIALS", "8"))


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m", flush=True)


def runyard(*args: str, capture: bool = False) -> str:
    proc = subprocess.run(
        [PY, "-m", "runyard.cli", *args],
        cwd=HERE,
        check=True,
        text=True,
        capture_output=capture,
    )
    return proc.stdout if capture else ""


def main() -> None:
    os.environ.setdefault("RUNYARD_DISABLE_GIT", "true")
    # The example keeps its own store next to it (otherwise a .runyard folder further up wins).
    os.environ.setdefault("RUNYARD_DIR", str(HERE / ".runyard"))
    step("runyard sweep sweep.yaml")
    out = runyard("sweep", "sweep.yaml", capture=True)
    print(out, end="")
    sweep_ref = next(li for li in out.splitlines() if "runyard agent " in li).split()[-1]

    step(f"runyard agent {sweep_ref} --count {AGENT_RUNS}")
    runyard("agent", sweep_ref, "--count", str(AGENT_RUNS))

    if _has_runyard_sweeper():
        step("python main.py -m hydra/sweeper=runyard hydra/launcher=joblib (in-process sweeper)")
        subprocess.run(
            [
                PY,
                "main.py",
                "-m",
                "hydra/sweeper=runyard",
                "hydra/launcher=joblib",
                "hydra.launcher.n_jobs=2",
                f"hydra.sweeper.n_trials={SWEEPER_TRIALS}",
                "hydra.sweeper.sweep_config=sweep.yaml",
            ],
            cwd=HERE,
            check=True,
        )

    step(f"runyard sweep show {sweep_ref}")
    runyard("sweep", "show", sweep_ref, "--top", "5")
    step("runyard runs ls lab/hydra-quickstart (best first)")
    runyard(
        "runs",
        "ls",
        "lab/hydra-quickstart",
        "--sort",
        "-summary.test/accuracy",
        "--limit",
        "8",
        "--columns",
        "config.model.kind,config.train.lr,config.train.epochs,summary.test/accuracy",
    )
    sweeps = json.loads(runyard("sweep", "ls", "--format", "json", capture=True))
    store = os.environ["RUNYARD_DIR"]
    print(
        f"\n{len(sweeps)} sweep(s) in {store}; explore with "
        f"`RUNYARD_DIR={store} .venv/bin/runyard runs ls`"
    )


def _has_runyard_sweeper() -> bool:
    try:
        import hydra_plugins.runyard_sweeper.runyard_sweeper  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
