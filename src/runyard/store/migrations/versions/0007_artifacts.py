"""artifacts: content-addressed blobs, artifact collections, versions, files, aliases, usage

See store/schema.py (the artifacts part) and docs/artifacts.md.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "blob_owners",
        sa.Column("entity", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "blob_leases",
        sa.Column("lease_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_blob_leases_key", "blob_leases", ["key"])
    op.create_table(
        "artifact_collections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("next_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_artifact_collections_name"),
    )
    op.create_table(
        "artifact_versions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "collection_id",
            sa.Integer(),
            sa.ForeignKey("artifact_collections.id"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("file_count", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("description", sa.Text()),
        sa.Column("created_by", sa.String(64)),
        sa.Column("source_version_id", sa.Integer()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("collection_id", "version", name="uq_artifact_versions_version"),
    )
    op.create_index("ix_artifact_versions_digest", "artifact_versions", ["collection_id", "digest"])
    op.create_table(
        "artifact_files",
        sa.Column("version_id", sa.Integer(), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("blob_key", sa.String(80)),
        sa.Column("digest", sa.String(128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.Text()),
        sa.Column("extra", sa.Text()),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_artifact_files_blob", "artifact_files", ["blob_key"])
    op.create_table(
        "artifact_aliases",
        sa.Column("collection_id", sa.Integer(), primary_key=True),
        sa.Column("alias", sa.String(128), primary_key=True),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_artifact_aliases_version", "artifact_aliases", ["version_id"])
    op.create_table(
        "artifact_usage",
        sa.Column("version_id", sa.Integer(), primary_key=True),
        sa.Column("run_entity", sa.String(128), primary_key=True),
        sa.Column("run_project", sa.String(128), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_artifact_usage_run", "artifact_usage", ["run_entity", "run_project", "run_id"]
    )


def downgrade() -> None:
    for name in (
        "artifact_usage",
        "artifact_aliases",
        "artifact_files",
        "artifact_versions",
        "artifact_collections",
        "blob_leases",
        "blob_owners",
        "blobs",
    ):
        op.drop_table(name)
