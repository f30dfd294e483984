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
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    QuotedString,
    RangeSweep,
    ValueType,
)
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import CompactHydraException, HydraException
from omegaconf import DictConfig, OmegaConf

from runyard._json import sanitize
from runyard.integrations.hydra._context import return_value_summary
from runyard.sdk.metadata import hostname, username
from runyard.sdk.names import new_run_id
from runyard.sdk.stop import StopRun
from runyard.store.base import AgentRecord, Store, StoreError, SweepRecord, TrialRecord
from runyard.store.locate import default_store_url, journal_dir
from runyard.sweeps.config import SweepConfig, SweepConfigError, load_sweep_config
from runyard.sweeps.controller import (
    Decision,
    SweepControl,
    TrialResult,
    agent_timeout,
    objective,
)
from runyard.sweeps.hydra_args import HydraAppInfo, format_overrides, format_value, plain_value
from runyard.sweeps.space import nest

if TYPE_CHECKING:
    from hydra.core.config_loader import ConfigLoader
    from hydra.plugins.launcher import Launcher
    from hydra.types import HydraContext, TaskFunction

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_METRIC",
    "OBJECTIVES",
    "RunyardSweeperError",
    "RunyardSweeperImpl",
    "SearchSpec",
    "parse_search_space",
    "spec_from_override",
]

#: where a trial's objective comes from (``hydra.sweeper.objective``)
OBJECTIVES = ("auto", "return_value", "summary")
#: the metric name when none is given: the task function's return value
DEFAULT_METRIC = "return_value"
#: trials of a random or bayes sweep when neither n_trials nor the sweep.yaml's run_cap says
DEFAULT_TRIALS = 20
#: seconds between the sweeper's agent heartbeats while a batch runs
HEARTBEAT_INTERVAL = 5.0
#: seconds between polls while the sweep is paused
POLL_INTERVAL = 2.0
RESULTS_FILE = "optimization_results.yaml"
#: seconds to wait for the first records of a run a worker started (see _wait_for_journals)
JOURNAL_WAIT = 30.0
#: seconds to keep retrying a store (a runyard server) that cannot be reached, before giving up
SERVER_PATIENCE = 300.0
#: rounds of reading and settling a batch's trials whose state changed while they were settled
SETTLE_ROUNDS = 5

_T = TypeVar("_T")

# Hydra's messages when a config group override has the wrong form (hydra-core 1.3).
_NO_MATCH = re.compile(r"Could not override '([^']+)'\. No match in the defaults list")
_MULTIPLE = re.compile(r"Multiple values for (\S+?)\. To override a value use")
_MANDATORY = re.compile(r"You must specify '([^']+)', e\.g")
# Strings that may go unquoted in an override (checked again with Hydra's parser).
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./@]*")


class RunyardSweeperError(CompactHydraException):
    """The sweep cannot start or go on; the message says why and what to change (Hydra
    prints it without a traceback)."""


class _TrialError(Exception):
    """One trial cannot be launched (its overrides do not compose)."""


# ---------------------------------------------------------------------------------------------
# The search space: Hydra's sweep grammar -> sweep.yaml parameters
# ---------------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A parsed override element as a plain value (quoted strings as str, recursively)."""
    if isinstance(value, QuotedString):
        return value.text
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    return value


def spec_from_override(override: Override) -> tuple[dict[str, Any], list[str]]:
    """The sweep.yaml parameter spec for one sweep override, and notes (ignored parts).

    ============================================  ==========================================
    ``a,b,c`` / ``choice(a,b,c)`` / ``glob(*)``    ``values: [a, b, c]``
    ``range(1,5)`` (integers, step 1)             ``int_uniform`` 1..4 (Python's range: the
                                                  end is excluded)
    ``range(0,1,0.25)``, other steps              ``values`` of the range
    ``interval(a,b)``                             ``uniform`` on [a, b]
    ``int(interval(a,b))``                        ``int_uniform`` a..b (both included)
    ``tag(log, interval(a,b))``                   ``log_uniform_values``
    ``tag(log, int(interval(a,b)))``              ``q_log_uniform_values`` with ``q: 1``
    ============================================  ==========================================

    ``shuffle(...)`` and tags other than ``log`` on an interval have no meaning for runyard's
    search and are ignored (with a note).
    """
    key = override.get_key_element()
    value = override.value()
    notes: list[str] = []
    tags: set[str] = set(getattr(value, "tags", set()) or set())
    if getattr(value, "shuffle", False):
        notes.append(f"{key}: shuffle() is ignored; the search method chooses the order")
    if isinstance(value, IntervalSweep):
        assert value.start is not None and value.end is not None
        log_scale = "log" in tags
        if tags - {"log"}:
            notes.append(f"{key}: tags {sorted(tags - {'log'})} are ignored (only 'log' is used)")
        ints = type(value.start) is int and type(value.end) is int
        if ints and log_scale:
            spec: dict[str, Any] = {
                "distribution": "q_log_uniform_values",
                "min": value.start,
                "max": value.end,
                "q": 1,
            }
        elif ints:
            spec = {"distribution": "int_uniform", "min": value.start, "max": value.end}
        else:
            spec = {
                "distribution": "log_uniform_values" if log_scale else "uniform",
                "min": float(value.start),
                "max": float(value.end),
            }
        return spec, notes
    if tags:
        notes.append(f"{key}: tags {sorted(tags)} are ignored (only tag(log, interval) is used)")
    if isinstance(value, RangeSweep):
        assert value.start is not None and value.stop is not None
        values = list(value.range())
        if not values:
            raise RunyardSweeperError(f"{override.input_line}: the range is empty")
        ints = all(type(x) is int for x in (value.start, value.stop, value.step))
        if ints and value.step == 1 and len(values) > 1:
            return {"distribution": "int_uniform", "min": values[0], "max": values[-1]}, notes
        return {"values": values}, notes
    if override.value_type in (
        ValueType.CHOICE_SWEEP,
        ValueType.SIMPLE_CHOICE_SWEEP,
        ValueType.GLOB_CHOICE_SWEEP,
    ):
        if isinstance(value, ChoiceSweep):
            items = [_plain(v) for v in value.list]
        else:  # glob: the group's options that match
            items = [_plain(v) for v in override.sweep_iterator()]
        if not items:
            raise RunyardSweeperError(f"{override.input_line}: no values to sweep")
        return {"values": items}, notes
    raise RunyardSweeperError(f"{override.input_line}: not a sweep override")


@dataclass
class SearchSpec:
    """What the sweep overrides and ``hydra.sweeper.params`` ask for."""

    #: swept parameter name (config key or group) -> sweep.yaml spec, in order
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the job's overrides in order: ``("fixed", text)`` or ``("param", name)``
    slots: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def fixed(self) -> list[str]:
        return [text for kind, text in self.slots if kind == "fixed"]


def _param_name(override: Override) -> str:
    name = override.key_or_group
    line = override.input_line or name
    if override.is_hydra_override():
        raise RunyardSweeperError(
            f"{line}: Hydra's own config (hydra.*, hydra/...) cannot be swept by runyard"
        )
    if override.package is not None:
        raise RunyardSweeperError(
            f"{line}: config groups with a package (group@package) cannot be swept: a "
            "runyard sweep parameter is named by the config group alone"
        )
    if override.is_delete():
        raise RunyardSweeperError(f"{line}: a deletion (~key) cannot be swept")
    return name


def parse_search_space(parser: OverridesParser, lines: Sequence[str]) -> SearchSpec:
    """Split ``lines`` (``hydra.sweeper.params`` as ``key=value`` first, then the command
    line's overrides) into fixed overrides and swept parameters.

    A key given twice keeps its first position and its last value (the command line wins over
    ``params``). The ``+``/``++`` prefix written on a swept key is not needed and is ignored:
    the sweeper chooses the form per trial from the composed config.
    """
    by_key: dict[str, Override] = {}
    for override in parser.parse_overrides(list(lines)):
        key = override.key_or_group
        if override.package is not None:
            key = f"{key}@{override.package}"
        by_key[key] = override
    spec = SearchSpec()
    for override in by_key.values():
        if not override.is_sweep_override():
            spec.slots.append(("fixed", override.input_line or ""))
            continue
        name = _param_name(override)
        param, notes = spec_from_override(override)
        spec.parameters[name] = param
        spec.notes.extend(notes)
        spec.slots.append(("param", name))
    return spec


def _flat_parameters(block: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """A sweep.yaml ``parameters`` block with nested blocks flattened to dotted names."""
    out: dict[str, dict[str, Any]] = {}
    for key, spec in block.items():
        if isinstance(spec, Mapping) and "parameters" in spec:
            out.update(_flat_parameters(spec["parameters"], f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = dict(spec)
    return out


# ---------------------------------------------------------------------------------------------
# Writing a trial's overrides for the app's composed config
# ---------------------------------------------------------------------------------------------


def _has_key(config: Any, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


class _App:
    """The Hydra app as the sweeper sees it: composes its config in-process (with the config
    loader Hydra gave the sweeper) and writes each trial's overrides in the form Hydra needs.

    Composition results are cached per combination of config group options, so a trial costs
    one composition (the validation of its complete overrides) in the common case.
    """

    def __init__(
        self,
        loader: ConfigLoader,
        master: DictConfig,
        fixed: Sequence[str],
        warn: Callable[[str], None],
    ) -> None:
        self.loader = loader
        self.master = master
        self.fixed = list(fixed)
        self.warn = warn
        self._parser = OverridesParser.create()
        self._groups: set[str] | None = None
        self._options: dict[str, list[str]] = {}
        self._bases: dict[tuple[str, ...], tuple[dict[str, str | None], tuple[str, ...]]] = {}
        self._composed: dict[tuple[str, ...], tuple[list[str], dict[str, Any]]] = {}
        self._bare: dict[str, bool] = {}

    # -- composition --------------------------------------------------------------------------

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """The job config for ``overrides`` (after the fixed ones); raises Hydra's error."""
        cfg: DictConfig = self.loader.load_sweep_config(self.master, [*self.fixed, *overrides])
        return cfg

    @staticmethod
    def _job_dict(cfg: DictConfig) -> dict[str, Any]:
        container = OmegaConf.to_container(cfg, resolve=False)
        assert isinstance(container, dict)
        container.pop("hydra", None)
        return {str(k): v for k, v in container.items()}

    @property
    def groups(self) -> set[str]:
        """Every config group of the app (nested ones as ``a/b``), Hydra's own included."""
        if self._groups is None:
            found: set[str] = set()
            stack = [""]
            while stack:
                parent = stack.pop()
                for name in self.loader.list_groups(parent):
                    full = f"{parent}/{name}" if parent else name
                    if full not in found:
                        found.add(full)
                        stack.append(full)
            self._groups = found
        return self._groups

    def options(self, group: str) -> list[str]:
        if group not in self._options:
            try:
                self._options[group] = list(self.loader.get_group_options(group))
            except Exception:
                self._options[group] = []
        return self._options[group]

    def is_group(self, name: str) -> bool:
        return name in self.groups

    def _base(self, params: Mapping[str, Any]) -> tuple[dict[str, str | None], tuple[str, ...]]:
        """``hydra.runtime.choices`` of the config without the trial's groups, and the group
        overrides a mandatory group (``db: ???`` in the defaults list) needed to compose it."""
        mandatory: list[str] = []
        for _ in range(len(params) + 1):
            key = tuple(mandatory)
            if key in self._bases:
                return self._bases[key]
            try:
                cfg = self.compose(mandatory)
            except Exception as exc:
                m = _MANDATORY.search(str(exc))
                if m is None or m.group(1) not in params or params[m.group(1)] is None:
                    raise _TrialError(_hydra_message(exc)) from None
                mandatory.append(f"{m.group(1)}={self.render(str(params[m.group(1)]))}")
                continue
            raw = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
            assert isinstance(raw, dict)
            choices = {str(k): (None if v is None else str(v)) for k, v in raw.items()}
            self._bases[key] = (choices, key)
            return self._bases[key]
        raise _TrialError("could not compose the config: mandatory config groups")

    def _group_items(
        self, params: Mapping[str, Any]
    ) -> tuple[dict[str, str], dict[str, str | None], dict[str, Any]]:
        """The trial's group overrides, the base choices, and the config they compose."""
        choices, mandatory = self._base(params)
        forms: dict[str, str] = {}  # name -> "", "+" or "~"
        texts: dict[str, str] = {}
        for name, value in params.items():
            if not self.is_group(name):
                continue
            value = plain_value(value)
            present = name in choices or any(m.startswith(f"{name}=") for m in mandatory)
            if value is None:
                if present:
                    forms[name], texts[name] = "~", ""
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise _TrialError(
                    f"{name} is a config group: its values must be option names, got {value!r}"
                )
            forms[name] = "" if present else "+"
            texts[name] = self.render(str(value))

        def rendered() -> list[str]:
            return [f"~{n}" if forms[n] == "~" else f"{forms[n]}{n}={texts[n]}" for n in forms]

        for _ in range(len(forms) + 1):
            key = tuple(rendered())
            if key in self._composed:
                break
            try:
                cfg = self.compose(list(key))
            except Exception as exc:
                message = _hydra_message(exc)
                no_match, multiple = _NO_MATCH.search(message), _MULTIPLE.search(message)
                flipped = False
                for name, form in forms.items():
                    if form == "" and no_match and no_match.group(1) == name:
                        forms[name], flipped = "+", True
                    elif form == "+" and multiple and multiple.group(1) == name:
                        forms[name], flipped = "", True
                if not flipped:
                    raise _TrialError(
                        f"Hydra cannot compose the config with {' '.join(key)}: {message}"
                    ) from None
                continue
            self._composed[key] = (list(key), self._job_dict(cfg))
            break
        else:
            raise _TrialError("could not find group overrides that Hydra accepts")
        items, config = self._composed[tuple(rendered())]
        by_name = dict(zip(forms, items, strict=True))
        return by_name, choices, config

    # -- values -------------------------------------------------------------------------------

    def render(self, value: Any) -> str:
        """``value`` in Hydra's override grammar, unquoted where Hydra reads the bare text back
        as the same string (``file1``, not ``"file1"``), else as :func:`format_value` writes
        it."""
        value = plain_value(value)
        if isinstance(value, str) and _BARE.fullmatch(value):
            if value not in self._bare:
                try:
                    parsed = self._parser.parse_override(f"k={value}")
                    self._bare[value] = (
                        parsed.value_type == ValueType.ELEMENT and parsed.value() == value
                    )
                except Exception:
                    self._bare[value] = False
            if self._bare[value]:
                return value
        return format_value(value)

    def overrides(self, params: Mapping[str, Any]) -> dict[str, str]:
        """The override of each parameter (a group set to null that is absent: none)."""
        try:
            groups, choices, config = self._group_items(params)
            info = HydraAppInfo(
                choices=choices,
                groups=self.groups,
                config=config,
                group_options={n: self.options(n) for n in params if self.is_group(n)},
            )
            _, warnings = format_overrides(params, info)
        except ValueError as exc:
            raise _TrialError(str(exc)) from None
        out: dict[str, str] = {}
        for name, value in params.items():
            if self.is_group(name):
                if name in groups:
                    out[name] = groups[name]
                continue
            prefix = "" if _has_key(config, name) else "+"
            out[name] = f"{prefix}{name}={self.render(value)}"
            # hydra_args writes ++key for plain keys; this sweeper knows the config: +key
            warnings = [w.replace(f"++{name}=...", f"+{name}=...") for w in warnings]
        for warning in warnings:
            self.warn(warning)
        return out


def _hydra_message(exc: BaseException) -> str:
    """Hydra's message, with the messages of its causes (composition errors chain them)."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = str(seen).strip()
        if text and text not in parts:
            parts.append(text)
        seen = seen.__cause__
    return "\n".join(parts) or type(exc).__name__


# ---------------------------------------------------------------------------------------------
# Objectives
# ---------------------------------------------------------------------------------------------


def _number(value: Any) -> float | int | None:
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def return_summary(value: Any, metric: str) -> dict[str, Any]:
    """Summary entries for a task's return value: a number under ``metric``; for anything else
    the job callback's rule (a mapping's entries with ``/``-joined keys, ...), so a trial's
    summary is the same whether the callback or the sweeper recorded it."""
    number = _number(value)
    if number is not None:
        return {metric: number}
    if isinstance(value, Mapping) or type(value).__module__.startswith("omegaconf"):
        return return_value_summary(value)
    return {}


def _job_config(ret: JobReturn) -> dict[str, Any] | None:
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


def _finish_local_run(run_id: str, failed: bool) -> None:
    """Finish the run ``run_id`` if this process has it open (an in-process launcher ran the
    job and the task did not finish its run): its journal is then in the store."""
    from runyard.sdk import state

    for _ in range(16):
        run = state.current_run()
        if run is None or run.id != run_id:
            return
        run.finish(exit_code=1 if failed else 0, quiet=True)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# The sweeper
# ---------------------------------------------------------------------------------------------


class _Heartbeat:
    """Keeps the sweeper's agent alive in the store while Hydra runs a batch (the controller
    marks agents without heartbeats dead and their runs crashed), and reports early-termination
    decisions for the runs in flight."""

    def __init__(self, store: Store, controller: SweepControl, agent_id: str, early: bool) -> None:
        self.store = store
        self.controller = controller
        self.agent_id = agent_id
        self.early = early
        self.running: list[str] = []
        self.done = 0
        self._reported: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runyard-sweeper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                running = list(self.running)
                self.store.agent_heartbeat(
                    self.agent_id, running[0] if running else None, self.done
                )
                if self.early:
                    for run_id in running:
                        if run_id in self._reported:
                            continue
                        reason = self.controller.stop_decisions(run_id)
                        if reason is not None:
                            self._reported.add(run_id)
                            log.info(
                                "runyard sweeper: early termination stops run %s (%s); its "
                                "job ends early if the task checks run.should_stop",
                                run_id,
                                reason,
                            )
            except Exception as exc:  # a heartbeat must never kill the sweep
                log.debug("runyard sweeper heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_INTERVAL + 5)


class RunyardSweeperImpl:
    """The work behind ``hydra_plugins.runyard_sweeper.runyard_sweeper.RunyardSweeper``."""

    def __init__(
        self,
        method: str | None = None,
        n_trials: int | None = None,
        max_batch_size: int | None = None,
        metric: Any = None,
        objective: str = "auto",
        early_terminate: Any = None,
        params: Any = None,
        sweep_config: str | None = None,
        sweep_id: str | None = None,
        project: str | None = None,
        entity: str | None = None,
        name: str | None = None,
        seed: int | None = None,
        program: str | None = None,
    ) -> None:
        if objective not in OBJECTIVES:
            raise RunyardSweeperError(
                f"hydra.sweeper.objective={objective!r}: use one of {', '.join(OBJECTIVES)}"
            )
        if n_trials is not None and n_trials < 1:
            raise RunyardSweeperError(f"hydra.sweeper.n_trials={n_trials}: must be at least 1")
        if max_batch_size is not None and max_batch_size < 1:
            raise RunyardSweeperError(
                f"hydra.sweeper.max_batch_size={max_batch_size}: must be at least 1 "
                "(or null: the launcher's n_jobs)"
            )
        self.method = method
        self.n_trials = n_trials
        self.max_batch_size = max_batch_size
        self.metric: dict[str, Any] = _container(metric) or {}
        self.objective = objective
        self.early_terminate: dict[str, Any] | None = _container(early_terminate)
        self.params: dict[str, Any] = _container(params) or {}
        self.sweep_config = sweep_config
        self.sweep_id = sweep_id
        self.project = project
        self.entity = entity
        self.name = name
        self.seed = seed
        self.program = program
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher: Launcher | None = None
        self.task_function: TaskFunction | None = None
        self._warned: set[str] = set()

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.task_function = task_function
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    # -- entry point ------------------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> list[Sequence[JobReturn]]:
        assert self.config is not None and self.hydra_context is not None
        assert self.launcher is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")

        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        lines = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        try:
            spec = parse_search_space(parser, lines)
        except RunyardSweeperError:
            raise
        except HydraException as exc:
            raise RunyardSweeperError(f"hydra.sweeper: {_hydra_message(exc)}") from None
        for note in spec.notes:
            self._warn(note)
        app = _App(self.hydra_context.config_loader, self.config, spec.fixed, self._warn)

        if not spec.parameters and self.sweep_config is None and self.sweep_id is None:
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
        if self.sweep_id:
            record, config = self._resume(store, spec)
        else:
            record, config = self._create(store, spec, app)
        log.info(
            "runyard sweeper: sweep %s (%s, metric %s %s); store %s",
            record.path,
            config.method,
            config.metric.name if config.metric else "-",
            config.metric.goal if config.metric else "",
            api.store_url,
        )
        return self._run(store, api.root, api.store_url, record, config, spec, app, sweep_dir)

    # -- creating / resuming ------------------------------------------------------------------

    def _load_sweep_yaml(self) -> dict[str, Any]:
        """The sweep.yaml document (validated later, merged with the sweeper's options: it
        needs neither ``program`` nor ``parameters`` of its own)."""
        if self.sweep_config is None:
            return {}
        from hydra.utils import to_absolute_path

        path = to_absolute_path(self.sweep_config)
        try:
            doc = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        except OSError as exc:
            raise RunyardSweeperError(
                f"hydra.sweeper.sweep_config: cannot read {path}: {exc.strerror}"
            ) from None
        except Exception as exc:
            raise RunyardSweeperError(
                f"hydra.sweeper.sweep_config: {path} is not valid YAML: {exc}"
            ) from None
        if not isinstance(doc, dict):
            raise RunyardSweeperError(
                f"hydra.sweeper.sweep_config: {path} must hold a mapping (a sweep.yaml)"
            )
        return {str(k): v for k, v in doc.items()}

    def _program(self) -> str:
        assert self.config is not None
        cwd = Path(str(self.config.hydra.runtime.cwd))
        candidates: list[str] = []
        if sys.argv and sys.argv[0].endswith(".py"):
            candidates.append(sys.argv[0])
        try:
            import inspect

            target: Any = self.task_function
            source = inspect.getsourcefile(getattr(target, "__wrapped__", target))
            if source:
                candidates.append(source)
        except TypeError:
            pass
        for candidate in candidates:
            path = Path(candidate)
            if not path.is_absolute():
                path = cwd / path
            if path.is_file():
                path = path.resolve()
                try:
                    return path.relative_to(cwd.resolve()).as_posix()
                except ValueError:
                    return str(path)
        return sys.argv[0] if sys.argv else "unknown"

    def _document(self, spec: SearchSpec) -> dict[str, Any]:
        """The sweep.yaml document of a new sweep."""
        raw = self._load_sweep_yaml()
        parameters = _flat_parameters(raw.get("parameters") or {})
        for name in spec.parameters:
            parameters.pop(name, None)  # the command line / params win over the file
        parameters.update(spec.parameters)
        fixed_keys = {o.key_or_group for o in OverridesParser.create().parse_overrides(spec.fixed)}
        clash = sorted(set(parameters) & fixed_keys)
        if clash:
            raise RunyardSweeperError(
                f"{', '.join(clash)}: both set by a fixed override and swept by "
                f"{self.sweep_config}; remove one"
            )
        metric = dict(raw.get("metric") or {})
        metric.update({k: v for k, v in self.metric.items() if v is not None})
        metric.setdefault("name", DEFAULT_METRIC)
        metric.setdefault("goal", "minimize")
        method = self.method or raw.get("method") or "bayes"
        run_cap = self.n_trials if self.n_trials is not None else raw.get("run_cap")
        if run_cap is None and method != "grid":
            run_cap = DEFAULT_TRIALS
            log.info(
                "runyard sweeper: %s sweep of %d trials (set hydra.sweeper.n_trials)",
                method,
                run_cap,
            )
        command = raw.get("command") or [
            "${env}",
            "${interpreter}",
            "${program}",
            *(text.replace("${", "$${") for text in spec.fixed),
            "${args_hydra}",
        ]
        doc: dict[str, Any] = {
            "program": self.program or raw.get("program") or self._program(),
            "method": method,
            "metric": metric,
            "parameters": parameters,
            "command": command,
        }
        if run_cap is not None:
            doc["run_cap"] = run_cap
        early = self.early_terminate or raw.get("early_terminate")
        if early:
            doc["early_terminate"] = early
        for key, value in (
            ("name", self.name or raw.get("name")),
            ("description", raw.get("description")),
            ("project", self.project or raw.get("project")),
            ("entity", self.entity or raw.get("entity")),
        ):
            if value is not None:
                doc[key] = value
        return doc

    def _create(self, store: Store, spec: SearchSpec, app: _App) -> tuple[SweepRecord, SweepConfig]:
        doc = self._document(spec)
        try:
            config = load_sweep_config(doc)
        except SweepConfigError as exc:
            source = f" and {self.sweep_config}" if self.sweep_config else ""
            raise RunyardSweeperError(
                "the sweep is not valid (built from hydra.sweeper.*, the sweep overrides"
                f"{source}; parameters are named by config key or group):\n{exc}"
            ) from None
        for warning in config.warnings:
            self._warn(warning)
        self._check_groups(config, app)
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
            seed=self.seed if self.seed is not None else secrets.randbelow(2**31),
        )
        return record, config

    def _check_groups(self, config: SweepConfig, app: _App) -> None:
        """Option names of swept config groups must exist: say so before any trial runs."""
        for param in config.parameters:
            if not app.is_group(param.name):
                continue
            if param.distribution == "constant":
                values = [param.value]
            elif param.distribution == "categorical":
                values = list(param.values or [])
            else:
                raise RunyardSweeperError(
                    f"{param.name} is a config group: sweep it over option names "
                    f"(choice(...) or values: [...]), not a {param.distribution} distribution"
                )
            options = app.options(param.name)
            unknown = [v for v in values if v is not None and str(v) not in options]
            if options and unknown:
                raise RunyardSweeperError(
                    f"{param.name}: {', '.join(map(str, unknown))} not an option of the config "
                    f"group {param.name!r} (options: {', '.join(options)})"
                )

    def _resume(self, store: Store, spec: SearchSpec) -> tuple[SweepRecord, SweepConfig]:
        assert self.sweep_id is not None
        sweep_id = self.sweep_id.strip("/").rsplit("/", 1)[-1]
        record = store.get_sweep(sweep_id)
        if record is None:
            raise RunyardSweeperError(
                f"hydra.sweeper.sweep_id={self.sweep_id}: no such sweep in the store "
                "(check RUNYARD_BASE_URL / RUNYARD_STORE / RUNYARD_DIR)"
            )
        config = load_sweep_config(record.config)
        stored = _flat_parameters(record.config.get("parameters") or {})
        if spec.parameters and any(stored.get(k) != v for k, v in spec.parameters.items()):
            self._warn(
                f"resuming sweep {record.id}: the search space given now differs from the "
                "stored one, which is used"
            )
        asked = {
            "method": (self.method, config.method),
            "metric.name": (self.metric.get("name"), config.metric and config.metric.name),
            "metric.goal": (self.metric.get("goal"), config.metric and config.metric.goal),
        }
        for key, (given, kept) in asked.items():
            if given is not None and given != kept:
                self._warn(
                    f"resuming sweep {record.id}: {key}={given} is ignored; the sweep's "
                    f"{key} ({kept}) is kept"
                )
        if self.n_trials is not None and self.n_trials != config.run_cap:
            record, config = self._raise_run_cap(store, record, config, self.n_trials)
        command = config.command or []
        stored_fixed = [c.replace("$${", "${") for c in command[3:-1]]
        if command[-1:] == ["${args_hydra}"] and stored_fixed != spec.fixed:
            self._warn(
                f"resuming sweep {record.id}: the fixed overrides differ from the ones it was "
                f"started with ({' '.join(stored_fixed) or 'none'}); the ones given now are used"
            )
        self._reap(store.controller(record.id))
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
        return updated, load_sweep_config(updated.config)

    def _reap(self, controller: SweepControl) -> None:
        """Agents of the sweep whose process is gone: mark them dead and their pending/running
        trials crashed (they are not repeated, as for any dead agent). This process decides
        which agents are dead (a process id on this host is only checkable here); the
        controller marks them, sparing any agent heard from since it was read."""
        agents = self._patient("read the sweep's agents", controller.agents)
        dead = {a.id: a.heartbeat_at for a in agents if _agent_dead(a)}
        if dead:
            crashed = self._patient("reap dead agents", lambda: controller.reap(dead))
            if crashed:
                log.info(
                    "runyard sweeper: %d trial(s) of stopped sweepers or agents marked crashed",
                    len(crashed),
                )

    # -- the loop -----------------------------------------------------------------------------

    def _batch_size(self) -> int:
        if self.max_batch_size is not None:
            return self.max_batch_size
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
        app: _App,
        sweep_dir: Path,
    ) -> list[Sequence[JobReturn]]:
        assert self.launcher is not None
        controller = store.controller(record.id)
        agent_id = f"{hostname()}-{os.getpid()}-hydra-{uuid.uuid4().hex[:6]}"
        store.register_agent(agent_id, record.id, hostname(), os.getpid())
        heartbeat = _Heartbeat(
            store, controller, agent_id, bool(config.early_terminate and config.metric)
        )
        batch_size = self._batch_size()
        returns: list[Sequence[JobReturn]] = []
        job_idx = len(store.sweep_trials(record.id))
        env = _job_env(record, root, store_url)
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
                        jobs.append(self._job_overrides(app, spec, decision, env))
                        launched.append(decision)
                    except _TrialError as exc:
                        message = f"trial {decision.run_id} ({_params_text(decision)}): {exc}"
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
                self._write_results(store, controller, record, config, app, sweep_dir)
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
            self._abandon(controller, agent_id)
            try:
                store.agent_heartbeat(agent_id, None, heartbeat.done, state=state)
            except StoreError as exc:
                log.warning("runyard sweeper: could not record the agent's end: %s", exc)
        self._summary(controller, config, sweep_dir)
        if session and len(failures) == len(session):
            raise RunyardSweeperError(
                f"every trial of this sweep session failed ({len(session)}); the first: "
                + failures[0]
            )
        return returns

    def _next_batch(
        self,
        store: Store,
        controller: SweepControl,
        agent_id: str,
        size: int,
        heartbeat: _Heartbeat,
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

    def _job_overrides(
        self, app: _App, spec: SearchSpec, decision: Decision, env: Mapping[str, str]
    ) -> list[str]:
        """The trial's job overrides (fixed ones and parameters in the command line's order,
        then the env_set assignment), validated by composing them."""
        assert decision.run_id is not None
        by_name = app.overrides(decision.params)
        overrides: list[str] = []
        placed: set[str] = set()
        for kind, text in spec.slots:
            if kind == "fixed":
                overrides.append(text)
            elif text in decision.params:
                placed.add(text)
                if text in by_name:
                    overrides.append(by_name[text])
        overrides += [by_name[n] for n in decision.params if n not in placed and n in by_name]
        plain = {k: v for k, v in decision.params.items() if not app.is_group(k)}
        values = {
            **env,
            "RUNYARD_RUN_ID": decision.run_id,
            "RUNYARD_SWEEP_PARAMS": json.dumps(sanitize(nest(plain))),
        }
        job = [
            *overrides,
            *(f"++hydra.job.env_set.{k}={format_value(v)}" for k, v in values.items()),
        ]
        try:
            assert self.config is not None and self.hydra_context is not None
            self.hydra_context.config_loader.load_sweep_config(self.config, list(job))
        except Exception as exc:
            raise _TrialError(
                f"Hydra cannot compose the config with {' '.join(overrides)}: {_hydra_message(exc)}"
            ) from None
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
            _finish_local_run(decision.run_id or "", ret.status == JobStatus.FAILED)
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
            outcomes: list[tuple[Decision, JobReturn, _Outcome]] = []
            for decision, ret in todo:
                trial = trials.get(decision.run_id or "")
                if trial is not None:
                    outcome = self._outcome(trial, ret, config, decision)
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

    def _outcome(
        self, trial: TrialRecord, ret: JobReturn, config: SweepConfig, decision: Decision
    ) -> _Outcome:
        """What a job's return means for its trial, as read now (see :meth:`_settle`)."""
        run_id = trial.run_id
        metric = config.metric.name if config.metric else DEFAULT_METRIC
        goal = config.metric.goal if config.metric else "minimize"

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
            line = self._settled_line(trial, "stopped", None, metric, goal, decision)
            if trial.state == "stopped":
                return _Outcome(None, line)
            reason = getattr(ret._return_value, "reason", "") or "stopped by its sweep"
            return _Outcome(
                result(
                    "stopped",
                    {},
                    config=_job_config(ret) if trial.state == "pending" else None,
                    failure=f"stopped early: {reason}",
                ),
                line,
            )
        if ret.status != JobStatus.COMPLETED:
            exc = ret._return_value
            raised = f"the job raised {type(exc).__name__}: {exc}"[:2000]
            return _Outcome(
                result(
                    "failed",
                    {},
                    config=_job_config(ret) if trial.state == "pending" else None,
                    failure=raised,
                ),
                f"run {run_id} failed: {type(exc).__name__}: {exc}",
                failures=[f"run {run_id}: {raised}"],
            )
        updates = self._summary_updates(ret.return_value, trial, metric)
        if trial.state == "stopped":
            # The task saw run.should_stop and ended its run early: it stays stopped, with its
            # partial metric (and the return value, if any) for the search.
            summary = {**trial.summary, **updates}
            line = self._settled_line(trial, "stopped", summary, metric, goal, decision)
            if not updates:
                return _Outcome(None, line)
            return _Outcome(result("stopped", updates, failure=trial.failure), line)
        outcome = _Outcome(None, "")
        failure: str | None = None
        state = "finished"
        if self.objective == "return_value" and metric not in updates:
            state = "failed"
            failure = (
                f"objective=return_value, but the task returned {_short(ret.return_value)}: "
                f"return a number, or a mapping with {metric!r}"
            )
            outcome.failures.append(f"run {run_id}: {failure}")
        if trial.state == "pending":
            outcome.result = result(state, updates, config=_job_config(ret), failure=failure)
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
                f"a trial has no objective: the task returned {_short(ret.return_value, 60)} "
                f"and its run has no summary value {metric!r}. Return the objective (a "
                "number), or log it with runyard.log and set hydra.sweeper.metric.name"
            )
        outcome.line = (
            f"run {run_id} {state}"
            + (f" {metric}={value:.6g}" if value is not None else "")
            + f" ({_params_text(decision)})"
        )
        return outcome

    @staticmethod
    def _settled_line(
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
            + f" ({_params_text(decision)})"
        )

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

    def _summary_updates(self, value: Any, trial: TrialRecord, metric: str) -> dict[str, Any]:
        if self.objective == "summary":
            return {}
        entries = return_summary(value, metric)
        if self.objective == "return_value":
            return entries
        # auto: what the task logged itself wins over its return value
        return {k: v for k, v in entries.items() if k not in trial.summary}

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

    def _write_results(
        self,
        store: Store,
        controller: SweepControl,
        record: SweepRecord,
        config: SweepConfig,
        app: _App,
        sweep_dir: Path,
    ) -> None:
        trials = store.sweep_trials(record.id)
        states: dict[str, int] = {}
        for trial in trials:
            states[trial.state] = states.get(trial.state, 0) + 1
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
            except _TrialError:
                pass
        try:
            OmegaConf.save(OmegaConf.create(sanitize_yaml(doc)), sweep_dir / RESULTS_FILE)
        except Exception as exc:
            log.warning("runyard sweeper: could not write %s: %s", RESULTS_FILE, exc)

    def _summary(self, controller: SweepControl, config: SweepConfig, sweep_dir: Path) -> None:
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

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("runyard sweeper: %s", message)


def sanitize_yaml(value: Any) -> Any:
    """Plain values for OmegaConf (NumPy scalars as Python ones, tuples as lists)."""
    if isinstance(value, Mapping):
        return {str(k): sanitize_yaml(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize_yaml(v) for v in value]
    return plain_value(value)


def _params_text(decision: Decision) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in decision.params.items())


def _container(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, DictConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


@dataclass
class _Outcome:
    """A job's outcome for its trial: the result to record (None: the run stays as it is),
    the log line, failure messages and warnings (reported once the result is recorded)."""

    result: TrialResult | None
    line: str
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _job_env(record: SweepRecord, root: Path, store_url: str) -> dict[str, str]:
    """The ``RUNYARD_*`` variables that make a job's ``runyard.init()`` join its trial in the
    sweeper's store, wherever the launcher runs it: the journal folder, and the store unless it
    is the embedded one of that folder (a runyard server's URL, a PostgreSQL URL). The API key
    is never written into the job's config: jobs inherit ``RUNYARD_API_KEY`` (or the saved
    ``runyard login``) from their environment."""
    env = {
        "RUNYARD_SWEEP_ID": record.id,
        "RUNYARD_PROJECT": record.project,
        "RUNYARD_ENTITY": record.entity,
        "RUNYARD_DIR": str(root),
    }
    if os.environ.get("RUNYARD_BASE_URL"):  # it wins over RUNYARD_STORE: pass it on
        env["RUNYARD_BASE_URL"] = os.environ["RUNYARD_BASE_URL"]
    if os.environ.get("RUNYARD_STORE"):
        env["RUNYARD_STORE"] = os.environ["RUNYARD_STORE"]
    if store_url != default_store_url(root):
        env["RUNYARD_STORE"] = store_url
    return env


def _agent_dead(agent: AgentRecord) -> bool:
    if agent.state != "running":
        return False
    if agent.host == hostname() and agent.pid:
        if agent.pid == os.getpid():
            return True  # an earlier sweep of this process, which is over
        try:
            os.kill(agent.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return time.time() - agent.heartbeat_at > agent_timeout()
