"""run_files: a run's files by name, each naming a blob of the content-addressed blob store

Media (``media/images/...``) and uploaded run files are rows here; their content lives once per
content hash in the store's blob store (runyard.blobs). Files that ``run.save`` wrote into the
run's folder before this table existed stay where they are and are still listed and served.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "run_files",
        sa.Column("run_pk", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(1024), primary_key=True),
        sa.Column("blob_key", sa.String(80), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_run_files_blob", "run_files", ["blob_key"])


def downgrade() -> None:
    op.drop_index("ix_run_files_blob", "run_files")
    op.drop_table("run_files")
