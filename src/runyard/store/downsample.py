"""Downsampling of a series for charts (the contract of :meth:`Store.series`): the first and
last point and each bucket's minimum and maximum. Shared by SQLStore's single-run and batched
reads (``sql.py``, ``sql_series.py``); :func:`downsample_min_max` is the reference on points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from runyard.store import schema as S
from runyard.store.base import Series

#: A series piece: ``(n, first_step, last_step, min_value, min_step, max_value, max_step)``, either
#: one point or one ``metric_blocks`` row; ``min_value`` is None when every point is NaN.
_Piece = tuple[int, int, int, "float | None", "int | None", "float | None", "int | None"]


def bucket_grid(first: int, last: int, buckets: int) -> tuple[int, int]:
    """``(base, width)`` of the downsampling buckets for points from step ``first`` to ``last``:
    a step falls in bucket ``(step - base) // width``, and there are at most ``buckets``.

    Buckets are equal runs of consecutive steps starting at ``first``. When they are at least a
    ``metric_blocks`` block wide, they start at ``first``'s block and their width is a multiple
    of the block size, so each block lies in one bucket (what lets :meth:`SQLStore.series`
    read blocks instead of points); the result is the same whichever is read.
    """
    buckets = max(1, buckets)
    width = -(-(last - first + 1) // buckets)
    if width < S.BLOCK_STEPS:
        return first, width
    base = (first >> S.BLOCK_BITS) << S.BLOCK_BITS
    width = -(-(last - base + 1) // buckets)
    return base, -(-width // S.BLOCK_STEPS) * S.BLOCK_STEPS


def _reduce_buckets(
    pieces: Sequence[_Piece], base: int, width: int
) -> tuple[list[int], list[float]]:
    """Each bucket's minimum and maximum point in step order (pieces in step order; ties go to
    the first occurrence; a bucket of NaN only keeps its first point, as NaN)."""
    out_steps: list[int] = []
    out_values: list[float] = []
    bucket = None
    b_first = 0
    mn = mx = None
    mn_step = mx_step = 0
    for _n, first, _last, lo_v, lo_s, hi_v, hi_s in pieces:
        b = (first - base) // width
        if b != bucket:
            if bucket is not None:
                _emit(out_steps, out_values, b_first, mn, mn_step, mx, mx_step)
            bucket, b_first = b, first
            mn, mn_step, mx, mx_step = lo_v, lo_s or 0, hi_v, hi_s or 0
        elif lo_v is not None:
            if mn is None or lo_v < mn:
                mn, mn_step = lo_v, lo_s or 0
            if mx is None or hi_v > mx:  # type: ignore[operator]
                mx, mx_step = hi_v, hi_s or 0
    if bucket is not None:
        _emit(out_steps, out_values, b_first, mn, mn_step, mx, mx_step)
    return out_steps, out_values


def _emit(
    steps: list[int],
    values: list[float],
    first: int,
    mn: float | None,
    mn_step: int,
    mx: float | None,
    mx_step: int,
) -> None:
    if mn is None or mx is None:
        steps.append(first)
        values.append(math.nan)
    elif mn_step == mx_step:
        steps.append(mn_step)
        values.append(float(mn))
    elif mn_step < mx_step:
        steps += (mn_step, mx_step)
        values += (float(mn), float(mx))
    else:
        steps += (mx_step, mn_step)
        values += (float(mx), float(mn))


def bucket_count(samples: int) -> int:
    """How many min/max buckets a series downsampled to ``samples`` points has: two points per
    bucket and two more for the series' first and last point (always kept)."""
    return max(1, (max(2, samples) - 2) // 2)


def _keep_ends(
    steps: list[int], values: list[float], first: tuple[int, float], last: tuple[int, float]
) -> None:
    """Put the series' first and last point at the ends of ``steps``/``values`` (in place)
    where the buckets' extremes did not already pick them: a chart and its "last value"
    always agree with the summary, and the line starts where the run started."""
    if not steps or steps[0] != first[0]:
        steps.insert(0, first[0])
        values.insert(0, first[1])
    if steps[-1] != last[0]:
        steps.append(last[0])
        values.append(last[1])


def _point(step: int, value: float | None) -> _Piece:
    return (1, step, step, value, step, value, step)


def _value(piece: _Piece) -> float:
    return math.nan if piece[3] is None else float(piece[3])


def downsample_min_max(key: str, steps: list[int], values: list[float], samples: int) -> Series:
    """The series contract (:meth:`Store.series`) on points in step order: all of them when
    there are at most ``samples``; otherwise the first and the last point and
    :func:`bucket_count` buckets of consecutive steps (:func:`bucket_grid`), each keeping its
    minimum and its maximum point in step order (the first occurrence on ties). NaN counts as
    neither; a bucket of NaN only keeps its first point."""
    total = len(steps)
    samples = max(2, samples)
    if total <= samples:
        return Series(key, list(steps), list(values), total, False)
    base, width = bucket_grid(steps[0], steps[-1], bucket_count(samples))
    pieces = [_point(s, None if math.isnan(v) else v) for s, v in zip(steps, values, strict=True)]
    out_steps, out_values = _reduce_buckets(pieces, base, width)
    _keep_ends(out_steps, out_values, (steps[0], values[0]), (steps[-1], values[-1]))
    return Series(key, out_steps, out_values, total, True)
