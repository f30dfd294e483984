"""The ``runyard`` Hydra sweeper: tune a Hydra app in-process with runyard's sweep engine.

``python train.py -m hydra/sweeper=runyard lr='tag(log, interval(1e-4, 1e-1))' db=mysql,postgres``

The sweeper is one more *agent* of an ordinary runyard sweep, so a sweep started from Hydra
looks in the store exactly like one created by ``runyard sweep`` (and ``runyard agent`` can
join it):

1. The search space comes from Hydra's sweep grammar (``hydra.sweeper.params`` and the sweep
   overrides of the command line, see :func:`spec_from_override`) and/or a ``sweep.yaml``
   (``hydra.sweeper.sweep_config``). It becomes a normal sweep config (program = the app's
   script, command ``${env} ${interpreter} ${program} <fixed overrides> ${args_hydra}``,
   ``run_cap`` = ``n_trials``) stored with :meth:`Store.create_sweep`.
2. The sweeper registers as an agent and takes each trial from
   :meth:`SweepControl.next_run` (atomic assignment; search = grid/random/bayes over every
   trial in the store, also those of other agents). It talks to the sweep only through
   ``store.controller(id)`` and the ``Store`` methods, so the same code runs on a direct SQL
   store (the controller runs here) and on a ``runyard server`` (the server runs it).
3. Each trial becomes one Hydra job of a batch, launched by whatever launcher the app uses
   (``self.launcher.launch``). Its overrides are written in the form Hydra needs for the
   composed config (``key=v`` / ``+key=v`` for plain keys, ``group=opt`` / ``+group=opt`` for
   config groups), validated by composing the config before launching, and the assignment is
   passed to the job with ``++hydra.job.env_set.RUNYARD_*`` overrides (Hydra sets them around
   the task function, in whichever process runs it), so the job's ``runyard.init()`` joins the
   trial's run.
4. After a batch the sweeper settles each trial from its ``JobReturn``: a run the job left
   ``pending`` (it never called ``runyard.init()``) is finished with the job's config and the
   return value as its summary; a failed job's run is ``failed``. The whole batch is recorded
   with one :meth:`SweepControl.record_results` (atomic), each result on the condition that
   its run is still in the state it was decided from. The objective the search reads is the
   run's summary value of ``metric.name`` (``return_value`` by default).
5. ``optimization_results.yaml`` in the sweep folder holds the best trial after each batch.

``hydra.sweeper.sweep_id=<id>`` resumes a sweep: finished trials are not repeated, and trials
left pending or running by the interrupted process are marked ``crashed`` (as the engine does
for any dead agent: the sweeper decides which agents are dead, :meth:`SweepControl.reap`
marks them), so they count as tried. A larger ``n_trials`` raises the stored
``run_cap`` (:meth:`SweepControl.set_run_cap`). See ``docs/hydra-sweeper.md``.

Early termination: Hydra's launcher API cannot stop a running job, so trials stop
cooperatively: each trial's run polls ``stop_decisions`` itself (``runyard.sdk.stop``), the task
breaks out on ``run.should_stop`` and its run ends ``stopped`` with its partial metric; the
sweeper keeps such trials ``stopped`` when it settles them (a ``StopRun`` raised by the job
included).

The modules, one concept each: :mod:`._space` (Hydra's sweep grammar -> sweep parameters),
:mod:`._document` (the sweeper's options -> a new sweep's sweep.yaml), :mod:`._app` (composing
the app's config, writing a trial's overrides), :mod:`._agent` (heartbeats, the jobs'
``RUNYARD_*`` variables, dead predecessors), :mod:`._outcomes` (a job's return -> its trial's
result), :mod:`._results` (``optimization_results.yaml``); this one runs the sweep (create or
resume it, ask for trials, launch batches, settle them).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from runyard._json import sanitize
from runyard.integrations.hydra._agent import Heartbeat, agent_dead, job_env
from runyard.integrations.hydra._app import App, ReusingConfigLoader, has_key, hydra_message
from runyard.integrations.hydra._document import (
    Options,
    check_groups,
    check_keys,
    program_path,
    sweep_document,
)
from runyard.integrations.hydra._errors import RunyardSweeperError, TrialError
from runyard.integrations.hydra._outcomes import (
    DEFAULT_METRIC,
    OBJECTIVES,
    Outcome,
    decide,
    finish_local_run,
    params_text,
    return_summary,
)
from runyard.integrations.hydra._results import RESULTS_FILE, log_best, write_results
from runyard.integrations.hydra._space import (
    SearchSpec,
    flat_parameters,
    parse_search_space,
    spec_from_override,
)
from runyard.sdk.metadata import hostname, username
from runyard.sdk.names import new_run_id
from runyard.store.base import Store, StoreError, SweepRecord
from runyard.store.locate import journal_dir
from runyard.sweeps.config import SweepConfig, SweepConfigError, load_sweep_config
from runyard.sweeps.controller import (
    Decision,
    SweepControl,
)
from runyard.sweeps.hydra_args import format_value
from runyard.sweeps.space import nest

if TYPE_CHECKING:
    from hydra.plugins.launcher import Launcher
    from hydra.types import HydraContext, TaskFunction

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_METRIC",
    "OBJECTIVES",
    "RESULTS_FILE",
    "RunyardSweeperError",
    "RunyardSweeperImpl",
    "SearchSpec",
    "parse_search_space",
    "return_summary",
    "spec_from_override",
]

#: seconds between polls while the sweep is paused
POLL_INTERVAL = 2.0
#: seconds to wait for the first records of a run a worker started (see _wait_for_journals)
JOURNAL_WAIT = 30.0
#: seconds to keep retrying a store (a runyard server) that cannot be reached, before giving up
SERVER_PATIENCE = 300.0
#: rounds of reading and settling a batch's trials whose state changed while they were settled
SETTLE_ROUNDS = 5

_T = TypeVar("_T")

#: the variables set per job (the others are the same for every job of the sweep)
_TRIAL_ENV = ("RUNYARD_RUN_ID", "RUNYARD_SWEEP_PARAMS")


class RunyardSweeperImpl:
    """The work behind ``hydra_plugins.runyard_sweeper.runyard_sweeper.RunyardSweeper``."""

    def __init__(self, **options: Any) -> None:
        self.options = Options(**options)
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.task_function: TaskFunction | None = None
        self.reusing: ReusingConfigLoader | None = None
        self._warned: set[str] = set()

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins
        from hydra.types import HydraContext

        self.hydra_context = hydra_context
        self.config = config
        self.task_function = task_function
        # The launcher gets the job configs the sweeper composed (once per trial) to check them.
        self.reusing = ReusingConfigLoader(hydra_context.config_loader)
        launcher_context = HydraContext(
            config_loader=self.reusing, callbacks=hydra_context.callbacks
        )
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=launcher_context, task_function=task_function, config=config
        )

    # -- entry point ------------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.hydra_context is not None
        assert self.launcher is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        lines = [f"{k}={v}" for k, v in self.options.params.items()] + list(arguments)
        try:
            spec = parse_search_space(parser, lines)
        except RunyardSweeperError:
            raise
        except HydraException as exc:
            raise RunyardSweeperError(f"hydra.sweeper: {hydra_message(exc)}") from None
        for note in spec.notes:
            self._warn(note)
        app = App(self.hydra_context.config_loader, self.config, spec.fixed, self._warn, spec.added)

        if (
            not spec.parameters
            and self.options.sweep_config is None
            and self.options.sweep_id is None
        ):
            log.info("runyard sweeper: nothing to sweep; running the job once")
            return [self.launcher.launch([spec.fixed], initial_job_idx=0)]

        from runyard.api import Api

        # Opening the store may run its migrations; Alembic logs every step at INFO, which
        # Hydra's logging setup would print.
        alembic = logging.getLogger("alembic")
        level = alembic.level
        alembic.setLevel(max(level, logging.WARNING))
        try:
            api = Api()
        finally:
            alembic.setLevel(level)
        store = api.store
        if self.options.sweep_id:
            record, config = self._resume(store, spec, app)
        else:
            record, config = self._create(store, spec, app)
        log.info(
            "runyard sweeper: sweep %s (%s, %s %s); store %s",
            record.path,
            config.method,
            "metrics" if config.multi_objective else "metric",
            ", ".join(f"{m.name} {m.goal}" for m in config.metrics) or "-",
            api.store_url,
        )
        return self._run(store, api.root, api.store_url, record, config, spec, app, sweep_dir)

    # -- creating / resuming ------------------------------------------------------------------

    def _program(self) -> str:
        assert self.config is not None
        return program_path(self.config, self.task_function)

    def _create(self, store: Store, spec: SearchSpec, app: App) -> tuple[SweepRecord, SweepConfig]:
        doc = sweep_document(self.options, spec, self._program)
        try:
            config = load_sweep_config(doc)
        except SweepConfigError as exc:
            source = f" and {self.options.sweep_config}" if self.options.sweep_config else ""
            raise RunyardSweeperError(
                "the sweep is not valid (built from hydra.sweeper.*, the sweep overrides"
                f"{source}; parameters are named by config key or group):\n{exc}"
            ) from None
        for warning in config.warnings:
            self._warn(warning)
        check_groups(config, app)
        check_keys(config, app, from_file=set(config.parameters.names) - set(spec.parameters))
        project = doc.get("project") or os.environ.get("RUNYARD_PROJECT") or "uncategorized"
        entity = doc.get("entity") or os.environ.get("RUNYARD_ENTITY") or username()
        record = store.create_sweep(
            sweep_id=new_run_id(),
            entity=str(entity),
            project=str(project),
            name=config.name,
            description=config.description,
            method=config.method,
            config=config.raw,
            seed=self.options.seed if self.options.seed is not None else secrets.randbelow(2**31),
        )
        return record, config

    def _resume(self, store: Store, spec: SearchSpec, app: App) -> tuple[SweepRecord, SweepConfig]:
        assert self.options.sweep_id is not None
        sweep_id = self.options.sweep_id.strip("/").rsplit("/", 1)[-1]
        record = store.get_sweep(sweep_id)
        if record is None:
            raise RunyardSweeperError(
                f"hydra.sweeper.sweep_id={self.options.sweep_id}: no such sweep in the store "
                "(check RUNYARD_BASE_URL / RUNYARD_STORE / RUNYARD_DIR)"
            )
        config = load_sweep_config(record.config, require_program=False)
        stored = flat_parameters(record.config.get("parameters") or {})
        if spec.parameters and any(stored.get(k) != v for k, v in spec.parameters.items()):
            self._warn(
                f"resuming sweep {record.id}: the search space given now differs from the "
                "stored one, which is used"
            )
        asked = {
            "method": (self.options.method, config.method),
            "metric.name": (self.options.metric.get("name"), config.metric and config.metric.name),
            "metric.goal": (self.options.metric.get("goal"), config.metric and config.metric.goal),
        }
        for key, (given, kept) in asked.items():
            if given is not None and given != kept:
                self._warn(
                    f"resuming sweep {record.id}: {key}={given} is ignored; the sweep's "
                    f"{key} ({kept}) is kept"
                )
        if self.options.n_trials is not None and self.options.n_trials != config.run_cap:
            record, config = self._raise_run_cap(store, record, config, self.options.n_trials)
        command = config.command or []
        stored_fixed = [c.replace("$${", "${") for c in command[3:-1]]
        if command[-1:] == ["${args_hydra}"] and stored_fixed != spec.fixed:
            self._warn(
                f"resuming sweep {record.id}: the fixed overrides differ from the ones it was "
                f"started with ({' '.join(stored_fixed) or 'none'}); the ones given now are used"
            )
        self._keys_to_add(config, app)
        controller = store.controller(record.id)
        self._reap(controller)
        retried = self._patient("requeue interrupted trials", controller.requeue)
        if retried:
            log.info(
                "runyard sweeper: %d interrupted trial(s) run again: %s",
                len(retried),
                ", ".join(retried),
            )
            record = self._patient("read the sweep", controller.sweep)
        done = [
            t
            for t in self._patient("read the sweep's runs", lambda: store.sweep_trials(record.id))
            if t.state not in ("pending", "running")
        ]
        log.info(
            "runyard sweeper: resuming sweep %s (%s): %d trial(s) already done",
            record.id,
            record.state,
            len(done),
        )
        return record, config

    @staticmethod
    def _keys_to_add(config: SweepConfig, app: App) -> None:
        """A resumed sweep's keys were checked when it was created: those that are not in the
        app's config were added on purpose (``+key``), and get ``++key`` unless the command
        line says ``+``."""
        groups = [p for p in config.parameters if app.is_group(p.name)]
        base = {p.name: (p.values or (p.value,))[0] for p in groups}
        configs = app.composed([base])
        for param in config.parameters:
            if app.is_group(param.name) or param.name in app.added:
                continue
            if configs and not any(has_key(c, param.name) for c in configs):
                app.added[param.name] = "++"

    def _raise_run_cap(
        self, store: Store, record: SweepRecord, config: SweepConfig, n_trials: int
    ) -> tuple[SweepRecord, SweepConfig]:
        """A resume with a larger ``n_trials`` raises the stored sweep's ``run_cap`` (and a
        finished sweep runs again); a smaller one, or one for a sweep without a cap (a whole
        grid), is ignored with a warning."""
        if config.run_cap is None or n_trials < config.run_cap:
            kept = "no cap: the whole grid" if config.run_cap is None else str(config.run_cap)
            self._warn(
                f"resuming sweep {record.id}: n_trials={n_trials} is ignored; the sweep's "
                f"run_cap ({kept}) is kept (a resume only raises it; to lower it run "
                f"`runyard sweep {record.id} --run-cap N`)"
            )
            return record, config
        controller = store.controller(record.id)
        try:
            updated = controller.set_run_cap(n_trials)
        except (StoreError, SweepConfigError) as exc:
            raise RunyardSweeperError(
                f"hydra.sweeper.n_trials={n_trials}: cannot raise the run_cap of sweep "
                f"{record.id}: {exc}"
            ) from None
        reopened = record.state == "finished" and updated.state == "running"
        log.info(
            "runyard sweeper: sweep %s: run_cap raised from %d to %d (hydra.sweeper.n_trials)%s",
            record.id,
            config.run_cap,
            n_trials,
            "; the finished sweep runs again" if reopened else "",
        )
        return updated, load_sweep_config(updated.config, require_program=False)

    def _reap(self, controller: SweepControl) -> None:
        """Agents of the sweep whose process is gone: mark them dead and their pending/running
        trials crashed (they are not repeated, as for any dead agent). This process decides
        which agents are dead (a process id on this host is only checkable here); the
        controller marks them, sparing any agent heard from since it was read."""
        agents = self._patient("read the sweep's agents", controller.agents)
        dead = {a.id: a.heartbeat_at for a in agents if agent_dead(a)}
        if dead:
            crashed = self._patient("reap dead agents", lambda: controller.reap(dead))
            if crashed:
                log.info(
                    "runyard sweeper: %d trial(s) of stopped sweepers or agents marked crashed",
                    len(crashed),
                )

    # -- the loop -----------------------------------------------------------------------------

    def _batch_size(self) -> int:
        if self.options.max_batch_size is not None:
            return self.options.max_batch_size
        assert self.config is not None
        for key in ("hydra.launcher.n_jobs", "hydra.launcher.array_parallelism"):
            n = OmegaConf.select(self.config, key, default=None)
            if isinstance(n, int) and not isinstance(n, bool):
                if n > 0:
                    return n
                if n < 0:  # joblib: -1 = every CPU, -2 = all but one...
                    return max(1, (os.cpu_count() or 1) + 1 + n)
        return 1

    def _run(
        self,
        store: Store,
        root: Path,
        store_url: str,
        record: SweepRecord,
        config: SweepConfig,
        spec: SearchSpec,
        app: App,
        sweep_dir: Path,
    ) -> list[Sequence[JobReturn]]:
        assert self.launcher is not None
        controller = store.controller(record.id)
        agent_id = f"{hostname()}-{os.getpid()}-hydra-{uuid.uuid4().hex[:6]}"
        store.register_agent(agent_id, record.id, hostname(), os.getpid())
        heartbeat = Heartbeat(
            store, controller, agent_id, bool(config.early_terminate and config.metric)
        )
        batch_size = self._batch_size()
        returns: list[Sequence[JobReturn]] = []
        job_idx = len(store.sweep_trials(record.id))
        self._pass_env({**job_env(record, root, store_url), **dict.fromkeys(_TRIAL_ENV, "")})
        state = "failed"
        session: list[str] = []
        failures: list[str] = []
        try:
            while True:
                batch = self._next_batch(store, controller, agent_id, batch_size, heartbeat)
                if not batch:
                    break
                jobs: list[list[str]] = []
                launched: list[Decision] = []
                errors: list[str] = []
                for decision in batch:
                    assert decision.run_id is not None
                    try:
                        jobs.append(self._job_overrides(app, spec, decision))
                        launched.append(decision)
                    except TrialError as exc:
                        message = f"trial {decision.run_id} ({params_text(decision)}): {exc}"
                        self._patient(
                            "fail a trial", controller.fail_trial, decision.run_id, str(exc)
                        )
                        errors.append(message)
                if jobs:
                    heartbeat.running = [d.run_id or "" for d in launched]
                    results = self.launcher.launch(jobs, initial_job_idx=job_idx)
                    heartbeat.running = []
                    job_idx += len(jobs)
                    failures += self._settle(
                        store, controller, root, record, config, launched, results
                    )
                    session += [d.run_id or "" for d in launched]
                    heartbeat.done += len(jobs)
                    returns.append(results)
                write_results(store, controller, record, config, app, sweep_dir)
                if errors:
                    raise RunyardSweeperError(
                        "a trial's overrides do not compose (fix the app's config or the "
                        "search space, then resume with "
                        f"hydra.sweeper.sweep_id={record.id}):\n" + "\n".join(errors)
                    )
            state = "finished"
        except KeyboardInterrupt:
            state = "killed"
            raise
        finally:
            heartbeat.stop()
            if self.reusing is not None:
                self.reusing.clear()
            self._abandon(controller, agent_id)
            try:
                store.agent_heartbeat(agent_id, None, heartbeat.done, state=state)
            except StoreError as exc:
                log.warning("runyard sweeper: could not record the agent's end: %s", exc)
            # Also when nothing ran (a resumed sweep that was over) or the sweep was stopped.
            try:
                write_results(store, controller, record, config, app, sweep_dir)
            except Exception as exc:  # never hide the error that ended the sweep
                log.warning("runyard sweeper: could not write the results: %s", exc)
        log_best(controller, config, sweep_dir, store)
        if failures:
            # Hydra's basic sweeper exits non-zero when a job fails: so does this one, once the
            # sweep is over (the other trials ran, and their results are recorded).
            every = (
                "every trial"
                if len(failures) == len(session)
                else (f"{len(failures)} of {len(session)} trials")
            )
            raise RunyardSweeperError(
                f"{every} of this sweep session failed; the first: {failures[0]}"
            )
        return returns

    def _pass_env(self, env: Mapping[str, str]) -> None:
        """The ``RUNYARD_*`` variables every job of the sweep gets, as Hydra overrides of the
        master config (``hydra.overrides.hydra``, which Hydra applies to each job it composes):
        not repeated on every job line, not in ``overrides.yaml`` or ``override_dirname``. The
        per-trial ones (:data:`_TRIAL_ENV`) are created empty, and each job sets them."""
        assert self.config is not None
        texts = [f"++hydra.job.env_set.{k}={format_value(v)}" for k, v in env.items()]
        node = self.config.hydra.overrides.hydra
        readonly = OmegaConf.is_readonly(node)
        OmegaConf.set_readonly(node, False)
        try:
            with open_dict(self.config):
                for text in texts:
                    node.append(text)
        finally:
            OmegaConf.set_readonly(node, readonly)

    def _next_batch(
        self,
        store: Store,
        controller: SweepControl,
        agent_id: str,
        size: int,
        heartbeat: Heartbeat,
    ) -> list[Decision]:
        batch: list[Decision] = []
        while len(batch) < size:
            # A request whose answer was lost may leave a trial handed to this agent and never
            # launched: _abandon marks it crashed when the session ends.
            decision = self._patient(
                "ask for the next trial", lambda: controller.next_run(agent_id)
            )
            if decision.kind == "run":
                batch.append(decision)
            elif decision.kind == "done":
                if not batch:
                    log.info("runyard sweeper: sweep over: %s", decision.reason)
                break
            else:  # paused
                if batch:
                    break
                self._warn(f"waiting: {decision.reason}")
                self._patient(
                    "send a heartbeat",
                    lambda: store.agent_heartbeat(agent_id, None, heartbeat.done),
                )
                time.sleep(POLL_INTERVAL)
        return batch

    def _job_overrides(self, app: App, spec: SearchSpec, decision: Decision) -> list[str]:
        """The trial's job overrides (fixed ones and parameters in the command line's order,
        then its ``RUNYARD_RUN_ID``/``RUNYARD_SWEEP_PARAMS``), checked by composing the job's
        config, which the launcher then reuses (composed once)."""
        assert decision.run_id is not None and self.reusing is not None
        plain = {k: v for k, v in decision.params.items() if not app.is_group(k)}

        def env(params: Mapping[str, Any]) -> list[str]:
            values = {
                "RUNYARD_RUN_ID": decision.run_id,
                "RUNYARD_SWEEP_PARAMS": json.dumps(sanitize(nest(params))),
            }
            # No "++": the master config has the keys (_pass_env), and Hydra leaves overrides
            # that start with "hydra." off the job lines it logs.
            return [f"hydra.job.env_set.{k}={format_value(v)}" for k, v in values.items()]

        job, cfg = app.job(spec.slots, decision.params, env(plain))
        resolved = _resolved(cfg, plain)
        if resolved != plain:  # interpolations: the run's config gets what the job sees
            job, cfg = app.job(spec.slots, decision.params, env(resolved))
        self.reusing.keep(job, cfg)
        return job

    # -- results ------------------------------------------------------------------------------

    def _settle(
        self,
        store: Store,
        controller: SweepControl,
        root: Path,
        record: SweepRecord,
        config: SweepConfig,
        decisions: Sequence[Decision],
        results: Sequence[JobReturn],
    ) -> list[str]:
        """Record each job's outcome in its run; returns the failure messages.

        Each outcome is decided from the trial as read from the store and recorded with
        :meth:`SweepControl.record_results` (all of the batch at once, atomically), on the
        condition that the trial is still in the state it was decided from; a trial whose
        state moved on meanwhile (its job's records arrived) is read and decided again.
        """
        for decision, ret in zip(decisions, results, strict=True):
            finish_local_run(decision.run_id or "", ret.status == JobStatus.FAILED)
        self._wait_for_journals(store, record, root, [d.run_id or "" for d in decisions])
        failures: list[str] = []
        lines: list[str] = []
        todo = list(zip(decisions, results, strict=True))
        for _ in range(SETTLE_ROUNDS):
            trials = {
                t.run_id: t
                for t in self._patient(
                    "read the sweep's runs", lambda: store.sweep_trials(record.id)
                )
            }
            outcomes: list[tuple[Decision, JobReturn, Outcome]] = []
            for decision, ret in todo:
                trial = trials.get(decision.run_id or "")
                if trial is not None:
                    outcome = decide(trial, ret, config, decision, self.options.objective)
                    outcomes.append((decision, ret, outcome))
            to_record = [o.result for _, _, o in outcomes if o.result is not None]
            skipped = set(
                self._patient("record the trials' results", controller.record_results, to_record)
            )
            todo = []
            for decision, ret, outcome in outcomes:
                if outcome.result is not None and outcome.result.run_id in skipped:
                    todo.append((decision, ret))
                    continue
                failures += outcome.failures
                lines.append(outcome.line)
                for warning in outcome.warnings:
                    self._warn(warning)
            if not todo:
                break
        else:
            self._warn(
                f"runs {', '.join(d.run_id or '' for d, _ in todo)} kept changing while their "
                "results were recorded; they are left as their jobs left them"
            )
        for line in lines:
            log.info("runyard sweeper: %s", line)
        return failures

    def _wait_for_journals(
        self, store: Store, record: SweepRecord, root: Path, run_ids: Sequence[str]
    ) -> None:
        """Wait until the store has the first records of the runs whose job called
        ``runyard.init()`` in another process (a worker's shipper writes a moment after init).

        A run still ``pending`` in the store while its journal exists was started: settling it
        as a never-started run would make the store refuse the job's records. The journal file
        (``<run id>-<journal id>.journal``, created by ``init()`` before it returns, in the
        ``RUNYARD_DIR`` the jobs are given) says so without waiting on runs that never called
        ``init()``. The wait is on the store's view (a runyard server's, for a remote store),
        read without the sweep's lock; a run whose first records arrive after this wait is
        caught by :meth:`_settle`'s state condition. A job on a host that does not share the
        folder is judged by the store's view alone.
        """
        folder = journal_dir(root)

        def started(run_id: str) -> bool:
            return any(folder.glob(f"{run_id}-*.journal")) or any(
                folder.glob(f".{run_id}-*.journal.new")
            )

        deadline = time.monotonic() + JOURNAL_WAIT
        waiting = set(run_ids)
        while waiting:
            pending = {
                t.run_id
                for t in store.sweep_trials(record.id)
                if t.run_id in waiting and t.state == "pending"
            }
            waiting = {run_id for run_id in pending if started(run_id)}
            if not waiting:
                return
            if time.monotonic() > deadline:
                self._warn(
                    f"runs {', '.join(sorted(waiting))} were started by their jobs but are "
                    f"not in the store after {JOURNAL_WAIT:g}s; they are left to their jobs"
                )
                return
            time.sleep(0.1)

    def _abandon(self, controller: SweepControl, agent_id: str) -> None:
        """Trials this sweeper was handed but never started (interrupted): crashed."""
        try:
            controller.abandon(agent_id, "the Hydra sweep stopped before the trial ran")
        except Exception as exc:
            log.warning("runyard sweeper: could not settle unstarted trials: %s", exc)

    def _patient(self, what: str, call: Callable[..., _T], *args: Any) -> _T:
        """``call(*args)``, retried for :data:`SERVER_PATIENCE` seconds while the store cannot be
        reached (a runyard server restarting); any other error is raised at once."""
        deadline = time.monotonic() + SERVER_PATIENCE
        delay = 0.5
        while True:
            try:
                return call(*args)
            except StoreError as exc:
                if type(exc).__name__ != "StoreUnavailableError" or time.monotonic() > deadline:
                    raise
                self._warn(
                    f"the store cannot be reached; retrying for up to "
                    f"{SERVER_PATIENCE:g}s ({what}): {exc}"
                )
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("runyard sweeper: %s", message)


def _resolved(cfg: DictConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """Each plain key's value as the job sees it (``${...}`` resolved, as Hydra resolves a
    swept ``'${lr}'``); a value that does not resolve is kept as given."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        if not _has_interpolation(value):
            out[name] = value
            continue
        try:
            node = OmegaConf.select(cfg, name, throw_on_resolution_failure=True)
            if OmegaConf.is_config(node):
                node = OmegaConf.to_container(node, resolve=True)
            out[name] = node
        except Exception:
            out[name] = value
    return out


def _has_interpolation(value: Any) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, list | tuple):
        return any(_has_interpolation(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_interpolation(v) for v in value.values())
    return False
