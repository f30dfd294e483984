"""The batched series read of SQLStore: :meth:`Store.series_many`, one metric of many runs for
a chart of all of them (the dashboard's workspace and comparison).

A workspace of 500 runs asks for 500 series of one key per chart. One query per run would cost
500 round trips per chart, so this answers with a handful of queries per call, whatever the
number of runs:

1. every ``metric_blocks`` row of the key of those runs, read from ``metric_pages`` (64 blocks
   packed in one value: store/pages.py; a value per block would be most of the cost), and
   from it the extent of each run's series (points, first and last step);
2. the points of the runs whose buckets are narrower than a block (or that have at most
   ``samples`` points), one query, as long as their total stays under :data:`POINT_BUDGET`;
   the largest runs beyond it are answered from blocks instead (buckets of whole blocks:
   coarser, never wrong: every bucket still keeps its extremes);
3. the buckets' minimum and maximum, reduced with numpy for every run at once;
4. the first and last point of each block-answered run, and the x value of every point when
   ``x`` is not ``_step``, each as one lookup join over a list of ``(run, step)`` pairs
   (SQLite: one statement per run; PostgreSQL: ``unnest`` of two arrays).

Runs with a ``since`` step (a live chart's incremental update) are read one by one with
:meth:`SQLStore.series` restricted to the steps after it: their tails are short.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from runyard.store import schema as S
from runyard.store.base import TIME_AXES, Series, XSeries, interpolate_x
from runyard.store.downsample import _keep_ends, bucket_count, bucket_grid
from runyard.store.pages import PAGE_DTYPE, unpack

#: at most this many points are read per call; runs beyond it are answered from blocks
POINT_BUDGET = 50_000
#: run pks per ``IN (...)`` list
_CHUNK = 900

_NUMERIC = f"({S.KIND_FLOAT}, {S.KIND_NAN}, {S.KIND_BOOL}, {S.KIND_INT})"


def _chunks(items: Sequence[int], size: int = _CHUNK) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def block_grid(first: int, last: int, buckets: int) -> tuple[int, int]:
    """Buckets of whole blocks (a width that is a multiple of the block size, starting at
    ``first``'s block), at most ``buckets`` of them, for a run answered from blocks."""
    base = (first >> S.BLOCK_BITS) << S.BLOCK_BITS
    width = -(-(last - base + 1) // max(1, buckets))
    return base, max(S.BLOCK_STEPS, -(-width // S.BLOCK_STEPS) * S.BLOCK_STEPS)


def reduce_pieces(
    run: np.ndarray,
    bucket: np.ndarray,
    first: np.ndarray,
    lo_v: np.ndarray,
    lo_s: np.ndarray,
    hi_v: np.ndarray,
    hi_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each bucket's minimum and maximum point in step order, for pieces of many runs at once.

    Pieces (one point, or one ``metric_blocks`` row) come in run order, then step order;
    ``run``/``bucket`` say which run and bucket each is in. The result follows the rules of
    ``sql._reduce_buckets`` (ties to the first occurrence; a bucket of NaN only keeps its
    first point, as NaN): ``(run, step, value)`` arrays of the output points in order.
    """
    n = len(first)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=float)
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = (run[1:] != run[:-1]) | (bucket[1:] != bucket[:-1])
    starts = np.flatnonzero(change)
    gid = np.cumsum(change) - 1
    valid = ~np.isnan(lo_v)
    lo_fill = np.where(valid, lo_v, np.inf)
    hi_fill = np.where(valid, hi_v, -np.inf)
    gmin = np.minimum.reduceat(lo_fill, starts)
    gmax = np.maximum.reduceat(hi_fill, starts)
    nvalid = np.add.reduceat(valid.astype(np.int64), starts)
    idx = np.arange(n)
    min_at = np.minimum.reduceat(np.where(valid & (lo_fill == gmin[gid]), idx, n), starts)
    max_at = np.minimum.reduceat(np.where(valid & (hi_fill == gmax[gid]), idx, n), starts)
    has = nvalid > 0
    min_at = np.where(has, min_at, starts)
    max_at = np.where(has, max_at, starts)
    mn_s = np.where(has, lo_s[min_at], first[starts])
    mx_s = np.where(has, hi_s[max_at], first[starts])
    mn_v = np.where(has, gmin, np.nan)
    mx_v = np.where(has, gmax, np.nan)
    two = has & (mn_s != mx_s)
    # the earlier of the two points first
    swap = two & (mx_s < mn_s)
    s1 = np.where(swap, mx_s, mn_s)
    v1 = np.where(swap, mx_v, mn_v)
    s2 = np.where(swap, mn_s, mx_s)
    v2 = np.where(swap, mn_v, mx_v)
    counts = 1 + two.astype(np.int64)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    total = int(counts.sum())
    out_run = np.empty(total, dtype=np.int64)
    out_step = np.empty(total, dtype=np.int64)
    out_val = np.empty(total, dtype=float)
    g_run = run[starts]
    out_run[offsets] = g_run
    out_step[offsets] = s1
    out_val[offsets] = v1
    second = offsets[two] + 1
    out_run[second] = g_run[two]
    out_step[second] = s2[two]
    out_val[second] = v2[two]
    return out_run, out_step, out_val


class SeriesMethods:
    """Mixin: :meth:`series_many` of SQLStore (kept apart for readability)."""

    is_sqlite: bool

    def _read(self) -> AbstractContextManager[Connection]:  # provided by SQLStore
        raise NotImplementedError

    @staticmethod
    def _key_id(conn: Connection, key: str) -> int | None:  # provided by SQLStore
        raise NotImplementedError

    def _series(
        self,
        conn: Connection,
        key: str,
        k: int,
        run_pk: int,
        samples: int,
        min_step: int | None,
        max_step: int | None,
    ) -> Series:  # provided by SQLStore
        raise NotImplementedError

    def series_many(
        self,
        run_pks: Sequence[int],
        key: str,
        samples: int = 500,
        *,
        x: str = "_step",
        since: Mapping[int, int] | None = None,
    ) -> dict[int, XSeries]:
        """See :meth:`Store.series_many` (and this module's docstring for how)."""
        samples = max(2, samples)
        pks = list(dict.fromkeys(int(p) for p in run_pks))
        since = since or {}
        got: dict[int, Series] = {}
        with self._read() as conn:
            k = self._key_id(conn, key)
            xk = None if x in TIME_AXES else self._key_id(conn, x)
            if k is None or (x not in TIME_AXES and xk is None):
                return {pk: XSeries(key, x, [], [], [], 0, False) for pk in pks}
            if not self.is_sqlite:
                conn.exec_driver_sql("SET LOCAL jit = off")  # see SQLStore.series
            full = [pk for pk in pks if pk not in since]
            if full:
                got.update(self._many(conn, key, k, full, samples))
            for pk in pks:
                if pk in since:
                    got[pk] = self._series(conn, key, k, pk, samples, since[pk] + 1, None)
            xs = self._xs(conn, got, x, xk, samples)
        out: dict[int, XSeries] = {}
        for pk in pks:
            s = got.get(pk) or Series(key, [], [], 0, False)
            if x == "_step":
                xs_of = np.asarray(s.steps, dtype=float).tolist()  # 10x a list comprehension
                out[pk] = XSeries(key, x, s.steps, xs_of, s.values, s.total, s.downsampled)
                continue
            run_xs = xs.get(pk, [])
            keep = [i for i, v in enumerate(run_xs) if not math.isnan(v)]
            out[pk] = XSeries(
                key,
                x,
                [s.steps[i] for i in keep],
                [run_xs[i] for i in keep],
                [s.values[i] for i in keep],
                s.total,
                s.downsampled,
            )
        return out

    # -- the steps of the batch -------------------------------------------------------------------

    def _mark(self) -> str:
        return "?" if self.is_sqlite else "%s"

    def _many(
        self, conn: Connection, key: str, k: int, pks: list[int], samples: int
    ) -> dict[int, Series]:
        blocks, spans = self._pages(conn, k, sorted(pks))
        # (points, first step, last step) per run, from its blocks
        extents: dict[int, tuple[int, int, int]] = {}
        if spans:
            starts = np.asarray([lo for lo, _hi in spans.values()], dtype=np.int64)
            ends = np.asarray([hi for _lo, hi in spans.values()], dtype=np.int64)
            points = np.add.reduceat(blocks["n"], starts).tolist()
            firsts = blocks["first"][starts].tolist()
            lasts = blocks["last"][ends - 1].tolist()
            for pk, n, first, last in zip(spans, points, firsts, lasts, strict=True):
                extents[pk] = (n, first, last)
        buckets = bucket_count(samples)
        # plan: "all" (every point), "points" (buckets narrower than a block) or "blocks"
        plan: dict[int, tuple[str, int, int]] = {}
        for pk, (n, first, last) in extents.items():
            if n <= samples:
                plan[pk] = ("all", 0, 1)
                continue
            base, width = bucket_grid(first, last, buckets)
            plan[pk] = ("points" if width % S.BLOCK_STEPS else "blocks", base, width)
        by_points = sorted(
            (pk for pk, p in plan.items() if p[0] != "blocks"), key=lambda pk: -extents[pk][0]
        )
        to_read = sum(extents[pk][0] for pk in by_points)
        for pk in by_points:  # the largest first, until the rest fits the budget
            if to_read <= POINT_BUDGET:
                break
            n, first, last = extents[pk]
            plan[pk] = ("blocks", *block_grid(first, last, buckets))
            to_read -= n
        out: dict[int, Series] = {}
        point_runs = sorted(pk for pk, p in plan.items() if p[0] != "blocks")
        block_runs = sorted(pk for pk, p in plan.items() if p[0] == "blocks")
        if point_runs:
            out.update(self._from_points(conn, key, k, point_runs, plan, extents))
        if block_runs:
            out.update(self._from_blocks(conn, key, k, block_runs, plan, extents, blocks, spans))
        return out

    def _rows(
        self, conn: Connection, sql: str, k: int, pks: Sequence[int], width: int
    ) -> np.ndarray:
        """``sql`` (with ``{runs}`` for the ``IN`` list) for every chunk of ``pks``, as one
        float array of ``width`` columns (NULL as NaN)."""
        m = self._mark()
        parts = []
        # The driver's own cursor: plain tuples, which numpy converts without SQLAlchemy's
        # Row machinery (that costs 20x more on 100k rows).
        cursor = conn.connection.cursor()
        try:
            for chunk in _chunks(pks):
                cursor.execute(sql.format(m=m, runs=", ".join([m] * len(chunk))), (k, *chunk))
                rows = cursor.fetchall()
                if rows:  # fromiter: 3x faster than asarray on a list of tuples (None: NaN)
                    flat = np.fromiter(chain.from_iterable(rows), float, len(rows) * width)
                    parts.append(flat.reshape(-1, width))
        finally:
            cursor.close()
        return np.concatenate(parts) if parts else np.zeros((0, width))

    def _from_points(
        self,
        conn: Connection,
        key: str,
        k: int,
        pks: list[int],
        plan: Mapping[int, tuple[str, int, int]],
        extents: Mapping[int, tuple[int, int, int]],
    ) -> dict[int, Series]:
        a = self._rows(
            conn,
            "SELECT run_pk, step, value FROM metrics WHERE key_id = {m} AND run_pk IN ({runs}) "
            f"AND kind IN {_NUMERIC} ORDER BY run_pk, step",
            k,
            pks,
            3,
        )
        if len(a) and np.abs(a[:, 1]).max() > 2**53:  # pragma: no cover - steps a float loses
            return {pk: self._series(conn, key, k, pk, 10**9, None, None) for pk in pks}
        run = a[:, 0].astype(np.int64)
        step = a[:, 1].astype(np.int64)
        value = a[:, 2]
        out: dict[int, Series] = {}
        bucketed = [pk for pk in pks if plan[pk][0] == "points"]
        for pk, (steps, values) in _split(pks, run, step, value):
            if not steps:
                continue
            if plan[pk][0] == "all":
                out[pk] = Series(key, steps, values, len(steps), False)
            else:
                out[pk] = Series(key, [], [], extents[pk][0], True)
                out[pk].steps.extend((steps[0], steps[-1]))  # the ends, until reduced
                out[pk].values.extend((values[0], values[-1]))
        if bucketed:
            sel = np.isin(run, np.asarray(bucketed))
            r, st, v = run[sel], step[sel], value[sel]
            bucket = (st - _per_run(plan, r, 1)) // _per_run(plan, r, 2)
            o_run, o_step, o_val = reduce_pieces(r, bucket, st, v, st, v, st)
            for pk, (steps, values) in _split(bucketed, o_run, o_step, o_val):
                done = out.get(pk)
                if done is None:
                    continue
                ends = (done.steps[0], done.values[0]), (done.steps[1], done.values[1])
                _keep_ends(steps, values, *ends)
                out[pk] = Series(key, steps, values, done.total, True)
        return out

    def _pages(
        self, conn: Connection, k: int, pks: list[int]
    ) -> tuple[np.ndarray, dict[int, tuple[int, int]]]:
        """Every ``metric_blocks`` row of metric ``k`` of the runs ``pks`` (ascending), read
        from ``metric_pages`` (store/pages.py) as one array in run and block order, and the
        ``[lo, hi)`` slice of it of each run that has any."""
        m = self._mark()
        data: list[bytes] = []
        spans: dict[int, tuple[int, int]] = {}
        at = 0
        size = PAGE_DTYPE.itemsize
        cursor = conn.connection.cursor()
        try:
            for chunk in _chunks(pks):
                cursor.execute(
                    f"SELECT run_pk, data FROM metric_pages WHERE key_id = {m} AND run_pk IN "
                    f"({', '.join([m] * len(chunk))}) ORDER BY run_pk, page",
                    (k, *chunk),
                )
                for pk, page in cursor.fetchall():
                    n = len(page) // size
                    lo, _hi = spans.get(pk, (at, at))
                    spans[pk] = (lo, at + n)
                    at += n
                    data.append(page)
        finally:
            cursor.close()
        return unpack(data), spans

    def _from_blocks(
        self,
        conn: Connection,
        key: str,
        k: int,
        pks: list[int],
        plan: Mapping[int, tuple[str, int, int]],
        extents: Mapping[int, tuple[int, int, int]],
        blocks: np.ndarray,
        spans: Mapping[int, tuple[int, int]],
    ) -> dict[int, Series]:
        if len(pks) == len(spans):  # every run (the usual case): the array as it is
            a = blocks
        else:
            a = np.concatenate([blocks[spans[pk][0] : spans[pk][1]] for pk in pks])
        counts = [spans[pk][1] - spans[pk][0] for pk in pks]
        run = np.repeat(np.asarray(pks, dtype=np.int64), counts)
        base = np.repeat(np.asarray([plan[pk][1] for pk in pks], dtype=np.int64), counts)
        width = np.repeat(np.asarray([plan[pk][2] for pk in pks], dtype=np.int64), counts)
        first = a["first"]
        o_run, o_step, o_val = reduce_pieces(
            run, (first - base) // width, first, a["min_v"], a["min_s"], a["max_v"], a["max_s"]
        )
        wanted = [(pk, extents[pk][1]) for pk in pks] + [(pk, extents[pk][2]) for pk in pks]
        found = self._lookup(conn, "metrics", k, wanted)
        out: dict[int, Series] = {}
        for pk, (steps, values) in _split(pks, o_run, o_step, o_val):
            if not steps:
                continue
            n, f, last = extents[pk][:3]
            ends = (f, _nan(found.get((pk, f)))), (last, _nan(found.get((pk, last))))
            _keep_ends(steps, values, *ends)
            out[pk] = Series(key, steps, values, n, True)
        return out

    def _lookup(
        self, conn: Connection, table: str, k: int | None, pairs: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], Any]:
        """Values at ``(run_pk, step)`` pairs in one join: ``metrics.value`` of metric ``k``,
        or ``history_steps.runtime``/``timestamp`` (``table`` ``_runtime``/``_timestamp``)."""
        if not pairs:
            return {}
        if table == "metrics":
            target, column, cond = "metrics t", "t.value", f"t.key_id = {int(k or 0)} AND "
        else:
            column = "t.runtime" if table == "_runtime" else "t.timestamp"
            target, cond = "history_steps t", ""
        out: dict[tuple[int, int], Any] = {}
        cursor = conn.connection.cursor()
        try:
            if self.is_sqlite:
                # One statement per run with its steps as an IN list: primary-key seeks
                # without the cost of unpacking a JSON parameter (json_each) per pair.
                by_run: dict[int, list[int]] = {}
                for r, st in pairs:
                    by_run.setdefault(r, []).append(st)
                for r, steps in by_run.items():
                    for chunk in _chunks(steps):
                        cursor.execute(
                            f"SELECT t.step, {column} FROM {target} WHERE {cond}t.run_pk = ? "
                            f"AND t.step IN ({', '.join('?' * len(chunk))})",
                            (r, *chunk),
                        )
                        out.update(((r, int(st)), v) for st, v in cursor.fetchall())
            else:
                cursor.execute(
                    f"SELECT w.r, w.s, {column} FROM unnest(%s::int4[], %s::int8[]) AS w(r, s) "
                    f"JOIN {target} ON {cond}t.run_pk = w.r AND t.step = w.s",
                    ([p[0] for p in pairs], [p[1] for p in pairs]),
                )
                out.update(((int(r), int(st)), v) for r, st, v in cursor.fetchall())
        finally:
            cursor.close()
        return out

    def _xs(
        self,
        conn: Connection,
        got: Mapping[int, Series],
        x: str,
        xk: int | None,
        samples: int,
    ) -> dict[int, list[float]]:
        """The x value of every point of ``got`` (NaN where there is none)."""
        if x == "_step":
            return {}
        pairs = [(pk, st) for pk, s in got.items() for st in s.steps]
        found = self._lookup(conn, "metrics" if xk is not None else x, xk, pairs)
        out: dict[int, list[float]] = {}
        for pk, s in got.items():
            xs = [_nan(found.get((pk, st))) for st in s.steps]
            if xk is not None and any(math.isnan(v) for v in xs) and s.steps:
                # the x metric is not logged at every step of this one: interpolate from its
                # own series (and the exact values found)
                own = self._series(conn, x, xk, pk, max(samples, 2000), s.steps[0], s.steps[-1])
                known = dict(zip(own.steps, own.values, strict=True))
                known.update({st: v for st, v in zip(s.steps, xs, strict=True) if v == v})
                pts = sorted((st, v) for st, v in known.items() if v == v)
                xs = interpolate_x(s.steps, pts)
            out[pk] = xs
        return out


def _per_run(plan: Mapping[int, tuple[str, int, int]], run: np.ndarray, i: int) -> np.ndarray:
    """Field ``i`` of each piece's run plan (1: bucket base, 2: bucket width), per piece
    (``run`` in ascending order, as the queries return it)."""
    if not len(run):
        return np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(np.diff(run)) + 1
    starts = np.concatenate(([0], change))
    table = np.asarray([plan[int(pk)][i] for pk in run[starts]], dtype=np.int64)
    return np.repeat(table, np.diff(np.append(starts, len(run))))


def _nan(v: Any) -> float:
    return math.nan if v is None else float(v)


def _split(
    pks: Sequence[int], run: np.ndarray, step: np.ndarray, value: np.ndarray
) -> Iterator[tuple[int, tuple[list[int], list[float]]]]:
    """Per run of ``pks`` (sorted), its slice of the reduced output points, as lists."""
    keys = np.asarray(pks)
    lo = np.searchsorted(run, keys, side="left")
    hi = np.searchsorted(run, keys, side="right")
    for pk, a, b in zip(pks, lo, hi, strict=True):
        yield int(pk), (step[a:b].tolist(), value[a:b].tolist())
