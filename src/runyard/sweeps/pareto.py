"""Pareto fronts and hypervolume of multi-objective sweeps (pure functions, no store).

Every function takes *minimisation-oriented* points: a list of equal-length rows of finite
floats, lower is better in every column (negate the columns of objectives to maximise first;
:func:`orient` does it). ``docs/sweeps.md`` ("Multi-objective sweeps") documents the rules.

* :func:`dominates`: ``a`` is no worse than ``b`` everywhere and better somewhere.
* :func:`non_dominated_sort`: the fronts of Deb et al.'s fast non-dominated sort (NSGA-II's):
  front 0 holds the points that nothing dominates (the Pareto front), front 1 those only front
  0 dominates, ... Equal points share their front.
* :func:`hypervolume`: the volume dominated by the points and bounded by a reference point
  (points not strictly better than the reference in every objective add nothing). Exact: a
  sweep over the sorted front in 2 objectives (O(n log n)), slices along the last objective in
  3 (O(n² log n)), and the same slicing recursively beyond (fine for the small fronts of a sweep).
* :func:`reference_point`: the reference a sweep's hypervolume is measured against when none
  is given: for each objective the worst value among the points, plus 10 % of the objective's
  range over them (1 when the range is 0), as many libraries do (e.g. a "nadir + offset").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "REFERENCE_MARGIN",
    "dominates",
    "hypervolume",
    "non_dominated_sort",
    "orient",
    "pareto_front",
    "reference_point",
]

Point = Sequence[float]

#: the default reference point lies this fraction of each objective's range beyond its worst value
REFERENCE_MARGIN = 0.1


def orient(values: Sequence[float], goals: Sequence[str]) -> list[float]:
    """``values`` made minimisation-oriented: the ones whose goal is ``maximize`` negated."""
    if len(values) != len(goals):
        raise ValueError(f"{len(values)} values but {len(goals)} goals")
    return [-float(v) if g == "maximize" else float(v) for v, g in zip(values, goals, strict=True)]


def dominates(a: Point, b: Point) -> bool:
    """Whether ``a`` Pareto-dominates ``b`` (minimisation): no worse in every objective and
    strictly better in at least one."""
    better = False
    for x, y in zip(a, b, strict=True):
        if x > y:
            return False
        if x < y:
            better = True
    return better


def non_dominated_sort(points: Sequence[Point]) -> list[list[int]]:
    """Indices of ``points`` by front: ``[front 0, front 1, ...]``, each in index order."""
    n = len(points)
    dominated_by: list[list[int]] = [[] for _ in range(n)]  # i dominates these
    count = [0] * n  # how many points dominate i
    for i in range(n):
        for j in range(i + 1, n):
            if dominates(points[i], points[j]):
                dominated_by[i].append(j)
                count[j] += 1
            elif dominates(points[j], points[i]):
                dominated_by[j].append(i)
                count[i] += 1
    fronts: list[list[int]] = []
    current = [i for i in range(n) if count[i] == 0]
    while current:
        fronts.append(sorted(current))
        following: list[int] = []
        for i in current:
            for j in dominated_by[i]:
                count[j] -= 1
                if count[j] == 0:
                    following.append(j)
        current = following
    return fronts


def pareto_front(points: Sequence[Point]) -> list[int]:
    """Indices of the points that no other point dominates (front 0), in index order."""
    fronts = non_dominated_sort(points)
    return fronts[0] if fronts else []


def reference_point(points: Sequence[Point], margin: float = REFERENCE_MARGIN) -> list[float]:
    """The default reference point of ``points``: each objective's worst (largest) value plus
    ``margin`` times its range (``margin`` alone when the range is 0)."""
    if not points:
        raise ValueError("no points: a reference point needs at least one")
    out = []
    for column in zip(*points, strict=True):
        worst, best = max(column), min(column)
        span = worst - best
        out.append(worst + margin * (span if span > 0 else 1.0))
    return out


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """The hypervolume of ``points`` (minimisation) against ``reference``."""
    m = len(reference)
    if m == 0:
        raise ValueError("the reference point has no objectives")
    ref = [float(r) for r in reference]
    kept: list[tuple[float, ...]] = []
    for p in points:
        if len(p) != m:
            raise ValueError(f"a point has {len(p)} objectives, the reference {m}")
        q = tuple(float(x) for x in p)
        if any(not math.isfinite(x) for x in q):
            raise ValueError(f"a point is not finite: {list(q)}")
        if all(x < r for x, r in zip(q, ref, strict=True)):
            kept.append(q)
    if not kept:
        return 0.0
    if m == 2:
        return _hv2(kept, ref)  # its sweep skips dominated points itself
    front = [kept[i] for i in pareto_front(kept)]
    return _hv(front, ref)


def _hv(front: list[tuple[float, ...]], ref: list[float]) -> float:
    m = len(ref)
    if m == 1:
        return ref[0] - min(p[0] for p in front)
    if m == 2:
        return _hv2(front, ref)
    # slice along the last objective: between consecutive values, the (m-1)-volume of the
    # points at or below the slice
    order = sorted(front, key=lambda p: p[-1])
    total = 0.0
    for k, p in enumerate(order):
        upper = order[k + 1][-1] if k + 1 < len(order) else ref[-1]
        depth = upper - p[-1]
        if depth <= 0:
            continue
        below = [q[:-1] for q in order[: k + 1]]
        sub = [below[i] for i in pareto_front(below)]
        total += depth * _hv(sub, ref[:-1])
    return total


def _hv2(front: list[tuple[float, ...]], ref: list[float]) -> float:
    total = 0.0
    last_y = ref[1]
    for x, y in sorted(front):
        if y < last_y:
            total += (ref[0] - x) * (last_y - y)
            last_y = y
    return total
