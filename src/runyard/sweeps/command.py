"""The command an agent runs for a sweep trial: W&B's command macros, expanded faithfully.

A sweep's ``command`` is a list of arguments in which these macros are expanded per trial:

=========================  ==================================================================
``${env}``                 ``/usr/bin/env`` (POSIX); nothing on Windows
``${interpreter}``         the Python interpreter (the agent's ``sys.executable`` by default)
``${program}``             the sweep's ``program``
``${args}``                ``--name=value`` per parameter
``${args_no_hyphens}``     ``name=value`` per parameter
``${args_no_boolean_flags}`` like ``${args}``, but a bool is ``--name`` when true and left out
                           when false
``${args_json}``           one argument: the parameters as a JSON object
``${args_json_file}``      the path of a JSON file holding the parameters
``${args_hydra}``          Hydra overrides (see :mod:`runyard.sweeps.hydra_args`)
``${envvar:NAME}``         the value of the environment variable ``NAME``
=========================  ==================================================================

The list macros (``${args}``, ``${args_no_hyphens}``, ``${args_no_boolean_flags}``,
``${args_hydra}``) must be whole arguments and expand to any number of them (none: the argument
disappears); the others may also sit inside a larger argument (``--cfg=${args_json_file}``).
``$${`` is a literal ``${``; a ``${...}`` that is not shaped like a macro name (``${now:%H}``,
``${oc.env:HOME}``) is passed through unchanged for Hydra. A macro-shaped unknown name is an
error (W&B expands it to nothing): see :func:`unknown_macros`.

Differences from W&B, on purpose: values are written faithfully (``0``, ``False``, ``""`` and
``None`` included; floats by ``repr``; lists and dicts as JSON), ``${interpreter}`` is an
absolute path rather than whatever ``python`` is on the PATH, a missing ``${envvar:NAME}`` is an
error rather than the text ``NAME``, and the result is always an argv list, never a shell string.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runyard.sweeps.hydra_args import HydraOverrides, format_overrides, plain_value

__all__ = [
    "DEFAULT_COMMAND",
    "MACROS",
    "CommandError",
    "build_command",
    "format_arg_value",
    "unknown_macros",
]

MACROS: tuple[str, ...] = (
    "env",
    "interpreter",
    "program",
    "args",
    "args_no_hyphens",
    "args_no_boolean_flags",
    "args_json",
    "args_json_file",
    "args_hydra",
    "envvar:NAME",
)

DEFAULT_COMMAND: list[str] = ["${env}", "${interpreter}", "${program}", "${args}"]

#: Macros that expand to a list of arguments and so must be a whole argument.
_LIST_MACROS = frozenset({"args", "args_no_hyphens", "args_no_boolean_flags", "args_hydra"})
#: Macros whose expansion differs from trial to trial.
_TRIAL_MACROS = _LIST_MACROS | {"args_json", "args_json_file"}
_NAMES = frozenset(MACROS) - {"envvar:NAME"}

# "$${" (a literal "${") or "${...}"; group 1 is the text between the braces.
_TOKEN = re.compile(r"\$\$\{|\$\{([^{}]*)\}")
# What a macro reference looks like: a name, or envvar:NAME. Anything else is not ours.
_MACRO_SHAPE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|envvar:.*")


def _on_windows() -> bool:
    return os.name == "nt"


class CommandError(ValueError):
    """The sweep's command cannot be built (unknown macro, missing variable, no program...)."""


def _macro_names(item: str) -> list[str]:
    names = []
    for m in _TOKEN.finditer(item):
        name = m.group(1)
        if name is not None and _MACRO_SHAPE.fullmatch(name):
            names.append(name)
    return names


def _is_known(name: str) -> bool:
    return name in _NAMES or (name.startswith("envvar:") and len(name) > len("envvar:"))


def unknown_macros(command: Sequence[str]) -> list[str]:
    """Names of the ``${...}`` references in ``command`` that are not macros (in order, once).

    Only macro-shaped references count (a name like ``args_jsn``, or ``envvar:`` with no
    variable): ``${now:%Y}`` and ``${oc.env:HOME}`` are Hydra/OmegaConf interpolations passed
    through as they are, and ``$${`` is an escaped ``${``.
    """
    unknown: list[str] = []
    for item in command:
        for name in _macro_names(str(item)):
            if not _is_known(name) and name not in unknown:
                unknown.append(name)
    return unknown


def format_arg_value(value: Any) -> str:
    """A parameter value as text for argparse-style arguments (``--name=value``).

    Strings as they are (unquoted), bools ``True``/``False`` and ``None`` as Python writes them
    (as W&B does, so ``str2bool``-style parsers keep working), ints in digits, floats by
    ``repr`` (round-trips exactly; ``inf``, ``nan``), lists and dicts as compact JSON.
    """
    value = plain_value(value)
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _args_json(params: Mapping[str, Any]) -> str:
    return json.dumps(plain_value(dict(params)), ensure_ascii=False)


def _write_json_file(params: Mapping[str, Any], directory: Path) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="params-", suffix=".json", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_args_json(params))
    return str(Path(name).resolve())


def build_command(
    command: Sequence[str] | None,
    *,
    program: str | None,
    params: Mapping[str, Any],
    env: Mapping[str, str],
    interpreter: str = sys.executable,
    json_file_dir: Path,
    hydra: HydraOverrides | None = None,
) -> list[str]:
    """The argv of one trial: ``command`` (or :data:`DEFAULT_COMMAND`) with macros expanded.

    ``params`` maps the trial's flat dotted parameter names (``optimizer.lr``) to values; ``env``
    is the trial's environment (for ``${envvar:NAME}``, and for probing a Hydra app).
    ``${args_json_file}`` writes a new JSON file into ``json_file_dir`` (created if needed) and
    expands to its absolute path. ``${args_hydra}`` uses ``hydra`` (which probes the app, run
    as this command without its per-trial arguments); without it every parameter becomes
    ``++name=value``.

    Raises CommandError for an unknown macro, an unset ``${envvar:NAME}``, ``${program}`` with
    no program, or a list macro inside a larger argument; ValueError (from
    :mod:`runyard.sweeps.hydra_args`) for parameters Hydra cannot receive; HydraProbeError when
    ``${args_hydra}`` needs a probe of the app and it fails (not a Hydra app, unknown option).
    """
    items = [str(item) for item in (command or DEFAULT_COMMAND)]
    unknown = unknown_macros(items)
    if unknown:
        known = ", ".join("${" + m + "}" for m in MACROS)
        raise CommandError(
            "unknown macro(s) in the sweep command: "
            + ", ".join("${" + name + "}" for name in unknown)
            + f"; the macros are {known} (write $${{ for a literal ${{)"
        )

    cache: dict[str, list[str]] = {}

    def scalar(name: str) -> str:
        if name.startswith("envvar:"):
            var = name[len("envvar:") :]
            if var not in env:
                raise CommandError(
                    f"the sweep command uses ${{envvar:{var}}} but the environment variable "
                    f"{var} is not set for the agent"
                )
            return env[var]
        if name == "env":
            return "" if _on_windows() else "/usr/bin/env"
        if name == "interpreter":
            return interpreter
        if name == "program":
            if not program:
                raise CommandError("the sweep command uses ${program} but the sweep has no program")
            return program
        if name == "args_json":
            return _args_json(params)
        if name == "args_json_file":
            if "args_json_file" not in cache:
                cache["args_json_file"] = [_write_json_file(params, json_file_dir)]
            return cache["args_json_file"][0]
        raise AssertionError(name)  # pragma: no cover - unknown names were rejected above

    def expand_scalars(item: str) -> str:
        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name is None:
                return "${"  # "$${"
            if not _MACRO_SHAPE.fullmatch(name):
                return m.group(0)  # a Hydra/OmegaConf interpolation: not ours
            if name in _LIST_MACROS:
                raise CommandError(
                    f"${{{name}}} expands to several arguments, so it must be a whole item of "
                    f"the sweep command, not part of {item!r}"
                )
            return scalar(name)

        return _TOKEN.sub(one, item)

    def whole_macro(item: str) -> str | None:
        m = _TOKEN.fullmatch(item)
        return None if m is None or m.group(1) is None else m.group(1)

    # The command as the app sees it without the per-trial arguments: what a Hydra probe runs.
    def static_argv() -> list[str]:
        argv = []
        for item in items:
            if any(name in _TRIAL_MACROS for name in _macro_names(item)):
                continue
            name = whole_macro(item)
            if name == "env" and _on_windows():
                continue
            argv.append(expand_scalars(item))
        return argv

    out: list[str] = []
    for item in items:
        name = whole_macro(item)
        if name == "args":
            out += [f"--{k}={format_arg_value(v)}" for k, v in params.items()]
        elif name == "args_no_hyphens":
            out += [f"{k}={format_arg_value(v)}" for k, v in params.items()]
        elif name == "args_no_boolean_flags":
            for k, v in params.items():
                v = plain_value(v)
                if isinstance(v, bool):
                    if v:
                        out.append(f"--{k}")
                else:
                    out.append(f"--{k}={format_arg_value(v)}")
        elif name == "args_hydra":
            if hydra is None:
                overrides, _warnings = format_overrides(params, None)
            else:
                overrides = hydra.overrides(params, argv=static_argv(), env=env)
            out += overrides
        elif name == "env" and _on_windows():
            continue  # W&B: ${env} is omitted on Windows
        else:
            out.append(expand_scalars(item))
    return out
