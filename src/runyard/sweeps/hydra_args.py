"""Hydra overrides for a sweep trial (the ``${args_hydra}`` command macro).

Hydra's command line has four kinds of override, and picking the wrong one fails the run
(rules verified with hydra-core 1.3.8):

* ``key=v`` needs ``key`` to exist in the composed config; ``+key=v`` fails if it exists;
  ``++key=v`` adds or overrides any plain key (creating intermediate nodes);
* ``group=opt`` needs the config group in the defaults list (``hydra.runtime.choices``);
  ``+group=opt`` needs it absent from the defaults list; ``++group=opt`` is rejected.

So plain keys always get ``++key=value`` (a warning when the key is not in the composed config,
since a typo would otherwise be silent), a group in the defaults list gets ``group=option`` and
another known group ``+group=option``. Knowing which keys and groups exist needs the app itself:
:func:`probe_hydra_app` runs it with ``--help`` and a help template of runyard's own (Hydra
composes the config and prints the help; the task function does not run).

Values are encoded in Hydra's override grammar by :func:`format_value` so that what the app
receives is exactly the trial's value, strings included (quotes, backslashes, ``${``, ``???``
excepted: see :func:`format_value`).
"""

from __future__ import annotations

import ast
import logging
import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

log = logging.getLogger(__name__)

__all__ = [
    "HydraAppInfo",
    "HydraOverrides",
    "HydraProbeError",
    "format_overrides",
    "format_value",
    "group_of",
    "probe_hydra_app",
]


class HydraProbeError(RuntimeError):
    """The program could not be probed as a Hydra app (not a Hydra app, bad config, timeout)."""


@dataclass
class HydraAppInfo:
    """What runyard knows about a Hydra app's configuration."""

    #: ``hydra.runtime.choices`` of the composed config: the groups in the defaults list
    #: (``hydra/...`` groups included) and their selected option (None for ``group: null``)
    choices: dict[str, str | None]
    #: every config group known to the app, nested ones with ``/`` (``db/engine``), including
    #: groups not in the defaults list (``experiment``) and Hydra's own (``hydra/launcher``)
    groups: set[str]
    #: the composed job config (without the ``hydra`` node), interpolations left unresolved
    config: dict[str, Any]
    #: options of each group, where known (for warnings about unknown options)
    group_options: dict[str, list[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Values in the override grammar
# ---------------------------------------------------------------------------------------------

# A backslash run directly before "${" (the run may be empty).
_BACKSLASHES_BEFORE_INTERPOLATION = re.compile(r"(\\*)\$\{")
# A backslash run directly before a double quote, or at the end of the string.
_BACKSLASHES_BEFORE_QUOTE = re.compile(r'(\\*)(")')
_TRAILING_BACKSLASHES = re.compile(r"(\\+)$")

# Characters that must be backslash-escaped in an unquoted dict key (Hydra's ESC token).
_KEY_ESCAPES = "\\()[]{}:=, \t"
# What else an unquoted dict key may contain (ID, INT/FLOAT digits and UNQUOTED_CHAR).
_KEY_PLAIN = re.compile(r"[A-Za-z0-9_\-/+.$%*@?|]*")
# Dict keys that Hydra would read as a number, bool or null rather than a string.
_KEY_NOT_A_STRING = re.compile(
    r"[+-]?(\d[\d_]*)?(\.[\d_]*)?([eE][+-]?\d[\d_]*)?|[+-]?(inf|nan)|true|false|null",
    re.IGNORECASE,
)

# An override key for a plain config key: segments of Hydra's KEY_SPECIAL / INT_UNSIGNED.
_KEY_SEGMENT = r"(?:[A-Za-z_$][A-Za-z0-9_\-$]*|0|[1-9][0-9]*)"
_PLAIN_KEY = re.compile(rf"[A-Za-z_$][A-Za-z0-9_\-$]*(?:\.{_KEY_SEGMENT})*")


def plain_value(value: Any) -> Any:
    """NumPy scalars to Python scalars and tuples to lists, recursively (what sweeps produce).

    ``np.float64`` is a ``float`` whose ``repr`` is ``np.float64(0.1)`` under NumPy 2, so NumPy
    scalars are converted before anything looks at their type.
    """
    if hasattr(value, "dtype") and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [plain_value(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    return value


def _escape_interpolations(s: str) -> str:
    """Escape ``${`` for OmegaConf so the string is taken literally, not as an interpolation.

    OmegaConf reads ``\\${`` as a literal ``${`` and ``\\\\`` as one backslash only right before
    ``${``; other backslashes are literal. So ``n`` backslashes followed by ``${`` become ``2n``
    backslashes followed by ``\\${``.
    """
    return _BACKSLASHES_BEFORE_INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", s)


def _quote(s: str) -> str:
    """Double-quote ``s`` for Hydra's override grammar.

    In a Hydra quoted string only backslashes before a quote (or at the very end) are escapes:
    such a run of ``n`` backslashes is written as ``2n`` (plus one more to escape the quote).
    """
    body = _BACKSLASHES_BEFORE_QUOTE.sub(lambda m: m.group(1) * 2 + '\\"', s)
    body = _TRAILING_BACKSLASHES.sub(lambda m: m.group(1) * 2, body)
    return f'"{body}"'


def _format_key(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError(f"dict keys must be strings to pass them to Hydra; got {key!r}")
    if key == "" or key.strip(" \t") == "" or _KEY_NOT_A_STRING.fullmatch(key):
        raise ValueError(
            f"the dict key {key!r} cannot be written in a Hydra override: Hydra would read it "
            "as a number, bool or null, or it is blank"
        )
    out = []
    for ch in key:
        if ch in _KEY_ESCAPES:
            out.append("\\" + ch)
        elif _KEY_PLAIN.fullmatch(ch):
            out.append(ch)
        else:
            raise ValueError(
                f"the dict key {key!r} cannot be written in a Hydra override "
                f"(character {ch!r} is not allowed in Hydra dict keys)"
            )
    return "".join(out)


def format_value(value: Any, *, interpolate: bool = False) -> str:
    """Encode ``value`` in Hydra's override grammar so that the app receives exactly ``value``.

    ``None`` → ``null``; bools → ``true``/``false``; ints as digits; floats by ``repr`` (no
    precision lost; ``inf``, ``-inf``, ``nan`` as Hydra spells them); strings double-quoted with
    Hydra's escapes and ``${`` escaped for OmegaConf (so ``"1e-3"``, ``"null"``, ``"a,b"`` stay
    strings and ``"${x}"`` is not interpolated); lists ``[a,b]`` and dicts ``{k:v}`` recursively.

    With ``interpolate``, ``${...}`` in strings is left for OmegaConf to resolve in the job (what
    Hydra's own sweepers do with a swept ``'${lr}'``) instead of being escaped.

    Raises ValueError for what Hydra cannot receive: the string ``"???"`` (OmegaConf's missing
    value), dict keys Hydra would not read back as the same string, other types.
    """
    value = plain_value(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        if value == "???":
            raise ValueError(
                "the string '???' cannot be passed to a Hydra app: OmegaConf reads it as a "
                "missing value"
            )
        return _quote(value if interpolate else _escape_interpolations(value))
    if isinstance(value, list):
        return "[" + ",".join(format_value(v, interpolate=interpolate) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (
            f"{_format_key(k)}:{format_value(v, interpolate=interpolate)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    raise ValueError(f"cannot pass a {type(value).__name__} to Hydra: {value!r}")


# ---------------------------------------------------------------------------------------------
# Choosing the override form
# ---------------------------------------------------------------------------------------------


@dataclass
class _Item:
    key: str
    kind: Literal["group", "plain"]
    prefix: str  # "", "+", "++" or "~"
    text: str  # formatted value ("" for "~")

    def render(self) -> str:
        if self.prefix == "~":
            return f"~{self.key}"
        return f"{self.prefix}{self.key}={self.text}"


def _has_key(config: Any, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if isinstance(node, dict):
            if part in node:
                node = node[part]
            elif part.isdigit() and int(part) in node:
                node = node[int(part)]
            else:
                return False
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


# An option name Hydra reads back unquoted as the same string (no grammar keyword).
_BARE_OPTION = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*")
_KEYWORDS = frozenset({"true", "false", "null", "nan", "inf"})


def group_of(name: str) -> str:
    """The config group a parameter names: ``db@backup`` -> ``db``."""
    return name.split("@", 1)[0]


def _group_option(name: str, value: Any) -> str:
    """A config group's option for an override: bare where Hydra reads it back as the same
    name (``+experiment=aplite``, so ``override_dirname`` has no quotes), a list for a
    multi-select group (``server/site=[fb,google]``)."""
    value = plain_value(value)
    if isinstance(value, list):
        return "[" + ",".join(_group_option(name, v) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(
            f"{name!r} is a Hydra config group: its sweep values must be option names "
            f"(strings, or lists of them for a multi-select group), got {value!r}"
        )
    text = str(value)
    if _BARE_OPTION.fullmatch(text) and text.lower() not in _KEYWORDS:
        return text
    return format_value(text)


def _option_names(value: Any) -> list[str]:
    value = plain_value(value)
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _plan(params: Mapping[str, Any], info: HydraAppInfo | None) -> tuple[list[_Item], list[str]]:
    items: list[_Item] = []
    warnings: list[str] = []
    for name, value in params.items():
        if info is not None and (name in info.choices or group_of(name) in info.groups):
            present = name in info.choices
            if plain_value(value) is None:
                if present:
                    items.append(_Item(name, "group", "~", ""))
                else:
                    warnings.append(
                        f"{name}: null for a config group that is not in the defaults list; "
                        "nothing to remove, parameter skipped"
                    )
                continue
            text = _group_option(name, value)
            options = info.group_options.get(group_of(name))
            if options and any(o not in options for o in _option_names(value)):
                warnings.append(
                    f"{name}={value}: {value!r} is not an option of the config group "
                    f"{name!r} (options: {', '.join(options)})"
                )
            items.append(_Item(name, "group", "" if present else "+", text))
            continue
        if info is None and "/" in name and _PLAIN_KEY.fullmatch(name.replace("/", ".")):
            raise ValueError(
                f"the parameter {name!r} looks like a Hydra config group: choosing between "
                f"{name}=... and +{name}=... needs the app probed (HydraOverrides)"
            )
        if not _PLAIN_KEY.fullmatch(name):
            raise ValueError(
                f"the parameter name {name!r} cannot be a Hydra override key: use dotted "
                "names of letters, digits, '_', '-' and '$' (like optimizer.lr)"
                + ("" if info is None else ", or the name of a config group of the app")
            )
        items.append(_Item(name, "plain", "++", format_value(value)))
    return items, warnings


def _absent_key_warnings(items: Sequence[_Item], info: HydraAppInfo) -> list[str]:
    warnings = []
    for item in items:
        if item.kind == "plain" and not _has_key(info.config, item.key):
            hint = ""
            as_group = item.key.replace(".", "/")
            if as_group in info.groups:
                hint = f" (to choose an option of the config group {as_group!r}, name it so)"
            warnings.append(
                f"{item.key}: not in the app's composed config, so it is added with "
                f"++{item.key}=...; check the name for a typo{hint}"
            )
    return warnings


def format_overrides(
    params: Mapping[str, Any], info: HydraAppInfo | None
) -> tuple[list[str], list[str]]:
    """Hydra overrides for a trial's parameters, and warnings.

    ``params`` maps flat dotted names (``optimizer.lr``) or config group names (``db``,
    ``db/engine``) to values. With ``info`` (see :func:`probe_hydra_app`): a group in the
    defaults list gets ``group=option`` (``~group`` for None), another known group
    ``+group=option``, a plain key ``++key=value`` and a warning when the key is not in the
    composed config. Without ``info`` every parameter gets ``++key=value`` (which Hydra rejects
    for config groups).

    Raises ValueError for a name that cannot be an override key or a value Hydra cannot receive.
    """
    items, warnings = _plan(params, info)
    if info is not None:
        warnings += _absent_key_warnings(items, info)
    return [item.render() for item in items], warnings


# ---------------------------------------------------------------------------------------------
# Probing the app
# ---------------------------------------------------------------------------------------------


def _tail(text: str, n: int = 2000) -> str:
    text = text.strip()
    return text if len(text) <= n else "..." + text[-n:]


def _parse_groups(text: str) -> tuple[set[str], dict[str, list[str]]]:
    groups: set[str] = set()
    options: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or ":" not in line:
            continue
        name, _, rest = line.partition(":")
        name = name.strip()
        groups.add(name)
        options[name] = [o.strip() for o in rest.split(",") if o.strip()]
    return groups, options


def probe_hydra_app(
    argv_prefix: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
    overrides: Sequence[str] = (),
) -> HydraAppInfo:
    """Learn a Hydra app's config groups and composed config by running it with ``--help``.

    Runs ``argv_prefix + overrides + ["++hydra.help.template=...", "--help"]`` in ``cwd``: Hydra
    composes the config (with ``overrides``) and prints the app help from runyard's template,
    which holds the config groups (``$APP_CONFIG_GROUPS``, ``$HYDRA_CONFIG_GROUPS``), the
    composed job config (``$CONFIG``, unresolved) and ``hydra.runtime.choices``, between markers
    so that anything else the program prints is ignored. The task function does not run (but
    the program's module-level code does).

    Raises HydraProbeError when the program fails, times out or does not print the template
    (it is not a Hydra app: a program that ignores ``--help`` would run in full).
    """
    nonce = uuid.uuid4().hex[:16]

    def mark(section: str, dollar: str = "$") -> str:
        return f"@@runyard-probe:{nonce}{dollar}:{section}@@"

    # In the template the markers have "$$", which Hydra's help prints as "$": a program that
    # echoes its argv (not a Hydra app) does not print the markers.
    t = {s: mark(s, "$$") for s in ("groups", "config", "choices", "end")}
    template = (
        f"\n{t['groups']}\n$APP_CONFIG_GROUPS$HYDRA_CONFIG_GROUPS{t['config']}\n$CONFIG"
        f"\n{t['choices']}\n${{hydra.runtime.choices}}\n{t['end']}\n"
    )
    # The template must keep its ${hydra.runtime.choices} interpolation: quote, do not escape.
    argv = [
        *argv_prefix,
        *overrides,
        f"++hydra.help.template={_quote(template)}",
        "--help",  # last: argparse wants the overrides (positionals) in one run
    ]
    shown = " ".join([*argv_prefix, *overrides, "--help"])
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env={**(os.environ if env is None else env), "PYTHONIOENCODING": "utf-8"},
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise HydraProbeError(
            f"probing the Hydra app with `{shown}` timed out after {timeout:g}s"
        ) from e
    except OSError as e:
        raise HydraProbeError(f"could not start `{shown}` to probe the Hydra app: {e}") from e
    out = proc.stdout
    if proc.returncode != 0:
        raise HydraProbeError(
            f"probing the Hydra app with `{shown}` failed (exit code {proc.returncode}):\n"
            + _tail(proc.stderr or out)
        )
    positions = [out.find(mark(s)) for s in ("groups", "config", "choices", "end")]
    if any(p < 0 for p in positions) or positions != sorted(positions):
        raise HydraProbeError(
            f"`{shown}` did not print Hydra's app help: the program does not look like a "
            "Hydra app (decorated with @hydra.main). Use ${args} or ${args_no_hyphens} for "
            "other programs. Its output:\n" + _tail(out + proc.stderr)
        )

    def section(i: int) -> str:
        name = ("groups", "config", "choices", "end")[i]
        return out[positions[i] + len(mark(name)) : positions[i + 1]]

    groups, group_options = _parse_groups(section(0))
    try:
        config = yaml.safe_load(section(1)) or {}
        choices_raw = ast.literal_eval(section(2).strip())
    except (yaml.YAMLError, ValueError, SyntaxError) as e:
        raise HydraProbeError(f"could not read the Hydra app's config from `{shown}`: {e}") from e
    if not isinstance(config, dict) or not isinstance(choices_raw, dict):
        raise HydraProbeError(f"unexpected Hydra help output from `{shown}`")
    choices = {str(k): (None if v is None else str(v)) for k, v in choices_raw.items()}
    groups.update(choices)
    return HydraAppInfo(choices=choices, groups=groups, config=config, group_options=group_options)


_NO_MATCH = re.compile(r"Could not override '([^']+)'\. No match in the defaults list")
_MANDATORY = re.compile(r"You must specify '([^']+)', e\.g")
_MULTIPLE = re.compile(r"Multiple values for (\S+?)\. To override a value use")


class HydraOverrides:
    """Hydra overrides for an agent's trials, probing the app once and caching what it learns.

    ``overrides(params, argv=..., env=...)`` returns the overrides of one trial. ``argv`` is the
    trial command without its per-trial arguments (``build_command`` passes it): the app is
    probed once per distinct ``argv``. When a trial selects config group options, the config is
    composed again with those options (cached per combination) to check the group overrides
    with Hydra itself: a group that another group's option adds to the defaults list (say
    ``db/engine`` when ``db=postgres``) gets ``group=`` rather than ``+group=``, and keys are
    checked against the config those options compose.

    Warnings (absent keys, unknown options) go to ``on_warning`` (default: this module's logger)
    once each, and are kept in ``warnings``.

    With ``info`` given the app is never probed; with ``probe=False`` and no ``info`` every
    parameter gets ``++key=value``. ``program`` (with ``interpreter``, default
    ``sys.executable``) gives the argv to probe when ``overrides`` is called without one.
    ``cwd`` is where the app is probed (the trials' working directory; default: the current
    one).
    """

    def __init__(
        self,
        *,
        cwd: Path | None = None,
        program: str | None = None,
        interpreter: str | None = None,
        timeout: float = 60,
        info: HydraAppInfo | None = None,
        probe: bool = True,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.cwd = cwd
        #: the argv probed when ``overrides`` gets none: ``[interpreter, program]``
        self.default_argv: list[str] = (
            [interpreter or sys.executable, program] if program is not None else []
        )
        self.timeout = timeout
        self.info = info
        self.probe = probe
        self.on_warning = on_warning
        self.warnings: list[str] = []
        self._cache: dict[tuple[tuple[str, ...], tuple[str, ...]], HydraAppInfo] = {}
        self._errors: dict[tuple[tuple[str, ...], tuple[str, ...]], HydraProbeError] = {}

    def info_for(
        self,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        overrides: Sequence[str] = (),
    ) -> HydraAppInfo:
        """The probe of ``argv`` with ``overrides`` (cached, errors too)."""
        key = (tuple(argv), tuple(overrides))
        if key in self._cache:
            return self._cache[key]
        if key in self._errors:
            raise self._errors[key]
        try:
            info = probe_hydra_app(
                argv, self.cwd or Path.cwd(), env, self.timeout, overrides=overrides
            )
        except HydraProbeError as e:
            self._errors[key] = e
            raise
        self._cache[key] = info
        return info

    def overrides(
        self,
        params: Mapping[str, Any],
        *,
        argv: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> list[str]:
        """The Hydra overrides of one trial (see the class doc)."""
        if self.info is not None:
            items, warnings = _plan(params, self.info)
            warnings += _absent_key_warnings(items, self.info)
        elif not self.probe:
            items, warnings = _plan(params, None)
        else:
            argv = argv or self.default_argv
            if not argv:
                raise ValueError("HydraOverrides needs the program's argv to probe the app")
            items, warnings = self._checked_plan(params, argv, env)
        self._warn(warnings)
        return [item.render() for item in items]

    def _checked_plan(
        self, params: Mapping[str, Any], argv: Sequence[str], env: Mapping[str, str] | None
    ) -> tuple[list[_Item], list[str]]:
        # A group that the defaults list marks mandatory (`db: ???`) must be chosen even to
        # compose the base config: take the trial's option for it.
        mandatory: list[str] = []
        while True:
            try:
                base = self.info_for(argv, env, mandatory)
                break
            except HydraProbeError as e:
                m = _MANDATORY.search(str(e))
                if m is None or m.group(1) not in params or f"{m.group(1)}=" in str(mandatory):
                    raise
                option = _group_option(m.group(1), params[m.group(1)])
                mandatory.append(f"{m.group(1)}={option}")
        items, warnings = _plan(params, base)
        groups = [item for item in items if item.kind == "group"]
        if not groups:
            return items, warnings + _absent_key_warnings(items, base)
        # Compose with the trial's group overrides; let Hydra say which form each group needs.
        for _ in range(len(groups) + 1):
            rendered = [item.render() for item in groups]
            try:
                composed = self.info_for(argv, env, rendered)
            except HydraProbeError as e:
                message = str(e)
                flipped = False
                for item in groups:
                    no_match = _NO_MATCH.search(message)
                    multiple = _MULTIPLE.search(message)
                    if item.prefix == "" and no_match and no_match.group(1) == item.key:
                        item.prefix, flipped = "+", True
                    elif item.prefix == "+" and multiple and multiple.group(1) == item.key:
                        item.prefix, flipped = "", True
                if not flipped:
                    raise
                continue
            return items, warnings + _absent_key_warnings(items, composed)
        raise HydraProbeError(
            "could not find overrides that Hydra accepts for the config groups "
            + ", ".join(item.key for item in groups)
        )

    def _warn(self, warnings: Sequence[str]) -> None:
        for message in warnings:
            if message in self.warnings:
                continue
            self.warnings.append(message)
            if self.on_warning is not None:
                self.on_warning(message)
            else:
                log.warning("%s", message)
