"""``Settings``: every knob of the SDK, with the environment variables that set them.

Precedence, highest first: an argument of ``init()``, a field set on ``Settings``, the
``RUNYARD_*`` environment variable, the default. Every variable is listed in ``ENV_VARS`` and in
docs/configuration.md.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Literal

Mode = Literal["online", "offline", "disabled"]
_MODES = ("online", "offline", "disabled")
_MODE_ALIASES = {"run": "online", "dryrun": "offline", "embedded": "online", "local": "online"}

#: environment variable -> (Settings field, description). Documented in docs/configuration.md.
ENV_VARS: dict[str, tuple[str, str]] = {
    "RUNYARD_PROJECT": ("project", "project name (default: 'uncategorized')"),
    "RUNYARD_ENTITY": ("entity", "entity (user or team) owning the project (default: OS user)"),
    "RUNYARD_DIR": ("root_dir", "folder of the embedded store and journals (a .runyard folder)"),
    "RUNYARD_FILES_DIR": (
        "files_dir",
        "folder under which the run's own files go (W&B's init(dir=...)/WANDB_DIR; default: "
        "the store's files folder)",
    ),
    "RUNYARD_STORE": ("store", "SQLAlchemy URL of the store (default: sqlite in RUNYARD_DIR)"),
    "RUNYARD_BASE_URL": ("base_url", "URL of a runyard server; when set it is the store"),
    "RUNYARD_API_KEY": ("api_key", "API key for the server (default: saved by `runyard login`)"),
    "RUNYARD_FINISH_TIMEOUT": (
        "finish_timeout",
        "seconds finish() waits for the store before leaving the rest to `runyard sync` (30)",
    ),
    "RUNYARD_INIT_TIMEOUT": (
        "init_timeout",
        "seconds init() waits for the store's answer about a run id before starting without it "
        "(0.5; see docs/online.md)",
    ),
    "RUNYARD_RESUME_TIMEOUT": (
        "resume_timeout",
        "seconds init(resume='must') waits for the store to confirm the run exists (30)",
    ),
    "RUNYARD_MODE": ("mode", "online (the store; default), offline (journal only) or disabled"),
    "RUNYARD_RUN_ID": ("run_id", "id of the run to create or resume"),
    "RUNYARD_NAME": ("run_name", "display name of the run"),
    "RUNYARD_RUN_GROUP": ("run_group", "group of the run"),
    "RUNYARD_JOB_TYPE": ("job_type", "job type of the run"),
    "RUNYARD_TAGS": ("run_tags", "comma-separated tags"),
    "RUNYARD_NOTES": ("run_notes", "notes of the run"),
    "RUNYARD_RESUME": ("resume", "allow, must or never"),
    "RUNYARD_START_METHOD": ("start_method", "accepted for W&B compatibility; nothing is started"),
    "RUNYARD_CONSOLE": ("console", "auto (= wrap) or off: record stdout/stderr lines"),
    "RUNYARD_SILENT": ("silent", "true: print nothing at init/finish"),
    "RUNYARD_SWEEP_ID": ("sweep_id", "id of the sweep the run belongs to"),
    "RUNYARD_FLUSH_INTERVAL": ("flush_interval", "seconds between background writes (0.2)"),
    "RUNYARD_HEARTBEAT_INTERVAL": ("heartbeat_interval", "seconds between heartbeats (15)"),
    "RUNYARD_DISABLE_GIT": ("disable_git", "true: do not record git commit and dirty state"),
    "RUNYARD_KEEP_JOURNALS": ("keep_journals", "true: keep applied journals in journal/done/"),
    "RUNYARD_STOP_POLL_INTERVAL": (
        "stop_poll_interval",
        "seconds between a sweep run's questions whether its sweep stopped it (5)",
    ),
    "RUNYARD_STOP_RAISE": ("stop_raise", "true: log() raises runyard.StopRun once stopped"),
    "RUNYARD_JOURNAL_BACKLOG_MB": (
        "journal_backlog_mb",
        "MiB of records kept in memory while the journal's disk is full (256)",
    ),
    "RUNYARD_DISABLE_STATS": (
        "disable_stats",
        "true: record no system metrics (W&B's x_disable_stats / _disable_stats)",
    ),
    "RUNYARD_STATS_SAMPLING_INTERVAL": (
        "stats_sampling_interval",
        "seconds between system-metric samples (15; at least 0.1)",
    ),
    "RUNYARD_ALERT_WEBHOOK": (
        "alert_webhook",
        "embedded store only: URL that run.alert() posts to (a server has its own setting)",
    ),
}

#: W&B's environment variables, honoured where the RUNYARD_* variable of the same setting is not
#: set (docs/wandb-compat.md has the table): variable -> Settings field.
WANDB_ENV_VARS: dict[str, str] = {
    "WANDB_MODE": "mode",
    "WANDB_PROJECT": "project",
    "WANDB_ENTITY": "entity",
    "WANDB_NAME": "run_name",
    "WANDB_NOTES": "run_notes",
    "WANDB_TAGS": "run_tags",
    "WANDB_RUN_GROUP": "run_group",
    "WANDB_JOB_TYPE": "job_type",
    "WANDB_DIR": "files_dir",
    "WANDB_RUN_ID": "run_id",
    "WANDB_RESUME": "resume",
    "WANDB_SILENT": "silent",
    "WANDB_QUIET": "silent",
    "WANDB_CONSOLE": "console",
    "WANDB_BASE_URL": "base_url",
    "WANDB_API_KEY": "api_key",
    "WANDB_START_METHOD": "start_method",
    "WANDB_DISABLE_GIT": "disable_git",
    "WANDB_INIT_TIMEOUT": "init_timeout",
}
#: W&B's hosted service: a WANDB_BASE_URL naming it is not a runyard server (ignored).
WANDB_CLOUD_HOSTS = ("api.wandb.ai", "wandb.ai")
#: W&B's console values -> runyard's (runyard tees the streams: every capture mode is "wrap").
CONSOLE_VALUES = {
    "auto": "auto",
    "wrap": "wrap",
    "wrap_raw": "wrap",
    "wrap_emu": "wrap",
    "redirect": "wrap",
    "off": "off",
}

#: W&B's names of settings that runyard has under its own name (``Settings(x_disable_stats=True)``
#: and the older ``Settings(_disable_stats=True)`` work as in W&B).
SETTING_ALIASES: dict[str, str] = {
    "x_disable_stats": "disable_stats",
    "_disable_stats": "disable_stats",
    "x_stats_sampling_interval": "stats_sampling_interval",
    "_stats_sampling_interval": "stats_sampling_interval",
}

#: The smallest sampling interval (W&B refuses below 0.1 s too).
MIN_STATS_INTERVAL = 0.1

_TRUE = {"1", "true", "yes", "on"}


@dataclasses.dataclass
class Settings:
    """Settings of one run. Unset fields (``None``) fall back to the environment, then defaults.

    ``start_method`` is accepted so that ``Settings(start_method="thread")`` from W&B code runs
    unchanged; runyard starts no helper process, so there is nothing to choose.
    """

    mode: str | None = None
    project: str | None = None
    entity: str | None = None
    root_dir: str | None = None
    files_dir: str | None = None
    store: str | None = None
    base_url: str | None = None
    api_key: str | None = dataclasses.field(default=None, repr=False)
    finish_timeout: float | None = None
    init_timeout: float | None = None
    resume_timeout: float | None = None
    run_id: str | None = None
    run_name: str | None = None
    run_group: str | None = None
    job_type: str | None = None
    run_tags: str | None = None
    run_notes: str | None = None
    resume: str | None = None
    start_method: str | None = None
    console: str | None = None
    silent: bool | None = None
    sweep_id: str | None = None
    flush_interval: float | None = None
    heartbeat_interval: float | None = None
    disable_git: bool | None = None
    keep_journals: bool | None = None
    stop_poll_interval: float | None = None
    stop_raise: bool | None = None
    journal_backlog_mb: float | None = None
    disable_stats: bool | None = None
    stats_sampling_interval: float | None = None
    alert_webhook: str | None = dataclasses.field(default=None, repr=False)
    # W&B's names (SETTING_ALIASES), accepted by the constructor only.
    x_disable_stats: dataclasses.InitVar[bool | None] = None
    _disable_stats: dataclasses.InitVar[bool | None] = None
    x_stats_sampling_interval: dataclasses.InitVar[float | None] = None
    _stats_sampling_interval: dataclasses.InitVar[float | None] = None

    def __post_init__(
        self,
        x_disable_stats: bool | None,
        _disable_stats: bool | None,
        x_stats_sampling_interval: float | None,
        _stats_sampling_interval: float | None,
    ) -> None:
        for value in (x_disable_stats, _disable_stats):
            if value is not None and self.disable_stats is None:
                self.disable_stats = bool(value)
        for interval in (x_stats_sampling_interval, _stats_sampling_interval):
            if interval is not None and self.stats_sampling_interval is None:
                self.stats_sampling_interval = interval

    def resolved(self) -> Settings:
        """A copy with every unset field taken from the environment or the default."""
        out = dataclasses.replace(self)
        explicit_store = out.store
        for var, (field, _) in ENV_VARS.items():
            if getattr(out, field) is None and os.environ.get(var):
                setattr(out, field, _parse(field, os.environ[var], var))
        _apply_wandb_env(out)
        if explicit_store is None and out.base_url:
            out.store = out.base_url  # a server wins over RUNYARD_STORE
        if out.finish_timeout is None:
            out.finish_timeout = 30.0
        if out.init_timeout is None:
            out.init_timeout = 0.5
        if out.resume_timeout is None:
            out.resume_timeout = 30.0
        out.mode = normalize_mode(out.mode or "online")
        console = (out.console or "auto").lower()
        if console not in CONSOLE_VALUES:
            raise ValueError(
                f"runyard: console={out.console!r} is not valid; use 'auto', 'wrap' or 'off' "
                f"(W&B's 'wrap_raw', 'wrap_emu' and 'redirect' are taken as 'wrap')"
            )
        out.console = CONSOLE_VALUES[console]
        if out.flush_interval is None:
            out.flush_interval = 0.2
        if out.heartbeat_interval is None:
            out.heartbeat_interval = 15.0
        if out.silent is None:
            out.silent = False
        if out.disable_git is None:
            out.disable_git = False
        if out.keep_journals is None:
            out.keep_journals = False
        if out.stop_poll_interval is None:
            out.stop_poll_interval = 5.0
        if out.stop_raise is None:
            out.stop_raise = False
        if out.journal_backlog_mb is None:
            out.journal_backlog_mb = 256.0
        if out.disable_stats is None:
            out.disable_stats = False
        if out.stats_sampling_interval is None:
            out.stats_sampling_interval = 15.0
        interval = out.stats_sampling_interval
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not interval >= MIN_STATS_INTERVAL
        ):
            raise ValueError(
                f"runyard: stats_sampling_interval={interval!r} is not valid; give a number of "
                f"seconds >= {MIN_STATS_INTERVAL} (default 15)"
            )
        out.stats_sampling_interval = float(interval)
        return out

    def merged(self, other: Settings | dict[str, Any] | None) -> Settings:
        """``self`` with the fields set in ``other`` overriding."""
        if other is None:
            return self
        values = other if isinstance(other, dict) else dataclasses.asdict(other)
        values = dict(values)
        for alias, name in SETTING_ALIASES.items():
            if alias in values:
                value = values.pop(alias)
                if values.get(name) is None:
                    values[name] = value
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(
                f"runyard.Settings: unknown setting(s) {unknown}; known: {sorted(known)}"
            )
        return dataclasses.replace(self, **{k: v for k, v in values.items() if v is not None})


def _apply_wandb_env(out: Settings) -> None:
    """Fill fields still unset from W&B's variables (``WANDB_MODE=offline`` and so on)."""
    env = os.environ
    if out.mode is None and env.get("WANDB_DISABLED", "").strip().lower() in _TRUE:
        out.mode = "disabled"
    url_from_wandb = False
    for var, field in WANDB_ENV_VARS.items():
        raw = env.get(var)
        if not raw or getattr(out, field) is not None:
            continue
        if field == "base_url":
            if any(host in raw.lower() for host in WANDB_CLOUD_HOSTS):
                continue  # W&B's cloud, set for the wandb client: not a runyard server
            url_from_wandb = True
        if field == "api_key" and not url_from_wandb:
            # A W&B cloud key in the shell is never sent to a runyard server: WANDB_API_KEY
            # goes with a WANDB_BASE_URL naming the runyard server.
            continue
        if field == "resume" and raw.strip().lower() in ("true", "1"):
            raw = "allow"
        if field == "resume" and raw.strip().lower() in ("false", "0"):
            raw = "never"
        setattr(out, field, _parse(field, raw, var))


def normalize_mode(mode: str) -> str:
    value = _MODE_ALIASES.get(mode.lower(), mode.lower())
    if value not in _MODES:
        raise ValueError(
            f"runyard: mode={mode!r} is not valid; use 'online' (the store), 'offline' "
            f"(journal only, upload later with `runyard sync`) or 'disabled'"
        )
    return value


def _parse(field: str, raw: str, var: str) -> Any:
    if field in ("silent", "disable_git", "keep_journals", "stop_raise", "disable_stats"):
        return raw.strip().lower() in _TRUE
    if field in ("finish_timeout", "init_timeout", "resume_timeout", "journal_backlog_mb"):
        unit = "MiB" if field == "journal_backlog_mb" else "seconds"
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"runyard: {var}={raw!r} is not a number of {unit}") from None
        if value < 0:
            raise ValueError(f"runyard: {var} must be >= 0, got {raw!r}")
        return value
    if field in ("flush_interval", "heartbeat_interval", "stop_poll_interval"):
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"runyard: {var}={raw!r} is not a number of seconds") from None
        if value <= 0:
            raise ValueError(f"runyard: {var} must be positive, got {raw!r}")
        return value
    if field == "stats_sampling_interval":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(
                f"runyard: {var}={raw!r} is not a number of seconds (>= {MIN_STATS_INTERVAL})"
            ) from None
    return raw
