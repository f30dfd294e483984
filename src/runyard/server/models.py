"""Request bodies (validated by pydantic: small, rare requests) and the response shapes
published in the OpenAPI document (documentation only: responses are built by
:mod:`runyard.server.serialize` and encoded by orjson, never validated on the way out).

Fields that may hold non-finite floats are typed loosely: those travel as ``{"__f__": "nan"}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INT32 = 2**31 - 1
INT64 = 2**63 - 1

Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^/\x00]+$")]
Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]
ShortText = Annotated[str, Field(max_length=256, pattern=r"^[^\x00]*$")]
LongText = Annotated[str, Field(max_length=100_000, pattern=r"^[^\x00]*$")]

RunState = Literal[
    "pending",
    "running",
    "preempting",
    "finished",
    "failed",
    "crashed",
    "killed",
    "stopped",
    "preempted",
]
SweepState = Literal["running", "paused", "finished", "canceled"]
AgentState = Literal["running", "finished", "killed", "failed", "dead"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- requests ------------------------------------------------------------------------------------


class RunStateIn(_In):
    state: RunState
    failure: LongText | None = None
    only_if_running: bool = True


class RunUpdateIn(_In):
    """The fields to change (each given replaces the stored one; ``notes``/``group``/
    ``job_type`` may be null to clear them). W&B's ``Api().run(...).update()``."""

    name: ShortText | None = None
    tags: list[ShortText] | None = None
    notes: LongText | None = None
    group: ShortText | None = None
    job_type: Annotated[str, Field(max_length=128, pattern=r"^[^\x00]*$")] | None = None
    config: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None


class RunDeletionOut(BaseModel):
    path: str
    files: int
    file_bytes: int
    freed_bytes: int
    history_rows: int
    dry_run: bool


class SweepIn(_In):
    sweep_id: Ident | None = None
    entity: Name | None = Field(None, description="Default: the config's entity, else the user.")
    project: Name | None = Field(None, description="Default: the config's project.")
    name: ShortText | None = None
    description: LongText | None = None
    method: Literal["grid", "random", "bayes"] | None = Field(
        None, description="Must match the config's method (default: the config's)."
    )
    config: dict[str, Any] = Field(description="The sweep.yaml document.")
    seed: int | None = Field(None, ge=0, le=INT64)


MetricKey = Annotated[str, Field(min_length=1, max_length=512)]


class SeriesBatchIn(_In):
    keys: list[MetricKey] = Field(min_length=1, max_length=32, description="Metric names.")
    runs: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=5000, description="Run ids of the project."
    )
    samples: int = Field(500, ge=2, le=100_000, description="At most this many points per run.")
    x: MetricKey = Field("_step", description="_step, _runtime, _timestamp or a metric name.")
    since: dict[str, Annotated[int, Field(ge=-INT64, le=INT64 - 1)]] | None = Field(
        None, description="Run id -> the last step the caller has: only later points."
    )


class StepsIn(_In):
    key: MetricKey = Field(description="A key the runs logged (a media key, usually).")
    runs: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=1000, description="Run ids of the project."
    )


class ValuesIn(_In):
    key: MetricKey = Field(description="A key the runs logged (a media key, usually).")
    runs: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=100, description="Run ids of the project."
    )
    samples: int = Field(
        1000, ge=1, le=10_000, description="At most this many values per run (evenly spread)."
    )
    min_step: int | None = Field(None, ge=-INT64, le=INT64, description="First step (inclusive).")
    max_step: int | None = Field(None, ge=-INT64, le=INT64, description="Last step (inclusive).")


class SweepStateIn(_In):
    state: SweepState


class AgentIn(_In):
    agent_id: Ident
    host: ShortText = ""
    pid: int = Field(0, ge=0, le=INT32)


class AgentHeartbeatIn(_In):
    current_run_id: Ident | None = None
    runs_done: int = Field(0, ge=0, le=INT32)
    state: AgentState = "running"


class TrialFinishIn(_In):
    exit_code: int | None = Field(None, ge=-INT32, le=INT32)
    stop_reason: LongText | None = None


class TrialFailIn(_In):
    reason: LongText


class RunCapIn(_In):
    run_cap: int = Field(ge=1, le=INT32)


ResultState = Literal["finished", "failed", "crashed", "killed", "stopped", "preempted"]


class DeadAgentIn(_In):
    agent_id: Ident
    heartbeat_at: float | None = Field(
        None, description="The heartbeat the caller saw; an agent heard from since is spared."
    )


class ReapIn(_In):
    agents: list[DeadAgentIn] = Field(max_length=10_000)
    failure: LongText | None = None


class TrialResultIn(_In):
    run_id: Ident
    state: ResultState
    summary: dict[str, Any] = Field(default_factory=dict, description="Merged into the run's.")
    config: dict[str, Any] | None = Field(None, description="Replaces the run's config.")
    failure: LongText | None = None
    expect_state: RunState | None = Field(
        None, description="Apply only if the run is in this state now."
    )


class TrialResultsIn(_In):
    results: list[TrialResultIn] = Field(max_length=10_000)


class AbandonIn(_In):
    failure: LongText | None = None


class RequeueIn(_In):
    run_ids: list[Ident] | None = Field(
        None, max_length=10_000, description="Only these trials (default: every interrupted one)."
    )


class EntityIn(_In):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    kind: Literal["user", "team"]


class MemberIn(_In):
    user: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    role: Literal["member", "admin"] = "member"


class KeyIn(_In):
    user: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    admin: bool = False
    description: ShortText = ""


# -- responses (documentation) -------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    schema_revision: str
    auth: bool


class Viewer(BaseModel):
    user: str | None
    admin: bool
    entities: list[str]


class ProjectOut(BaseModel):
    entity: str
    project: str
    runs: int


class RunOut(BaseModel):
    pk: int
    entity: str
    project: str
    run_id: str
    name: str
    group: str | None
    job_type: str | None
    tags: list[str]
    notes: str | None
    state: str
    config: dict[str, Any]
    summary: dict[str, Any]
    meta: dict[str, Any]
    metric_defs: list[dict[str, Any]]
    sweep_id: str | None
    host: str | None
    pid: int | None
    created_at: float
    updated_at: float
    heartbeat_at: float
    finished_at: float | None
    runtime: float
    last_step: int
    exit_code: int | None
    failure: str | None
    sweep_params: dict[str, Any] | None
    agent_id: str | None


class RunsOut(BaseModel):
    runs: list[RunOut]
    total: int


class AppliedOut(BaseModel):
    applied_seq: int


class ChangedOut(BaseModel):
    changed: bool


class HistoryOut(BaseModel):
    rows: list[dict[str, Any]]


class SeriesOut(BaseModel):
    key: str
    steps: list[int]
    values: list[Any] = Field(description="Floats; NaN/±inf as markers.")
    total: int
    downsampled: bool


class ConsoleOut(BaseModel):
    lines: list[tuple[str, float, str]]


class SystemOut(BaseModel):
    rows: list[dict[str, Any]] = Field(
        description='Samples in time order: {"_timestamp", "_runtime", "system.<name>": value}.'
    )
    keys: list[str] = Field(description="The metric names present in ``rows``, sorted.")
    total: int = Field(description="Samples stored for the run.")
    downsampled: bool


class AlertOut(BaseModel):
    id: int
    title: str
    text: str
    level: Literal["INFO", "WARN", "ERROR"]
    wait_duration: float
    timestamp: float
    runtime: float
    delivery: Literal["pending", "suppressed", "sent", "failed", "expired"]
    attempts: int
    sent_at: float | None
    error: str | None


class AlertsOut(BaseModel):
    alerts: list[AlertOut]


class FileOut(BaseModel):
    name: str
    size: int
    updated_at: float
    sha256: str | None = None


class SweepOut(BaseModel):
    id: str
    entity: str
    project: str
    name: str | None
    description: str | None
    method: str
    state: str
    config: dict[str, Any]
    seed: int
    method_state: dict[str, Any]
    run_count: int
    created_at: float
    updated_at: float


class TrialOut(BaseModel):
    pk: int
    run_id: str
    name: str
    state: str
    params: dict[str, Any]
    summary: dict[str, Any]
    agent_id: str | None
    created_at: float
    heartbeat_at: float
    failure: str | None


class BestOut(BaseModel):
    trial: TrialOut
    value: Any = Field(description="The metric (a float), or null.")


class FrontTrialOut(BaseModel):
    run_id: str
    name: str
    state: str
    values: list[float] = Field(description="The objectives, in the order of `metrics`.")
    params: dict[str, Any]


class FrontOut(BaseModel):
    metrics: list[dict[str, Any]] = Field(description="The objectives: `{name, goal}` each.")
    n: int = Field(description="Runs that reported every objective.")
    reference: list[float] | None = Field(description="The hypervolume's reference point.")
    hypervolume: float | None
    front: list[FrontTrialOut] = Field(description="The Pareto front, by the first objective.")


class AgentOut(BaseModel):
    id: str
    sweep_id: str
    host: str | None
    pid: int | None
    state: str
    current_run_id: str | None
    runs_done: int
    created_at: float
    heartbeat_at: float


class DecisionOut(BaseModel):
    kind: Literal["run", "wait", "done"]
    reason: str
    run_id: str | None
    run_name: str | None
    params: dict[str, Any]


class CrashedOut(BaseModel):
    crashed: list[str] = Field(description="Run ids marked crashed.")


class RequeuedOut(BaseModel):
    requeued: list[str] = Field(description="Run ids of the trials queued to run again.")


class SkippedOut(BaseModel):
    skipped: list[str] = Field(
        description="Run ids not settled: not in the sweep, or no longer in expect_state."
    )


class StopOut(BaseModel):
    reason: str | None


class OkOut(BaseModel):
    ok: bool


class MemberOut(BaseModel):
    user: str
    role: str


class EntityOut(BaseModel):
    name: str
    kind: str
    created_at: float
    members: list[MemberOut]


class KeyOut(BaseModel):
    key_id: str
    user: str
    admin: bool
    description: str | None
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


class CreatedKeyOut(BaseModel):
    key: str = Field(description="The whole key: shown only this once.")
    key_id: str
    user: str
    admin: bool


def doc(model: Any, *errors: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the 200 shape and the error statuses it may answer."""
    out: dict[int | str, dict[str, Any]] = {200: {"model": model}}
    for status in errors:
        out[status] = {"model": ErrorOut}
    return out
