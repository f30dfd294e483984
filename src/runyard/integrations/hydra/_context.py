"""From a Hydra job to runyard: the job context, the return value, the saved files.

Pure functions over the job's config (the full config, ``hydra`` node included, as Hydra hands
it to callbacks), kept apart from the callback so that each rule is testable on its own.
"""

from __future__ import annotations

import copy
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runyard.sdk.config import ConfigError, to_plain
from runyard.sdk.names import check_name
from runyard.sdk.run import Run
from runyard.sdk.settings import Settings, normalize_mode
from runyard.sdk.state import JobContext

#: summary key of a return value that is not a mapping
RETURN_VALUE_KEY = "return_value"

#: the files Hydra writes into ``<output_dir>/<hydra.output_subdir>`` for each job
HYDRA_FILES = ("config.yaml", "overrides.yaml", "hydra.yaml")


def build_context(
    config: Any,
    *,
    project: str | None = None,
    entity: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    tags: Sequence[str] = (),
    mode: str | None = None,
) -> JobContext:
    """The context of the job whose full config (``hydra`` node included) is ``config``.

    Invalid parameters raise here, at the job's start, rather than in the program's own
    ``runyard.init()`` (where they would fail the job).
    """
    from omegaconf import OmegaConf

    if mode is not None:
        mode = normalize_mode(mode)
    for kind, name in (("project", project), ("entity", entity)):
        if name is not None:
            check_name(f"hydra.callbacks.runyard.{kind}:", name)
    multirun = str(OmegaConf.select(config, "hydra.mode", default="")).endswith("MULTIRUN")
    if group is None and multirun and not os.environ.get("RUNYARD_RUN_GROUP"):
        group = multirun_group(config)
    settings = Settings(
        project=project, entity=entity, run_group=group, job_type=job_type, mode=mode
    )
    meta = {
        "job_name": _select(config, "hydra.job.name"),
        "job_num": _select(config, "hydra.job.num"),
        "job_id": _select(config, "hydra.job.id"),
        "mode": "MULTIRUN" if multirun else "RUN",
        "output_dir": _select(config, "hydra.runtime.output_dir"),
        "cwd": _select(config, "hydra.runtime.cwd"),
        "sweep_dir": _select(config, "hydra.sweep.dir") if multirun else None,
        "overrides": _select(config, "hydra.overrides.task") or [],
        "choices": _select(config, "hydra.runtime.choices") or {},
        "version": _select(config, "hydra.runtime.version"),
    }
    return JobContext(
        settings=settings,
        config=task_config(config),
        meta={"hydra": meta},
        tags=tuple(str(t) for t in tags),
    )


def multirun_group(config: Any) -> str | None:
    """The group of a multirun's jobs: its sweep folder, relative to the launch folder.

    Every job of one multirun sees the same ``hydra.sweep.dir`` (Hydra copies the resolver
    cache, timestamps included, into each job's config, also for remote launchers), it names
    the multirun uniquely in practice, and it says where the jobs' outputs are.
    """
    sweep_dir = _select(config, "hydra.sweep.dir")
    if not sweep_dir:
        return None
    cwd = _select(config, "hydra.runtime.cwd")
    path = Path(str(sweep_dir))
    if cwd and path.is_absolute():
        try:
            path = path.relative_to(Path(str(cwd)))
        except ValueError:
            pass
    return path.as_posix()


def task_config(config: Any) -> dict[str, Any]:
    """The job's config without the ``hydra`` node, resolved as the task function sees it.

    A value that cannot be resolved or stored does not stop the job: the config is then kept
    unresolved (interpolations as text) and a warning says why.
    """
    from omegaconf import OmegaConf, open_dict, read_write

    cfg = copy.deepcopy(config)
    with read_write(cfg), open_dict(cfg):
        if "hydra" in cfg:
            del cfg["hydra"]
    try:
        plain = to_plain(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))
    except Exception as exc:
        warnings.warn(
            f"runyard: the Hydra config could not be resolved ({exc}); it is recorded unresolved",
            stacklevel=2,
        )
        try:
            plain = to_plain(OmegaConf.to_container(cfg, resolve=False))
        except ConfigError as exc2:
            warnings.warn(f"runyard: the Hydra config is not recorded: {exc2}", stacklevel=2)
            return {}
    return plain if isinstance(plain, dict) else {}


def return_value_summary(value: Any) -> dict[str, Any]:
    """The summary entries for a task function's return value.

    * a mapping (dict, DictConfig): its entries, nested keys joined with ``/`` as ``log()``
      does (``{"val": {"acc": 0.9}}`` → ``val/acc``); entries that cannot be stored are left
      out with a warning;
    * a number, bool or string (numpy scalars included), or a list/tuple of them (a
      multi-objective result): ``return_value``;
    * ``None`` and anything else (a model, an object): nothing.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping) or type(value).__module__.startswith("omegaconf"):
        try:
            plain = to_plain(value)
        except ConfigError:
            plain = None
        if isinstance(plain, dict):
            out: dict[str, Any] = {}
            _flatten(out, plain, "")
            return out
        if not isinstance(plain, list):
            return {}
        value = plain
    if isinstance(value, list | tuple) or _is_scalar(value):
        try:
            plain = to_plain(value)
        except ConfigError:
            return {}
        if _storable(plain):
            return {RETURN_VALUE_KEY: plain}
    return {}


def _is_scalar(value: Any) -> bool:
    if isinstance(value, bool | int | float | str):
        return True
    return callable(getattr(value, "item", None)) and getattr(value, "ndim", None) == 0


def _storable(value: Any) -> bool:
    if isinstance(value, list):
        return all(_storable(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def _flatten(out: dict[str, Any], data: Mapping[str, Any], prefix: str) -> None:
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(out, value, full + "/")
        elif full.startswith("_"):
            warnings.warn(
                f"runyard: return value key {full!r} is reserved for runyard; not recorded",
                stacklevel=3,
            )
        else:
            out[full] = value


def save_hydra_files(run: Run, config: Any) -> list[str]:
    """Copy the job's ``.hydra/*.yaml`` into ``<store>/files/<entity>/<project>/<id>/.hydra/``.

    Hydra writes them before the job starts; a job with ``hydra.output_subdir=null`` has none.
    Returns the copied files, relative to the run's files folder.
    """
    if run.disabled:
        return []
    subdir = _select(config, "hydra.output_subdir")
    output_dir = _select(config, "hydra.runtime.output_dir")
    if not subdir or not output_dir:
        return []
    source = Path(str(output_dir)) / str(subdir)
    files = run._files_dir()
    if files is None:
        return []
    target = files / ".hydra"
    saved = []
    for name in HYDRA_FILES:
        path = source / name
        if path.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)
            saved.append(f".hydra/{name}")
    return saved


def _select(config: Any, key: str) -> Any:
    """``config``'s value at ``key`` as plain data; ``None`` if absent, missing or broken."""
    from omegaconf import OmegaConf

    try:
        value = OmegaConf.select(config, key, default=None, throw_on_missing=False)
    except Exception:
        return None
    return _plain(value, default=None)


def _plain(value: Any, default: Any) -> Any:
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, DictConfig | ListConfig):
        try:
            return OmegaConf.to_container(value, resolve=True)
        except Exception:
            return default
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
