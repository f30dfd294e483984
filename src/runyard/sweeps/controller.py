"""The sweep controller: hands out runs atomically and tells agents which runs to stop.

Every decision happens inside :meth:`Store.sweep_transaction`, which holds the sweep's lock
(SQLite: the database write lock; PostgreSQL: ``SELECT ... FOR UPDATE`` on the sweep's row).
So any number of agents, in any processes and on any hosts sharing the store, never get the
same grid cell twice and stop at exactly ``run_cap``. The controller itself keeps no state:
each agent runs it in its own process against the shared store.
"""

from __future__ import annotations

import abc
import copy
import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from runyard.sdk.names import new_run_id, new_run_name
from runyard.store.base import (
    AgentRecord,
    Store,
    StoreError,
    SweepRecord,
    SweepTransaction,
    TrialRecord,
)
from runyard.sweeps.config import SweepConfig, load_sweep_config
from runyard.sweeps.search import Trial, build_search
from runyard.sweeps.search.base import ACTIVE_STATES
from runyard.sweeps.space import run_config

#: An agent whose heartbeat is older than this (seconds; ``RUNYARD_AGENT_TIMEOUT``) is dead;
#: its active run is marked crashed.
AGENT_TIMEOUT = 60.0


def agent_timeout() -> float:
    try:
        return float(os.environ.get("RUNYARD_AGENT_TIMEOUT", AGENT_TIMEOUT))
    except ValueError:
        return AGENT_TIMEOUT


FINAL_SWEEP_STATES = ("finished", "canceled")
#: keys of the sweep's method state kept by the controller itself (see requeue)
_REQUEUE = "requeue"
_SUPERSEDED = "superseded"
#: the states :meth:`SweepControl.record_results` may give a run
RESULT_STATES = ("finished", "failed", "crashed", "killed", "stopped", "preempted")
#: trials :meth:`SweepControl.requeue` may run again (live ones only under a stopped agent)
INTERRUPTED = ("crashed", "killed", "preempted", "pending", "running", "preempting")


def _ended(state: str) -> str:
    """The state of a trial whose process is gone: ``preempted`` if it had said it may be
    (``mark_preempting()``), else ``crashed``."""
    return "preempted" if state == "preempting" else "crashed"


#: at most this many results or agents in one call (one transaction, one request)
MAX_BATCH = 10_000


@dataclass
class TrialResult:
    """The outcome of a trial whose process the caller supervised (e.g. a Hydra job), for
    :meth:`SweepControl.record_results`.

    ``summary`` is merged into the run's summary; ``config``, if given, replaces the run's
    config; ``state`` (one of :data:`RESULT_STATES`) and ``failure`` replace the run's. With
    ``expect_state``, the result applies only if the run is in that state when it is recorded:
    the caller decided from what it read, and a run that moved on meanwhile (its process's first
    records arrived) must be decided again from the new state.
    """

    run_id: str
    state: str
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] | None = None
    failure: str | None = None
    expect_state: str | None = None


@dataclass
class Decision:
    """The controller's answer to an agent asking for work."""

    kind: Literal["run", "wait", "done"]
    reason: str = ""
    run_id: str | None = None
    run_name: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return run_config(self.params)


def objective(summary: dict[str, Any], metric: str, goal: str) -> float | None:
    """The sweep metric of a run, from its summary (aggregates: best for the goal)."""
    value = summary.get(metric)
    if isinstance(value, dict):
        for key in ("best", "max" if goal == "maximize" else "min", "last"):
            if key in value:
                value = value[key]
                break
        else:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return None if math.isnan(number) else number


def reached_target(value: float | None, target: float | None, goal: str) -> bool:
    if value is None or target is None:
        return False
    return value >= target if goal == "maximize" else value <= target


def check_results(results: Sequence[TrialResult]) -> None:
    """:class:`StoreError` for results that :meth:`SweepControl.record_results` refuses."""
    if len(results) > MAX_BATCH:
        raise StoreError(f"at most {MAX_BATCH} results at once, got {len(results)}")
    seen: set[str] = set()
    for result in results:
        if result.state not in RESULT_STATES:
            raise StoreError(
                f"run {result.run_id}: a result's state must be one of "
                f"{', '.join(RESULT_STATES)}, not {result.state!r}"
            )
        if result.run_id in seen:
            raise StoreError(f"run {result.run_id} has two results; give one")
        seen.add(result.run_id)


class SweepControl(abc.ABC):
    """What agents and the CLI ask of a sweep. Obtain one with :meth:`Store.controller`.

    :class:`SweepController` runs the decisions in this process over the store's sweep
    transaction; the HTTP store's implementation asks the server, which runs a
    ``SweepController`` there. Either way every decision is atomic across all agents.
    """

    sweep_id: str

    @abc.abstractmethod
    def sweep(self) -> SweepRecord:
        """The sweep as stored now; :class:`StoreError` if it does not exist."""

    @abc.abstractmethod
    def next_run(self, agent_id: str, *, reclaim: bool = False) -> Decision:
        """Hand the agent its next run, or tell it to wait (paused) or stop (sweep over).

        With ``reclaim``, a run already handed to ``agent_id`` and not started yet (``pending``)
        is handed out again instead of a new one. An agent that runs one trial at a time (``runyard
        agent``) asks with ``reclaim=True``, which makes a request repeated after a lost answer
        harmless: it cannot leave an orphan trial that counts against ``run_cap``.
        """

    @abc.abstractmethod
    def stop_decisions(self, run_id: str | None) -> str | None:
        """Why ``run_id`` should stop now (early termination, a canceled sweep), or None."""

    @abc.abstractmethod
    def finish_trial(
        self, run_id: str, exit_code: int | None, stop_reason: str | None
    ) -> TrialRecord | None:
        """Settle the final state of a run whose process ended."""

    @abc.abstractmethod
    def fail_trial(self, run_id: str, reason: str) -> None:
        """Mark a run that could not even be started as failed."""

    @abc.abstractmethod
    def best(self, limit: int = 10) -> list[tuple[TrialRecord, float | None]]:
        """Runs of the sweep ordered by the metric, best first (runs without a value last)."""

    @abc.abstractmethod
    def agents(self) -> list[AgentRecord]:
        """The sweep's agents, oldest first."""

    @abc.abstractmethod
    def reap(self, dead: Mapping[str, float | None], failure: str | None = None) -> list[str]:
        """Mark agents that the caller found dead ``dead`` and their ``pending``/``running``
        runs ``crashed``, atomically (one transaction); return the run ids marked crashed.

        The caller decides which agents are dead (e.g. by a process id on its own host, which
        only it can check); ``dead`` maps each agent id to the ``heartbeat_at`` the caller saw
        when it decided (``None``: whatever it is now). An agent that is not ``running`` any
        more, or that sent a heartbeat since (a newer ``heartbeat_at``), is left alone, so a
        decision made on a stale read never kills a live agent. Unknown agent ids are ignored.
        ``failure`` is the crashed runs' failure (default: names the agent). Safe to repeat.
        """

    @abc.abstractmethod
    def record_results(self, results: Sequence[TrialResult]) -> list[str]:
        """Settle runs whose outcome the caller knows (see :class:`TrialResult`), atomically:
        every result is applied, or skipped, in one transaction. Returns the run ids skipped:
        not runs of the sweep, or not in their ``expect_state`` any more (read them again and
        decide again). A result with a state outside :data:`RESULT_STATES`, or a run id given
        twice, raises :class:`StoreError` and applies nothing. Safe to repeat."""

    @abc.abstractmethod
    def abandon(self, agent_id: str, failure: str | None = None) -> list[str]:
        """The agent stops early: its runs that were handed to it and never started
        (``pending``) become ``crashed`` at once (rather than when its heartbeats time out);
        its ``running`` runs are left to their processes. Atomic; returns the run ids marked
        crashed. Safe to repeat."""

    def set_run_cap(self, run_cap: int) -> SweepRecord:
        """Change the sweep's ``run_cap`` (in its stored config). A ``finished`` sweep with
        fewer runs than the new cap goes back to ``running``. Returns the sweep as stored."""
        raise StoreError(f"this store cannot change the run_cap of sweep {self.sweep_id!r}")

    def requeue(self, run_ids: Sequence[str] | None = None) -> list[str]:
        """Run interrupted trials again (a resumed Hydra sweep asks for this): each trial that
        is ``crashed``, ``killed`` or ``preempted``, or still ``pending``/``running`` under an
        agent that is no longer ``running`` (it was stopped; the trial is marked ``crashed``,
        ``preempted`` if it was ``preempting``), is queued, and the next :meth:`next_run` calls
        hand out its parameters again, as new runs, before any
        new suggestion. A requeued trial stays in the store as it is but no longer counts
        towards ``run_cap`` or the search (its retry does), and is never requeued twice. A
        ``finished`` sweep (say, a grid whose interrupted cells were its last) goes back to
        ``running``. ``run_ids`` limits it to those trials (None: every interrupted trial).
        Atomic; returns the run ids queued."""
        raise StoreError(f"this store cannot requeue the trials of sweep {self.sweep_id!r}")


class SweepController(SweepControl):
    """Controller operations on one sweep, run in this process (cheap to create; holds no
    state but the parsed sweep config)."""

    def __init__(self, store: Store, sweep_id: str) -> None:
        self.store = store
        self.sweep_id = sweep_id
        self._config: SweepConfig | None = None
        self._config_doc: dict[str, Any] | None = None

    def sweep(self) -> SweepRecord:
        sweep = self.store.get_sweep(self.sweep_id)
        if sweep is None:
            raise StoreError(f"no sweep {self.sweep_id!r}")
        return sweep

    def config(self, sweep: SweepRecord | None = None) -> SweepConfig:
        """The sweep's parsed config. Parsed again only when the stored document changed (its
        ``run_cap`` can be raised), not on every call: agents call several times a second."""
        doc = (sweep or self.sweep()).config
        if self._config is None or doc != self._config_doc:
            self._config = load_sweep_config(doc, require_program=False)
            self._config_doc = copy.deepcopy(doc)
        return self._config

    def set_run_cap(self, run_cap: int) -> SweepRecord:
        """Change the sweep's ``run_cap`` (in its stored config). A ``finished`` sweep with
        fewer runs than the new cap goes back to ``running`` (if its grid is exhausted or a run
        reached the target, the next agent's request finishes it again); a canceled sweep stays
        canceled. Returns the sweep as stored."""
        if isinstance(run_cap, bool) or not isinstance(run_cap, int) or run_cap < 1:
            raise StoreError(f"run_cap must be a whole number >= 1, got {run_cap!r}")
        with self.store.sweep_transaction(self.sweep_id) as tx:
            doc = copy.deepcopy(tx.sweep.config)
            doc["run_cap"] = run_cap
            load_sweep_config(doc, require_program=False)  # still valid (as it was)
            superseded = (tx.sweep.method_state or {}).get(_SUPERSEDED) or ()
            n_runs = tx.trial_count() - len(superseded)
            state = None
            if tx.sweep.state == "finished" and n_runs < run_cap:
                state = "running"
            tx.update_sweep(config=doc, state=state)
        return self.sweep()

    def trials(
        self, tx: SweepTransaction, config: SweepConfig, superseded: set[str] | None = None
    ) -> list[Trial]:
        """The trials as the search sees them (those re-run by :meth:`requeue` left out: their
        retry is the trial)."""
        metric = config.metric
        multi = config.metrics if config.multi_objective else ()
        out = []
        for record in tx.trials():
            if superseded and record.run_id in superseded:
                continue
            value = None
            values: tuple[float | None, ...] | None = None
            done = record.state not in ACTIVE_STATES
            if metric is not None and done:
                value = objective(record.summary, metric.name, metric.goal)
            if multi:
                values = tuple(
                    objective(record.summary, m.name, m.goal) if done else None for m in multi
                )
            out.append(Trial(params=record.params, value=value, state=record.state, values=values))
        return out

    def _reap_dead_agents(self, tx: SweepTransaction, now: float) -> None:
        """Agents that stopped heartbeating: mark them dead and their active runs crashed."""
        dead = {
            a.id
            for a in tx.agents()
            if a.state == "running" and now - a.heartbeat_at > agent_timeout()
        }
        if not dead:
            return
        for agent_id in dead:
            tx.set_agent_state(agent_id, "dead")
        for record in tx.trials(states=ACTIVE_STATES):
            if record.agent_id in dead:
                tx.set_trial_state(
                    record.run_id,
                    _ended(record.state),
                    failure=f"its agent {record.agent_id} stopped sending heartbeats",
                )

    def next_run(self, agent_id: str, *, reclaim: bool = False) -> Decision:
        now = time.time()
        with self.store.sweep_transaction(self.sweep_id) as tx:
            sweep = tx.sweep
            if sweep.state == "paused":
                return Decision("wait", "the sweep is paused")
            if sweep.state in FINAL_SWEEP_STATES:
                return Decision("done", f"the sweep is {sweep.state}")
            config = self.config(sweep)
            self._reap_dead_agents(tx, now)
            if reclaim:
                for record in tx.trials(agent_id=agent_id, states=("pending",)):
                    return Decision("run", "", record.run_id, record.name, record.params)
            state = dict(sweep.method_state or {})
            superseded = set(state.get(_SUPERSEDED) or ())
            count = tx.trial_count()
            queue = list(state.get(_REQUEUE) or ())
            if queue:  # interrupted trials asked to run again: they replace, not add to, run_cap
                retry = dict(queue.pop(0).get("params") or {})
                state[_REQUEUE] = queue
                return self._add(tx, agent_id, retry, count, state)
            counted = count - len(superseded)
            if config.run_cap is not None and counted >= config.run_cap:
                tx.update_sweep(state="finished")
                return Decision("done", f"run_cap {config.run_cap} reached")
            metric = config.metric
            if metric is not None and metric.target is not None:
                for record in tx.trials(states=("finished",)):
                    value = objective(record.summary, metric.name, metric.goal)
                    if reached_target(value, metric.target, metric.goal):
                        tx.update_sweep(state="finished")
                        return Decision(
                            "done",
                            f"run {record.run_id} reached the target "
                            f"{metric.name} = {value} ({metric.goal} to {metric.target})",
                        )
            search = build_search(
                config.method,
                metric.goal if metric else "minimize",
                [m.goal for m in config.metrics] if config.multi_objective else (),
            )
            params, method_state = search.suggest_next(
                config.parameters,
                lambda: self.trials(tx, config, superseded),
                counted,
                sweep.seed,
                dict(state.get(search.name) or {}),
            )
            if params is None:
                tx.update_sweep(state="finished")
                return Decision("done", "every grid cell has been run")
            if method_state:
                state[search.name] = method_state
            return self._add(tx, agent_id, params, count, state)

    def _add(
        self,
        tx: SweepTransaction,
        agent_id: str,
        params: dict[str, Any],
        count: int,
        state: dict[str, Any],
    ) -> Decision:
        run_id = new_run_id()
        name = new_run_name(count + 1)
        tx.add_trial(run_id, name, params, run_config(params), agent_id)
        changed = state != (tx.sweep.method_state or {})
        tx.update_sweep(run_count=count + 1, method_state=state if changed else None)
        return Decision("run", "", run_id, name, params)

    def requeue(self, run_ids: Sequence[str] | None = None) -> list[str]:
        with self.store.sweep_transaction(self.sweep_id) as tx:
            state = dict(tx.sweep.method_state or {})
            superseded = set(state.get(_SUPERSEDED) or ())
            queue = list(state.get(_REQUEUE) or ())
            stopped = {a.id for a in tx.agents() if a.state != "running"}
            wanted = None if run_ids is None else set(run_ids)
            chosen = []
            for record in tx.trials(states=INTERRUPTED):
                if record.run_id in superseded:
                    continue
                if wanted is not None and record.run_id not in wanted:
                    continue
                if record.state in ACTIVE_STATES:
                    if record.agent_id not in stopped:
                        continue  # its agent may still run it
                    tx.set_trial_state(
                        record.run_id,
                        _ended(record.state),
                        failure=f"its sweeper or agent ({record.agent_id}) stopped before the "
                        "trial finished",
                    )
                chosen.append(record.run_id)
                superseded.add(record.run_id)
                queue.append({"run_id": record.run_id, "params": record.params})
            if chosen:
                state[_SUPERSEDED] = sorted(superseded)
                state[_REQUEUE] = queue
                reopen = "running" if tx.sweep.state == "finished" else None
                tx.update_sweep(method_state=state, state=reopen)
            return chosen

    def stop_decisions(self, run_id: str | None) -> str | None:
        """Why ``run_id`` should stop now (early termination, or a canceled sweep), or None."""
        if run_id is None:
            return None
        sweep = self.sweep()
        if sweep.state == "canceled":
            return "the sweep was canceled"
        config = self.config(sweep)
        if not config.early_terminate or config.metric is None:
            return None
        from runyard.sweeps.stopping import RunProgress, build_early_stopping

        rule = build_early_stopping(config.early_terminate, config.metric.name, config.metric.goal)
        if rule is None:
            return None
        by_pk = {r.pk: r for r in self.store.sweep_trials(self.sweep_id)}
        series = self.store.metric_values(list(by_pk), config.metric.name)
        progress = [
            RunProgress(
                run_id=by_pk[pk].run_id,
                state=by_pk[pk].state,
                values=[_as_float(v) for v in values],
            )
            for pk, values in series.items()
        ]
        for decision in rule.decide(progress):
            if decision.run_id == run_id:
                return decision.reason
        return None

    def finish_trial(
        self, run_id: str, exit_code: int | None, stop_reason: str | None
    ) -> TrialRecord | None:
        """Called by the agent when the run's process ended: settle the run's final state."""
        with self.store.sweep_transaction(self.sweep_id) as tx:
            record = next((r for r in tx.trials() if r.run_id == run_id), None)
            if record is None:
                return None
            if stop_reason is not None and record.state in (
                "running",
                "preempting",
                "killed",
                "pending",
            ):
                tx.set_trial_state(run_id, "stopped", failure=f"stopped early: {stop_reason}")
            elif record.state == "pending":
                # The program never called runyard.init(): nothing was tracked.
                if exit_code == 0:
                    tx.set_trial_state(
                        run_id,
                        "finished",
                        failure="the program exited without calling runyard.init(); "
                        "no metrics were recorded",
                    )
                else:
                    tx.set_trial_state(
                        run_id,
                        "failed",
                        failure=f"the program exited with code {exit_code} before runyard.init()",
                    )
            elif record.state == "preempting":
                # It said it may be preempted, then its process ended without finishing it.
                tx.set_trial_state(
                    run_id,
                    "preempted",
                    failure=f"the program ended (exit code {exit_code}) after mark_preempting()",
                )
            elif record.state == "running":
                # Its process is gone but the run was not finished (e.g. killed by signal).
                tx.set_trial_state(
                    run_id,
                    "failed" if exit_code else "crashed",
                    failure=f"the program ended (exit code {exit_code}) without finishing the run",
                )
            return next((r for r in tx.trials() if r.run_id == run_id), None)

    def fail_trial(self, run_id: str, reason: str) -> None:
        """Mark a run that could not even be started as failed."""
        with self.store.sweep_transaction(self.sweep_id) as tx:
            tx.set_trial_state(run_id, "failed", failure=reason)

    def agents(self) -> list[AgentRecord]:
        with self.store.sweep_transaction(self.sweep_id) as tx:
            return sorted(tx.agents(), key=lambda a: a.created_at)

    def reap(self, dead: Mapping[str, float | None], failure: str | None = None) -> list[str]:
        if len(dead) > MAX_BATCH:
            raise StoreError(f"at most {MAX_BATCH} agents at once, got {len(dead)}")
        crashed: list[str] = []
        with self.store.sweep_transaction(self.sweep_id) as tx:
            reaped = set()
            for agent in tx.agents():
                if agent.id not in dead or agent.state != "running":
                    continue
                seen = dead[agent.id]
                if seen is not None and agent.heartbeat_at > seen:
                    continue  # alive after all: it sent a heartbeat since the caller looked
                tx.set_agent_state(agent.id, "dead")
                reaped.add(agent.id)
            for record in tx.trials():
                live = record.state in ACTIVE_STATES
                if record.agent_id in reaped and live:
                    tx.set_trial_state(
                        record.run_id,
                        _ended(record.state),
                        failure=failure
                        or f"its sweeper or agent ({record.agent_id}) stopped before the trial "
                        "finished",
                    )
                    crashed.append(record.run_id)
        return crashed

    def record_results(self, results: Sequence[TrialResult]) -> list[str]:
        check_results(results)
        if not results:
            return []
        skipped: list[str] = []
        with self.store.sweep_transaction(self.sweep_id) as tx:
            states = {t.run_id: t.state for t in tx.trials()}
            for result in results:
                state = states.get(result.run_id)
                if state is None or (
                    result.expect_state is not None and state != result.expect_state
                ):
                    skipped.append(result.run_id)
                    continue
                tx.set_trial_result(
                    result.run_id,
                    result.state,
                    dict(result.summary),
                    config=result.config,
                    failure=result.failure,
                )
        return skipped

    def abandon(self, agent_id: str, failure: str | None = None) -> list[str]:
        crashed: list[str] = []
        with self.store.sweep_transaction(self.sweep_id) as tx:
            for record in tx.trials():
                if record.agent_id == agent_id and record.state == "pending":
                    tx.set_trial_state(
                        record.run_id,
                        "crashed",
                        failure=failure or f"its agent {agent_id} stopped before the trial ran",
                    )
                    crashed.append(record.run_id)
        return crashed

    def best(self, limit: int = 10) -> list[tuple[TrialRecord, float | None]]:
        """Runs of the sweep ordered by the metric, best first (runs without a value last).
        A multi-objective sweep's: by Pareto front (the front first), then by the first
        metric, whose value is the one given (:func:`runyard.sweeps.front.ranked`)."""
        sweep = self.sweep()
        config = self.config(sweep)
        records = self.store.sweep_trials(self.sweep_id)
        if config.multi_objective:
            from runyard.sweeps.front import ranked

            return [(r, v[0] if v else None) for r, v, _ in ranked(config, records)][:limit]
        if config.metric is None:
            return [(r, None) for r in records[-limit:]]
        goal = config.metric.goal
        scored = [(r, objective(r.summary, config.metric.name, goal)) for r in records]
        with_value = [s for s in scored if s[1] is not None]
        with_value.sort(key=lambda s: s[1] or 0.0, reverse=goal == "maximize")
        rest = [s for s in scored if s[1] is None]
        return (with_value + rest)[:limit]


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
