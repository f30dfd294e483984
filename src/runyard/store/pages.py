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
    conn: Connection, is_sqlite: bool, run_pk: int, pages: Mapping[int, Iterable[int]]
) -> None:
    """Rewrite the pages ``pages`` (key id -> page numbers) of run ``run_pk`` from its
    ``metric_blocks`` rows as they now are (after an upsert, in the same transaction)."""
    mark = "?" if is_sqlite else "%s"
    select = (
        f"SELECT {BLOCK_COLUMNS} FROM metric_blocks WHERE key_id = {mark} AND run_pk = {mark} "
        f"AND block >= {mark} AND block <= {mark} ORDER BY block"
    )
    out: list[tuple[int, int, int, bytes]] = []
    cursor = conn.connection.cursor()
    try:
        for key_id, numbers in pages.items():
            for page in sorted(set(numbers)):
                lo = page << S.PAGE_BITS
                cursor.execute(select, (key_id, run_pk, lo, lo + S.PAGE_BLOCKS - 1))
                rows = cursor.fetchall()
                if rows:  # blocks are never removed but with their run: a page is never empty
                    out.append((key_id, run_pk, page, pack_blocks(rows)))
        if out:
            cursor.executemany(
                "INSERT INTO metric_pages (key_id, run_pk, page, data) VALUES "
                f"({mark}, {mark}, {mark}, {mark}) ON CONFLICT (key_id, run_pk, page) "
                "DO UPDATE SET data = excluded.data",
                out,
            )
    finally:
        cursor.close()
