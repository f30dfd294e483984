"""Early termination of sweep runs (the sweep's ``early_terminate`` section).

Two rules, both evaluated on a snapshot of the sweep's runs (see :class:`EarlyStopping`):

* ``type: hyperband`` -- W&B-compatible. Despite the name this is not Hyperband's bracket
  scheduler but a stopping rule evaluated at fixed iteration counts ("bands"): a running run is
  judged at the latest band it has reached, against a threshold computed from the values that
  *every* run of the sweep (itself included, whatever its state) logged at that band.
* ``type: asha`` -- asynchronous successive halving (Li et al. 2018, "A System for Massively
  Parallel Hyperparameter Tuning") in its stopping form: rungs at ``min_iter * eta**k``; a run
  that reaches a rung survives only if it is in the top ``1/eta`` of the runs that reached it.

An *iteration* is one logged value of the sweep metric (``RunProgress.values[i]`` is iteration
``i + 1``); the run's step counter plays no part. ``docs/early-termination.md`` documents both
rules for users; this module is pure: no I/O, no clock, no randomness, no mutable state.
"""

from __future__ import annotations

import abc
import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final, Literal

__all__ = [
    "AshaStopping",
    "EarlyStopping",
    "EarlyStoppingConfigError",
    "HyperbandStopping",
    "RunProgress",
    "StopDecision",
    "build_early_stopping",
]

Goal = Literal["minimize", "maximize"]

#: the only state in which a run can be stopped
RUNNING: Final = "running"
#: open-ended schedules (``min_iter`` without ``max_iter``) list their bands up to this count
MAX_BAND: Final = 10**12
#: default ``eta`` of both rules (W&B's default)
DEFAULT_ETA: Final = 3
#: smallest accepted ``eta``
MIN_ETA: Final = 2

_HYPERBAND_KEYS: Final = ("type", "min_iter", "max_iter", "s", "eta", "strict")
_ASHA_KEYS: Final = ("type", "min_iter", "max_iter", "eta")
_TYPES: Final = ("hyperband", "asha")


@dataclass(frozen=True)
class RunProgress:
    """What early stopping needs to know about one run of the sweep."""

    run_id: str
    #: ``running``, ``finished``, ``failed``, ``crashed``, ``killed``, ``stopped``, ...
    state: str
    #: the sweep metric's successive logged values, in order (index 0 = iteration 1)
    values: Sequence[float]


@dataclass(frozen=True)
class StopDecision:
    """A running run to stop, and why (one line, for logs and the UI)."""

    run_id: str
    reason: str


class EarlyStoppingConfigError(ValueError):
    """The ``early_terminate`` section is invalid; the message names the key and the fix."""


class EarlyStopping(abc.ABC):
    """An early-termination rule.

    Contract of :meth:`decide`:

    * it returns the runs to stop *now*, only ever runs whose state is ``running``, in the order
      they were given; runs in any other state (finished, failed, crashed, killed, stopped,
      pending...) are never stopped, but their values count as evidence;
    * it is pure and deterministic: the result depends only on its argument (not on call
      history, time or randomness), and neither the argument nor the rule is modified;
    * instances are immutable, so one instance may be shared by threads and called concurrently;
    * a run is only judged at a milestone of :attr:`bands` it has reached (``len(values) >=
      band``); a run that has not reached the first one is never stopped;
    * a value that is not a finite number (NaN, +/-inf, or not a number at all) ranks below every
      finite value, whatever the goal; a run judged on such a value is stopped.

    A controller calls it whenever runs report new values (after each value, or periodically)
    and stops the runs returned; calling it again with the same snapshot returns the same runs.
    """

    #: the iteration milestones at which runs are judged, increasing
    bands: tuple[int, ...]

    @abc.abstractmethod
    def decide(self, runs: Sequence[RunProgress]) -> list[StopDecision]:
        """Which running runs to stop now, given every run of the sweep."""


# --------------------------------------------------------------------------------------------
# values


def _badness(value: object, goal: Goal) -> float:
    """``value`` as a number where lower is better; ``math.inf`` for a non-finite or non-number."""
    if isinstance(value, bool):
        return math.inf
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.inf
    if not math.isfinite(number):
        return math.inf
    return number if goal == "minimize" else -number


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return repr(value)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return repr(value)
    return f"{number:.6g}"


def _fmt_badness(badness: float, goal: Goal) -> str:
    if math.isinf(badness):
        return "a non-finite value"
    return _fmt(badness if goal == "minimize" else -badness)


def _fmt_eta(eta: float) -> str:
    return str(int(eta)) if float(eta).is_integer() else f"{eta:g}"


def _exact(eta: float) -> Fraction:
    """``eta`` as the decimal the user wrote (``2.2`` -> 11/5), for exact arithmetic."""
    return Fraction(repr(float(eta)))


def _worse_word(goal: Goal) -> str:
    return "above" if goal == "minimize" else "below"


def _check_rule(metric_name: str, goal: str, bands: tuple[int, ...], eta: float) -> None:
    if goal not in ("minimize", "maximize"):
        raise ValueError(f"goal must be 'minimize' or 'maximize', not {goal!r}")
    if not bands or any(b < 1 for b in bands) or list(bands) != sorted(set(bands)):
        raise ValueError(f"bands must be positive and strictly increasing, got {bands!r}")
    if not (isinstance(eta, int | float) and math.isfinite(eta) and eta >= MIN_ETA):
        raise ValueError(f"eta must be a number >= {MIN_ETA}, got {eta!r}")
    if not isinstance(metric_name, str):
        raise ValueError(f"metric_name must be a string, got {metric_name!r}")


def _latest_band(bands: tuple[int, ...], n_values: int) -> int | None:
    """The largest band ``<= n_values``, or None when the run has not reached the first one."""
    latest = None
    for band in bands:
        if band > n_values:
            break
        latest = band
    return latest


def _values_at(runs: Sequence[RunProgress], band: int, goal: Goal) -> list[float]:
    """Badness at iteration ``band`` of every run (any state) that has logged that many values."""
    return sorted(_badness(r.values[band - 1], goal) for r in runs if len(r.values) >= band)


# --------------------------------------------------------------------------------------------
# the rules


@dataclass(frozen=True)
class HyperbandStopping(EarlyStopping):
    """W&B's ``hyperband`` early termination.

    At each call, every running run is judged at the latest band it has reached (only that one:
    earlier bands are not revisited). The band's threshold is taken from the values all runs of
    the sweep (every state, the judged run included) logged at that band's iteration: sorted
    best-first, the threshold is the entry at index ``floor(n / eta)``. The run is stopped when
    its value is strictly worse than the threshold:

    * ``strict=False`` (default): its value is its best value so far, over its whole history
      (iterations after the band included);
    * ``strict=True``: its value is the one it logged at the band's iteration.

    Since a run stays judged at band k until it reaches band k+1, and runs that reach band k
    later move the threshold, a run that passed band k can still be stopped before band k+1.
    """

    metric_name: str
    goal: Goal
    bands: tuple[int, ...]
    eta: float = DEFAULT_ETA
    strict: bool = False

    def __post_init__(self) -> None:
        _check_rule(self.metric_name, self.goal, self.bands, self.eta)

    def threshold_index(self, n: int) -> int:
        """Index (best-first) of the threshold among ``n`` values at a band: ``floor(n / eta)``."""
        eta = _exact(self.eta)
        return int(n * eta.denominator // eta.numerator)

    def decide(self, runs: Sequence[RunProgress]) -> list[StopDecision]:
        thresholds: dict[int, tuple[float, int]] = {}
        decisions: list[StopDecision] = []
        for run in runs:
            if run.state != RUNNING:
                continue
            band = _latest_band(self.bands, len(run.values))
            if band is None:
                continue
            if band not in thresholds:
                at_band = _values_at(runs, band, self.goal)
                thresholds[band] = (at_band[self.threshold_index(len(at_band))], len(at_band))
            threshold, n = thresholds[band]
            if self.strict:
                raw: object = run.values[band - 1]
                value = _badness(raw, self.goal)
            else:
                value = math.inf
                raw = math.nan
                for v in run.values:
                    b = _badness(v, self.goal)
                    if b < value:
                        value, raw = b, v
            if math.isfinite(value) and value <= threshold:
                continue
            reason = self._reason(raw, value, band, threshold, n, len(run.values))
            decisions.append(StopDecision(run.run_id, reason))
        return decisions

    def _reason(
        self, raw: object, value: float, band: int, threshold: float, n: int, n_values: int
    ) -> str:
        top = f"top 1/{_fmt_eta(self.eta)} of {n} run{'s' if n != 1 else ''}"
        if self.strict:
            what = f"{self.metric_name} {_fmt(raw)} at iteration {band}"
            band_name = "band"
        else:
            what = f"best {self.metric_name} so far {_fmt(raw)} (over {n_values} iterations)"
            band_name = f"iteration-{band} band"
        if not math.isfinite(value):
            return f"hyperband: {what} is not a finite number (NaN/inf rank last; band {band})"
        return (
            f"hyperband: {what} is {_worse_word(self.goal)} the {band_name} threshold "
            f"{_fmt_badness(threshold, self.goal)} ({top})"
        )


@dataclass(frozen=True)
class AshaStopping(EarlyStopping):
    """Asynchronous successive halving, stopping variant (``type: asha``).

    Rungs are ``min_iter * eta**k`` (below ``max_iter`` when given). At each call, every running
    run is judged at the latest rung it has reached, on the value it logged at that rung's
    iteration. It survives when it is among the top ``max(1, floor(n / eta))`` of the ``n`` runs
    (every state, itself included) that have reached the rung -- runs tied with the last
    surviving value survive too -- and is stopped otherwise. The first run at a rung always
    survives, so no run ever waits for a rung to fill up (the "asynchronous" in ASHA).

    runyard cannot pause and resume runs, so a run that is not promoted is stopped rather than
    paused, and as this rule only sees a snapshot (no arrival order), a run's promotion from a
    rung is final only once it reaches the next rung: until then it is judged again, against the
    runs that have reached the rung since. A run that has logged ``max_iter`` values has completed
    every rung and is never stopped.
    """

    metric_name: str
    goal: Goal
    bands: tuple[int, ...]
    eta: float = DEFAULT_ETA
    max_iter: int | None = None

    def __post_init__(self) -> None:
        _check_rule(self.metric_name, self.goal, self.bands, self.eta)
        if self.max_iter is not None and self.max_iter <= self.bands[-1]:
            raise ValueError(f"max_iter {self.max_iter} must exceed the last rung {self.bands[-1]}")

    def promoted_count(self, n: int) -> int:
        """How many of ``n`` runs at a rung are promoted: ``max(1, floor(n / eta))``."""
        eta = _exact(self.eta)
        return max(1, int(n * eta.denominator // eta.numerator))

    def decide(self, runs: Sequence[RunProgress]) -> list[StopDecision]:
        cutoffs: dict[int, tuple[float, int, int]] = {}
        decisions: list[StopDecision] = []
        for run in runs:
            if run.state != RUNNING:
                continue
            if self.max_iter is not None and len(run.values) >= self.max_iter:
                continue
            rung = _latest_band(self.bands, len(run.values))
            if rung is None:
                continue
            if rung not in cutoffs:
                at_rung = _values_at(runs, rung, self.goal)
                k = self.promoted_count(len(at_rung))
                cutoffs[rung] = (at_rung[k - 1], k, len(at_rung))
            cutoff, k, n = cutoffs[rung]
            raw = run.values[rung - 1]
            value = _badness(raw, self.goal)
            if math.isfinite(value) and value <= cutoff:
                continue
            what = f"asha: {self.metric_name} {_fmt(raw)} at rung {rung}"
            if not math.isfinite(value):
                reason = f"{what} is not a finite number (NaN/inf rank last)"
            else:
                reason = (
                    f"{what} is not in the top {k} of the {n} runs that reached iteration {rung}"
                    f" (top 1/{_fmt_eta(self.eta)}; cutoff {_fmt_badness(cutoff, self.goal)})"
                )
            decisions.append(StopDecision(run.run_id, reason))
        return decisions


# --------------------------------------------------------------------------------------------
# configuration


def _err(key: str, problem: str, fix: str) -> EarlyStoppingConfigError:
    return EarlyStoppingConfigError(f"early_terminate.{key} {problem}; {fix}")


def _int_option(spec: Mapping[str, Any], key: str, example: int) -> int | None:
    """An integer >= 1 (an integral float such as ``3.0`` is accepted, as JSON Schema does)."""
    if key not in spec or spec[key] is None:
        return None
    value = spec[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(key, f"must be an integer, got {value!r}", f"e.g. {key}: {example}")
    if value < 1:
        raise _err(key, f"must be at least 1, got {value}", f"e.g. {key}: {example}")
    return value


def _eta_option(spec: Mapping[str, Any]) -> float:
    value = spec.get("eta")
    if value is None:
        return DEFAULT_ETA
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _err("eta", f"must be a number, got {value!r}", f"e.g. eta: {DEFAULT_ETA}")
    if value < MIN_ETA:
        raise _err(
            "eta",
            f"must be at least {MIN_ETA}, got {value!r}",
            f"use eta: {MIN_ETA} (keep the top half) or more, e.g. eta: {DEFAULT_ETA}",
        )
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _check_keys(spec: Mapping[str, Any], kind: str, allowed: Sequence[str]) -> None:
    for key in spec:
        if key in allowed:
            continue
        name = str(key)
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        if kind == "asha" and name in ("s", "strict"):
            hint = "asha has no such option (it belongs to type: hyperband); remove it"
        raise _err(name, f"is not an option of type: {kind}", hint)


def _min_iter_bands(min_iter: int, eta: float, below: int | None) -> tuple[int, ...]:
    """``floor(min_iter * eta**k)`` for k = 0, 1, ... while below ``below`` (or <= MAX_BAND)."""
    exact = _exact(eta)
    bands: list[int] = []
    k = 0
    while True:
        band = math.floor(min_iter * exact**k)
        if (below is not None and band >= below) or band > MAX_BAND:
            break
        if not bands or band > bands[-1]:
            bands.append(band)
        k += 1
    return tuple(bands)


def _max_iter_bands(max_iter: int, s: int, eta: float) -> tuple[int, ...]:
    """``floor(max_iter / eta**i)`` for i = 1..s, stopping below 1 (W&B's ``max_iter`` + ``s``)."""
    exact = _exact(eta)
    bands = set()
    for i in range(1, s + 1):
        band = max_iter / exact**i
        if band < 1:
            break
        bands.add(math.floor(band))
    return tuple(sorted(bands))


def build_early_stopping(
    spec: Mapping[str, Any] | None,
    metric_name: str,
    goal: Literal["minimize", "maximize"],
) -> EarlyStopping | None:
    """The rule an ``early_terminate`` section describes, or None when there is none.

    ``metric_name`` and ``goal`` come from the sweep's ``metric`` section. Raises
    :class:`EarlyStoppingConfigError` for an invalid section.

    ``hyperband`` (W&B's keys and defaults): ``min_iter`` (bands ``min_iter * eta**k``) or
    ``max_iter`` with ``s`` (bands ``max_iter / eta**i`` for i = 1..s; ``max_iter`` itself is not
    a band; like W&B, these win over ``min_iter`` when both are given), ``eta`` (default 3),
    ``strict`` (default false). ``asha``: ``min_iter`` (required), ``max_iter`` (optional: rungs
    stop below it), ``eta`` (default 3).
    """
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise EarlyStoppingConfigError(
            f"early_terminate must be a mapping, got {spec!r}; "
            "e.g. early_terminate: {type: hyperband, min_iter: 3}"
        )
    if goal not in ("minimize", "maximize"):
        raise EarlyStoppingConfigError(
            f"metric.goal must be 'minimize' or 'maximize' for early_terminate, got {goal!r}"
        )
    if not isinstance(metric_name, str) or not metric_name:
        raise EarlyStoppingConfigError(
            "early_terminate needs the sweep's metric: set metric.name (and metric.goal)"
        )

    kind = spec.get("type")
    if kind is None:
        raise _err("type", "is required", "use type: hyperband or type: asha")
    if kind not in _TYPES:
        raise _err("type", f"must be 'hyperband' or 'asha', got {kind!r}", "e.g. type: hyperband")

    eta = _eta_option(spec)
    min_iter = _int_option(spec, "min_iter", 3)
    max_iter = _int_option(spec, "max_iter", 27)

    if kind == "asha":
        _check_keys(spec, "asha", _ASHA_KEYS)
        if min_iter is None:
            raise _err(
                "min_iter", "is required for type: asha", "e.g. min_iter: 1 (the first rung)"
            )
        if max_iter is not None and max_iter <= min_iter:
            raise _err(
                "max_iter",
                f"({max_iter}) must be greater than min_iter ({min_iter})",
                "raise max_iter or remove it",
            )
        rungs = _min_iter_bands(min_iter, eta, max_iter)
        if not rungs:
            raise _err(
                "min_iter", f"({min_iter}) is beyond the largest band {MAX_BAND}", "lower it"
            )
        return AshaStopping(metric_name, goal, rungs, eta, max_iter)

    _check_keys(spec, "hyperband", _HYPERBAND_KEYS)
    strict = spec.get("strict", False)
    if strict is None:
        strict = False
    if not isinstance(strict, bool):
        raise _err("strict", f"must be true or false, got {strict!r}", "e.g. strict: true")
    s = _int_option(spec, "s", 2)

    if max_iter is not None:
        if s is None:
            raise _err(
                "s", "is required with max_iter", "e.g. max_iter: 27, s: 2 (or use min_iter)"
            )
        bands = _max_iter_bands(max_iter, s, eta)
        if not bands:
            raise _err(
                "max_iter",
                f"({max_iter}) with eta {_fmt_eta(eta)} gives no band (max_iter / eta < 1)",
                "increase max_iter or lower eta",
            )
    elif min_iter is not None:
        bands = _min_iter_bands(min_iter, eta, None)
        if not bands:
            raise _err(
                "min_iter", f"({min_iter}) is beyond the largest band {MAX_BAND}", "lower it"
            )
    else:
        raise EarlyStoppingConfigError(
            "early_terminate needs min_iter or max_iter (with s) for type: hyperband; "
            "e.g. min_iter: 3 (bands 3, 9, 27, ...) or max_iter: 27, s: 2 (bands 3, 9)"
        )
    return HyperbandStopping(metric_name, goal, bands, eta, strict)
