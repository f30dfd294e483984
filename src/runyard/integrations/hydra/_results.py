"""``optimization_results.yaml``: the sweep's outcome in the sweep folder (rewritten after
every batch, as hydra-optuna-sweeper writes its own), and the closing log line."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from runyard.integrations.hydra._app import App
from runyard.integrations.hydra._errors import TrialError
from runyard.integrations.hydra._outcomes import DEFAULT_METRIC
from runyard.store.base import Store, SweepRecord, TrialRecord
from runyard.sweeps.config import SweepConfig
from runyard.sweeps.controller import SweepControl
from runyard.sweeps.front import sweep_front
from runyard.sweeps.hydra_args import plain_value

log = logging.getLogger("runyard.integrations.hydra.sweeper")

__all__ = ["RESULTS_FILE", "log_best", "sanitize_yaml", "write_results"]

RESULTS_FILE = "optimization_results.yaml"


def sanitize_yaml(value: Any) -> Any:
    """Plain values for OmegaConf (NumPy scalars as Python ones, tuples as lists)."""
    if isinstance(value, Mapping):
        return {str(k): sanitize_yaml(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize_yaml(v) for v in value]
    return plain_value(value)


def write_results(
    store: Store,
    controller: SweepControl,
    record: SweepRecord,
    config: SweepConfig,
    app: App,
    sweep_dir: Path,
) -> None:
    """Write the sweep's ``optimization_results.yaml`` from the trials in the store."""
    trials = store.sweep_trials(record.id)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state] = states.get(trial.state, 0) + 1
    if config.multi_objective:
        front = _multi_objective(config, trials, app, record.path, states)
        try:
            OmegaConf.save(OmegaConf.create(sanitize_yaml(front)), sweep_dir / RESULTS_FILE)
        except Exception as exc:
            log.warning("runyard sweeper: could not write %s: %s", RESULTS_FILE, exc)
        return
    doc: dict[str, Any] = {
        "name": "runyard",
        "sweep": record.path,
        "method": config.method,
        "metric": {
            "name": config.metric.name if config.metric else DEFAULT_METRIC,
            "goal": config.metric.goal if config.metric else "minimize",
        },
        "n_trials": len(trials),
        "states": states,
    }
    best = controller.best(limit=1)
    if best and best[0][1] is not None:
        trial, value = best[0]
        doc["best_run"] = trial.run_id
        doc["best_value"] = value
        doc["best_params"] = dict(trial.params)
        try:
            by_name = app.overrides(trial.params)
            doc["best_overrides"] = [*app.fixed, *by_name.values()]
        except TrialError:
            pass
    try:
        OmegaConf.save(OmegaConf.create(sanitize_yaml(doc)), sweep_dir / RESULTS_FILE)
    except Exception as exc:
        log.warning("runyard sweeper: could not write %s: %s", RESULTS_FILE, exc)


def _multi_objective(
    config: SweepConfig,
    trials: Sequence[TrialRecord],
    app: App,
    path: str,
    states: dict[str, int],
) -> dict[str, Any]:
    """The results of a sweep of several objectives: its Pareto front as ``best_trials``
    (run, values, params, overrides) and as hydra-optuna-sweeper's ``solutions`` (params,
    values), with its hypervolume and reference point."""
    front = sweep_front(config, trials)
    best_trials = []
    for trial, values in front.front:
        entry: dict[str, Any] = {"run": trial.run_id, "values": values, "params": trial.params}
        try:
            by_name = app.overrides(trial.params)
            entry["overrides"] = [*app.fixed, *by_name.values()]
        except TrialError:
            pass
        best_trials.append(entry)
    return {
        "name": "runyard",
        "sweep": path,
        "method": config.method,
        "metrics": [{"name": m.name, "goal": m.goal} for m in config.metrics],
        "n_trials": len(trials),
        "states": states,
        "hypervolume": front.hypervolume,
        "reference_point": front.reference,
        "best_trials": best_trials,
        "solutions": [{"params": t["params"], "values": t["values"]} for t in best_trials],
    }


def log_best(
    controller: SweepControl, config: SweepConfig, sweep_dir: Path, store: Store | None = None
) -> None:
    """The closing log line: the best trial (the front's size and hypervolume for several
    objectives) and where the results file is."""
    if config.multi_objective and store is not None:
        front = sweep_front(config, store.sweep_trials(controller.sweep_id))
        log.info(
            "runyard sweeper: Pareto front of %d trial(s) (%s), hypervolume %s; results in %s",
            len(front.front),
            ", ".join(f"{m.name} {m.goal}" for m in config.metrics),
            "-" if front.hypervolume is None else f"{front.hypervolume:.6g}",
            sweep_dir / RESULTS_FILE,
        )
        for trial, values in front.front:
            log.info(
                "runyard sweeper:     values %s (run %s): %s",
                values,
                trial.run_id,
                ", ".join(f"{k}={v!r}" for k, v in trial.params.items()),
            )
        return
    best = controller.best(limit=1)
    if best and best[0][1] is not None and config.metric is not None:
        trial, value = best[0]
        log.info(
            "runyard sweeper: best %s = %.6g (run %s): %s; results in %s",
            config.metric.name,
            value,
            trial.run_id,
            ", ".join(f"{k}={v!r}" for k, v in trial.params.items()),
            sweep_dir / RESULTS_FILE,
        )
