"""Summary tracking: the one value (or aggregate) per key that tables and sweeps read.

By default a key's summary is its last logged value. ``define_metric(name, summary=...)`` with a
name or glob (``"val/*"``) turns a key's summary into aggregates, W&B-style:
``{"min": 0.1, "max": 0.9}``. A value set explicitly (``run.summary[k] = v``) is pinned: later
``log()`` calls no longer change that key's summary.

The same ``SummaryTracker`` runs in the SDK (on every ``log()``) and in journal recovery (replaying
a journal whose process died), so both compute identical summaries.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from runyard.sdk.values import decode_value

SUMMARY_CHOICES = ("min", "max", "mean", "last", "first", "best", "none")
GOALS = ("minimize", "maximize")


@dataclass
class MetricDefinition:
    """One ``define_metric`` call, as stored in the run."""

    name: str
    step_metric: str | None = None
    summary: tuple[str, ...] = ()
    goal: str | None = None
    hidden: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "step_metric": self.step_metric,
            "summary": list(self.summary),
            "goal": self.goal,
            "hidden": self.hidden,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricDefinition:
        return cls(
            name=data["name"],
            step_metric=data.get("step_metric"),
            summary=tuple(data.get("summary") or ()),
            goal=data.get("goal"),
            hidden=bool(data.get("hidden", False)),
        )


def parse_metric_definition(
    name: str,
    step_metric: str | None = None,
    summary: str | None = None,
    goal: str | None = None,
    hidden: bool | None = None,
) -> MetricDefinition:
    """Validate the arguments of ``define_metric`` and build the definition."""
    if not isinstance(name, str) or not name:
        raise ValueError("runyard.define_metric: name must be a non-empty string")
    aggs: tuple[str, ...] = ()
    if summary is not None:
        aggs = tuple(part.strip().lower() for part in summary.split(",") if part.strip())
        bad = [a for a in aggs if a not in SUMMARY_CHOICES]
        if bad:
            raise ValueError(
                f"runyard.define_metric({name!r}): summary {bad[0]!r} is not one of "
                f"{', '.join(SUMMARY_CHOICES)} (combine with commas, e.g. 'min,max')"
            )
        if "none" in aggs and len(aggs) > 1:
            raise ValueError(
                f"runyard.define_metric({name!r}): summary 'none' cannot be combined with others"
            )
    if goal is not None:
        goal = {"min": "minimize", "max": "maximize"}.get(goal.lower(), goal.lower())
        if goal not in GOALS:
            raise ValueError(
                f"runyard.define_metric({name!r}): goal {goal!r} must be 'minimize' or 'maximize'"
            )
    if "best" in aggs and goal is None:
        raise ValueError(
            f"runyard.define_metric({name!r}): summary 'best' needs goal='minimize' or 'maximize'"
        )
    return MetricDefinition(name, step_metric, aggs, goal, bool(hidden))


@dataclass
class _Aggregate:
    count: int = 0
    total: float = 0.0
    first: Any = None
    minimum: float = math.inf
    maximum: float = -math.inf
    #: an earlier session's aggregates (a resumed run), rendered until this session has values
    prior: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any) -> None:
        if self.count == 0 and self.first is None:
            self.first = value
        if type(value) is dict:
            value = decode_value(value)
        if type(value) in (int, float) and value == value:
            self.count += 1
            self.total += value
            if value < self.minimum:
                self.minimum = value
            if value > self.maximum:
                self.maximum = value

    def seed(self, earlier: Mapping[str, Any], goal: str | None) -> None:
        """Carry the aggregates an earlier session of the run stored (``{"max": 0.9}``): min,
        max, best and first continue exactly; a mean cannot (its count is not stored), so it
        covers the resumed session's values once there are any."""
        self.prior = dict(earlier)
        if "first" in earlier:
            self.first = earlier["first"]
        best = "min" if goal == "minimize" else "max"
        for name, value in earlier.items():
            if type(value) not in (int, float) or value != value:
                continue
            if name == "min" or (name == "best" and best == "min"):
                self.minimum = min(self.minimum, value)
            elif name == "max" or (name == "best" and best == "max"):
                self.maximum = max(self.maximum, value)

    def render(self, definition: MetricDefinition, last: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for agg in definition.summary:
            if agg == "last":
                out["last"] = last
            elif agg == "first":
                out["first"] = self.first
            elif self.count == 0:
                if agg in self.prior:
                    out[agg] = self.prior[agg]
                continue
            elif agg == "min":
                out["min"] = self.minimum
            elif agg == "max":
                out["max"] = self.maximum
            elif agg == "mean":
                out["mean"] = self.total / self.count
            elif agg == "best":
                out["best"] = self.minimum if definition.goal == "minimize" else self.maximum
        return out


@dataclass
class SummaryTracker:
    """Computes a run's summary from its history rows, definitions and explicit values."""

    last: dict[str, Any] = field(default_factory=dict)
    definitions: list[MetricDefinition] = field(default_factory=list)
    pinned: dict[str, Any] = field(default_factory=dict)
    _aggregates: dict[str, _Aggregate] = field(default_factory=dict)
    _resolved: dict[str, MetricDefinition | None] = field(default_factory=dict)

    def define(self, definition: MetricDefinition) -> None:
        self.definitions = [d for d in self.definitions if d.name != definition.name]
        self.definitions.append(definition)
        self._resolved.clear()

    def definition_for(self, key: str) -> MetricDefinition | None:
        try:
            return self._resolved[key]
        except KeyError:
            pass
        found: MetricDefinition | None = None
        # W&B's precedence: a definition of exactly this key wins over any glob; among the
        # globs that match, the latest.
        match = next((d for d in self.definitions if d.name == key), None)
        if match is None:
            match = next(
                (
                    d
                    for d in reversed(self.definitions)
                    if "*" in d.name and fnmatch.fnmatchcase(key, d.name)
                ),
                None,
            )
        if match is not None and match.summary:
            found = match
        self._resolved[key] = found
        return found

    def resume_under(
        self,
        summary: Mapping[str, Any] | None,
        definitions: Iterable[Mapping[str, Any]] | None,
    ) -> None:
        """A resumed run's earlier sessions (their stored summary and metric definitions)
        under this session: the summary's keys go under what this session has (its own
        values win), then :meth:`restore` carries the definitions and aggregates."""
        logged = set(self.last)
        if summary:
            merged = {**summary, **self.last}
            self.last.clear()
            self.last.update(merged)
        if definitions:
            self.restore(definitions, summary or {}, logged=logged)

    def restore(
        self,
        definitions: Iterable[Mapping[str, Any]],
        summary: Mapping[str, Any],
        logged: Collection[str] = (),
    ) -> None:
        """Carry an earlier session's metric definitions and aggregates into a resumed run, so
        that its first batch does not store the definitions away and ``max`` stays the max
        over every session. A definition this session made already wins (it is newer), and
        so does the last value of a key in ``logged`` (this session logged it already)."""
        known = {d.name for d in self.definitions}
        earlier = [
            MetricDefinition.from_dict(d)
            for d in definitions
            if isinstance(d, Mapping) and d.get("name") and d["name"] not in known
        ]
        if not earlier:
            return
        self.definitions = earlier + self.definitions
        self._resolved.clear()
        for key, value in summary.items():
            definition = self.definition_for(key) if key[:1] != "_" else None
            if definition is None or type(value) is not dict:
                continue
            self._aggregates.setdefault(key, _Aggregate()).seed(value, definition.goal)
            if "last" in value and key not in logged:
                self.last[key] = value["last"]

    def update_row(self, row: Mapping[str, Any]) -> None:
        """Account for one committed history row (values in journal form)."""
        self.last.update(row)
        if not self.definitions:
            return
        for key, value in row.items():
            if key[0] == "_":
                continue
            definition = self.definition_for(key)
            if definition is not None:
                agg = self._aggregates.get(key)
                if agg is None:
                    agg = self._aggregates[key] = _Aggregate()
                agg.add(value)

    def pin(self, key: str, value: Any) -> None:
        self.pinned[key] = value

    def unpin(self, key: str) -> None:
        self.pinned.pop(key, None)
        self.last.pop(key, None)

    def snapshot(self) -> dict[str, Any]:
        """The summary document: flat keys, values in journal form (markers for non-finite)."""
        out: dict[str, Any] = {}
        for key, value in self.last.items():
            definition = self.definition_for(key) if self.definitions else None
            if definition is None:
                out[key] = value
            elif definition.summary == ("none",):
                continue
            else:
                agg = self._aggregates.get(key) or _Aggregate()
                out[key] = agg.render(definition, value)
        out.update(self.pinned)
        return out


class Summary(MutableMapping[str, Any]):
    """``run.summary``: read the current summary, or set a value explicitly (it then wins)."""

    def __init__(self, tracker: SummaryTracker, on_set: Any = None) -> None:
        self._tracker = tracker
        self._on_set = on_set

    def _current(self) -> dict[str, Any]:
        snap = self._tracker.snapshot()
        return {k: _decode_deep(v) for k, v in snap.items()}

    def __getitem__(self, key: str) -> Any:
        return self._current()[key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"summary has no key {key!r}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        from runyard.sdk.config import to_plain

        plain = to_plain(value, key, level=2)  # under the summary document
        self._tracker.pin(key, plain)
        if self._on_set is not None:
            self._on_set({"set": {key: plain}})

    def __delitem__(self, key: str) -> None:
        if key not in self._current():
            raise KeyError(key)
        self._tracker.unpin(key)
        if self._on_set is not None:
            self._on_set({"del": [key]})

    def update(self, data: Any = (), /, **kwargs: Any) -> None:
        for key, value in dict(data, **kwargs).items():
            self[key] = value

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    def __repr__(self) -> str:
        return f"Summary({self._current()!r})"


def _decode_deep(value: Any) -> Any:
    if type(value) is dict:
        if "__f__" in value and len(value) == 1:
            return decode_value(value)
        return {k: _decode_deep(v) for k, v in value.items()}
    return value
