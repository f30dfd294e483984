"""``metric_pages``: the ``metric_blocks`` rows of a series packed 64 to a row, for the reads
that need every block of many runs (``Store.series_many``: a workspace chart of 500 runs x 10k
steps is 78,500 blocks per metric).

Read as rows, each block costs a Python object per column made by the database driver, which
was most of the cost of such a chart (about 0.1 s of CPU per metric); a page is one bytes
object that numpy reads in place. A page holds the blocks ``page * 64`` to
``page * 64 + 63`` present in ``metric_blocks``, in block order, as :data:`PAGE_DTYPE` records
(``min_value``/``max_value`` NaN where the block has only NaN, their steps then its first).

Pages are derived data: written in the transaction that changes their blocks
(:func:`refresh_pages`, called by ``SQLStore._update_blocks``), so a reader sees pages and
blocks of one state; migration 0010 builds them for existing stores (:func:`pack_blocks`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.engine import Connection

from runyard.store import schema as S

#: one ``metric_blocks`` row (little-endian, 64 bytes)
PAGE_DTYPE = np.dtype(
    [
        ("block", "<i8"),
        ("n", "<i8"),
        ("first", "<i8"),
        ("last", "<i8"),
        ("min_v", "<f8"),
        ("min_s", "<i8"),
        ("max_v", "<f8"),
        ("max_s", "<i8"),
    ]
)

#: the columns of a block as :func:`pack_blocks` takes them, in this order
BLOCK_COLUMNS = (
    "block, n, first_step, last_step, min_value, coalesce(min_step, first_step), max_value, "
    "coalesce(max_step, first_step)"
)


def page_of(block: int) -> int:
    return block >> S.PAGE_BITS


def pack_blocks(rows: Iterable[Sequence[Any]]) -> bytes:
    """The page of ``rows`` (:data:`BLOCK_COLUMNS`, in block order; a value None for NaN)."""
    records = [
        (
            int(b),
            int(n),
            int(f),
            int(la),
            math.nan if mn is None else float(mn),
            int(mn_s),
            math.nan if mx is None else float(mx),
            int(mx_s),
        )
        for b, n, f, la, mn, mn_s, mx, mx_s in rows
    ]
    return np.array(records, dtype=PAGE_DTYPE).tobytes()


def unpack(data: Iterable[bytes | memoryview]) -> np.ndarray:
    """The blocks of pages (in the order given), as one :data:`PAGE_DTYPE` array."""
    return np.frombuffer(b"".join(data), dtype=PAGE_DTYPE)


def refresh_pages(
    conn: Connection, is_sqlite: bool, run_pk: int, blocks: Mapping[int, Iterable[int]]
) -> None:
    """Bring the pages of run ``run_pk`` up to date with the ``metric_blocks`` rows ``blocks``
    (key id -> block numbers) just upserted, in the same transaction.

    Only those blocks are read back (a batch of a run logging 500 keys touches 500 pages, of up
    to 64 blocks each: re-reading whole pages would cost more than the batch's own inserts),
    with the pages they fall in, in a statement or two whatever the number of keys; each page
    is rewritten with its touched blocks replaced or inserted in block order."""
    mark = "?" if is_sqlite else "%s"
    # keys that touched the same block range (usually all of a batch's) are read together
    by_range: dict[tuple[int, int], list[int]] = {}
    for key_id, numbers in blocks.items():
        touched = set(numbers)
        if touched:
            by_range.setdefault((min(touched), max(touched)), []).append(key_id)
    fresh: dict[tuple[int, int], list[Sequence[Any]]] = {}  # (key, page) -> its touched blocks
    pages: dict[tuple[int, int], bytes] = {}
    cursor = conn.connection.cursor()
    try:
        for (lo, hi), keys in by_range.items():
            for at in range(0, len(keys), 500):
                part = keys[at : at + 500]
                marks = ", ".join([mark] * len(part))
                cursor.execute(
                    f"SELECT key_id, {BLOCK_COLUMNS} FROM metric_blocks WHERE run_pk = {mark} "
                    f"AND key_id IN ({marks}) AND block >= {mark} AND block <= {mark} "
                    "ORDER BY key_id, block",
                    (run_pk, *part, lo, hi),
                )
                for row in cursor.fetchall():
                    fresh.setdefault((int(row[0]), page_of(int(row[1]))), []).append(row[1:])
                cursor.execute(
                    f"SELECT key_id, page, data FROM metric_pages WHERE run_pk = {mark} "
                    f"AND key_id IN ({marks}) AND page >= {mark} AND page <= {mark}",
                    (run_pk, *part, page_of(lo), page_of(hi)),
                )
                for key_id, page, data in cursor.fetchall():
                    pages[(int(key_id), int(page))] = bytes(data)
        out: list[tuple[int, int, int, bytes]] = []
        size = PAGE_DTYPE.itemsize
        for (key_id, page), rows in fresh.items():
            data = pack_blocks(rows)
            old = pages.get((key_id, page))
            if old is not None:
                # ``rows`` are every block of the page from its first to its last (the read
                # took the whole range): they replace that stretch of the old page
                known = np.frombuffer(old, dtype="<i8")[:: size // 8]  # each record's block
                cut = int(np.searchsorted(known, int(rows[0][0])))
                end = int(np.searchsorted(known, int(rows[-1][0]), side="right"))
                data = old[: cut * size] + data + old[end * size :]
            out.append((key_id, run_pk, page, data))
        if out:
            cursor.executemany(
                "INSERT INTO metric_pages (key_id, run_pk, page, data) VALUES "
                f"({mark}, {mark}, {mark}, {mark}) ON CONFLICT (key_id, run_pk, page) "
                "DO UPDATE SET data = excluded.data",
                out,
            )
    finally:
        cursor.close()
