"""The sweep search space: distributions, grid values, encoding, nesting."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from runyard.sweeps.space import (
    DISTRIBUTIONS,
    MAX_DISCRETE_POINTS,
    GridError,
    Parameter,
    SearchSpace,
    nest,
    run_config,
    value_key,
)

# one parameter per distribution, with (low, high) bounds of its support and the value type
CASES: list[tuple[Parameter, float, float, type]] = [
    (Parameter("p", "int_uniform", min=-3, max=4), -3, 4, int),
    (Parameter("p", "uniform", min=0.5, max=2.5), 0.5, 2.5, float),
    (Parameter("p", "q_uniform", min=0, max=1, q=0.25), 0, 1, float),
    (Parameter("p", "q_uniform", min=0, max=256, q=8), 0, 256, int),
    (Parameter("p", "log_uniform_values", min=1e-5, max=1e-1), 1e-5, 1e-1, float),
    (Parameter("p", "q_log_uniform_values", min=16, max=1024, q=16), 16, 1024, int),
    (Parameter("p", "inv_log_uniform_values", min=1e-4, max=1e-2), 1e-4, 1e-2, float),
    (Parameter("p", "normal", mu=10, sigma=2), -math.inf, math.inf, float),
    (Parameter("p", "q_normal", mu=10, sigma=2, q=1), -math.inf, math.inf, int),
    (Parameter("p", "log_normal", mu=0, sigma=1), 0, math.inf, float),
    (Parameter("p", "q_log_normal", mu=0, sigma=1, q=0.5), 0, math.inf, float),
    (Parameter("p", "beta", a=2, b=5), 0, 1, float),
    (Parameter("p", "q_beta", a=2, b=5, q=0.1), 0, 1, float),
    (Parameter("p", "log_uniform", min=-9.2, max=-2.3), math.exp(-9.2), math.exp(-2.3), float),
    (Parameter("p", "q_log_uniform", min=0, max=math.log(100), q=1), 1, 100, int),
    (Parameter("p", "inv_log_uniform", min=2.3, max=9.2), math.exp(-9.2), math.exp(-2.3), float),
]


def test_cases_cover_every_numeric_distribution() -> None:
    covered = {p.distribution for p, *_ in CASES} | {"constant", "categorical"}
    assert covered == set(DISTRIBUTIONS)


@pytest.mark.parametrize(("param", "lo", "hi", "kind"), CASES, ids=lambda c: str(c))
def test_samples_lie_in_the_support_with_the_right_type(
    param: Parameter, lo: float, hi: float, kind: type
) -> None:
    rng = np.random.default_rng(0)
    samples = [param.sample(rng) for _ in range(400)]
    assert all(type(s) is kind for s in samples)
    assert all(lo <= s <= hi for s in samples), (min(samples), max(samples))
    assert len(set(samples)) > 1
    if param.quantized:
        step = param.q if param.distribution != "int_uniform" else 1
        assert all(math.isclose(s / step, round(s / step), abs_tol=1e-9) for s in samples)


@pytest.mark.parametrize(("param", "lo", "hi", "kind"), CASES, ids=lambda c: str(c))
def test_encode_decode_round_trip(param: Parameter, lo: float, hi: float, kind: type) -> None:
    rng = np.random.default_rng(1)
    dim = param.dim()
    assert dim is not None
    assert dim.kind == ("discrete" if param.quantized else "real")
    for _ in range(200):
        value = param.sample(rng)
        x = param.encode(value)
        assert 0.0 <= x <= 1.0
        back = param.decode(x)
        if param.quantized:
            assert back == value and type(back) is type(value)
            assert dim.points is not None and x in dim.points
        else:
            assert back == pytest.approx(value, rel=1e-9)


def test_discrete_points_are_sorted_encodings_of_the_allowed_values() -> None:
    p = Parameter("p", "int_uniform", min=1, max=5)
    dim = p.dim()
    assert dim is not None and dim.points is not None
    assert list(dim.points) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert [p.decode(x) for x in dim.points] == [1, 2, 3, 4, 5]
    assert p.decode(0.3) == 2  # any x decodes to the nearest allowed value
    q = Parameter("q", "q_log_uniform_values", min=1, max=1000, q=1)
    points = q.dim().points  # type: ignore[union-attr]
    assert np.all(np.diff(points) > 0) and points[0] == 0.0 and points[-1] == 1.0


def test_the_encoding_is_the_prior_quantile() -> None:
    assert Parameter("p", "uniform", min=2, max=4).encode(3) == 0.5
    assert Parameter("p", "log_uniform_values", min=1e-4, max=1).encode(1e-2) == pytest.approx(0.5)
    assert Parameter("p", "normal", mu=3, sigma=2).encode(3) == pytest.approx(0.5)
    assert Parameter("p", "log_normal", mu=1, sigma=2).encode(math.e) == pytest.approx(0.5)
    assert Parameter("p", "beta", a=2, b=2).encode(0.5) == pytest.approx(0.5)
    # the ends of [0, 1] decode to the bounds exactly, and to finite values for unbounded priors
    lu = Parameter("p", "log_uniform_values", min=1e-4, max=0.1)
    assert (lu.decode(0.0), lu.decode(1.0)) == (1e-4, 0.1)
    n = Parameter("p", "normal", mu=0, sigma=1)
    assert -5 < n.decode(0.0) < -4.5 and 4.5 < n.decode(1.0) < 5
    assert n.encode(-100) == n.encode(-50) > 0.0  # the tails are truncated, not infinite


def test_huge_integer_ranges_are_thinned_but_still_exact() -> None:
    p = Parameter("p", "int_uniform", min=0, max=10**9)
    dim = p.dim()
    assert dim is not None and dim.points is not None
    assert len(dim.points) <= MAX_DISCRETE_POINTS
    for v in (0, 1, 123_456_789, 10**9):
        assert p.decode(p.encode(v)) == v
    unbounded = Parameter("p", "q_normal", mu=0, sigma=1000, q=1)
    assert unbounded.decode(unbounded.encode(1234)) == 1234
    assert len(unbounded.dim().points) <= MAX_DISCRETE_POINTS  # type: ignore[union-attr]


def test_grid_values_include_the_upper_bound() -> None:
    assert Parameter("p", "q_uniform", min=0, max=1, q=0.25).grid_values() == [
        0.0,
        0.25,
        0.5,
        0.75,
        1.0,
    ]
    assert Parameter("p", "int_uniform", min=1, max=4).grid_values() == [1, 2, 3, 4]
    assert Parameter("p", "q_uniform", min=0, max=256, q=64).grid_values() == [0, 64, 128, 192, 256]
    assert Parameter("p", "q_log_uniform_values", min=1, max=4, q=1).grid_values() == [1, 2, 3, 4]


def test_quantized_values_have_no_float_noise() -> None:
    values = Parameter("p", "q_uniform", min=0, max=1, q=0.1).grid_values()
    assert values == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert 0.30000000000000004 not in values


def test_q_type_follows_w_and_b() -> None:
    rng = np.random.default_rng(2)
    assert type(Parameter("p", "q_uniform", min=0, max=9, q=3).sample(rng)) is int
    assert type(Parameter("p", "q_uniform", min=0, max=9, q=3.0).sample(rng)) is float
    default = Parameter("p", "q_uniform", min=0, max=9)  # q defaults to 1.0, as in W&B
    assert default.q == 1.0 and type(default.sample(rng)) is float


def test_defaults_are_w_and_b_s() -> None:
    n = Parameter("p", "normal")
    assert (n.mu, n.sigma) == (0.0, 1.0)
    b = Parameter("p", "q_beta")
    assert (b.a, b.b, b.q) == (1.0, 1.0, 1.0)


def test_quantized_values_are_multiples_of_q_like_w_and_b() -> None:
    """round(X / q) * q: with min not a multiple of q, values are still multiples of q."""
    p = Parameter("p", "q_uniform", min=0.3, max=1.0, q=0.5)
    assert p.grid_values() == [0.5, 1.0]
    rng = np.random.default_rng(3)
    assert {p.sample(rng) for _ in range(200)} == {0.5, 1.0}


@pytest.mark.parametrize(
    "param",
    [
        Parameter("lr", "uniform", min=0, max=1),
        Parameter("lr", "log_uniform_values", min=1e-4, max=1),
        Parameter("lr", "normal"),
        Parameter("lr", "q_normal", q=1),
        Parameter("lr", "beta"),
    ],
    ids=lambda p: p.distribution,
)
def test_grid_of_a_continuous_or_unbounded_parameter_is_an_error(param: Parameter) -> None:
    with pytest.raises(GridError, match=r"'lr'.*(values|q_uniform)"):
        param.grid_values()
    with pytest.raises(GridError):
        SearchSpace((param,)).grid_size()


def test_falsy_categorical_values_round_trip() -> None:
    p = Parameter("p", "categorical", values=[0, False, "", None, [], {}, "x"])
    assert [p.encode(v) for v in [0, False, "", None, [], {}, "x"]] == list(range(7))
    assert p.encode(0.0) == 0  # 0.0 is the number 0
    for i in range(7):
        v = p.decode(i)
        assert p.encode(v) == i
        assert type(v) is type(p.values[i])  # type: ignore[index]
    assert p.grid_values() == [0, False, "", None, [], {}, "x"]
    assert [type(v) for v in p.grid_values()[:2]] == [int, bool]
    space = SearchSpace((p,))
    cells = list(space.grid())
    assert [space.encode(c) for c in cells] == [[i] for i in range(7)]
    assert [space.decode([i]) for i in range(7)] == cells


def test_value_key_is_type_aware() -> None:
    assert value_key(0) != value_key(False)
    assert value_key(1) != value_key(True)
    assert value_key(None) != value_key("")
    assert value_key(1) == value_key(1.0)
    assert value_key([1, {"a": None}]) == value_key((1, {"a": None}))
    assert value_key(float("nan")) == value_key(float("nan"))
    assert value_key(np.int64(3)) == value_key(3) and value_key(np.bool_(False)) == value_key(False)
    assert value_key(np.float64(0.5)) == value_key(0.5)


def test_structured_categorical_values_are_copies() -> None:
    p = Parameter("p", "categorical", values=[[1, 2], {"layers": [64, 64]}])
    rng = np.random.default_rng(4)
    v = p.decode(1)
    v["layers"].append(1)
    assert p.values[1] == {"layers": [64, 64]}  # type: ignore[index]
    assert p.encode({"layers": [64, 64]}) == 1
    assert p.sample(rng) in ([1, 2], {"layers": [64, 64]})
    with pytest.raises(ValueError, match="not one of the values"):
        p.encode([2, 1])


def test_categorical_probabilities_are_used() -> None:
    p = Parameter("p", "categorical", values=["a", "b"], probabilities=[0.9, 0.1])
    rng = np.random.default_rng(5)
    draws = [p.sample(rng) for _ in range(2000)]
    assert 0.85 < draws.count("a") / 2000 < 0.95
    dim = p.dim()
    assert dim is not None and dim.kind == "categorical" and dim.n_choices == 2
    assert dim.probabilities == (0.9, 0.1)


def test_deprecated_forms_use_exponents() -> None:
    rng = np.random.default_rng(6)
    lu = Parameter("p", "log_uniform", min=0, max=1)
    assert all(1 <= lu.sample(rng) <= math.e for _ in range(100))
    inv = Parameter("p", "inv_log_uniform", min=0, max=1)
    assert all(1 / math.e <= inv.sample(rng) <= 1 for _ in range(100))
    assert lu.deprecated and not Parameter("p", "log_uniform_values", min=1, max=2).deprecated


def test_invalid_parameters_raise() -> None:
    with pytest.raises(ValueError, match="min must be less than max"):
        Parameter("p", "uniform", min=2, max=1)
    with pytest.raises(ValueError, match="takes no 'q'"):
        Parameter("p", "uniform", min=0, max=1, q=0.1)
    with pytest.raises(ValueError, match="min > 0"):
        Parameter("p", "log_uniform_values", min=0, max=1)
    with pytest.raises(ValueError, match="unknown distribution"):
        Parameter("p", "gaussian")


def _space() -> SearchSpace:
    return SearchSpace(
        (
            Parameter("epochs", "constant", value=10),
            Parameter("optimizer.name", "categorical", values=["adam", "sgd"]),
            Parameter("optimizer.lr", "log_uniform_values", min=1e-4, max=1e-1),
            Parameter("batch", "q_uniform", min=32, max=128, q=32),
        )
    )


def test_search_space_dims_encode_decode() -> None:
    space = _space()
    assert [d.kind for d in space.dims()] == ["categorical", "real", "discrete"]
    assert [d.name for d in space.dims()] == ["optimizer.name", "optimizer.lr", "batch"]
    flat = {"epochs": 10, "optimizer.name": "sgd", "optimizer.lr": 1e-2, "batch": 64}
    point = space.encode(flat)
    assert point[0] == 1 and point[1] == pytest.approx(2 / 3) and point[2] == pytest.approx(1 / 3)
    assert space.encode(nest(flat)) == point  # a nested run config works too
    decoded = space.decode(point)
    assert decoded == pytest.approx(flat)
    assert list(decoded) == ["epochs", "optimizer.name", "optimizer.lr", "batch"]
    with pytest.raises(KeyError, match="batch"):
        space.encode({"optimizer.name": "sgd", "optimizer.lr": 1e-2})
    with pytest.raises(ValueError, match="entries"):
        space.decode([0, 0.5])


def test_search_space_sample_and_grid() -> None:
    space = SearchSpace(
        (
            Parameter("a", "categorical", values=[1, 2]),
            Parameter("b", "constant", value="x"),
            Parameter("c", "int_uniform", min=0, max=2),
        )
    )
    sample = space.sample(np.random.default_rng(7))
    assert set(sample) == {"a", "b", "c"} and sample["b"] == "x"
    cells = list(space.grid())
    assert space.grid_size() == len(cells) == 6
    assert cells[:3] == [
        {"a": 1, "b": "x", "c": 0},
        {"a": 1, "b": "x", "c": 1},
        {"a": 1, "b": "x", "c": 2},
    ]
    assert cells == list(space.grid())  # deterministic


def test_search_space_rejects_conflicting_names() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        SearchSpace((Parameter("a", "constant", value=1), Parameter("a", "constant", value=2)))
    with pytest.raises(ValueError, match="both"):
        SearchSpace((Parameter("a", "constant", value=1), Parameter("a.b", "constant", value=2)))


def test_nest() -> None:
    flat: dict[str, Any] = {"a.b.c": 1, "a.b.d": [1], "a.e": None, "f": {"g": 0}}
    assert nest(flat) == {"a": {"b": {"c": 1, "d": [1]}, "e": None}, "f": {"g": 0}}
    with pytest.raises(ValueError, match="conflicts"):
        nest({"a": 1, "a.b": 2})
    with pytest.raises(ValueError, match="conflicts"):
        nest({"a.b": 2, "a": 1})
    with pytest.raises(ValueError, match="conflicts"):
        nest({"f": {"g": 0}, "f.h": 1})  # a dict value is not a group


def test_grid_skips_duplicate_values_and_counts_distinct_cells() -> None:
    """1 and 1.0, mappings with their keys in another order, NaN and NaN: one value each, so
    grid_size() is the number of distinct cells and grid_cell(i) is the i-th of grid()."""
    space = SearchSpace(
        (
            Parameter("a", "categorical", values=(1, 1.0, 2, True)),
            Parameter("b", "categorical", values=({"x": 1, "y": 2}, {"y": 2, "x": 1}, "s")),
            Parameter("c", "categorical", values=(math.nan, math.nan)),
        )
    )
    assert space["a"].grid_values() == [1, 2, True] and space["b"].grid_size() == 2
    cells = list(space.grid())
    assert space.grid_size() == len(cells) == 6
    keys = [tuple(value_key(v) for v in cell.values()) for cell in cells]
    assert len(set(keys)) == 6  # no cell twice
    for i, key in enumerate(keys):
        assert tuple(value_key(v) for v in space.grid_cell(i).values()) == key
    assert cells[0] == {"a": 1, "b": {"x": 1, "y": 2}, "c": cells[0]["c"]}
    with pytest.raises(IndexError):
        space.grid_cell(6)
    big = SearchSpace(tuple(Parameter(n, "int_uniform", min=0, max=999) for n in "xyz"))
    assert big.grid_cell(123_456_789) == {"x": 123, "y": 456, "z": 789}  # no iteration


def test_a_hydra_group_may_be_swept_with_keys_inside_it() -> None:
    """Hydra's tutorial sweep (db=mysql,postgresql db.timeout=5,10): with hydra_groups (a
    command with ${args_hydra}), a choice of option names may be the prefix of other names;
    the run config holds the keys, not the option name."""
    db = Parameter("db", "categorical", values=("mysql", "postgresql"))
    timeout = Parameter("db.timeout", "categorical", values=(5, 10))
    space = SearchSpace((db, timeout), hydra_groups=True)
    assert space.grid_size() == 4
    with pytest.raises(ValueError, match=r"\$\{args_hydra\}"):
        SearchSpace((db, timeout))
    with pytest.raises(ValueError, match="option names"):
        SearchSpace((Parameter("db", "categorical", values=(1, 2)), timeout), hydra_groups=True)
    params = {"db": "mysql", "db.timeout": 5, "db@backup": "x", "server/site": ["fb"], "lr": 1}
    assert run_config(params) == {
        "db": {"timeout": 5},
        "db@backup": "x",
        "server/site": ["fb"],
        "lr": 1,
    }
