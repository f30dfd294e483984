"""metric_pages: each series' metric_blocks packed 64 blocks to a row (charts of many runs)

Built from the existing metric_blocks, one key at a time (a store of 500 runs x 6 metrics x
10k steps: 9,000 pages from 471,000 blocks, a few seconds).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 01:00:00.000000
"""

from collections.abc import Sequence
from itertools import groupby
from typing import Any

import sqlalchemy as sa
from alembic import op

from runyard.store.pages import BLOCK_COLUMNS, pack_blocks

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAGE_BITS = 6  # store.schema.PAGE_BITS when this was written


def upgrade() -> None:
    pages = op.create_table(
        "metric_pages",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("page", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "run_pk", "page"),
        sqlite_with_rowid=False,
    )
    assert pages is not None
    conn = op.get_bind()
    keys = [int(k) for (k,) in conn.exec_driver_sql("SELECT DISTINCT key_id FROM metric_blocks")]
    for key_id in keys:
        rows = conn.exec_driver_sql(
            f"SELECT run_pk, {BLOCK_COLUMNS} FROM metric_blocks WHERE key_id = {key_id} "
            "ORDER BY run_pk, block"
        ).fetchall()
        batch: list[dict[str, Any]] = []
        for (run_pk, page), blocks in groupby(rows, key=lambda r: (r[0], r[1] >> _PAGE_BITS)):
            data = pack_blocks(r[1:] for r in blocks)
            batch.append({"key_id": key_id, "run_pk": run_pk, "page": page, "data": data})
            if len(batch) >= 1000:
                conn.execute(pages.insert(), batch)
                batch = []
        if batch:
            conn.execute(pages.insert(), batch)


def downgrade() -> None:
    op.drop_table("metric_pages")
