"""The store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Layout, chosen for the reads that matter:

* ``metrics`` is a narrow table keyed ``(key_id, run_pk, step)``. One series of one run
  (a chart) is a single index range scan; one key over thousands of runs (a sweep's table) is a
  range scan on ``key_id``; appends from a run are a handful of B-tree insertion points. SQLite
  stores it ``WITHOUT ROWID`` so the primary key *is* the table.
* ``history_steps`` keeps ``_timestamp``/``_runtime`` once per step rather than per metric.
* ``runs.summary`` (one JSON document per run) answers "last/min/max of a key over thousands of
  runs" without touching history.
* ``metric_blocks`` keeps min/max per block of 64 steps of each series, so a chart of a long
  series (``Store.series``) reads 1/64th of its rows; ``metric_pages`` packs them 64 to a row
  for charts of many runs (``Store.series_many``).
* ``journals`` remembers the last applied record of each journal: applying a batch and moving
  this mark happen in one transaction, which makes ingest idempotent.

Values: ``metrics.value`` holds the number; ``kind`` says how to read it back (float, NaN, bool,
int, str, None) because SQLite turns NaN into NULL and a bool must come back as a bool.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

JSONText = sa.Text  # JSON documents are stored as text encoded by runyard._json (see store.sql)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("entity", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("entity", "name", name="uq_projects_entity_name"),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("group_name", sa.String(256)),
    sa.Column("job_type", sa.String(128)),
    sa.Column("tags", JSONText, nullable=False, server_default="[]"),
    sa.Column("notes", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("config", JSONText, nullable=False, server_default="{}"),
    sa.Column("summary", JSONText, nullable=False, server_default="{}"),
    sa.Column("meta", JSONText, nullable=False, server_default="{}"),
    sa.Column("metric_defs", JSONText, nullable=False, server_default="[]"),
    sa.Column("sweep_id", sa.String(64)),
    sa.Column("host", sa.String(256)),
    sa.Column("pid", sa.Integer),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("runtime", sa.Float, nullable=False, server_default="0"),
    sa.Column("last_step", sa.BigInteger, nullable=False, server_default="-1"),
    sa.Column("exit_code", sa.Integer),
    sa.Column("failure", sa.Text),
    # Sweeps: the parameters the controller assigned (flat dotted names) and the agent.
    sa.Column("sweep_params", JSONText),
    sa.Column("agent_id", sa.String(64)),
    sa.UniqueConstraint("project_id", "run_id", name="uq_runs_project_run_id"),
)
sa.Index("ix_runs_project_created", runs.c.project_id, runs.c.created_at)
sa.Index("ix_runs_state", runs.c.state)
sa.Index("ix_runs_sweep", runs.c.sweep_id)

journals = sa.Table(
    "journals",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), nullable=False),
    sa.Column("applied_seq", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Index("ix_journals_run", journals.c.run_pk)

metric_keys = sa.Table(
    "metric_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(512), nullable=False, unique=True),
)

run_metric_keys = sa.Table(
    "run_metric_keys",
    metadata,
    sa.Column("run_pk", sa.Integer, sa.ForeignKey("runs.pk"), primary_key=True),
    sa.Column("key_id", sa.Integer, sa.ForeignKey("metric_keys.id"), primary_key=True),
    sqlite_with_rowid=False,
)

history_steps = sa.Table(
    "history_steps",
    metadata,
    sa.Column("run_pk", sa.Integer, primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("runtime", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)

metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("key_id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, primary_key=True),
    sa.Column("step", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.Float),
    sa.Column("kind", sa.SmallInteger, nullable=False, server_default="0"),
    sa.Column("text", sa.Text),
    sqlite_with_rowid=False,
)

#: ``metric_blocks`` summarises each run's series in blocks of ``2**BLOCK_BITS`` consecutive
#: steps (block = step >> BLOCK_BITS).
BLOCK_BITS = 6
BLOCK_STEPS = 1 << BLOCK_BITS

# One row per (key, run, block of 64 steps) holding a non-empty numeric part of a series: how many
# numeric points (NaN included), the first and last of their steps, and the minimum and maximum
# value with the first step where each occurs (NULL when every point of the block is NaN).
# Written in the same transaction as the metrics rows; lets Store.series() downsample a series
# of N points by reading N/64 rows.
metric_blocks = sa.Table(
    "metric_blocks",
    metadata,
    sa.Column("key_id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, primary_key=True),
    sa.Column("block", sa.BigInteger, primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("first_step", sa.BigInteger, nullable=False),
    sa.Column("last_step", sa.BigInteger, nullable=False),
    sa.Column("min_value", sa.Float),
    sa.Column("min_step", sa.BigInteger),
    sa.Column("max_value", sa.Float),
    sa.Column("max_step", sa.BigInteger),
    sqlite_with_rowid=False,
)

#: ``metric_pages`` packs a series' ``metric_blocks`` rows ``2**PAGE_BITS`` blocks to a row
#: (page = block >> PAGE_BITS): 4096 steps per page.
PAGE_BITS = 6
PAGE_BLOCKS = 1 << PAGE_BITS

# The blocks of one page of one series as one value (runyard.store.pages: the record layout),
# rewritten with its blocks in their transaction: Store.series_many reads a workspace chart's
# 500 runs' blocks as ~1,500 values instead of ~470,000.
metric_pages = sa.Table(
    "metric_pages",
    metadata,
    sa.Column("key_id", sa.Integer, primary_key=True),
    sa.Column("run_pk", sa.Integer, primary_key=True),
    sa.Column("page", sa.BigInteger, primary_key=True),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)

console_lines = sa.Table(
    "console_lines",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_pk", sa.Integer, nullable=False),
    sa.Column("stream", sa.String(8), nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)
sa.Index("ix_console_run", console_lines.c.run_pk, console_lines.c.id)

# A run's files by name (``run.save`` uploads, media ``media/...``): each names a blob of the
# store's content-addressed blob store (runyard.blobs), so equal content is stored once.
run_files = sa.Table(
    "run_files",
    metadata,
    sa.Column("run_pk", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(1024), primary_key=True),
    sa.Column("blob_key", sa.String(80), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Index("ix_run_files_blob", run_files.c.blob_key)

sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(256)),
    sa.Column("description", sa.Text),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("config", JSONText, nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("method_state", JSONText, nullable=False, server_default="{}"),
    sa.Column("run_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
sa.Index("ix_sweeps_project", sweeps.c.project_id)

sweep_agents = sa.Table(
    "sweep_agents",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("sweep_id", sa.String(64), sa.ForeignKey("sweeps.id"), nullable=False),
    sa.Column("host", sa.String(256)),
    sa.Column("pid", sa.Integer),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("current_run_id", sa.String(64)),
    sa.Column("runs_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
)
sa.Index("ix_sweep_agents_sweep", sweep_agents.c.sweep_id)

# The dashboard's saved workspaces (panel layout and settings, a JSON document): one per
# project (scope "project", user_name "") and one per user of a project (scope "user").
workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), primary_key=True),
    sa.Column("scope", sa.String(8), primary_key=True),
    sa.Column("user_name", sa.String(128), primary_key=True),
    sa.Column("doc", JSONText, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
WORKSPACE_SCOPES = ("project", "user")

# System metrics (the sampler's ``stats`` records): a series of their own, by time, never
# interleaved with the history's steps. One row per sample; ``n`` numbers a run's samples
# 0, 1, 2, ... (across resumes), so that a chart's evenly spaced samples are point lookups
# (``n IN (...)``) whatever the run's length. ``data`` is the JSON object of the sample's
# metrics under W&B's names (``{"system.cpu": 12.5, "system.gpu.0.temp": 61, ...}``).
system_samples = sa.Table(
    "system_samples",
    metadata,
    sa.Column("run_pk", sa.Integer, primary_key=True),
    sa.Column("n", sa.BigInteger, primary_key=True),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("runtime", sa.Float, nullable=False),
    sa.Column("data", JSONText, nullable=False),
    sqlite_with_rowid=False,
)

# Alerts (``run.alert``): run events, and the outbox of their webhook notifications.
# ``delivery`` is decided when the alert is applied: ``suppressed`` when an alert of the same
# run and title was notified less than ``wait_duration`` seconds before, else ``pending``; a
# dispatcher (runyard.alerts) then moves it to ``sent``, ``failed`` or ``expired``.
# ``next_attempt_at`` orders the outbox: a claim pushes it forward, so the alert of a dispatcher
# that died mid-send becomes claimable again.
run_alerts = sa.Table(
    "run_alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("run_pk", sa.Integer, nullable=False),
    sa.Column("title", sa.String(256), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("level", sa.String(8), nullable=False),
    sa.Column("wait_duration", sa.Float, nullable=False),
    sa.Column("timestamp", sa.Float, nullable=False),
    sa.Column("runtime", sa.Float, nullable=False),
    sa.Column("delivery", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Float, nullable=False, server_default="0"),
    sa.Column("sent_at", sa.Float),
    sa.Column("error", sa.Text),
)
sa.Index("ix_run_alerts_run_title", run_alerts.c.run_pk, run_alerts.c.title)
sa.Index("ix_run_alerts_outbox", run_alerts.c.delivery, run_alerts.c.next_attempt_at)

ALERT_DELIVERY = ("pending", "suppressed", "sent", "failed", "expired")

# metrics.kind values
KIND_FLOAT, KIND_NAN, KIND_BOOL, KIND_INT, KIND_STR, KIND_NONE = 0, 1, 2, 3, 4, 5
#: A JSON value (a list, a media reference ``{"_type": ...}``) in ``text``, runyard._json form.
KIND_JSON = 6

RUN_STATES = (
    "pending",
    "running",
    "preempting",
    "finished",
    "failed",
    "crashed",
    "killed",
    "stopped",
    "preempted",
)
SWEEP_STATES = ("running", "paused", "finished", "canceled")

# -- artifacts (runyard/artifacts; docs/artifacts.md) -------------------------------------------
#
# Content-addressed blobs shared by every version of every artifact of the store: ``blobs`` has
# one row per stored content (key ``sha256:<hex>``), written only once the bytes are published
# and verified; ``blob_owners`` says which entities have proven they hold a blob (by uploading
# it, or by committing a version that references it), so one entity never learns whether another
# has some content; ``blob_leases`` pin blobs for an upload in flight, which GC never deletes.
# A name's versions are ``artifact_versions`` rows (v0, v1, ... from the collection's
# ``next_version`` under the collection row's lock), their files ``artifact_files`` (the
# manifest, one row per path), their aliases ``artifact_aliases`` (unique per collection), and
# the runs that used them ``artifact_usage`` (the run path as text: a run of any project).

blobs = sa.Table(
    "blobs",
    metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("md5", sa.String(32), nullable=False),  # base64 of the MD5, as W&B's manifests
    sa.Column("created_at", sa.Float, nullable=False),
)

blob_owners = sa.Table(
    "blob_owners",
    metadata,
    sa.Column("entity", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)

blob_leases = sa.Table(
    "blob_leases",
    metadata,
    sa.Column("lease_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("expires_at", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)
sa.Index("ix_blob_leases_key", blob_leases.c.key)

artifact_collections = sa.Table(
    "artifact_collections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("next_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("project_id", "name", name="uq_artifact_collections_name"),
)

artifact_versions = sa.Table(
    "artifact_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "collection_id", sa.Integer, sa.ForeignKey("artifact_collections.id"), nullable=False
    ),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_count", sa.Integer, nullable=False),
    sa.Column("metadata", JSONText, nullable=False, server_default="{}"),
    sa.Column("description", sa.Text),
    sa.Column("created_by", sa.String(64)),  # run id, in the collection's project
    sa.Column("source_version_id", sa.Integer),  # a linked version: the version it links
    sa.Column("created_at", sa.Float, nullable=False),
    sa.UniqueConstraint("collection_id", "version", name="uq_artifact_versions_version"),
)
sa.Index(
    "ix_artifact_versions_digest", artifact_versions.c.collection_id, artifact_versions.c.digest
)

artifact_files = sa.Table(
    "artifact_files",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("path", sa.String(1024), primary_key=True),
    sa.Column("blob_key", sa.String(80)),  # NULL for a reference
    sa.Column("digest", sa.String(128), nullable=False),  # MD5 (base64) or a reference's ETag
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("ref", sa.Text),
    sa.Column("extra", JSONText),
    sqlite_with_rowid=False,
)
sa.Index("ix_artifact_files_blob", artifact_files.c.blob_key)

artifact_aliases = sa.Table(
    "artifact_aliases",
    metadata,
    sa.Column("collection_id", sa.Integer, primary_key=True),
    sa.Column("alias", sa.String(128), primary_key=True),
    sa.Column("version_id", sa.Integer, nullable=False),
    sqlite_with_rowid=False,
)
sa.Index("ix_artifact_aliases_version", artifact_aliases.c.version_id)

artifact_usage = sa.Table(
    "artifact_usage",
    metadata,
    sa.Column("version_id", sa.Integer, primary_key=True),
    sa.Column("run_entity", sa.String(128), primary_key=True),
    sa.Column("run_project", sa.String(128), primary_key=True),
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_with_rowid=False,
)
sa.Index(
    "ix_artifact_usage_run",
    artifact_usage.c.run_entity,
    artifact_usage.c.run_project,
    artifact_usage.c.run_id,
)
