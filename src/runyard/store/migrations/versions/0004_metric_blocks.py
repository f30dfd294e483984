"""metric_blocks: min/max of each series per block of 64 steps (fast downsampling)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Numeric kinds (store.schema: float 0, NaN 1, bool 2, int 3); NaN rows have a NULL value.
_BACKFILL = """
INSERT INTO metric_blocks
    (key_id, run_pk, block, n, first_step, last_step, min_value, max_value)
SELECT key_id, run_pk, step >> 6, count(*), min(step), max(step), min(value), max(value)
FROM metrics
WHERE kind IN (0, 1, 2, 3)
GROUP BY key_id, run_pk, step >> 6
"""

_BACKFILL_STEPS = """
UPDATE metric_blocks SET
    min_step = (
        SELECT min(m.step) FROM metrics m
        WHERE m.key_id = metric_blocks.key_id AND m.run_pk = metric_blocks.run_pk
          AND m.step BETWEEN metric_blocks.first_step AND metric_blocks.last_step
          AND m.kind IN (0, 2, 3) AND m.value = metric_blocks.min_value
    ),
    max_step = (
        SELECT min(m.step) FROM metrics m
        WHERE m.key_id = metric_blocks.key_id AND m.run_pk = metric_blocks.run_pk
          AND m.step BETWEEN metric_blocks.first_step AND metric_blocks.last_step
          AND m.kind IN (0, 2, 3) AND m.value = metric_blocks.max_value
    )
WHERE min_value IS NOT NULL
"""


def upgrade() -> None:
    op.create_table(
        "metric_blocks",
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("first_step", sa.BigInteger(), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", "run_pk", "block"),
        sqlite_with_rowid=False,
    )
    op.execute(_BACKFILL)
    op.execute(_BACKFILL_STEPS)


def downgrade() -> None:
    op.drop_table("metric_blocks")
