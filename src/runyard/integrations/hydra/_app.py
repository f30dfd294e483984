"""The Hydra app as the sweeper sees it: its config groups, its composed config, and each
trial's overrides in the form Hydra needs (``key=v`` / ``+key=v`` for plain keys,
``group=opt`` / ``+group=opt`` / ``~group`` for config groups).

Composition uses the config loader Hydra gave the sweeper, in this process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from omegaconf import DictConfig, OmegaConf

from runyard.integrations.hydra._errors import TrialError
from runyard.sweeps.hydra_args import HydraAppInfo, format_overrides, format_value, plain_value

if TYPE_CHECKING:
    from hydra.core.config_loader import ConfigLoader

__all__ = ["App", "hydra_message"]

# Hydra's messages when a config group override has the wrong form (hydra-core 1.3).
_NO_MATCH = re.compile(r"Could not override '([^']+)'\. No match in the defaults list")
_MULTIPLE = re.compile(r"Multiple values for (\S+?)\. To override a value use")
_MANDATORY = re.compile(r"You must specify '([^']+)', e\.g")
# Strings that may go unquoted in an override (checked again with Hydra's parser).
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./@]*")


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


class App:
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
                    raise TrialError(hydra_message(exc)) from None
                mandatory.append(f"{m.group(1)}={self.render(str(params[m.group(1)]))}")
                continue
            raw = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
            assert isinstance(raw, dict)
            choices = {str(k): (None if v is None else str(v)) for k, v in raw.items()}
            self._bases[key] = (choices, key)
            return self._bases[key]
        raise TrialError("could not compose the config: mandatory config groups")

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
                raise TrialError(
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
                message = hydra_message(exc)
                no_match, multiple = _NO_MATCH.search(message), _MULTIPLE.search(message)
                flipped = False
                for name, form in forms.items():
                    if form == "" and no_match and no_match.group(1) == name:
                        forms[name], flipped = "+", True
                    elif form == "+" and multiple and multiple.group(1) == name:
                        forms[name], flipped = "", True
                if not flipped:
                    raise TrialError(
                        f"Hydra cannot compose the config with {' '.join(key)}: {message}"
                    ) from None
                continue
            self._composed[key] = (list(key), self._job_dict(cfg))
            break
        else:
            raise TrialError("could not find group overrides that Hydra accepts")
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
            raise TrialError(str(exc)) from None
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


def hydra_message(exc: BaseException) -> str:
    """Hydra's message, with the messages of its causes (composition errors chain them)."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = str(seen).strip()
        if text and text not in parts:
            parts.append(text)
        seen = seen.__cause__
    return "\n".join(parts) or type(exc).__name__
