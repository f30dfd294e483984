"""The values of one key of many runs in SQLStore: :meth:`Store.logged_steps` and
:meth:`Store.logged_values` (the dashboard's media panels: the steps of an image key for its
slider, a window of its references, a histogram's distributions over time).

Both read the ``metrics`` rows of one key (its primary key is ``(key_id, run_pk, step)``, so
each run's rows are one range of the index) for all the runs of the call in one statement per
900 runs. Thinning (``samples``) reads the steps first and then only the values of the chosen
steps, so a histogram over 100,000 steps decodes as many histograms as it draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.store import schema as S
from runyard.store.base import KeyValues, thin_indices
from runyard.store.codec import decode_metric

#: run pks (or steps) per ``IN (...)`` list
_CHUNK = 900


def _chunks(items: Sequence[int], size: int = _CHUNK) -> Iterator[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class ValuesMethods:
    """Mixin: :meth:`logged_steps` and :meth:`logged_values` of SQLStore."""

    def _read(self) -> AbstractContextManager[Connection]:  # provided by SQLStore
        raise NotImplementedError

    @staticmethod
    def _key_id(conn: Connection, key: str) -> int | None:  # provided by SQLStore
        raise NotImplementedError

    @staticmethod
    def _range(stmt: sa.Select[Any], min_step: int | None, max_step: int | None) -> sa.Select[Any]:
        if min_step is not None:
            stmt = stmt.where(S.metrics.c.step >= min_step)
        if max_step is not None:
            stmt = stmt.where(S.metrics.c.step <= max_step)
        return stmt

    def _steps(
        self,
        conn: Connection,
        k: int,
        pks: Sequence[int],
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {pk: [] for pk in pks}
        m = S.metrics.c
        for part in _chunks(pks):
            stmt = sa.select(m.run_pk, m.step).where(m.key_id == k, m.run_pk.in_(list(part)))
            stmt = self._range(stmt, min_step, max_step).order_by(m.run_pk, m.step)
            for row in conn.execute(stmt):
                out[int(row[0])].append(int(row[1]))
        return out

    def logged_steps(self, run_pks: Sequence[int], key: str) -> dict[int, list[int]]:
        """See :meth:`Store.logged_steps`."""
        pks = list(dict.fromkeys(int(p) for p in run_pks))
        with self._read() as conn:
            k = self._key_id(conn, key)
            if k is None:
                return {pk: [] for pk in pks}
            return self._steps(conn, k, pks)

    def logged_values(
        self,
        run_pks: Sequence[int],
        key: str,
        samples: int | None = None,
        *,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> dict[int, KeyValues]:
        """See :meth:`Store.logged_values` (and this module's docstring for how)."""
        pks = list(dict.fromkeys(int(p) for p in run_pks))
        m = S.metrics.c
        found: dict[int, dict[int, Any]] = {pk: {} for pk in pks}
        totals: dict[int, int] = {}
        with self._read() as conn:
            k = self._key_id(conn, key)
            if k is None:
                return {pk: KeyValues(key, [], [], 0, False) for pk in pks}
            cols = (m.run_pk, m.step, m.value, m.kind, m.text)
            if samples is None:
                for part in _chunks(pks):
                    stmt = sa.select(*cols).where(m.key_id == k, m.run_pk.in_(list(part)))
                    for pk, step, value, kind, text in conn.execute(
                        self._range(stmt, min_step, max_step)
                    ):
                        found[int(pk)][int(step)] = decode_metric(value, kind, text)
                totals = {pk: len(v) for pk, v in found.items()}
            else:
                steps = self._steps(conn, k, pks, min_step, max_step)
                for pk, all_steps in steps.items():
                    totals[pk] = len(all_steps)
                    chosen = [all_steps[i] for i in thin_indices(len(all_steps), samples)]
                    for part in _chunks(chosen):
                        stmt = sa.select(m.step, m.value, m.kind, m.text).where(
                            m.key_id == k, m.run_pk == pk, m.step.in_(list(part))
                        )
                        for step, value, kind, text in conn.execute(stmt):
                            found[pk][int(step)] = decode_metric(value, kind, text)
        out: dict[int, KeyValues] = {}
        for pk in pks:
            by_step = found[pk]
            order = sorted(by_step)
            out[pk] = KeyValues(
                key,
                order,
                [by_step[s] for s in order],
                totals.get(pk, 0),
                len(order) < totals.get(pk, 0),
            )
        return out
