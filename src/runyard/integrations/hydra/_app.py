"""The Hydra app as the sweeper sees it: its config groups, its composed config, and each
trial's overrides in the form Hydra needs (``key=v`` / ``+key=v`` for plain keys,
``group=opt`` / ``+group=opt`` / ``~group`` for config groups).

Composition uses the config loader Hydra gave the sweeper, in this process.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ValueType
from hydra.plugins.config_source import ConfigSource
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from runyard.integrations.hydra._errors import TrialError
from runyard.sweeps.hydra_args import format_value, plain_value

__all__ = ["App", "ReusingConfigLoader", "group_of", "has_key", "hydra_message", "key_paths"]

# Hydra's messages when a config group override has the wrong form (hydra-core 1.3).
_NO_MATCH = re.compile(r"Could not override '([^']+)'\. No match in the defaults list")
_MULTIPLE = re.compile(r"Multiple values for (\S+?)\. To override a value use")
_MANDATORY = re.compile(r"You must specify '([^']+)', e\.g")
# Strings that may go unquoted in an override (checked again with Hydra's parser).
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./@]*")


def has_key(config: Any, dotted: str) -> bool:
    node = config
    for part in dotted.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def key_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every dotted key path of a plain nested config (mappings only)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            path = f"{prefix}{key}"
            yield path
            yield from key_paths(value, f"{path}.")


def group_of(name: str) -> str:
    """The config group a parameter names: ``db@backup`` -> ``db``."""
    return name.split("@", 1)[0]


class App:
    """The Hydra app as the sweeper sees it: composes its config in-process (with the config
    loader Hydra gave the sweeper) and writes each trial's overrides in the form Hydra needs.

    A trial's job config is composed once (:meth:`job`), and that composition is handed to the
    launcher (:class:`ReusingConfigLoader`). The form of each config group override (``db=``,
    ``+db=``, ``~db``) comes from ``hydra.runtime.choices`` of the base config; where Hydra
    disagrees (a group that another group's option adds to the defaults list) the composition
    is retried with the other form, and what was learned is kept per combination of options.

    Plain keys get ``key=value``, or the ``+``/``++`` the search space wrote for them
    (``added``: a key added on purpose).
    """

    def __init__(
        self,
        loader: ConfigLoader,
        master: DictConfig,
        fixed: Sequence[str],
        warn: Callable[[str], None],
        added: Mapping[str, str] | None = None,
    ) -> None:
        self.loader = loader
        self.master = master
        self.fixed = list(fixed)
        self.warn = warn
        self.added: dict[str, str] = dict(added or {})
        self._parser = OverridesParser.create()
        self._groups: set[str] | None = None
        self._options: dict[str, list[str]] = {}
        self._bases: dict[tuple[str, ...], tuple[dict[str, str | None], tuple[str, ...]]] = {}
        self._forms: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
        self._bare: dict[str, bool] = {}

    # -- the app's config groups ----------------------------------------------------------------

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
        """The options of a config group (``db@backup``: those of ``db``)."""
        group = group_of(group)
        if group not in self._options:
            try:
                self._options[group] = list(self.loader.get_group_options(group))
            except Exception:
                self._options[group] = []
        return self._options[group]

    def is_group(self, name: str) -> bool:
        """Whether a parameter names a config group (``db``, ``db/engine``, ``db@backup``)."""
        return group_of(name) in self.groups

    # -- composition ----------------------------------------------------------------------------

    def compose(self, overrides: Sequence[str]) -> DictConfig:
        """The job config for ``overrides`` (after the fixed ones); raises Hydra's error."""
        return self.compose_job([*self.fixed, *overrides])

    def compose_job(self, job: Sequence[str]) -> DictConfig:
        """The job config for exactly the overrides ``job`` (as the launcher composes it)."""
        cfg: DictConfig = self.loader.load_sweep_config(self.master, list(job))
        return cfg

    @staticmethod
    def job_dict(cfg: DictConfig) -> dict[str, Any]:
        """The composed config without its ``hydra`` node, interpolations unresolved."""
        container = OmegaConf.to_container(cfg, resolve=False)
        assert isinstance(container, dict)
        container.pop("hydra", None)
        return {str(k): v for k, v in container.items()}

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
                mandatory.append(
                    f"{m.group(1)}={self.render_option(m.group(1), params[m.group(1)])}"
                )
                continue
            raw = OmegaConf.to_container(cfg.hydra.runtime.choices, resolve=False)
            assert isinstance(raw, dict)
            choices = {str(k): (None if v is None else str(v)) for k, v in raw.items()}
            for group in self._multi_select(mandatory):
                choices.setdefault(group, None)
            self._bases[key] = (choices, key)
            return self._bases[key]
        raise TrialError("could not compose the config: mandatory config groups")

    def _multi_select(self, overrides: Sequence[str]) -> set[str]:
        """Groups in the defaults list as a multi-select (``site: [fb, google]``): Hydra leaves
        them out of ``hydra.runtime.choices``, but overriding one needs ``group=[...]``."""
        try:
            hydra_overrides = list(self.master.hydra.overrides.hydra)
            defaults = self.loader.compute_defaults_list(
                str(self.master.hydra.job.config_name),
                [*hydra_overrides, *self.fixed, *overrides],
                RunMode.MULTIRUN,
            )
        except Exception:
            return set()
        found: set[str] = set()
        for item in getattr(defaults, "defaults", ()):
            path = str(getattr(item, "config_path", "") or "")
            if getattr(item, "override_key", None) is None and "/" in path:
                group = path.rsplit("/", 1)[0]
                if not group.startswith("hydra/"):
                    found.add(group)
        return found

    def _combination(self, params: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
        return tuple(
            (name, repr(plain_value(value)))
            for name, value in params.items()
            if self.is_group(name)
        )

    def _group_forms(self, params: Mapping[str, Any]) -> dict[str, str]:
        """The form of each group parameter's override: ``""``, ``"+"`` or ``"~"`` (None for a
        group in the defaults list); groups set to None that are absent have none."""
        learned = self._forms.get(self._combination(params))
        if learned is not None:
            return dict(learned)
        choices, mandatory = self._base(params)
        forms: dict[str, str] = {}
        for name, value in params.items():
            if not self.is_group(name):
                continue
            present = name in choices or any(m.startswith(f"{name}=") for m in mandatory)
            if plain_value(value) is None:
                if present:
                    forms[name] = "~"
                continue
            forms[name] = "" if present else "+"
        return forms

    def _render_param(self, name: str, value: Any, forms: Mapping[str, str]) -> str | None:
        if self.is_group(name):
            if name not in forms:
                return None
            if forms[name] == "~":
                return f"~{name}"
            return f"{forms[name]}{name}={self.render_option(name, value)}"
        return f"{self.added.get(name, '')}{name}={self.render(value)}"

    def overrides(self, params: Mapping[str, Any]) -> dict[str, str]:
        """The override of each parameter (a group set to null that is absent: none), in the
        forms learned so far (no composition)."""
        forms = self._group_forms(params)
        out: dict[str, str] = {}
        for name, value in params.items():
            text = self._render_param(name, value, forms)
            if text is not None:
                out[name] = text
        return out

    def job(
        self,
        slots: Sequence[tuple[str, str]],
        params: Mapping[str, Any],
        extra: Sequence[str] = (),
    ) -> tuple[list[str], DictConfig]:
        """A trial's job overrides (the fixed ones and the parameters in ``slots`` order, then
        ``extra``) and its job config, composed once. Raises :class:`TrialError` with Hydra's
        message when the overrides do not compose."""
        forms = self._group_forms(params)
        for _ in range(len(forms) + 1):
            by_name = {}
            for name, value in params.items():
                text = self._render_param(name, value, forms)
                if text is not None:
                    by_name[name] = text
            overrides: list[str] = []
            placed: set[str] = set()
            for kind, text in slots:
                if kind == "fixed":
                    overrides.append(text)
                elif text in params:
                    placed.add(text)
                    if text in by_name:
                        overrides.append(by_name[text])
            overrides += [by_name[n] for n in params if n not in placed and n in by_name]
            try:
                cfg = self.compose_job([*overrides, *extra])
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
                    shown = " ".join(o for o in overrides if o not in self.fixed)
                    raise TrialError(
                        f"Hydra cannot compose the config with {shown}: {message}"
                    ) from None
                continue
            self._forms[self._combination(params)] = dict(forms)
            return [*overrides, *extra], cfg
        raise TrialError("could not find group overrides that Hydra accepts")

    def composed(self, assignments: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The job configs (without ``hydra``) composed with each assignment of config group
        options; assignments that do not compose are left out."""
        out = []
        for params in assignments:
            groups = {k: v for k, v in params.items() if self.is_group(k)}
            try:
                _, cfg = self.job([("fixed", text) for text in self.fixed], groups)
            except TrialError:
                continue
            out.append(self.job_dict(cfg))
        return out

    # -- values -------------------------------------------------------------------------------

    def render(self, value: Any) -> str:
        """``value`` in Hydra's override grammar, unquoted where Hydra reads the bare text back
        as the same string (``file1``, not ``"file1"``), else as :func:`format_value` writes
        it, with ``${...}`` left for OmegaConf to interpolate (as Hydra's own sweepers do)."""
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
        try:
            return format_value(value, interpolate=True)
        except ValueError as exc:
            raise TrialError(str(exc)) from None

    def render_option(self, name: str, value: Any) -> str:
        """A config group's option (a name), or several for a multi-select group (a list)."""
        value = plain_value(value)
        if isinstance(value, list):
            return "[" + ",".join(self.render_option(name, v) for v in value) + "]"
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TrialError(
                f"{name} is a config group: its values must be option names (or lists of them, "
                f"for a multi-select group), got {value!r}"
            )
        return self.render(str(value))


class ReusingConfigLoader(ConfigLoader):
    """The config loader handed to the launcher: a job config the sweeper already composed
    (to check the trial's overrides) is given to the launcher instead of being composed again;
    anything else goes to Hydra's loader. Each kept config is used once."""

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader
        self._kept: dict[tuple[str, ...], DictConfig] = {}

    def keep(self, overrides: Sequence[str], cfg: DictConfig) -> None:
        self._kept[tuple(overrides)] = cfg

    def clear(self) -> None:
        self._kept.clear()

    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        cfg: DictConfig = self.loader.load_configuration(
            config_name, overrides, run_mode, from_shell, validate_sweep_overrides
        )
        return cfg

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        kept = self._kept.pop(tuple(sweep_overrides), None)
        if kept is not None:
            return kept
        cfg: DictConfig = self.loader.load_sweep_config(master_config, sweep_overrides)
        return cfg

    def get_search_path(self) -> ConfigSearchPath:
        return self.loader.get_search_path()

    def get_sources(self) -> list[ConfigSource]:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(
        self,
        group_name: str,
        results_filter: ObjectType | None = ObjectType.CONFIG,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        return self.loader.get_group_options(group_name, results_filter, config_name, overrides)

    def compute_defaults_list(
        self, config_name: str | None, overrides: list[str], run_mode: RunMode
    ) -> Any:
        return self.loader.compute_defaults_list(config_name, overrides, run_mode)


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
