"""A new sweep's ``sweep.yaml`` document, built from the sweeper's options
(``hydra.sweeper.*``, :class:`Options`), the search space of the command line and
``hydra.sweeper.params``, and an optional ``sweep_config`` file."""

from __future__ import annotations

import difflib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from runyard.integrations.hydra._app import App, has_key, key_paths
from runyard.integrations.hydra._errors import RunyardSweeperError
from runyard.integrations.hydra._outcomes import DEFAULT_METRIC, OBJECTIVES
from runyard.integrations.hydra._space import SearchSpec, flat_parameters
from runyard.sweeps.config import SweepConfig, SweepConfigError, load_sweep_config
from runyard.sweeps.space import Parameter

log = logging.getLogger("runyard.integrations.hydra.sweeper")

__all__ = [
    "DEFAULT_TRIALS",
    "Options",
    "check_groups",
    "check_keys",
    "load_sweep_yaml",
    "program_path",
    "sweep_document",
]

#: trials of a random or bayes sweep when neither n_trials nor the sweep.yaml's run_cap says
DEFAULT_TRIALS = 20


def _container(value: Any) -> Any:
    if value is None:
        return None
    if OmegaConf.is_config(value):  # DictConfig, ListConfig
        return OmegaConf.to_container(value, resolve=True)
    return value


@dataclass
class Options:
    """The sweeper's options (``hydra.sweeper.*``; docs/hydra-sweeper.md lists them)."""

    method: str | None = None
    n_trials: int | None = None
    max_batch_size: int | None = None
    metric: dict[str, Any] = field(default_factory=dict)
    direction: Any = None
    metrics: Any = None
    objective: str = "auto"
    early_terminate: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sweep_config: str | None = None
    sweep_id: str | None = None
    project: str | None = None
    entity: str | None = None
    name: str | None = None
    seed: int | None = None
    program: str | None = None

    def __post_init__(self) -> None:
        self.metric = _container(self.metric) or {}
        self.early_terminate = _container(self.early_terminate)
        self.params = _container(self.params) or {}
        self.direction = _container(self.direction)
        self.metrics = _container(self.metrics)
        self._objectives()
        if self.objective not in OBJECTIVES:
            raise RunyardSweeperError(
                f"hydra.sweeper.objective={self.objective!r}: use one of {', '.join(OBJECTIVES)}"
            )
        if self.n_trials is not None and self.n_trials < 1:
            raise RunyardSweeperError(f"hydra.sweeper.n_trials={self.n_trials}: must be at least 1")
        if self.max_batch_size is not None and self.max_batch_size < 1:
            raise RunyardSweeperError(
                f"hydra.sweeper.max_batch_size={self.max_batch_size}: must be at least 1 "
                "(or null: the launcher's n_jobs)"
            )

    def _objectives(self) -> None:
        """``direction`` (hydra-optuna-sweeper's: a goal, or a list of goals) and ``metrics``
        (runyard's: a list of ``{name, goal}``): checked here, merged by :meth:`metrics_doc`."""
        direction = self.direction
        if isinstance(direction, str):
            if self.metric.get("goal") not in (None, direction):
                raise RunyardSweeperError(
                    f"hydra.sweeper.direction={direction} and hydra.sweeper.metric.goal="
                    f"{self.metric['goal']} disagree: give one of them"
                )
            self.metric["goal"] = direction
            self.direction = None
            return
        if direction is None:
            return
        if not isinstance(direction, list) or not direction:
            raise RunyardSweeperError(
                f"hydra.sweeper.direction={direction!r}: give minimize or maximize, or a list "
                "of them for several objectives ([minimize, maximize])"
            )
        bad = [d for d in direction if d not in ("minimize", "maximize")]
        if bad:
            raise RunyardSweeperError(
                f"hydra.sweeper.direction: {bad[0]!r} is not minimize or maximize (e.g. "
                "hydra.sweeper.direction=[minimize,maximize])"
            )
        if self.metric.get("name") is not None and len(direction) > 1:
            raise RunyardSweeperError(
                "hydra.sweeper.metric.name names one objective, but hydra.sweeper.direction "
                f"has {len(direction)}: name them with hydra.sweeper.metrics=[{{name: ..., "
                "goal: ...}, ...] instead"
            )
        if isinstance(self.metrics, list) and len(self.metrics) != len(direction):
            raise RunyardSweeperError(
                f"hydra.sweeper.direction has {len(direction)} goals and hydra.sweeper.metrics "
                f"{len(self.metrics)} objectives: give as many of each (or only metrics)"
            )

    def metrics_doc(self, raw: Any) -> list[Any] | None:
        """The sweep's ``metrics`` (None: a single ``metric``), from ``metrics``, ``direction``
        (names default to ``return_value/0``, ``return_value/1``...: the task's return value,
        by position) and the sweep.yaml's ``metrics``."""
        direction = self.direction if isinstance(self.direction, list) else None
        metrics = self.metrics if self.metrics is not None else raw
        if metrics is None and direction is None:
            return None
        if metrics is None:
            assert direction is not None
            if len(direction) == 1:
                return None
            metrics = [{"name": f"{DEFAULT_METRIC}/{i}"} for i in range(len(direction))]
        if not isinstance(metrics, list):
            return [metrics]  # sweep.yaml's validation says what is wrong
        out = [dict(m) if isinstance(m, dict) else m for m in metrics]
        if direction is not None:
            if len(direction) != len(out):
                raise RunyardSweeperError(
                    f"hydra.sweeper.direction has {len(direction)} goals and the sweep_config's "
                    f"metrics {len(out)} objectives: give as many of each"
                )
            for entry, goal in zip(out, direction, strict=True):
                if isinstance(entry, dict):
                    entry["goal"] = goal
        return out


def load_sweep_yaml(sweep_config: str | None) -> dict[str, Any]:
    """The sweep.yaml document (validated later, merged with the sweeper's options: it
    needs neither ``program`` nor ``parameters`` of its own)."""
    if sweep_config is None:
        return {}
    from hydra.utils import to_absolute_path

    path = to_absolute_path(sweep_config)
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


def program_path(config: DictConfig, task_function: Any) -> str:
    """The app's script, relative to the launch folder where it is inside it."""
    cwd = Path(str(config.hydra.runtime.cwd))
    candidates: list[str] = []
    if sys.argv and sys.argv[0].endswith(".py"):
        candidates.append(sys.argv[0])
    try:
        import inspect

        target: Any = task_function
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


def sweep_document(
    options: Options, spec: SearchSpec, program: Callable[[], str]
) -> dict[str, Any]:
    """The sweep.yaml document of a new sweep."""
    raw = load_sweep_yaml(options.sweep_config)
    parameters = flat_parameters(raw.get("parameters") or {})
    for name in spec.parameters:
        parameters.pop(name, None)  # the command line / params win over the file
    parameters.update(spec.parameters)
    fixed_keys = {o.key_or_group for o in OverridesParser.create().parse_overrides(spec.fixed)}
    clash = sorted(set(parameters) & fixed_keys)
    if clash:
        raise RunyardSweeperError(
            f"{', '.join(clash)}: both set by a fixed override and swept by "
            f"{options.sweep_config}; remove one"
        )
    metrics = options.metrics_doc(raw.get("metrics"))
    metric = dict(raw.get("metric") or {})
    metric.update({k: v for k, v in options.metric.items() if v is not None})
    metric.setdefault("name", DEFAULT_METRIC)
    metric.setdefault("goal", "minimize")
    if metrics is not None and len(metrics) == 1 and isinstance(metrics[0], dict):
        metric, metrics = {"goal": "minimize", **metrics[0]}, None
    given = sorted(k for k, v in options.metric.items() if v is not None)
    if metrics is not None and given:
        raise RunyardSweeperError(
            f"hydra.sweeper.metric.{given[0]} is for a sweep of one objective, and this one has "
            f"{len(metrics)} (hydra.sweeper.direction / metrics): remove it"
        )
    method = options.method or raw.get("method") or _default_method(parameters)
    run_cap = options.n_trials if options.n_trials is not None else raw.get("run_cap")
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
        "program": options.program or raw.get("program") or program(),
        "method": method,
        **({"metrics": metrics} if metrics is not None else {"metric": metric}),
        "parameters": parameters,
        "command": command,
    }
    if run_cap is not None:
        doc["run_cap"] = run_cap
    early = options.early_terminate or raw.get("early_terminate")
    if early:
        doc["early_terminate"] = early
    for key, value in (
        ("name", options.name or raw.get("name")),
        ("description", raw.get("description")),
        ("project", options.project or raw.get("project")),
        ("entity", options.entity or raw.get("entity")),
    ):
        if value is not None:
            doc[key] = value
    return doc


def _default_method(parameters: dict[str, dict[str, Any]]) -> str:
    """Without a method: ``grid`` when every parameter has a finite set of values (what
    Hydra's basic sweeper runs), else ``bayes``. Says which in the log."""
    try:
        probe = load_sweep_config(
            {
                "method": "grid",
                "parameters": parameters,
                "command": ["${args_hydra}"],
            }
        )
        cells = probe.parameters.grid_size()
    except (SweepConfigError, ValueError):
        log.info(
            "runyard sweeper: no method given; some parameter is not a finite set of values, "
            "so the sweep is bayes (set hydra.sweeper.method)"
        )
        return "bayes"
    log.info(
        "runyard sweeper: no method given and every parameter is a finite set of values: a "
        "grid sweep of %d cells, as Hydra's basic sweeper runs (set hydra.sweeper.method=random "
        "or bayes to search instead)",
        cells,
    )
    return "grid"


def _choice_values(param: Parameter) -> list[Any]:
    if param.distribution == "constant":
        return [param.value]
    return list(param.values or [])


def check_groups(config: SweepConfig, app: App) -> None:
    """Option names of swept config groups must exist: say so before any trial runs."""
    for param in config.parameters:
        if not app.is_group(param.name):
            continue
        if param.distribution not in ("constant", "categorical"):
            raise RunyardSweeperError(
                f"{param.name} is a config group: sweep it over option names "
                f"(choice(...) or values: [...]), not a {param.distribution} distribution"
            )
        names: list[Any] = []
        for value in _choice_values(param):
            names += value if isinstance(value, list | tuple) else [value]  # multi-select
        options = app.options(param.name)
        unknown = [v for v in names if v is not None and str(v) not in options]
        if options and unknown:
            raise RunyardSweeperError(
                f"{param.name}: {', '.join(map(str, unknown))} not an option of the config "
                f"group {param.name!r} (options: {', '.join(options)})"
            )


def check_keys(config: SweepConfig, app: App, from_file: set[str]) -> None:
    """Every swept plain key must be a key of the app's config (composed with each option of
    the swept config groups), unless it was written ``+key``/``++key``: a typo fails here,
    before any trial runs, as Hydra's own sweepers fail (naming the closest existing key)."""
    plain = [p for p in config.parameters if not app.is_group(p.name) and p.name not in app.added]
    if not plain:
        return
    groups = [p for p in config.parameters if app.is_group(p.name)]
    base = {p.name: _choice_values(p)[0] for p in groups if _choice_values(p)}
    assignments = [base] + [
        {**base, p.name: value} for p in groups for value in _choice_values(p)[1:]
    ]
    configs = app.composed(assignments)
    paths = set().union(*(key_paths(c) for c in configs)) if configs else set()
    problems = []
    for param in plain:
        if any(has_key(c, param.name) for c in configs):
            continue
        close = difflib.get_close_matches(param.name, sorted(paths), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        as_group = param.name.replace(".", "/")
        if as_group in app.groups:
            hint = f" ({as_group} is a config group: sweep it by that name)"
        how = (
            f"sweep it as +{param.name}=... in hydra.sweeper.params or on the command line"
            if param.name in from_file
            else f"write +{param.name}=... (++{param.name}=... adds or overrides)"
        )
        problems.append(
            f"{param.name}: not a key of the app's config{hint}. To add a key that is not in "
            f"the config on purpose, {how}"
        )
    if problems:
        raise RunyardSweeperError(
            "a swept key is not in the app's config; no trial was run:\n" + "\n".join(problems)
        )
