"""The search space of a sweep: its parameters, their distributions, and their encoding.

A :class:`Parameter` is one leaf of a sweep.yaml ``parameters:`` block; nested blocks give
dotted names (``optimizer.lr``). A :class:`SearchSpace` is the ordered tuple of them, in
document order. Validation of user input (with messages that name the key path and the fix)
lives in :mod:`runyard.sweeps.config`; this module assumes well-formed parameters and raises a
plain :class:`ValueError` otherwise.

Distributions follow W&B's sweep configuration reference
(https://docs.wandb.ai/models/sweeps/sweep-config-keys, "distribution" table) and the W&B
controller's own implementation (``wandb/sweeps``: ``src/sweeps/params.py``,
``HyperParameter.ppf``; ``src/sweeps/config/schema.json`` for keys and defaults):

======================== ============================================================
``constant``             always ``value``
``categorical``          one of ``values`` (uniformly, or with ``probabilities``)
``int_uniform``          integer uniform on ``[min, max]``, both ends included
``uniform``              real uniform on ``[min, max]``
``q_uniform``            ``round(X / q) * q``, ``X`` uniform on ``[min, max]``
``log_uniform_values``   ``X`` in ``[min, max]`` with ``log(X)`` uniform
``q_log_uniform_values`` ``round(X / q) * q``, ``X`` log_uniform_values
``inv_log_uniform_values`` ``X`` with ``log(1/X)`` uniform on ``[log(1/max), log(1/min)]``
``normal``               normal with mean ``mu`` (default 0), std ``sigma`` (default 1)
``q_normal``             ``round(X / q) * q``, ``X`` normal
``log_normal``           ``X`` with ``log(X)`` normal(``mu``, ``sigma``)
``q_log_normal``         ``round(X / q) * q``, ``X`` log_normal
``beta``                 beta(``a``, ``b``) on ``[0, 1]`` (defaults 1, 1)
``q_beta``               ``round(X / q) * q``, ``X`` beta
``log_uniform``          deprecated: ``X = exp(U)``, ``U`` uniform on ``[min, max]`` (exponents)
``q_log_uniform``        deprecated: ``round(X / q) * q``, ``X`` log_uniform
``inv_log_uniform``      deprecated: ``X`` with ``log(1/X)`` uniform on ``[min, max]``
======================== ============================================================

Notes on W&B semantics kept here:

* ``q`` defaults to ``1.0``. Quantized values are ``int`` when ``q`` is written as an integer
  (``q: 1``) and ``float`` otherwise, as in W&B (``ret_val.astype(int)`` when
  ``isinstance(q, int)``). ``round`` is round-half-to-even, like ``numpy.round``. Quantized
  values are the multiples of ``q`` (not ``min + k*q``); runyard writes them without float noise
  (``0.3``, not ``0.30000000000000004``).
* ``inv_log_uniform_values`` has the same distribution as ``log_uniform_values`` (the inverse of
  a log-uniform variable is log-uniform); it is kept for compatibility.

Where runyard differs from W&B, on purpose:

* grid values of quantized parameters include the upper end (W&B's grid uses
  ``numpy.arange(min, max, q)``, which drops it, and starts at ``min`` rather than at a multiple of
  ``q`` as sampling does; runyard's grid is exactly the set of values sampling can produce);
* categorical values are looked up by type-aware equality, so ``0``, ``False``, ``""`` and
  ``None`` are distinct, valid values that round-trip (W&B skips falsy values when it encodes
  past runs for Bayesian search, and ``0 == False`` in Python).

The encoding (see :mod:`runyard.sweeps.search.encoding`) maps every non-constant parameter to one
dimension of ``[0, 1]`` (or a categorical index): a value ``v`` is encoded as ``F(v)``, the CDF of
its (unquantized) prior, so ``[0, 1]`` is the prior's quantile: linear position between bounds for
the uniform family, position in log space for the log family, the prior CDF for ``normal``,
``log_normal`` and ``beta``. Unbounded priors (``normal``, ``log_normal`` and their ``q_``
forms) are truncated to their central ``1 - 2 * UNBOUNDED_TAIL`` mass, so that the ends of
``[0, 1]`` decode to finite values (about ``mu ± 4.75 sigma``). Integer and quantized parameters
are ``discrete`` dims whose points are the encodings of their allowed values; when there are
more than ``MAX_DISCRETE_POINTS`` allowed values (huge integer ranges; small ``q`` on a wide
or unbounded prior), ``points`` holds at most that many of them (half evenly spread in value,
half at evenly spaced prior quantiles), and :meth:`Parameter.decode` still maps any ``x`` to the
nearest allowed value, so ``decode(encode(v)) == v`` holds for every allowed value. For
unbounded quantized priors the allowed values are the multiples of ``q`` inside the truncated
range; a sample beyond it (probability about ``2e-6``) encodes to the nearest end. Values whose
prior CDF is numerically 0 or 1 (far tails of ``beta`` with extreme ``a``/``b``) may share an
encoding.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported lazily: runyard.sweeps.search imports this module
    from runyard.sweeps.search.encoding import Dim

DISTRIBUTIONS: tuple[str, ...] = (
    "constant",
    "categorical",
    "int_uniform",
    "uniform",
    "q_uniform",
    "log_uniform_values",
    "q_log_uniform_values",
    "inv_log_uniform_values",
    "normal",
    "q_normal",
    "log_normal",
    "q_log_normal",
    "beta",
    "q_beta",
    "log_uniform",
    "q_log_uniform",
    "inv_log_uniform",
)

#: deprecated distribution -> its replacement (min/max as values instead of exponents)
DEPRECATED_DISTRIBUTIONS: dict[str, str] = {
    "log_uniform": "log_uniform_values",
    "q_log_uniform": "q_log_uniform_values",
    "inv_log_uniform": "inv_log_uniform_values",
}

#: keys each distribution requires, and keys it accepts with a default (None: no default)
DISTRIBUTION_KEYS: dict[str, tuple[tuple[str, ...], dict[str, float | None]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {"probabilities": None}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
}

#: the continuous family behind each numeric distribution
_FAMILY: dict[str, str] = {
    "int_uniform": "uniform",
    "uniform": "uniform",
    "q_uniform": "uniform",
    "log_uniform_values": "log",
    "q_log_uniform_values": "log",
    "inv_log_uniform_values": "log",
    "log_uniform": "log",
    "q_log_uniform": "log",
    "inv_log_uniform": "log",
    "normal": "normal",
    "q_normal": "normal",
    "log_normal": "log_normal",
    "q_log_normal": "log_normal",
    "beta": "beta",
    "q_beta": "beta",
}

#: distributions with a finite set of values (grid search can enumerate them)
GRID_DISTRIBUTIONS: frozenset[str] = frozenset(
    {
        "constant",
        "categorical",
        "int_uniform",
        "q_uniform",
        "q_log_uniform_values",
        "q_log_uniform",
        "q_beta",
    }
)

#: prior mass left out at each end of unbounded priors when encoding (about 4.75 sigma)
UNBOUNDED_TAIL = 1e-6
#: most points a discrete dim lists; larger value sets are represented by an even subset
MAX_DISCRETE_POINTS = 4096
#: most values one parameter may contribute to a grid
MAX_GRID_VALUES = 1_000_000
#: most quantization steps a quantized parameter may span (beyond this, q is meaningless)
MAX_STEPS = 10**15


class GridError(ValueError):
    """A parameter (or space) has no finite set of values to enumerate for grid search."""


def _is_number(x: Any) -> bool:
    """A real number (numpy scalars included), not a bool."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool | np.bool_)


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool | np.bool_)


def value_key(value: Any) -> Any:
    """A hashable key under which two values are equal only if they are the same value.

    Unlike ``==``, ``False`` differs from ``0``, ``1`` from ``True`` and ``None`` from ``""``;
    ``1`` and ``1.0`` are the same number (JSON does not tell them apart); lists and tuples are
    the same sequence; NaN equals NaN.
    """
    if value is None:
        return ("none",)
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, numbers.Integral):
        return ("num", int(value))
    if isinstance(value, numbers.Real):
        v = float(value)
        return ("nan",) if math.isnan(v) else ("num", v)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, list | tuple):
        return ("seq", tuple(value_key(v) for v in value))
    if isinstance(value, Mapping):
        items = sorted(((repr(value_key(k)), value_key(v)) for k, v in value.items()), key=repr)
        return ("map", tuple(items))
    try:
        hash(value)
    except TypeError:
        return ("repr", type(value).__name__, repr(value))
    return ("obj", type(value).__name__, value)


@dataclass(frozen=True)
class Parameter:
    """One swept parameter: a dotted name and a W&B distribution with its arguments.

    Arguments a distribution does not use must be None; optional ones left as None get W&B's
    defaults (``q=1.0``, ``mu=0.0``, ``sigma=1.0``, ``a=b=1.0``). Numbers keep their type:
    ``int_uniform`` bounds are ints, and an integer ``q`` makes quantized values ints.
    """

    name: str
    distribution: str
    value: Any = None
    values: tuple[Any, ...] | None = None
    probabilities: tuple[float, ...] | None = None
    min: float | None = None
    max: float | None = None
    q: float | None = None
    mu: float | None = None
    sigma: float | None = None
    a: float | None = None
    b: float | None = None

    def __post_init__(self) -> None:
        dist = self.distribution
        if dist not in DISTRIBUTION_KEYS:
            raise ValueError(f"parameter {self.name!r}: unknown distribution {dist!r}")
        required, optional = DISTRIBUTION_KEYS[dist]
        for key in ("values", "probabilities", "min", "max", "q", "mu", "sigma", "a", "b"):
            if key not in required and key not in optional and getattr(self, key) is not None:
                raise ValueError(f"parameter {self.name!r}: {dist} takes no {key!r}")
        for key, default in optional.items():
            if getattr(self, key) is None and default is not None:
                object.__setattr__(self, key, default)
        if self.values is not None and not isinstance(self.values, tuple):
            object.__setattr__(self, "values", tuple(self.values))
        if self.probabilities is not None:
            object.__setattr__(self, "probabilities", tuple(float(p) for p in self.probabilities))
        self._check()

    def _check(self) -> None:
        dist, name = self.distribution, self.name
        if dist == "constant":
            return
        if dist == "categorical":
            if not self.values:
                raise ValueError(f"parameter {name!r}: categorical needs at least one value")
            probs = self.probabilities
            if probs is not None:
                if len(probs) != len(self.values):
                    raise ValueError(
                        f"parameter {name!r}: {len(probs)} probabilities "
                        f"for {len(self.values)} values"
                    )
                if any(not p >= 0 for p in probs) or not math.isclose(
                    sum(probs), 1.0, abs_tol=1e-6
                ):
                    raise ValueError(f"parameter {name!r}: probabilities must be >= 0 and sum to 1")
            return
        numbers = {k: getattr(self, k) for k in ("min", "max", "q", "mu", "sigma", "a", "b")}
        for key, x in numbers.items():
            if x is not None and not (_is_number(x) and math.isfinite(x)):
                raise ValueError(f"parameter {name!r}: {key} must be a finite number, got {x!r}")
        if "min" in DISTRIBUTION_KEYS[dist][0]:
            if self.min is None or self.max is None:
                raise ValueError(f"parameter {name!r}: {dist} needs min and max")
            if not self.min < self.max:
                raise ValueError(f"parameter {name!r}: min must be less than max")
        if dist == "int_uniform" and not (_is_int(self.min) and _is_int(self.max)):
            raise ValueError(f"parameter {name!r}: int_uniform needs integer min and max")
        if dist.endswith("_values") and not (self.min is not None and self.min > 0):
            raise ValueError(f"parameter {name!r}: {dist} needs min > 0")
        if (
            dist in ("log_uniform", "q_log_uniform", "inv_log_uniform")
            and max(abs(self.min or 0.0), abs(self.max or 0.0)) > 700
        ):
            raise ValueError(
                f"parameter {name!r}: {dist} bounds are exponents; exp({self.max}) overflows"
            )
        for key in ("q", "sigma", "a", "b"):
            x = getattr(self, key)
            if x is not None and not x > 0:
                raise ValueError(f"parameter {name!r}: {key} must be > 0")
        if self.quantized:
            k_lo, k_hi = self._k_range
            if max(abs(k_lo), abs(k_hi)) > MAX_STEPS:
                raise ValueError(
                    f"parameter {name!r}: q={self.q} is too small for its range "
                    f"(more than {MAX_STEPS:.0e} steps)"
                )

    # -- classification ---------------------------------------------------------------------

    @property
    def deprecated(self) -> bool:
        """Whether the distribution is a deprecated exponent form (log_uniform etc.)."""
        return self.distribution in DEPRECATED_DISTRIBUTIONS

    @property
    def quantized(self) -> bool:
        """Whether values are integers or multiples of ``q`` (int_uniform and ``q_*``)."""
        return self.distribution == "int_uniform" or self.distribution.startswith("q_")

    @property
    def bounded(self) -> bool:
        """Whether the support is a bounded interval (False for normal and log_normal forms)."""
        return _FAMILY.get(self.distribution) not in ("normal", "log_normal")

    @property
    def option_choice(self) -> bool:
        """Whether every value is a config group option name (or a list of them): what a
        Hydra config group may be swept over."""
        if self.distribution == "constant":
            return _option_names(self.value)
        if self.distribution == "categorical":
            return all(_option_names(v) for v in self.values or ())
        return False

    @property
    def gridable(self) -> bool:
        """Whether the parameter has a finite set of values (grid search can enumerate it)."""
        return self.distribution in GRID_DISTRIBUTIONS

    # -- sampling ---------------------------------------------------------------------------

    def sample(self, rng: np.random.Generator) -> Any:
        """A random value, with W&B's semantics and types.

        Constants and categorical values are returned as given (a copy); ``int_uniform`` gives
        an ``int``; quantized values are ``int`` when ``q`` is an int, else ``float``; other
        distributions give a ``float``.
        """
        dist = self.distribution
        if dist == "constant":
            return copy.deepcopy(self.value)
        if dist == "categorical":
            assert self.values is not None
            n = len(self.values)
            if self.probabilities is None:
                index = int(rng.integers(n))
            else:
                p = np.asarray(self.probabilities, dtype=float)
                index = int(rng.choice(n, p=p / p.sum()))
            return copy.deepcopy(self.values[index])
        if dist == "int_uniform":
            assert self.min is not None and self.max is not None
            return int(rng.integers(int(self.min), int(self.max) + 1))
        x = self._sample_continuous(rng)
        if not self.quantized:
            return x
        k = int(np.round(x / self._step))
        if self.bounded:
            k_lo, k_hi = self._k_range
            k = min(max(k, k_lo), k_hi)
        return self._quantum(k)

    def _sample_continuous(self, rng: np.random.Generator) -> float:
        family = _FAMILY[self.distribution]
        if family == "uniform":
            lo, hi = self._bounds
            return float(min(max(rng.uniform(lo, hi), lo), hi))
        if family == "log":
            lo_log, hi_log = self._log_range
            lo, hi = self._bounds
            return float(min(max(math.exp(rng.uniform(lo_log, hi_log)), lo), hi))
        if family in ("normal", "log_normal"):
            assert self.mu is not None and self.sigma is not None
            draw = rng.normal if family == "normal" else rng.lognormal
            return float(draw(self.mu, self.sigma))
        assert self.a is not None and self.b is not None
        return float(rng.beta(self.a, self.b))

    # -- grid -------------------------------------------------------------------------------

    def grid_size(self) -> int:
        """How many values :meth:`grid_values` lists (without listing them): for a categorical,
        its distinct values (``1`` and ``1.0``, or two mappings with their keys in another
        order, are one value)."""
        if self.distribution == "constant":
            return 1
        if self.distribution == "categorical":
            return len(self._distinct)
        self._require_grid()
        k_lo, k_hi = self._k_range
        return k_hi - k_lo + 1

    def grid_value(self, index: int) -> Any:
        """The ``index``-th value of :meth:`grid_values` (a copy), without listing them."""
        if self.distribution == "constant":
            return copy.deepcopy(self.value)
        if self.distribution == "categorical":
            assert self.values is not None
            return copy.deepcopy(self.values[self._distinct[index]])
        self._require_grid()
        k_lo, k_hi = self._k_range
        if not 0 <= index <= k_hi - k_lo:
            raise IndexError(f"parameter {self.name!r} has no grid value {index}")
        return self._quantum(k_lo + index)

    @cached_property
    def _distinct(self) -> tuple[int, ...]:
        """Indices of the first occurrence of each distinct value (by :func:`value_key`)."""
        seen: set[Any] = set()
        keep: list[int] = []
        for i, v in enumerate(self.values or ()):
            key = value_key(v)
            if key not in seen:
                seen.add(key)
                keep.append(i)
        return tuple(keep)

    def grid_values(self) -> list[Any]:
        """Every value of the parameter, in order, for grid search.

        Constants give ``[value]``, categoricals their distinct ``values`` (the first of
        values that are the same by :func:`value_key`: ``1`` and ``1.0``, mappings with their
        keys in another order, NaN and NaN), ``int_uniform`` every integer
        from ``min`` to ``max``, bounded quantized distributions every multiple of ``q`` that
        sampling can produce, from ``round(min / q) * q`` to ``round(max / q) * q``, both ends
        included (W&B drops the upper end for ``q_uniform``; runyard does not). Continuous and
        unbounded distributions raise :class:`GridError`.
        """
        if self.distribution == "constant":
            return [copy.deepcopy(self.value)]
        if self.distribution == "categorical":
            assert self.values is not None
            return [copy.deepcopy(self.values[i]) for i in self._distinct]
        n = self.grid_size()
        if n > MAX_GRID_VALUES:
            raise GridError(
                f"parameter {self.name!r} has {n} grid values (more than {MAX_GRID_VALUES}); "
                f"use a larger q, a narrower range, or method random/bayes"
            )
        k_lo, k_hi = self._k_range
        return [self._quantum(k) for k in range(k_lo, k_hi + 1)]

    def _require_grid(self) -> None:
        if self.gridable:
            return
        if self.quantized:
            why = f"{self.distribution} is unbounded"
            fix = "use q_uniform with min, max and q, or list the values (values: [...])"
        else:
            why = f"{self.distribution} is continuous"
            fix = "list the values to try (values: [...]), or use int_uniform or q_uniform (with q)"
        raise GridError(
            f"parameter {self.name!r} has no finite set of values for grid search: {why}; "
            f"{fix}, or use method random or bayes"
        )

    # -- encoding ---------------------------------------------------------------------------

    def dim(self) -> Dim | None:
        """The parameter's dimension of the encoded space (None for a constant)."""
        return self._dim

    @cached_property
    def _dim(self) -> Dim | None:
        from runyard.sweeps.search.encoding import Dim

        dist = self.distribution
        if dist == "constant":
            return None
        if dist == "categorical":
            assert self.values is not None
            return Dim(
                kind="categorical",
                n_choices=len(self.values),
                probabilities=self.probabilities,
                name=self.name,
            )
        if not self.quantized:
            return Dim(kind="real", name=self.name)
        k_lo, k_hi = self._k_range
        if k_hi - k_lo + 1 <= MAX_DISCRETE_POINTS:
            ks = np.arange(k_lo, k_hi + 1, dtype=np.int64)
        else:  # thinned: half evenly spread in value, half at evenly spaced prior quantiles
            half = MAX_DISCRETE_POINTS // 2
            even = np.round(np.linspace(k_lo, k_hi, half))
            ends = self._encode_ks(np.array([k_lo, k_hi], dtype=np.int64))
            u = np.linspace(max(ends[0], UNBOUNDED_TAIL), min(ends[1], 1 - UNBOUNDED_TAIL), half)
            quantiles = np.clip(np.round(self._ppf(u) / float(self._step)), k_lo, k_hi)
            ks = np.unique(np.concatenate([even, quantiles])).astype(np.int64)
        points = np.unique(self._encode_ks(ks))
        points.setflags(write=False)
        return Dim(kind="discrete", points=points, name=self.name)

    def encode(self, value: Any) -> float | int:
        """The encoding of ``value``: a categorical index, or a float in ``[0, 1]``.

        Numeric values outside the support are clipped to its ends; a quantized value is
        snapped to the nearest allowed value first, so the result is one of ``dim().points``
        (unless the value set was thinned, see the module docstring).
        """
        dist = self.distribution
        if dist == "constant":
            raise ValueError(f"parameter {self.name!r} is constant and has no encoding")
        if dist == "categorical":
            index = self._index.get(value_key(value))
            if index is None:
                raise ValueError(
                    f"{value!r} is not one of the values of parameter {self.name!r}: "
                    f"{list(self.values or ())!r}"
                )
            return index
        if not _is_number(value):
            raise ValueError(f"parameter {self.name!r} takes a number, got {value!r}")
        v = float(value)
        if math.isnan(v):
            raise ValueError(f"parameter {self.name!r} cannot encode NaN")
        if self.quantized:
            ratio = v / self._step
            k_lo, k_hi = self._k_range
            k = k_lo if ratio < k_lo else k_hi if ratio > k_hi else int(np.round(ratio))
            return float(self._encode_ks(np.array([k], dtype=np.int64))[0])
        x = float(self._cdf(np.array([v], dtype=float))[0])
        return self._clip_x(x)

    def decode(self, x: float | int) -> Any:
        """The value encoded by ``x``: the exact inverse of :meth:`encode` on allowed values.

        Categorical indices give the value as written (a copy); ``x`` of a discrete dim need
        not be one of its points: the nearest allowed value (in encoded distance) is returned;
        ints come back as ``int``.
        """
        dist = self.distribution
        if dist == "constant":
            return copy.deepcopy(self.value)
        if dist == "categorical":
            assert self.values is not None
            if isinstance(x, bool) or not _is_number(x) or int(x) != x:
                raise ValueError(
                    f"parameter {self.name!r}: categorical index must be an int, got {x!r}"
                )
            index = int(x)
            if not 0 <= index < len(self.values):
                raise ValueError(
                    f"parameter {self.name!r}: index {index} out of range 0..{len(self.values) - 1}"
                )
            return copy.deepcopy(self.values[index])
        if not _is_number(x) or math.isnan(float(x)):
            raise ValueError(f"parameter {self.name!r}: encoded value must be a number, got {x!r}")
        if not self.quantized:
            xc = self._clip_x(float(x))
            if self.bounded:  # the ends decode to the bounds exactly, not exp(log(min))
                lo, hi = self._bounds
                if xc <= 0.0:
                    return lo
                if xc >= 1.0:
                    return hi
                return min(max(float(self._ppf(np.array([xc]))[0]), lo), hi)
            return float(self._ppf(np.array([xc], dtype=float))[0])
        x01 = min(max(float(x), 0.0), 1.0)
        xp = x01 if self.bounded else min(max(x01, UNBOUNDED_TAIL), 1.0 - UNBOUNDED_TAIL)
        t = float(self._ppf(np.array([xp], dtype=float))[0]) / self._step
        k_lo, k_hi = self._k_range
        base = math.floor(min(max(t, k_lo), k_hi))
        candidates = sorted({min(max(k, k_lo), k_hi) for k in range(base - 1, base + 3)})
        distance = np.abs(self._encode_ks(np.array(candidates, dtype=np.int64)) - x01)
        best = min(range(len(candidates)), key=lambda i: (distance[i], abs(candidates[i] - t)))
        return self._quantum(candidates[best])

    # -- internals --------------------------------------------------------------------------

    @cached_property
    def _index(self) -> dict[Any, int]:
        index: dict[Any, int] = {}
        for i, v in enumerate(self.values or ()):
            index.setdefault(value_key(v), i)
        return index

    @property
    def _step(self) -> float:
        """The quantum: 1 for int_uniform, else q."""
        if self.distribution == "int_uniform":
            return 1
        assert self.q is not None
        return self.q

    def _quantum(self, k: int) -> int | float:
        """The k-th multiple of the step, as W&B types it and without float noise."""
        step = self._step
        if _is_int(step):
            return int(k) * int(step)
        return float(Decimal(repr(float(step))) * int(k))

    @cached_property
    def _log_range(self) -> tuple[float, float]:
        """The range of ``log(X)`` for the log family."""
        assert self.min is not None and self.max is not None
        dist = self.distribution
        if dist in ("log_uniform", "q_log_uniform"):
            return float(self.min), float(self.max)
        if dist == "inv_log_uniform":
            return -float(self.max), -float(self.min)
        return math.log(self.min), math.log(self.max)

    @cached_property
    def _bounds(self) -> tuple[float, float]:
        """The support of the unquantized prior, in value space."""
        family = _FAMILY[self.distribution]
        if family == "uniform":
            assert self.min is not None and self.max is not None
            return float(self.min), float(self.max)
        if family == "log":
            if self.distribution.endswith("_values"):
                assert self.min is not None and self.max is not None
                return float(self.min), float(self.max)
            lo_log, hi_log = self._log_range
            return math.exp(lo_log), math.exp(hi_log)
        if family == "beta":
            return 0.0, 1.0
        if family == "log_normal":
            return 0.0, math.inf
        return -math.inf, math.inf

    @cached_property
    def _k_range(self) -> tuple[int, int]:
        """The allowed multiples of the step: values are ``k * step`` for k in this range."""
        if self.distribution == "int_uniform":
            assert self.min is not None and self.max is not None
            return int(self.min), int(self.max)
        step = float(self._step)
        if self.bounded:
            lo, hi = self._bounds
        else:
            lo, hi = (float(v) for v in self._ppf(np.array([UNBOUNDED_TAIL, 1 - UNBOUNDED_TAIL])))
        k_lo, k_hi = lo / step, hi / step
        if not (math.isfinite(k_lo) and math.isfinite(k_hi)):
            return -(MAX_STEPS + 1), MAX_STEPS + 1
        return int(np.round(k_lo)), int(np.round(k_hi))

    def _clip_x(self, x: float) -> float:
        """Clip an encoded value of a real dim to the encoded range."""
        if self.bounded:
            return min(max(x, 0.0), 1.0)
        return min(max(x, UNBOUNDED_TAIL), 1.0 - UNBOUNDED_TAIL)

    def _encode_ks(self, ks: np.ndarray) -> np.ndarray:
        """Encodings of the values ``k * step``."""
        values = ks.astype(float) * float(self._step)
        return np.asarray(np.clip(self._cdf(values), 0.0, 1.0), dtype=float)

    def _cdf(self, v: np.ndarray) -> np.ndarray:
        family = _FAMILY[self.distribution]
        if family == "uniform":
            lo, hi = self._bounds
            return np.asarray(np.clip((v - lo) / (hi - lo), 0.0, 1.0), dtype=float)
        if family == "log":
            lo_log, hi_log = self._log_range
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.where(v > 0, np.log(np.where(v > 0, v, 1.0)), -np.inf)
            return np.asarray(np.clip((logs - lo_log) / (hi_log - lo_log), 0.0, 1.0), dtype=float)
        stats = _scipy_stats()
        if family == "normal":
            return np.asarray(stats.norm.cdf(v, loc=self.mu, scale=self.sigma), dtype=float)
        if family == "log_normal":
            assert self.mu is not None
            return np.asarray(
                stats.lognorm.cdf(v, s=self.sigma, scale=math.exp(self.mu)), dtype=float
            )
        return np.asarray(stats.beta.cdf(v, self.a, self.b), dtype=float)

    def _ppf(self, x: np.ndarray) -> np.ndarray:
        family = _FAMILY[self.distribution]
        if family == "uniform":
            lo, hi = self._bounds
            return lo + x * (hi - lo)
        if family == "log":
            lo_log, hi_log = self._log_range
            return np.exp(lo_log + x * (hi_log - lo_log))
        stats = _scipy_stats()
        if family == "normal":
            return np.asarray(stats.norm.ppf(x, loc=self.mu, scale=self.sigma), dtype=float)
        if family == "log_normal":
            assert self.mu is not None
            return np.asarray(
                stats.lognorm.ppf(x, s=self.sigma, scale=math.exp(self.mu)), dtype=float
            )
        return np.asarray(stats.beta.ppf(x, self.a, self.b), dtype=float)


def _scipy_stats() -> Any:
    """``scipy.stats``, imported on first use: it takes a second or more to import, and most
    users of this module (a run asking its sweep whether to stop, the CLI validating a
    sweep.yaml) never need it."""
    from scipy import stats

    return stats


def _lookup(params: Mapping[str, Any], name: str) -> Any:
    """``params[name]`` from a flat (dotted keys) or nested dict."""
    if name in params:
        return params[name]
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"no value for parameter {name!r}")
        node = node[part]
    return node


def _option_names(value: Any) -> bool:
    """A config group option (a name) or several (a multi-select group's list)."""
    if isinstance(value, list | tuple):
        return bool(value) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


@dataclass(frozen=True)
class SearchSpace:
    """The ordered parameters of a sweep (document order; nested blocks depth-first).

    A name cannot be both a value and the prefix of other names (``a`` and ``a.b``), except
    with ``hydra_groups`` (a command with ``${args_hydra}``, or the Hydra sweeper): there ``db``
    may be a config group, chosen among its options, with ``db.timeout`` a key inside the
    chosen option (Hydra's tutorial sweep ``db=mysql,postgresql db.timeout=5,10``).
    """

    parameters: tuple[Parameter, ...] = field(default=())
    hydra_groups: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.parameters, tuple):
            object.__setattr__(self, "parameters", tuple(self.parameters))
        seen: dict[str, Parameter] = {}
        for p in self.parameters:
            if p.name in seen:
                raise ValueError(f"duplicate parameter {p.name!r}")
            seen[p.name] = p
        for name in seen:
            parts = name.split(".")
            for i in range(1, len(parts)):
                prefix = ".".join(parts[:i])
                if prefix not in seen:
                    continue
                if self.hydra_groups and seen[prefix].option_choice:
                    continue
                if self.hydra_groups:
                    raise ValueError(
                        f"parameter {prefix!r} conflicts with {name!r}: a name that is also "
                        "the prefix of other names must be a Hydra config group, chosen among "
                        f"option names (strings); {prefix!r} is a {seen[prefix].distribution} "
                        "of other values"
                    )
                raise ValueError(
                    f"parameter {prefix!r} conflicts with {name!r}: a name cannot be both "
                    "a value and a group of parameters (a Hydra config group and keys inside "
                    "it, like db and db.timeout, need a command with ${args_hydra})"
                )

    def __len__(self) -> int:
        return len(self.parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        """Dotted names of all parameters, constants included."""
        return [p.name for p in self.parameters]

    @property
    def searched(self) -> tuple[Parameter, ...]:
        """The non-constant parameters, one per encoded dim."""
        return tuple(p for p in self.parameters if p.distribution != "constant")

    def dims(self) -> list[Dim]:
        """One dim per non-constant parameter, in order."""
        dims: list[Dim] = []
        for p in self.searched:
            d = p.dim()
            assert d is not None
            dims.append(d)
        return dims

    def encode(self, params: Mapping[str, Any]) -> list[float | int]:
        """The encoded point of ``params`` (flat dotted names, or a nested run config)."""
        return [p.encode(_lookup(params, p.name)) for p in self.searched]

    def decode(self, point: list[float | int] | tuple[float | int, ...]) -> dict[str, Any]:
        """Flat ``{dotted name: value}`` for an encoded point, constants included."""
        searched = self.searched
        if len(point) != len(searched):
            raise ValueError(f"point has {len(point)} entries; the space has {len(searched)} dims")
        xs = iter(point)
        return {
            p.name: p.decode(next(xs)) if p.distribution != "constant" else copy.deepcopy(p.value)
            for p in self.parameters
        }

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Flat ``{dotted name: value}`` with every parameter sampled (constants as given)."""
        return {p.name: p.sample(rng) for p in self.parameters}

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination of the parameters' grid values, flat, in a deterministic order.

        The cartesian product in parameter order (the document's order, not sorted by name as
        W&B's grid is), the last parameter varying fastest; each parameter's values in their
        order, duplicates left out (see :meth:`Parameter.grid_values`), so no cell repeats.
        Raises :class:`GridError` (before yielding anything) if a parameter has no finite
        values.
        """
        columns = [p.grid_values() for p in self.parameters]
        names = self.names
        for combo in itertools.product(*columns):
            yield {n: copy.deepcopy(v) for n, v in zip(names, combo, strict=True)}

    def grid_size(self) -> int:
        """How many points :meth:`grid` yields (raises :class:`GridError` like it)."""
        return math.prod(p.grid_size() for p in self.parameters)

    def grid_cell(self, index: int) -> dict[str, Any]:
        """The ``index``-th cell of :meth:`grid`, computed directly (no iteration)."""
        if not 0 <= index < self.grid_size():
            raise IndexError(f"the grid has no cell {index}")
        values: list[Any] = []
        for p in reversed(self.parameters):
            index, i = divmod(index, p.grid_size())
            values.append(p.grid_value(i))
        return dict(zip(self.names, reversed(values), strict=True))


def run_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """The run config of a trial's parameters: :func:`nest`, without the names that are also
    the prefix of other names (a Hydra config group ``db`` swept with keys inside it,
    ``db.timeout``: the group's value is an option name, and the keys are the config), and with
    group paths (``db/engine``, ``db@backup``) kept as single keys."""
    names = list(params)
    prefixes = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 1)}
    kept = {k: v for k, v in params.items() if k not in prefixes or "/" in k or "@" in k}
    whole = {k: v for k, v in kept.items() if "/" in k or "@" in k}
    out = nest({k: v for k, v in kept.items() if k not in whole})
    out.update(whole)
    return out


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``, for the run config.

    Keys without dots are kept as they are; a name that is both a value and a group (``a`` and
    ``a.b``) raises ValueError.
    """
    out: dict[str, Any] = {}
    groups: set[int] = {id(out)}  # the dicts nest() made (a dict *value* is not a group)
    for key, value in flat.items():
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            if part not in node:
                node[part] = {}
                groups.add(id(node[part]))
            node = node[part]
            if id(node) not in groups:
                raise ValueError(f"{key!r} conflicts with {'.'.join(parts[: i + 1])!r}")
        if parts[-1] in node:
            raise ValueError(f"{key!r} conflicts with another name for the same path")
        node[parts[-1]] = value
    return out


__all__ = [
    "DEPRECATED_DISTRIBUTIONS",
    "DISTRIBUTIONS",
    "DISTRIBUTION_KEYS",
    "GRID_DISTRIBUTIONS",
    "MAX_DISCRETE_POINTS",
    "MAX_GRID_VALUES",
    "UNBOUNDED_TAIL",
    "GridError",
    "Parameter",
    "SearchSpace",
    "nest",
    "run_config",
    "value_key",
]
