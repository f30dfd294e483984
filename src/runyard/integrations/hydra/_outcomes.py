"""A job's outcome for its trial: the objective from the task's return value or its run's
summary, and the result to record (see ``RunyardSweeperImpl._settle``).

A run the job left ``pending`` (it never called ``runyard.init()``) is finished with the job's
config and the return value as its summary; a failed job's run is ``failed``; a run that early
termination stopped stays ``stopped`` with its partial metric.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from runyard._json import sanitize
from runyard.integrations.hydra._context import return_value_summary
from runyard.sdk.stop import StopRun
from runyard.store.base import TrialRecord
from runyard.sweeps.config import SweepConfig
from runyard.sweeps.controller import Decision, TrialResult, objective
from runyard.sweeps.hydra_args import plain_value

log = logging.getLogger("runyard.integrations.hydra.sweeper")

__all__ = [
    "DEFAULT_METRIC",
    "OBJECTIVES",
    "Outcome",
    "decide",
    "finish_local_run",
    "job_config",
    "params_text",
    "return_summary",
    "summary_updates",
]

#: where a trial's objective comes from (``hydra.sweeper.objective``)
OBJECTIVES = ("auto", "return_value", "summary")
#: the metric name when none is given: the task function's return value
DEFAULT_METRIC = "return_value"


def _number(value: Any) -> float | int | None:
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def return_summary(value: Any, metric: str | Sequence[str]) -> dict[str, Any]:
    """Summary entries for a task's return value: a number under ``metric``; with several
    objectives (``metric`` a list of names), a list or tuple of as many numbers, one under
    each name (hydra-optuna-sweeper's multi-objective return); for anything else the job
    callback's rule (a mapping's entries with ``/``-joined keys, ...), so a trial's summary
    is the same whether the callback or the sweeper recorded it."""
    names = [metric] if isinstance(metric, str) else list(metric)
    number = _number(value)
    if number is not None and len(names) == 1:
        return {names[0]: number}
    if len(names) > 1 and not isinstance(value, str | bytes | Mapping):
        items = _sequence(value)
        if items is not None:
            numbers = [_number(v) for v in items]
            if len(numbers) == len(names) and all(n is not None for n in numbers):
                return dict(zip(names, numbers, strict=True))
            return {}
    if isinstance(value, Mapping) or type(value).__module__.startswith("omegaconf"):
        return return_value_summary(value)
    return {}


def _sequence(value: Any) -> list[Any] | None:
    """A list, tuple, ListConfig or 1-d array as a list; None for anything else."""
    if isinstance(value, list | tuple):
        return list(value)
    if type(value).__module__.startswith("omegaconf"):
        try:
            plain = OmegaConf.to_container(value, resolve=True)
        except Exception:
            return None
        return plain if isinstance(plain, list) else None
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", None) == 1:
        out = tolist()
        return out if isinstance(out, list) else None
    return None


def job_config(ret: JobReturn) -> dict[str, Any] | None:
    if ret.cfg is None:
        return None
    for resolve in (True, False):
        try:
            container = OmegaConf.to_container(ret.cfg, resolve=resolve)
        except Exception:
            continue
        if isinstance(container, dict):
            try:
                json.dumps(sanitize(container))
            except (TypeError, ValueError):
                return None
            return {str(k): v for k, v in container.items()}
    return None


def finish_local_run(run_id: str, failed: bool) -> None:
    """Finish the run ``run_id`` if this process has it open (an in-process launcher ran the
    job and the task did not finish its run): its journal is then in the store."""
    from runyard.sdk import state

    for _ in range(16):
        run = state.current_run()
        if run is None or run.id != run_id:
            return
        run.finish(exit_code=1 if failed else 0, quiet=True)


def short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summary_updates(
    mode: str, value: Any, trial: TrialRecord, metric: str | Sequence[str]
) -> dict[str, Any]:
    """The summary entries the task's return value gives its trial's run (``mode``: the
    sweeper's ``objective`` option)."""
    if mode == "summary":
        return {}
    entries = return_summary(value, metric)
    if mode == "return_value":
        return entries
    # auto: what the task logged itself wins over its return value
    return {k: v for k, v in entries.items() if k not in trial.summary}


def params_text(decision: Decision) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in decision.params.items())


@dataclass
class Outcome:
    """A job's outcome for its trial: the result to record (None: the run stays as it is),
    the log line, failure messages and warnings (reported once the result is recorded)."""

    result: TrialResult | None
    line: str
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def decide(
    trial: TrialRecord, ret: JobReturn, config: SweepConfig, decision: Decision, mode: str
) -> Outcome:
    """What a job's return means for its trial, as read now (``mode``: the sweeper's
    ``objective`` option)."""
    run_id = trial.run_id
    metric = config.metric.name if config.metric else DEFAULT_METRIC
    goal = config.metric.goal if config.metric else "minimize"
    if config.multi_objective:
        return _decide_multi(trial, ret, config, decision, mode)

    def result(
        state: str,
        summary: dict[str, Any],
        config: dict[str, Any] | None = None,
        failure: str | None = None,
    ) -> TrialResult:
        return TrialResult(
            run_id, state, summary, config=config, failure=failure, expect_state=trial.state
        )

    if ret.status != JobStatus.COMPLETED and (
        isinstance(ret._return_value, StopRun) or trial.state == "stopped"
    ):
        # Stopped early by the sweep (StopRun from log() in stop_raise mode): not a
        # failure; the run keeps what it logged, as a stopped agent run does.
        line = settled_line(trial, "stopped", None, metric, goal, decision)
        if trial.state == "stopped":
            return Outcome(None, line)
        reason = getattr(ret._return_value, "reason", "") or "stopped by its sweep"
        return Outcome(
            result(
                "stopped",
                {},
                config=job_config(ret) if trial.state == "pending" else None,
                failure=f"stopped early: {reason}",
            ),
            line,
        )
    if ret.status != JobStatus.COMPLETED:
        exc = ret._return_value
        raised = f"the job raised {type(exc).__name__}: {exc}"[:2000]
        return Outcome(
            result(
                "failed",
                {},
                config=job_config(ret) if trial.state == "pending" else None,
                failure=raised,
            ),
            f"run {run_id} failed: {type(exc).__name__}: {exc}",
            failures=[f"run {run_id}: {raised}"],
        )
    updates = summary_updates(mode, ret.return_value, trial, metric)
    if trial.state == "stopped":
        # The task saw run.should_stop and ended its run early: it stays stopped, with its
        # partial metric (and the return value, if any) for the search.
        summary = {**trial.summary, **updates}
        line = settled_line(trial, "stopped", summary, metric, goal, decision)
        if not updates:
            return Outcome(None, line)
        return Outcome(result("stopped", updates, failure=trial.failure), line)
    outcome = Outcome(None, "")
    failure: str | None = None
    state = "finished"
    if mode == "return_value" and metric not in updates:
        state = "failed"
        failure = (
            f"objective=return_value, but the task returned {short(ret.return_value)}: "
            f"return a number, or a mapping with {metric!r}"
        )
        outcome.failures.append(f"run {run_id}: {failure}")
    if trial.state == "pending":
        outcome.result = result(state, updates, config=job_config(ret), failure=failure)
    elif trial.state == "running":
        log.debug("runyard sweeper: run %s still running after its job", run_id)
        outcome.warnings.append(
            "a run was still running when its job returned (the task did not finish it, "
            "and the job ran in another process): the sweeper marks it finished, but the "
            "job's process may overwrite its summary later. Finish runs in the task "
            "(`with runyard.init(...) as run:` or run.finish()) or add "
            "hydra/callbacks=runyard"
        )
        outcome.result = result(state, updates, failure=failure)
    elif updates or failure:
        final = state if failure else trial.state
        outcome.result = result(final, updates, failure=failure or trial.failure)
    summary = {**trial.summary, **updates}
    value = objective(summary, metric, goal) if config.metric else None
    if value is None and state == "finished":
        outcome.warnings.append(
            f"a trial has no objective: the task returned {short(ret.return_value, 60)} "
            f"and its run has no summary value {metric!r}. Return the objective (a "
            "number), or log it with runyard.log and set hydra.sweeper.metric.name"
            + (
                "; a task returning several objectives needs hydra.sweeper.direction="
                "[minimize,maximize] (one goal per value)"
                if _sequence(ret.return_value) is not None
                else ""
            )
        )
    outcome.line = (
        f"run {run_id} {state}"
        + (f" {metric}={value:.6g}" if value is not None else "")
        + f" ({params_text(decision)})"
    )
    return outcome


def settled_line(
    trial: TrialRecord,
    state: str,
    summary: Mapping[str, Any] | None,
    metric: str,
    goal: str,
    decision: Decision,
) -> str:
    value = objective(dict(summary or trial.summary), metric, goal)
    reason = (trial.failure or "").removeprefix("stopped early: ")
    return (
        f"run {trial.run_id} {state}"
        + (f" {metric}={value:.6g}" if value is not None else "")
        + (f" ({reason})" if reason else "")
        + f" ({params_text(decision)})"
    )


def values_text(summary: Mapping[str, Any], config: SweepConfig) -> str:
    """`` val/loss=0.31 val/acc=0.9`` for the objectives a summary has."""
    parts = []
    for m in config.metrics:
        value = objective(dict(summary), m.name, m.goal)
        if value is not None:
            parts.append(f" {m.name}={value:.6g}")
    return "".join(parts)


def _decide_multi(
    trial: TrialRecord, ret: JobReturn, config: SweepConfig, decision: Decision, mode: str
) -> Outcome:
    """:func:`decide` for a sweep of several objectives (``config.metrics``): a returned list
    or tuple gives one value per objective, in order; a mapping, by name."""
    names = [m.name for m in config.metrics]
    if ret.status != JobStatus.COMPLETED or trial.state == "stopped":
        # failures and stops are the same as with one objective (they do not use the metric)
        single = SweepConfig(
            method=config.method, parameters=config.parameters, metric=config.metrics[0]
        )
        return decide(trial, ret, single, decision, mode)
    run_id = trial.run_id
    updates = summary_updates(mode, ret.return_value, trial, names)
    outcome = Outcome(None, "")
    failure: str | None = None
    state = "finished"
    items = _sequence(ret.return_value)
    if mode == "return_value" and not all(n in updates for n in names):
        state = "failed"
        got = f"{len(items)} values" if items is not None else f"{short(ret.return_value)}"
        failure = (
            f"objective=return_value with {len(names)} objectives ({', '.join(names)}), but "
            f"the task returned {got}: return a list or tuple of {len(names)} numbers, or a "
            "mapping with every objective"
        )
        outcome.failures.append(f"run {run_id}: {failure}")
    if trial.state == "pending":
        outcome.result = TrialResult(
            run_id,
            state,
            updates,
            config=job_config(ret),
            failure=failure,
            expect_state=trial.state,
        )
    elif trial.state == "running":
        outcome.warnings.append(
            "a run was still running when its job returned (the task did not finish it, "
            "and the job ran in another process): the sweeper marks it finished, but the "
            "job's process may overwrite its summary later. Finish runs in the task "
            "(`with runyard.init(...) as run:` or run.finish()) or add "
            "hydra/callbacks=runyard"
        )
        outcome.result = TrialResult(
            run_id, state, updates, failure=failure, expect_state=trial.state
        )
    elif updates or failure:
        final = state if failure else trial.state
        outcome.result = TrialResult(
            run_id, final, updates, failure=failure or trial.failure, expect_state=trial.state
        )
    summary = {**trial.summary, **updates}
    missing = [m.name for m in config.metrics if objective(summary, m.name, m.goal) is None]
    if missing and state == "finished":
        count = f" ({len(items)} values)" if items is not None else ""
        outcome.warnings.append(
            f"a trial lacks objectives {', '.join(missing)}: the task returned "
            f"{short(ret.return_value, 60)}{count} for {len(names)} objectives. Return a "
            f"list or tuple of {len(names)} numbers (hydra.sweeper.direction), or log them "
            "with runyard.log under the names of hydra.sweeper.metrics"
        )
    outcome.line = (
        f"run {run_id} {state}" + values_text(summary, config) + f" ({params_text(decision)})"
    )
    return outcome
