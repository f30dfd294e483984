"""The search space: Hydra's sweep grammar (``hydra.sweeper.params`` and the command line's
sweep overrides) as the parameters of a ``sweep.yaml``.

:func:`parse_search_space` splits the overrides into fixed ones (passed to every job as they
are) and swept parameters; :func:`spec_from_override` maps one sweep override to a parameter
spec. Nothing here composes the app's config (that is :mod:`._app`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    QuotedString,
    RangeSweep,
    ValueType,
)

from runyard.integrations.hydra._errors import RunyardSweeperError

__all__ = ["SearchSpec", "flat_parameters", "parse_search_space", "spec_from_override"]


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
    ``range(0,1,0.25)``, ``range(0,10,2)``        ``q_uniform`` (``q`` = the step), when the
                                                  values are multiples of the step
    ``range(1,10,3)``, other ranges               ``values`` of the range
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
        quantized = _range_as_q_uniform(values, value.step, ints)
        if quantized is not None:
            return quantized, notes
        if len(values) > 1 and all(type(v) in (int, float) for v in values):
            notes.append(
                f"{key}: {override.input_line}: its values are not multiples of the step, so "
                "Bayesian search treats them as unordered choices (start at a multiple of "
                "the step to keep their order)"
            )
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


def _range_as_q_uniform(values: list[Any], step: Any, ints: bool) -> dict[str, Any] | None:
    """``range(a, b, step)`` as ``q_uniform`` (ordered, so Bayesian search knows that 0.5 is
    between 0.25 and 0.75) when its values are exactly the multiples of ``step`` from ``a``:
    the values ``q_uniform`` produces. None otherwise."""
    if len(values) < 2 or isinstance(step, bool) or not isinstance(step, int | float):
        return None
    if step <= 0:
        return None
    q: int | float = int(step) if ints else float(step)
    spec: dict[str, Any] = {"distribution": "q_uniform", "min": values[0], "max": values[-1]}
    spec["q"] = q
    try:
        from runyard.sweeps.space import Parameter

        grid = Parameter(
            name="range", distribution="q_uniform", min=values[0], max=values[-1], q=q
        ).grid_values()
    except ValueError:
        return None
    same = len(grid) == len(values) and all(
        abs(float(g) - float(v)) <= 1e-9 * max(1.0, abs(float(v)))
        for g, v in zip(grid, values, strict=True)
    )
    return spec if same else None


@dataclass
class SearchSpec:
    """What the sweep overrides and ``hydra.sweeper.params`` ask for."""

    #: swept parameter name (config key or group) -> sweep.yaml spec, in order
    parameters: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the job's overrides in order: ``("fixed", text)`` or ``("param", name)``
    slots: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: swept names written with ``+`` or ``++`` (a key added on purpose) -> that prefix
    added: dict[str, str] = field(default_factory=dict)

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
        name = f"{name}@{override.package}"
    if override.is_delete():
        raise RunyardSweeperError(f"{line}: a deletion (~key) cannot be swept")
    return name


def parse_search_space(parser: OverridesParser, lines: Sequence[str]) -> SearchSpec:
    """Split ``lines`` (``hydra.sweeper.params`` as ``key=value`` first, then the command
    line's overrides) into fixed overrides and swept parameters.

    A key given twice keeps its first position and its last value (the command line wins over
    ``params``). A config group is named by its path (``db``, ``db/engine``) and its package
    if it has one (``db@backup``); the ``+`` written on a group is not needed (the sweeper
    chooses the form per trial). On a plain key, ``+``/``++`` says that the key is added on
    purpose (``added``); without one, the key must exist in the app's config.
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
        if override.is_force_add():
            spec.added[name] = "++"
        elif override.is_add():
            spec.added[name] = "+"
        param, notes = spec_from_override(override)
        spec.parameters[name] = param
        spec.notes.extend(notes)
        spec.slots.append(("param", name))
    return spec


def flat_parameters(block: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """A sweep.yaml ``parameters`` block with nested blocks flattened to dotted names."""
    out: dict[str, dict[str, Any]] = {}
    for key, spec in block.items():
        if isinstance(spec, Mapping) and "parameters" in spec:
            out.update(flat_parameters(spec["parameters"], f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = dict(spec)
    return out
