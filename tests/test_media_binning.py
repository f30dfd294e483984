"""The encoder's histogram binning gives np.histogram's counts and edges, bit for bit (a
logged ``Histogram`` must store what W&B stores), on inputs heavy in values on bin edges."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runyard.media._binning import CHUNK, numpy_histogram


@st.composite
def edge_heavy(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """Values of a float type: a random range, then values on numpy's own bin edges for that
    range, one unit in the last place either side of them, the range's ends, and random ones
    in between; sometimes more than one chunk of them."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    bins = draw(st.sampled_from([1, 2, 3, 7, 10, 32, 64, 100, 512]))
    scale = draw(st.sampled_from([1e-6, 1e-3, 1.0, 7.0, 1e3, 1e9]))
    lo = dtype(draw(st.floats(-10, 10)) * scale)
    hi = dtype(lo + dtype(draw(st.floats(1e-3, 100)) * scale))
    edges = np.linspace(lo, hi, bins + 1, dtype=dtype)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    parts = [
        edges,
        np.nextafter(edges, dtype(np.inf)),
        np.nextafter(edges, dtype(-np.inf)),
        rng.uniform(float(lo), float(hi), draw(st.integers(0, 3000))).astype(dtype),
    ]
    values = np.concatenate(parts).astype(dtype)
    values = values[(values >= lo) & (values <= hi)]  # the range is the values' own
    if draw(st.booleans()):
        values = np.resize(values, CHUNK * 2 + draw(st.integers(1, 999)))
    rng.shuffle(values)
    return values, bins


@settings(max_examples=300, deadline=None)
@given(edge_heavy())
def test_counts_and_edges_are_numpys(case: tuple[np.ndarray, int]) -> None:
    values, bins = case
    counts, edges = numpy_histogram(values, bins)
    want_counts, want_edges = np.histogram(values, bins=bins)
    assert counts.tolist() == want_counts.tolist()
    assert edges.dtype == want_edges.dtype and edges.tolist() == want_edges.tolist()


def test_odd_inputs_are_numpys_too() -> None:
    """Constant values, integers, huge ranges, narrow bins, empty input: numpy's answers."""
    rng = np.random.default_rng(3)
    cases = [
        np.full(50_000, 2.5),
        rng.integers(-5, 1000, 40_000),
        rng.integers(0, 2, 40_000).astype(bool),
        np.array([-1e308, 1e308] * 20_000),
        1.0 + rng.integers(0, 9, 40_000) * np.spacing(1.0),
        rng.normal(size=40_000).astype(np.float16),
        np.array([], dtype=np.float64),
    ]
    for values in cases:
        try:
            want = np.histogram(values, bins=64)
        except (ValueError, TypeError) as exc:
            want_error = type(exc)
            try:
                numpy_histogram(values, 64)
            except want_error:
                continue
            raise AssertionError(f"no {want_error.__name__} for {values.dtype}") from None
        got = numpy_histogram(values, 64)
        assert got[0].tolist() == want[0].tolist(), values.dtype
        assert got[1].tolist() == want[1].tolist(), values.dtype


def test_non_finite_values_are_refused_as_numpy_refuses_them() -> None:
    values = np.random.default_rng(4).normal(size=40_000)
    values[12_345] = np.nan
    try:
        numpy_histogram(values, 64)
    except ValueError as exc:
        assert "not finite" in str(exc)
    else:
        raise AssertionError("NaN binned")
