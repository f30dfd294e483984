"""sweep.yaml: loading and validating a sweep configuration (W&B's format).

:func:`load_sweep_config` reads a YAML or JSON file (or takes a dict), checks every key, and
returns a :class:`SweepConfig` whose ``parameters`` is a :class:`~runyard.sweeps.space.SearchSpace`.
It reports *every* problem at once in a :class:`SweepConfigError`, each as
``<key path>: <what is wrong>. Fix: <what to do>``, e.g.
``parameters.optimizer.parameters.lr.min: 0.1 is not less than max (0.01). Fix: ...``.

The format is W&B's (https://docs.wandb.ai/models/sweeps/sweep-config-keys; the JSON schema in
``wandb/sweeps``: ``src/sweeps/config/schema.json``). Where W&B is silent or lax, runyard is
strict (unknown keys, unknown command macros and invalid ``metric.goal`` are errors) and says
how to fix the file. ``docs/sweeps.md`` ("sweep.yaml reference") documents it for users.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import os
import re
import shlex
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from runyard.sweeps.command import DEFAULT_COMMAND, MACROS, unknown_macros
from runyard.sweeps.space import (
    DEPRECATED_DISTRIBUTIONS,
    DISTRIBUTION_KEYS,
    DISTRIBUTIONS,
    MAX_GRID_VALUES,
    Parameter,
    SearchSpace,
    value_key,
)
from runyard.sweeps.stopping import EarlyStoppingConfigError, build_early_stopping

__all__ = [
    "DEFAULT_COMMAND",
    "GOALS",
    "METHODS",
    "TOP_LEVEL_KEYS",
    "MetricSpec",
    "SweepConfig",
    "SweepConfigError",
    "SweepConfigWarning",
    "load_sweep_config",
]

Method = Literal["grid", "random", "bayes"]
Goal = Literal["minimize", "maximize"]

METHODS: tuple[str, ...] = ("grid", "random", "bayes")
GOALS: tuple[str, ...] = ("minimize", "maximize")
IMPUTE: tuple[str, ...] = ("worst", "best", "latest")
IMPUTE_WHILE_RUNNING: tuple[str, ...] = ("false", "worst", "best", "latest")

#: every top-level key runyard accepts
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "program",
    "method",
    "metric",
    "metrics",
    "parameters",
    "command",
    "early_terminate",
    "run_cap",
    "name",
    "description",
    "project",
    "entity",
    "controller",
    "apiVersion",
    "kind",
)
#: keys of W&B's schema for features runyard does not have: an error that says so
UNSUPPORTED_KEYS: dict[str, str] = {
    "job": "`job` runs a W&B Launch job; runyard runs `program` / `command` on its agents",
    "image_uri": "`image_uri` is for W&B Launch; runyard runs `program` / `command` on its agents",
    "scheduler": "`scheduler` (W&B custom schedulers: optuna, ax) is not supported; use "
    "method grid, random or bayes",
}
METRIC_KEYS: tuple[str, ...] = ("name", "goal", "target", "impute", "impute_while_running")
#: keys of one entry of ``metrics`` (several objectives)
METRICS_ENTRY_KEYS: tuple[str, ...] = ("name", "goal")
#: at most this many objectives in ``metrics``
MAX_METRICS = 8
#: every key a parameter spec may have (which ones depend on the distribution)
PARAMETER_KEYS: tuple[str, ...] = (
    "distribution",
    "value",
    "values",
    "probabilities",
    "min",
    "max",
    "q",
    "mu",
    "sigma",
    "a",
    "b",
    "parameters",
)
#: W&B's parameter-name pattern (schema.json ``propertyNames``), without empty dotted segments
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_0-9][A-Za-z0-9_-]*)*")
#: a nested Hydra config group (``db/engine``: Hydra's ``ID ('/' ID)+``) or a group with a
#: package (``db@backup``, ``db/engine@backup.engine``), top level only
_GROUP_PATH = re.compile(
    r"[A-Za-z_][A-Za-z0-9_-]*(?:/[A-Za-z_][A-Za-z0-9_-]*)+"
    r"(?:@[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)?"
    r"|[A-Za-z_][A-Za-z0-9_-]*@[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*"
)
#: macros that expand to several arguments, so must be a whole command item
_LIST_MACROS = ("args", "args_no_hyphens", "args_no_boolean_flags", "args_hydra")
#: W&B's sweeps library writes this alias when it fills a categorical that has probabilities
_CATEGORICAL_ALIAS = "categorical_w_probabilities"


class SweepConfigError(ValueError):
    """An invalid sweep config; ``problems`` lists every problem found, one per line."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    def __str__(self) -> str:
        return "\n".join(self.problems)


class SweepConfigWarning(UserWarning):
    """Something in a valid sweep config that is deprecated or probably not what was meant."""


@dataclass(frozen=True)
class MetricSpec:
    """The ``metric`` section: what the sweep optimises.

    ``impute`` / ``impute_while_running`` are W&B's (newer) keys, validated and kept as given
    (``"false"``: off); runyard's search methods may ignore them.
    """

    name: str
    goal: Goal = "minimize"
    target: float | None = None
    impute: str = "worst"
    impute_while_running: str = "false"


@dataclass
class SweepConfig:
    """A validated sweep config. ``raw`` is the document as given (parsed, not normalised)."""

    method: Method
    parameters: SearchSpace
    program: str | None = None
    metric: MetricSpec | None = None
    #: the command as given; None means :data:`DEFAULT_COMMAND`
    command: list[str] | None = None
    #: the ``early_terminate`` section as given (see :mod:`runyard.sweeps.stopping`)
    early_terminate: dict[str, Any] | None = None
    run_cap: int | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    entity: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: every objective, in order: ``(metric,)`` for a single ``metric``, the entries of
    #: ``metrics`` for a multi-objective sweep (runyard's extension), ``()`` for none
    metrics: tuple[MetricSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.metrics and self.metric is not None:
            self.metrics = (self.metric,)

    @property
    def multi_objective(self) -> bool:
        """Several objectives (``metrics`` with two or more entries): the search and the
        reports use the Pareto front (see :mod:`runyard.sweeps.pareto`)."""
        return len(self.metrics) > 1

    @property
    def effective_command(self) -> list[str]:
        """``command``, or W&B's default command when it is not given."""
        return list(self.command) if self.command is not None else list(DEFAULT_COMMAND)


# ------------------------------------------------------------------------------------------
# reading the document


class _Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that records duplicate keys and reads ``1e-4`` as a float (as YAML 1.2 does).

    PyYAML follows YAML 1.1, where a float needs a dot: ``1e-4`` would be the *string*
    ``"1e-4"`` (and W&B would reject it as not a number).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append(
                    f"line {line}: duplicate key `{key_node.value}` (first at line "
                    f"{seen[key]}); YAML keeps only the last one. Fix: remove or rename one"
                )
            else:
                seen[key] = line
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _parse(text: str, label: str, is_json: bool) -> tuple[Any, list[str]]:
    """The document and the duplicate-key problems; SweepConfigError for a syntax error."""
    if is_json:
        try:
            return json.loads(text), []
        except json.JSONDecodeError as exc:
            raise SweepConfigError(
                [f"{label}: JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"]
            ) from None
    loader = _Loader(text)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = "; ".join(str(s) for s in (exc.context, exc.problem) if s)
        fix = ""
        if "\\t" in what or "\t" in what:
            fix = ". Fix: indent with spaces, not tabs"
        raise SweepConfigError([f"{label}: YAML syntax error{where}: {what}{fix}"]) from None
    except yaml.YAMLError as exc:
        raise SweepConfigError([f"{label}: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    return doc, loader.duplicates


def load_sweep_config(
    source: str | os.PathLike[str] | Mapping[str, Any], *, require_program: bool = True
) -> SweepConfig:
    """Read and validate a sweep config: a YAML/JSON file path, or the document as a dict.

    ``require_program=False`` accepts a sweep without ``program`` although its command needs
    one: a sweep whose trials a Python function runs (``runyard.agent(id, function=...)``),
    as W&B's notebook sweeps have no program.

    Raises :class:`SweepConfigError` listing every problem (syntax errors with their line),
    and OSError if the file cannot be read. Warnings (deprecated distributions, ignored keys)
    are in ``SweepConfig.warnings`` and are also issued as :class:`SweepConfigWarning`.
    """
    duplicates: list[str] = []
    if isinstance(source, Mapping):
        doc: Any = copy.deepcopy(dict(source))
        label = "sweep config"
    else:
        path = Path(os.fspath(source))
        label = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise SweepConfigError([f"{label}: not UTF-8 text ({exc.reason})"]) from None
        doc, duplicates = _parse(text, label, path.suffix.lower() == ".json")
    if doc is None or (isinstance(doc, Mapping) and not doc):
        raise SweepConfigError(
            [
                f"{label} is empty. Fix: give at least `method` and `parameters`, e.g. "
                "method: random, parameters: {lr: {min: 0.0001, max: 0.1}}"
            ]
        )
    if not isinstance(doc, Mapping):
        raise SweepConfigError(
            [
                f"{label} must be a mapping of keys (method, parameters, ...), got a "
                f"{type(doc).__name__}. Fix: write `key: value` lines at the top level"
            ]
        )
    checker = _Checker(require_program)
    checker.problems.extend(duplicates)
    config = checker.check(dict(doc))
    if checker.problems or config is None:
        raise SweepConfigError(checker.problems)
    for message in config.warnings:
        warnings.warn(message, SweepConfigWarning, stacklevel=2)
    return config


# ------------------------------------------------------------------------------------------
# validation


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _fmt(x: Any) -> str:
    """A value as it would be written in YAML (roughly), for messages."""
    if isinstance(x, str):
        return json.dumps(x)
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, float):
        return repr(x)
    try:
        return json.dumps(x)
    except (TypeError, ValueError):
        return repr(x)


def _did_you_mean(word: str, choices: Sequence[str], cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=cutoff)
    return close[0] if close else None


#: names other tools (Optuna, Hyperopt, Ray Tune) give W&B's distributions
_DISTRIBUTION_ALIASES: dict[str, str] = {
    "gaussian": "normal",
    "qnormal": "q_normal",
    "lognormal": "log_normal",
    "qlognormal": "q_log_normal",
    "loguniform": "log_uniform_values",
    "qloguniform": "q_log_uniform_values",
    "reciprocal": "log_uniform_values",
    "quniform": "q_uniform",
    "randint": "int_uniform",
    "integer": "int_uniform",
    "int": "int_uniform",
    "float": "uniform",
    "choice": "categorical",
    "categorical_w_probabilities": "categorical",
    "fixed": "constant",
}


def _closest_distribution(name: str) -> str | None:
    """The distribution a misspelt or foreign name most likely means (never a deprecated one)."""
    key = name.strip().lower().replace("-", "_")
    if key in DISTRIBUTIONS:
        close: str | None = key
    else:
        close = _did_you_mean(key, [*DISTRIBUTIONS, *_DISTRIBUTION_ALIASES])
    close = _DISTRIBUTION_ALIASES.get(close or "", close)
    return DEPRECATED_DISTRIBUTIONS.get(close or "", close)


def _json_issue(value: Any) -> str | None:
    """Why ``value`` is not a JSON value (None if it is)."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value!r} is not a finite number"
    if isinstance(value, list | tuple):
        for item in value:
            issue = _json_issue(item)
            if issue:
                return issue
        return None
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"mapping key {k!r} is not a string"
            issue = _json_issue(v)
            if issue:
                return issue
        return None
    return f"{value!r} is a {type(value).__name__}, not a JSON value"


def _uses_program(command: Sequence[str]) -> bool:
    return any(re.search(r"(?<!\$)\$\{program\}", item) for item in command)


class _Checker:
    def __init__(self, require_program: bool = True) -> None:
        self.require_program = require_program
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def add(self, path: str, message: str, fix: str | None = None) -> None:
        text = f"{path}: {message}" if path else message
        if fix:
            text += f". Fix: {fix}"
        self.problems.append(text)

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(f"{path}: {message}" if path else message)

    # -- top level ---------------------------------------------------------------------------

    def check(self, doc: dict[str, Any]) -> SweepConfig | None:
        for key in doc:
            if not isinstance(key, str):
                self.add(repr(key), "keys must be strings", "quote the key")
            elif key in UNSUPPORTED_KEYS:
                self.add(key, UNSUPPORTED_KEYS[key], f"remove `{key}`")
            elif key not in TOP_LEVEL_KEYS:
                close = _did_you_mean(key, TOP_LEVEL_KEYS)
                fix = (
                    f"did you mean `{close}`?"
                    if close
                    else f"remove it; the keys are {', '.join(TOP_LEVEL_KEYS)}"
                )
                self.add(key, "unknown key", fix)

        strings = {
            k: self.string(doc, k)
            for k in ("program", "name", "description", "project", "entity", "apiVersion")
        }
        if "kind" in doc and doc["kind"] != "sweep":
            self.add(
                "kind",
                f"must be `sweep`, got {_fmt(doc['kind'])}",
                "write kind: sweep or remove it",
            )
        self.controller(doc)
        method = self.method(doc)
        metric = self.metric(doc["metric"]) if "metric" in doc else None
        metrics = self.metrics(doc) if "metrics" in doc else ()
        if "metric" in doc and "metrics" in doc:
            self.add(
                "metrics",
                "is given together with `metric`",
                "keep one: `metric` for one objective, or `metrics: [{name: ..., goal: ...}, "
                "...]` for several (move the metric into the list)",
            )
        elif len(metrics) == 1:
            metric = metrics[0]  # one objective written as a list: a plain single-metric sweep
        has_metric = "metric" in doc or "metrics" in doc
        entries = self.parameters_section(doc)
        command = self.command(doc)
        run_cap = self.run_cap(doc)
        early = self.early_terminate(doc, metric)

        # cross-key rules
        if len(metrics) > 1 and "early_terminate" in doc:
            self.add(
                "early_terminate",
                "judges runs by one metric, and this sweep has several `metrics`",
                "remove early_terminate, or optimise one `metric`",
            )
        if method == "bayes" and not has_metric:
            self.add(
                "metric",
                "is missing, and method bayes needs a metric to optimise",
                "add metric: {name: <a metric your program logs>, goal: minimize} "
                "(or maximize), or use method random",
            )
        if "early_terminate" in doc and not has_metric:
            self.add(
                "metric",
                "is missing, and early_terminate needs a metric to judge runs by",
                "add metric: {name: <a metric your program logs>, goal: minimize} "
                "(or maximize), or remove early_terminate",
            )
        program_invalid = doc.get("program") is not None and strings["program"] is None
        if (
            self.require_program
            and command is not False
            and strings["program"] is None
            and not program_invalid
        ):
            if command is None:
                self.add(
                    "program",
                    f"is missing, and the default command ({' '.join(DEFAULT_COMMAND)}) runs it",
                    "add program: <your script, e.g. train.py>, or give a `command`",
                )
            elif _uses_program(command):
                self.add(
                    "program",
                    "is missing, but `command` uses ${program}",
                    "add program: <your script, e.g. train.py>, or remove ${program} "
                    "from the command",
                )
        if method == "grid" and entries:
            self.grid(entries)
        groups = [p.name for p, _ in entries or [] if "/" in p.name or "@" in p.name]
        uses_hydra = isinstance(command, list) and any(
            "${args_hydra}" in str(item) for item in command
        )
        if groups and not uses_hydra and command is not False:
            self.warn(
                f"parameters.{groups[0]}",
                "a name with '/' or '@' is a Hydra config group, passed as a group override "
                "only by ${args_hydra} (and the Hydra sweeper); this command passes it as "
                f"--{groups[0]}=...",
            )

        if self.problems or method is None or entries is None:
            return None
        try:
            space = SearchSpace(tuple(p for p, _ in entries), hydra_groups=uses_hydra)
        except ValueError as exc:
            self.add("parameters", str(exc), "rename one of the parameters")
            return None
        return SweepConfig(
            method=method,
            parameters=space,
            program=strings["program"],
            metric=metric if len(metrics) <= 1 else None,
            metrics=metrics if len(metrics) > 1 else (),
            command=command or None,
            early_terminate=early,
            run_cap=run_cap,
            name=strings["name"],
            description=strings["description"],
            project=strings["project"],
            entity=strings["entity"],
            raw=copy.deepcopy(doc),
            warnings=self.warnings,
        )

    def string(self, doc: Mapping[str, Any], key: str) -> str | None:
        if key not in doc or doc[key] is None:
            return None
        value = doc[key]
        if not isinstance(value, str):
            self.add(key, f"must be a string, got {_fmt(value)}", f'quote it: {key}: "{value}"')
            return None
        if key == "program" and not value.strip():
            self.add(key, "is empty", "name your script, e.g. program: train.py")
            return None
        return value

    def controller(self, doc: Mapping[str, Any]) -> None:
        if "controller" not in doc:
            return
        spec = doc["controller"]
        if not isinstance(spec, Mapping) or spec.get("type") not in ("local", "cloud"):
            self.add(
                "controller",
                f"must be {{type: local}} or {{type: cloud}}, got {_fmt(spec)}",
                "remove it (runyard ignores it)",
            )
            return
        for key in spec:
            if key != "type":
                self.add(f"controller.{key}", "unknown key", "remove it")
        self.warn(
            "controller",
            "is ignored: runyard has no separate controller process; its agents choose the runs",
        )

    def method(self, doc: Mapping[str, Any]) -> Method | None:
        if "method" not in doc:
            self.add("method", "is missing", "add method: grid, random or bayes")
            return None
        value = doc["method"]
        if value == "grid":
            return "grid"
        if value == "random":
            return "random"
        if value == "bayes":
            return "bayes"
        if value == "custom":
            self.add(
                "method",
                "`custom` (W&B's custom schedulers) is not supported",
                "use grid, random or bayes",
            )
            return None
        close = _did_you_mean(str(value), METHODS, cutoff=0.4)
        self.add(
            "method",
            f"must be grid, random or bayes, got {_fmt(value)}",
            f"did you mean `{close}`?" if close else "use grid, random or bayes",
        )
        return None

    def metric(
        self, spec: Any, path: str = "metric", keys: tuple[str, ...] = METRIC_KEYS
    ) -> MetricSpec | None:
        if not isinstance(spec, Mapping):
            example = spec if isinstance(spec, str) else "val_loss"
            self.add(
                path,
                f"must be a mapping, got {_fmt(spec)}",
                (
                    f"write metric: {{name: {example}, goal: minimize}} (or maximize)"
                    if path == "metric"
                    else f"write {{name: {example}, goal: minimize}} (or maximize)"
                ),
            )
            return None
        ok = True
        for key in spec:
            if key not in keys:
                ok = False
                if key in METRIC_KEYS:
                    self.add(
                        f"{path}.{key}",
                        "applies to a single `metric` only, not to one of several `metrics`",
                        f"remove it; an entry of metrics takes {', '.join(keys)}",
                    )
                    continue
                close = _did_you_mean(str(key), keys)
                self.add(
                    f"{path}.{key}",
                    "unknown key",
                    f"did you mean `{close}`?"
                    if close
                    else f"remove it; {path} takes {', '.join(keys)}",
                )
        name = spec.get("name")
        if "name" not in spec:
            ok = False
            self.add(
                f"{path}.name",
                "is missing",
                "name the metric your program logs, e.g. name: val_loss",
            )
        elif not isinstance(name, str) or not name.strip():
            ok = False
            self.add(
                f"{path}.name",
                f"must be a non-empty string, got {_fmt(name)}",
                "name the metric your program logs, e.g. name: val_loss",
            )
        goal = spec.get("goal", "minimize")
        if goal not in GOALS:
            ok = False
            close = _did_you_mean(str(goal), GOALS, cutoff=0.4)
            self.add(
                f"{path}.goal",
                f"must be minimize or maximize, got {_fmt(goal)}",
                f"did you mean `{close}`?" if close else "use goal: minimize or maximize",
            )
        target = spec.get("target")
        if target is not None and not (_is_number(target) and math.isfinite(target)):
            ok = False
            self.add(
                f"{path}.target",
                f"must be a number, got {_fmt(target)}",
                "e.g. target: 0.95, or remove it",
            )
        impute = spec.get("impute", "worst")
        if impute not in IMPUTE:
            ok = False
            self.add(
                f"{path}.impute",
                f"must be one of {', '.join(IMPUTE)}, got {_fmt(impute)}",
                "e.g. impute: worst",
            )
        running = spec.get("impute_while_running", "false")
        if running is False:
            running = "false"
        if running not in IMPUTE_WHILE_RUNNING:
            ok = False
            self.add(
                f"{path}.impute_while_running",
                f"must be one of {', '.join(IMPUTE_WHILE_RUNNING)}, got {_fmt(running)}",
                'e.g. impute_while_running: "false"',
            )
        if not ok:
            return None
        return MetricSpec(
            name=str(name),
            goal="maximize" if goal == "maximize" else "minimize",
            target=None if target is None else float(target),
            impute=str(impute),
            impute_while_running=str(running),
        )

    def metrics(self, doc: Mapping[str, Any]) -> tuple[MetricSpec, ...]:
        """``metrics``: several objectives (runyard's extension of W&B's format)."""
        spec = doc["metrics"]
        example = "metrics: [{name: val/loss, goal: minimize}, {name: val/acc, goal: maximize}]"
        if isinstance(spec, Mapping):
            self.add(
                "metrics",
                "must be a list of objectives, got a mapping",
                f"write {example}, or use `metric:` for one objective",
            )
            return ()
        if not isinstance(spec, list) or not spec:
            self.add(
                "metrics",
                f"must be a non-empty list of objectives, got {_fmt(spec)}",
                f"write {example}",
            )
            return ()
        if len(spec) > MAX_METRICS:
            self.add(
                "metrics",
                f"has {len(spec)} objectives; at most {MAX_METRICS} are supported",
                "optimise fewer objectives (log the others as plain metrics)",
            )
            return ()
        out: list[MetricSpec] = []
        seen: dict[str, int] = {}
        ok = True
        for i, entry in enumerate(spec):
            parsed = self.metric(entry, f"metrics[{i}]", METRICS_ENTRY_KEYS)
            if parsed is None:
                ok = False
                continue
            if parsed.name in seen:
                ok = False
                self.add(
                    f"metrics[{i}].name",
                    f"{parsed.name!r} is already metrics[{seen[parsed.name]}]",
                    "name each objective once",
                )
                continue
            seen[parsed.name] = i
            out.append(parsed)
        return tuple(out) if ok else ()

    def run_cap(self, doc: Mapping[str, Any]) -> int | None:
        value = doc.get("run_cap")
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or value < 1:
            self.add(
                "run_cap",
                f"must be a positive integer, got {_fmt(value)}",
                "e.g. run_cap: 50, or remove it for no limit",
            )
            return None
        return int(value)

    def command(self, doc: Mapping[str, Any]) -> list[str] | Literal[False] | None:
        """The command; None when absent; False when invalid."""
        if "command" not in doc or doc["command"] is None:
            return None
        value = doc["command"]
        if isinstance(value, str):
            try:
                example = json.dumps(shlex.split(value))
            except ValueError:
                example = '["${env}", "${interpreter}", "${program}", "${args}"]'
            self.add(
                "command",
                "must be a list of strings, got a string",
                f"write it as a list: command: {example}",
            )
            return False
        if not isinstance(value, list):
            self.add(
                "command",
                f"must be a list of strings, got {_fmt(value)}",
                'e.g. command: ["${env}", "${interpreter}", "${program}", "${args}"]',
            )
            return False
        if not value:
            self.add(
                "command",
                "is empty",
                "remove it to use the default command, or list the program and its arguments",
            )
            return False
        ok = True
        for i, item in enumerate(value):
            path = f"command[{i}]"
            if not isinstance(item, str):
                ok = False
                self.add(
                    path,
                    f"must be a string, got {_fmt(item)}",
                    f'quote it: "{item}"'
                    if not isinstance(item, Mapping | list)
                    else "write each argument as a separate string item",
                )
                continue
            for name in unknown_macros([item]):
                ok = False
                macros = ", ".join("${" + m + "}" for m in MACROS)
                close = _did_you_mean(name, [m for m in MACROS if m != "envvar:NAME"])
                hint = f"did you mean ${{{close}}}? " if close else ""
                self.add(
                    path,
                    f"unknown macro ${{{name}}} in {_fmt(item)}",
                    f"{hint}the macros are {macros} (write $${{ for a literal ${{)",
                )
            for name in _LIST_MACROS:
                macro = "${" + name + "}"
                if re.search(r"(?<!\$)" + re.escape(macro), item) and item != macro:
                    ok = False
                    self.add(
                        path,
                        f"{macro} expands to several arguments, so it must be an "
                        f"item of its own, not part of {_fmt(item)}",
                        f'put "{macro}" on its own, or use ${{args_json}} / '
                        "${args_json_file} inside a larger argument",
                    )
        return list(value) if ok else False

    def early_terminate(
        self, doc: Mapping[str, Any], metric: MetricSpec | None
    ) -> dict[str, Any] | None:
        if "early_terminate" not in doc or doc["early_terminate"] is None:
            return None
        spec = doc["early_terminate"]
        name = metric.name if metric else "metric"
        goal = metric.goal if metric else "minimize"
        try:
            build_early_stopping(spec, name, goal)
        except EarlyStoppingConfigError as exc:
            # "early_terminate.<key> <problem>; <fix>" -> this module's "<path>: <problem>. Fix:"
            text = str(exc)
            m = re.fullmatch(r"(early_terminate\.\w+) (.+?); (.+)", text, flags=re.S)
            if m:
                self.add(m[1], m[2], m[3])
            else:
                self.problems.append(
                    text if text.startswith("early_terminate") else f"early_terminate: {text}"
                )
            return None
        return dict(spec)

    # -- parameters --------------------------------------------------------------------------

    def parameters_section(self, doc: Mapping[str, Any]) -> list[tuple[Parameter, str]] | None:
        if "parameters" not in doc:
            self.add(
                "parameters",
                "is missing",
                "add the parameters to sweep, e.g. parameters: {lr: {min: 0.0001, "
                "max: 0.1}, batch_size: {values: [32, 64]}}",
            )
            return None
        entries: list[tuple[Parameter, str]] = []
        self.block(doc["parameters"], "parameters", "", entries)
        return entries

    def block(self, block: Any, path: str, prefix: str, out: list[tuple[Parameter, str]]) -> None:
        if not isinstance(block, Mapping):
            self.add(
                path,
                f"must be a mapping of parameter names to their specs, got {_fmt(block)}",
                "e.g. parameters: {lr: {min: 0.0001, max: 0.1}}",
            )
            return
        if not block:
            self.add(path, "is empty", "add at least one parameter, e.g. lr: {values: [0.1]}")
            return
        for key, spec in block.items():
            ppath = f"{path}.{key}"
            group_path = isinstance(key, str) and _GROUP_PATH.fullmatch(key) is not None
            if group_path and prefix:
                self.add(
                    ppath,
                    f"{_fmt(key)} names a nested Hydra config group, which cannot be inside a "
                    "block of parameters",
                    f"write it at the top level of parameters, as {key}: {{values: [...]}}",
                )
                continue
            if not isinstance(key, str) or not (group_path or _NAME.fullmatch(key)):
                self.add(
                    ppath,
                    f"{_fmt(key)} is not a valid parameter name",
                    "start with a letter or _, then use letters, digits, _, - and . "
                    "(no empty parts between dots), or name a nested Hydra config group "
                    "with / (db/engine); quote it if YAML reads it as a number",
                )
                continue
            if group_path and isinstance(spec, Mapping) and "parameters" in spec:
                self.add(
                    ppath,
                    f"{_fmt(key)} names a nested Hydra config group: its values are option "
                    "names, not a block of parameters",
                    f"write {key}: {{values: [option1, option2]}}",
                )
                continue
            name = prefix + key
            if not isinstance(spec, Mapping):
                if isinstance(spec, list):
                    fix = f"write {key}: {{values: {_fmt(spec)}}}"
                else:
                    fix = f"write {key}: {{value: {_fmt(spec)}}}"
                self.add(ppath, f"must be a mapping (a parameter spec), got {_fmt(spec)}", fix)
                continue
            if "parameters" in spec:
                extra = [str(k) for k in spec if k != "parameters"]
                if extra:
                    self.add(
                        ppath,
                        "has `parameters`, so it is a block of nested parameters "
                        f"and cannot also have {', '.join(f'`{k}`' for k in extra)}",
                        "move those keys into a parameter inside the block, or remove `parameters`",
                    )
                self.block(spec["parameters"], f"{ppath}.parameters", f"{name}.", out)
                continue
            parameter = self.parameter(ppath, name, spec)
            if parameter is not None:
                out.append((parameter, ppath))

    def parameter(self, path: str, name: str, spec: Mapping[str, Any]) -> Parameter | None:
        n_problems = len(self.problems)
        if "distribution" in spec:
            dist = spec["distribution"]
            how = f"distribution {dist}"
            if dist == _CATEGORICAL_ALIAS:
                dist = "categorical"
            elif not isinstance(dist, str) or dist not in DISTRIBUTIONS:
                close = _closest_distribution(str(dist))
                self.add(
                    f"{path}.distribution",
                    f"unknown distribution {_fmt(dist)}",
                    f"did you mean {close}?" if close else f"use one of {', '.join(DISTRIBUTIONS)}",
                )
                return None
        else:
            inferred = self.infer(path, spec)
            if inferred is None:
                return None
            dist, how = inferred

        required, optional = DISTRIBUTION_KEYS[dist]
        allowed = ("distribution", *required, *optional)
        for key in spec:
            if key not in allowed:
                self.stray_key(f"{path}.{key}", str(key), dist, how, spec)
        for key in required:
            if key not in spec:
                self.add(
                    f"{path}.{key}",
                    f"is missing: {how} needs {' and '.join(required)}",
                    self.example_fix(dist),
                )

        self.numbers(path, dist, spec)
        if dist == "constant" and "value" in spec:
            issue = _json_issue(spec["value"])
            if issue:
                self.add(f"{path}.value", issue, "quote it to make it a string")
        if dist == "categorical" and "values" in spec:
            self.values(path, spec)
        if len(self.problems) > n_problems:
            return None

        if dist in DEPRECATED_DISTRIBUTIONS:
            self.deprecated(path, dist, spec)
        kwargs = {k: spec[k] for k in allowed if k in spec and k != "distribution"}
        if "values" in kwargs:
            kwargs["values"] = tuple(kwargs["values"])
        try:
            parameter = Parameter(name=name, distribution=dist, **kwargs)
        except ValueError as exc:
            self.add(path, str(exc), self.example_fix(dist))
            return None
        self.quantized_range(path, parameter)
        if (
            "distribution" not in spec
            and dist == "int_uniform"
            and parameter.max is not None
            and parameter.min is not None
            and parameter.max - parameter.min == 1
        ):
            self.warn(
                path,
                f"min and max are integers, so the distribution is int_uniform: only "
                f"{_fmt(parameter.min)} and {_fmt(parameter.max)}. Write "
                f"min: {float(parameter.min)!r}, max: {float(parameter.max)!r} for real values",
            )
        return parameter

    def infer(self, path: str, spec: Mapping[str, Any]) -> tuple[str, str] | None:
        """W&B's inference when ``distribution`` is absent (the order of schema.json's anyOf)."""
        if "value" in spec:
            return "constant", "a constant (inferred from `value`)"
        if "values" in spec:
            return "categorical", "a categorical (inferred from `values`)"
        if "min" in spec and "max" in spec:
            if _is_int(spec["min"]) and _is_int(spec["max"]):
                return "int_uniform", "int_uniform (inferred from integer min and max)"
            return "uniform", "uniform (inferred from min and max)"
        keys = set(map(str, spec))
        unknown = [k for k in keys if k not in PARAMETER_KEYS]
        for key in sorted(unknown):
            close = _did_you_mean(key, PARAMETER_KEYS)
            self.add(
                f"{path}.{key}",
                "unknown key",
                f"did you mean `{close}`?" if close else "remove it",
            )
        if unknown:
            return None
        if "min" in keys or "max" in keys:
            missing = "max" if "min" in keys else "min"
            fix = f"add `{missing}` (with min and max the distribution is int_uniform or uniform)"
        elif keys & {"mu", "sigma"}:
            fix = "add distribution: normal (or log_normal, q_normal, q_log_normal)"
        elif keys & {"a", "b"}:
            fix = "add distribution: beta (or q_beta)"
        elif "q" in keys:
            fix = "add distribution: q_uniform with min and max"
        else:
            fix = "give values: [...], value: ..., min and max, or a distribution"
        self.add(
            path,
            "does not say what to sample: it has no `distribution`, and no "
            "`value`, `values` or `min` and `max` to infer one from",
            fix,
        )
        return None

    def stray_key(self, path: str, key: str, dist: str, how: str, spec: Mapping[str, Any]) -> None:
        if key not in PARAMETER_KEYS:
            close = _did_you_mean(key, PARAMETER_KEYS)
            required, optional = DISTRIBUTION_KEYS[dist]
            takes = ", ".join(("distribution", *required, *optional))
            self.add(
                path,
                "unknown key",
                f"did you mean `{close}`?" if close else f"remove it; {dist} takes {takes}",
            )
            return
        if key == "parameters":  # unreachable: blocks are handled by the caller
            return
        if {"value", "values"} <= set(spec):
            fix = "give either `value` (a constant) or `values` (a choice), not both"
        elif key == "q" and f"q_{dist}" in DISTRIBUTION_KEYS:
            fix = f"set distribution: q_{dist} to quantize, or remove q"
        elif key == "q" and dist == "int_uniform":
            fix = "set distribution: q_uniform (min, max, q), or remove q"
        elif key in ("mu", "sigma") and dist in ("uniform", "int_uniform"):
            fix = "set distribution: normal (or log_normal) and remove min/max, or remove " + key
        elif key == "probabilities":
            fix = "probabilities go with `values` (a categorical); remove it"
        else:
            users = [
                d
                for d in DISTRIBUTIONS
                if d not in DEPRECATED_DISTRIBUTIONS
                and key in (*DISTRIBUTION_KEYS[d][0], *DISTRIBUTION_KEYS[d][1])
            ]
            fix = f"`{key}` belongs to {', '.join(users)}: set the distribution, or remove it"
        self.add(path, f"is not used by {how}", fix)

    @staticmethod
    def example_fix(dist: str) -> str:
        examples = {
            "constant": "e.g. {value: 0.9}",
            "categorical": "e.g. {values: [adam, sgd]}",
            "int_uniform": "e.g. {distribution: int_uniform, min: 1, max: 10}",
            "uniform": "e.g. {distribution: uniform, min: 0.0, max: 1.0}",
            "q_uniform": "e.g. {distribution: q_uniform, min: 0, max: 256, q: 8}",
            "log_uniform_values": "e.g. {distribution: log_uniform_values, min: 1e-5, max: 0.1}",
            "q_log_uniform_values": "e.g. {distribution: q_log_uniform_values, min: 16, "
            "max: 1024, q: 16}",
            "inv_log_uniform_values": "e.g. {distribution: inv_log_uniform_values, min: 1e-5, "
            "max: 0.1}",
        }
        if dist in examples:
            return examples[dist]
        if dist in DEPRECATED_DISTRIBUTIONS:
            return f"use {DEPRECATED_DISTRIBUTIONS[dist]} with min and max as values"
        return f"e.g. {{distribution: {dist}}} and its optional arguments"

    def numbers(self, path: str, dist: str, spec: Mapping[str, Any]) -> None:
        required, optional = DISTRIBUTION_KEYS[dist]
        good: dict[str, float] = {}
        for key in ("min", "max", "q", "mu", "sigma", "a", "b"):
            if key not in spec or (key not in required and key not in optional):
                continue
            value = spec[key]
            kpath = f"{path}.{key}"
            if not _is_number(value) or not math.isfinite(value):
                fix = f"e.g. {key}: 0.1"
                if isinstance(value, str):
                    try:
                        fix = f"write {key}: {float(value)!r} (a number, without quotes)"
                    except ValueError:
                        pass
                self.add(kpath, f"must be a number, got {_fmt(value)}", fix)
                continue
            if dist == "int_uniform" and key in ("min", "max") and not _is_int(value):
                if float(value).is_integer():
                    fix = (
                        f"write {key}: {int(value)} (without a decimal point), or use "
                        "distribution: uniform for real values"
                    )
                else:
                    fix = "use distribution: uniform for real values, or q_uniform with q"
                self.add(kpath, f"must be an integer for int_uniform, got {_fmt(value)}", fix)
                continue
            if key in ("q", "sigma", "a", "b") and not value > 0:
                self.add(
                    kpath,
                    f"must be greater than 0, got {_fmt(value)}",
                    f"e.g. {key}: {1 if key != 'q' else 0.1}",
                )
                continue
            good[key] = float(value)
        if "min" in good and "max" in good and not good["min"] < good["max"]:
            self.add(
                f"{path}.min",
                f"{_fmt(spec['min'])} is not less than max ({_fmt(spec['max'])})",
                "swap min and max"
                if good["min"] > good["max"]
                else "make max greater than min, or use {value: ...} for a constant",
            )
        if dist.endswith("_values") and "min" in good and not good["min"] > 0:
            self.add(
                f"{path}.min",
                f"must be greater than 0 for {dist} (a log scale), got {_fmt(spec['min'])}",
                "use a positive min, e.g. min: 1e-5",
            )
        if dist in DEPRECATED_DISTRIBUTIONS:
            for key in ("min", "max"):
                if key in good and abs(good[key]) > 700:
                    self.add(
                        f"{path}.{key}",
                        f"{dist} takes exponents (the value is e^{key}), "
                        f"and e^{_fmt(spec[key])} overflows",
                        f"use {DEPRECATED_DISTRIBUTIONS[dist]} with min and max as values",
                    )

    def values(self, path: str, spec: Mapping[str, Any]) -> None:
        values = spec["values"]
        if not isinstance(values, list):
            self.add(
                f"{path}.values",
                f"must be a list, got {_fmt(values)}",
                f"write values: [{_fmt(values)}], or use value: for a constant",
            )
            return
        if not values:
            self.add(f"{path}.values", "is empty", "list at least one value")
            return
        for i, item in enumerate(values):
            issue = _json_issue(item)
            if issue:
                self.add(f"{path}.values[{i}]", issue, "quote it to make it a string")
        if "probabilities" in spec:
            self.probabilities(path, spec["probabilities"], len(values))
        seen: dict[Any, int] = {}
        for i, item in enumerate(values):
            if _json_issue(item) is not None:
                continue
            key = value_key(item)
            if key in seen:
                self.warn(
                    f"{path}.values[{i}]",
                    f"{_fmt(item)} repeats values[{seen[key]}]; "
                    "each copy is a separate choice for random and bayes (more likely to be "
                    "sampled); grid runs it once",
                )
            else:
                seen[key] = i

    def probabilities(self, path: str, probs: Any, n_values: int) -> None:
        ppath = f"{path}.probabilities"
        if not isinstance(probs, list):
            self.add(
                ppath,
                f"must be a list of numbers, got {_fmt(probs)}",
                "give one probability per value, e.g. probabilities: [0.7, 0.3]",
            )
            return
        bad = [p for p in probs if not (_is_number(p) and math.isfinite(p) and p >= 0)]
        if bad:
            self.add(
                ppath,
                f"must be numbers >= 0, got {', '.join(map(_fmt, bad))}",
                "give one probability per value, e.g. probabilities: [0.7, 0.3]",
            )
            return
        if len(probs) != n_values:
            self.add(
                ppath,
                f"has {len(probs)} entries for {n_values} values",
                "give exactly one probability per value, in the same order",
            )
        total = math.fsum(probs)
        if not math.isclose(total, 1.0, rel_tol=1e-6, abs_tol=1e-8):
            self.add(ppath, f"sum to {total:.6g}, not 1", "scale them so they add up to 1")

    def deprecated(self, path: str, dist: str, spec: Mapping[str, Any]) -> None:
        replacement = DEPRECATED_DISTRIBUTIONS[dist]
        bounds = ""
        if _is_number(spec.get("min")) and _is_number(spec.get("max")):
            lo, hi = float(spec["min"]), float(spec["max"])
            if dist == "inv_log_uniform":
                lo, hi = -hi, -lo
            bounds = (
                f" (here e^{_fmt(lo)} .. e^{_fmt(hi)} = {math.exp(lo):.6g} .. {math.exp(hi):.6g})"
            )
            bounds += (
                f"; write distribution: {replacement}, min: {math.exp(lo):.6g}, "
                f"max: {math.exp(hi):.6g}"
            )
        self.warn(
            path,
            f"distribution {dist} is deprecated: its min and max are base-e "
            f"exponents{bounds}. Use {replacement}, whose min and max are the values "
            "themselves",
        )

    def quantized_range(self, path: str, parameter: Parameter) -> None:
        """Warn when round(X / q) * q reaches outside [min, max] (W&B's formula does that)."""
        if not parameter.quantized or not parameter.bounded:
            return
        if parameter.distribution == "int_uniform":
            return
        lo, hi = parameter._bounds
        k_lo, k_hi = parameter._k_range
        first, last = parameter._quantum(k_lo), parameter._quantum(k_hi)
        eps = 1e-9 * max(1.0, abs(lo), abs(hi))
        if first < lo - eps or last > hi + eps:
            self.warn(
                path,
                f"values are multiples of q ({_fmt(parameter.q)}), from "
                f"{_fmt(first)} to {_fmt(last)}, which reaches outside "
                f"[{lo:.6g}, {hi:.6g}] (round(X / q) * q rounds to the nearest multiple)."
                " Make min and max multiples of q to keep values inside",
            )

    def grid(self, entries: list[tuple[Parameter, str]]) -> None:
        for parameter, path in entries:
            if not parameter.gridable:
                if parameter.quantized:
                    why = f"{parameter.distribution} is unbounded"
                    fix = (
                        "use q_uniform with min, max and q, or list the values to try "
                        "(values: [...]), or use method random or bayes"
                    )
                else:
                    why = f"{parameter.distribution} is continuous"
                    fix = (
                        "list the values to try (values: [...]), or use int_uniform or "
                        "q_uniform (with q), or use method random or bayes"
                    )
                self.add(path, f"method grid needs a finite set of values, but {why}", fix)
                continue
            size = parameter.grid_size()
            if size > MAX_GRID_VALUES:
                self.add(
                    path,
                    f"has {size} grid values (more than {MAX_GRID_VALUES})",
                    "use a larger q or a narrower range, or use method random or bayes",
                )
            if parameter.probabilities is not None:
                self.warn(path, "probabilities are ignored by method grid (every value is run)")
