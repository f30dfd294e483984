"""``np.histogram(values, bins)`` for a large array, with the same counts and edges, faster.

The encoder thread bins every large histogram a run logs; with ``np.histogram`` that took 7-15
ms per million floats, slower than ``log()`` spools them (~2 ms), so back to back the spool
could not recycle its segments (see :mod:`runyard.media._spool`). numpy's equal-bin algorithm
is: a bin index per value from ``(x - lo) / (hi - lo) * bins``, moved by one where that
disagrees with the edges (``x < edges[i]``: down; ``x >= edges[i + 1]``, not in the last bin:
up), then ``np.bincount``. :func:`numpy_histogram` does the same with half as many passes over
the values and no temporary arrays: no range filter (the range is the values' own minimum and
maximum), ``x * (bins / (hi - lo))`` instead of a division and a multiplication, the last
bin's closed right edge by an infinite upper edge (and one extra count folded into the last
bin), all into buffers reused from chunk to chunk.

Why the counts are numpy's: where the first index is within one bin of the true bin (the one
whose edges enclose the value, numpy's ``edges`` themselves), the corrections give exactly
that bin, whatever the first index was; both numpy's and this first index are a few units in
the last place of the bin number away from exact, so that holds unless bins are so narrow that
the edges are off by a sizeable part of a bin. Such ranges (and empty or single-value ones,
non-finite values, and dtypes other than float32/float64) go to ``np.histogram`` itself. The
property test in ``tests/test_media_binning.py`` compares both on edge-heavy inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: Values binned at a time (between two ``pause()`` calls): 16K float64, the buffers of a chunk
#: stay in a core's L2 cache.
CHUNK = 1 << 14
#: Values per ``np.histogram`` call where numpy itself bins (:func:`_chunked_numpy`).
NUMPY_CHUNK = 1 << 16
#: Bins must be at least this many units in the last place of the values wide for the fast
#: path (numpy's edges are then exact to well within a bin: see the module docstring).
MIN_BIN_ULPS = 1 << 12


def _no_pause() -> None:
    return None


def numpy_histogram(
    values: Any, bins: int, pause: Callable[[], None] = _no_pause
) -> tuple[Any, Any]:
    """``np.histogram(values, bins=bins)`` of a one-dimensional array: (counts, edges).
    ``pause()`` is called between chunks (the encoder's yield point); errors are numpy's."""
    import numpy as np

    if values.dtype not in (np.float64, np.float32) or values.size == 0:
        return _chunked_numpy(values, bins, pause)
    lo, hi = values.min(), values.max()
    if not (np.isfinite(lo) and np.isfinite(hi)) or not lo < hi:
        return _chunked_numpy(values, bins, pause)
    span = hi - lo  # inf where it overflows: numpy's own indices are wrong then
    if not (np.isfinite(span) and span / bins > MIN_BIN_ULPS * np.spacing(max(-lo, hi))):
        return _chunked_numpy(values, bins, pause)
    # numpy's edges, computed as numpy does (np.linspace in the values' float type).
    edges = np.linspace(lo, hi, bins + 1, endpoint=True, dtype=np.result_type(lo, hi, values))
    scale = bins / span
    # upper[i]: the upper edge of bin i, infinite for the last bin (its right edge is closed)
    # and for the extra bin ``bins``, where a value equal to the maximum lands first.
    upper = np.empty(bins + 1, edges.dtype)
    upper[:bins] = edges[1:]
    upper[bins - 1 :] = np.inf
    counts = np.zeros(bins + 1, np.intp)
    size = min(CHUNK, values.size)
    scaled = np.empty(size, values.dtype)
    index = np.empty(size, np.intp)
    edge = np.empty(size, edges.dtype)
    moved = np.empty(size, np.bool_)
    for start in range(0, values.size, CHUNK):
        pause()
        x = values[start : start + CHUNK]
        n = x.size
        f, i, e, b = scaled[:n], index[:n], edge[:n], moved[:n]
        np.subtract(x, lo, out=f)
        np.multiply(f, scale, out=f)
        np.copyto(i, f, casting="unsafe")  # truncation: f >= 0
        np.take(edges, i, out=e, mode="clip")  # i is in [0, bins] (clip: no bounds check)
        np.less(x, e, out=b)
        np.subtract(i, b, out=i)
        np.take(upper, i, out=e, mode="clip")
        np.greater_equal(x, e, out=b)
        np.add(i, b, out=i)
        counts += np.bincount(i, minlength=bins + 1)
    counts[bins - 1] += counts[bins]
    return counts[:bins], edges


def _chunked_numpy(values: Any, bins: int, pause: Callable[[], None]) -> tuple[Any, Any]:
    """``np.histogram`` by chunks with the values' own range (numpy's edges; the counts add
    up to numpy's), pausing between chunks."""
    import numpy as np

    if values.size == 0:
        return np.histogram(values, bins=bins)
    if values.dtype == np.bool_:
        values = values.astype(np.uint8)  # what np.histogram does (with a warning)
    lo, hi = values.min(), values.max()
    total: Any = None
    edges: Any = None
    for start in range(0, values.size, NUMPY_CHUNK):
        pause()
        chunk = values[start : start + NUMPY_CHUNK]
        counts, edges = np.histogram(chunk, bins=bins, range=(lo, hi))
        total = counts if total is None else total + counts
    return total, edges
