"""runs: jsonb copies of config and summary on PostgreSQL, for Store.query_runs

The documents are JSON text (schema.py); filtering and sorting 10,000 runs by a config or
summary key on PostgreSQL spent most of its time casting each document to jsonb on every query.
``config_jsonb``/``summary_jsonb`` are generated columns (``GENERATED ALWAYS AS ... STORED``):
PostgreSQL keeps them equal to the text on every write, so no writer changes; they are not in
schema.py's metadata, so ordinary reads of runs never fetch them (store/sql_query.py reads them).
SQLite needs nothing: its JSON functions work on the text.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE runs "
        "ADD COLUMN config_jsonb jsonb GENERATED ALWAYS AS (CAST(config AS jsonb)) STORED, "
        "ADD COLUMN summary_jsonb jsonb GENERATED ALWAYS AS (CAST(summary AS jsonb)) STORED"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE runs DROP COLUMN config_jsonb, DROP COLUMN summary_jsonb")
