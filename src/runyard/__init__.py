"""runyard: self-hosted experiment tracking and hyperparameter sweeps, built for Hydra.

``import runyard as wandb`` runs W&B-style tracking code unchanged::

    run = runyard.init(project="mnist", config=cfg)
    runyard.log({"loss": 0.1})
    runyard.finish()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runyard import errors
from runyard.artifacts.artifact import Artifact
from runyard.sdk.alert import AlertLevel
from runyard.sdk.config import Config, ConfigError
from runyard.sdk.login import login
from runyard.sdk.run import Run, RunFinishedError
from runyard.sdk.settings import Settings
from runyard.sdk.state import (
    alert,
    define_metric,
    finish,
    init,
    log,
    log_code,
    mark_preempting,
    save,
    unwatch,
    watch,
)
from runyard.sdk.stop import StopRun
from runyard.sdk.summary import Summary

__version__ = "0.1.0"

#: The current run (``None`` before ``init()``).
run: Run | None = None
#: The current run's config. Assign a dict or DictConfig before ``init()`` to set it.
config: Any = Config()
#: The current run's summary (``None`` before ``init()``).
summary: Summary | None = None

if TYPE_CHECKING:
    from runyard.api import Api
    from runyard.sweeps.python import agent, sweep


def log_artifact(artifact_or_path: Any, *args: Any, **kwargs: Any) -> Any:
    """``run.log_artifact`` of the current run."""
    return _current("log_artifact").log_artifact(artifact_or_path, *args, **kwargs)


def use_artifact(artifact_or_name: Any, *args: Any, **kwargs: Any) -> Any:
    """``run.use_artifact`` of the current run."""
    return _current("use_artifact").use_artifact(artifact_or_name, *args, **kwargs)


def _current(what: str) -> Run:
    if run is None:
        raise RuntimeError(f"runyard.{what}: call runyard.init() first")
    return run


#: W&B's media classes, from runyard.media (imported on first use: numpy, Pillow).
_MEDIA = ("Image", "Histogram", "Table", "Audio", "Video", "Html", "Plotly")


def __getattr__(name: str) -> Any:
    # Api pulls in SQLAlchemy, media numpy and Pillow: keep `import runyard` light for the
    # training process.
    if name == "Api":
        from runyard.api import Api

        return Api
    if name in ("sweep", "agent"):  # W&B's Python-defined sweeps (runyard.sweeps.python)
        from runyard.sweeps import python

        return getattr(python, name)
    if name == "plot":  # W&B's wandb.plot.* charts (runyard/plot.py)
        import runyard.plot

        return runyard.plot
    if name in ("plot_table", "visualize"):
        import runyard.plot

        return getattr(runyard.plot, name)
    if name in _MEDIA:
        import runyard.media

        return getattr(runyard.media, name)
    raise AttributeError(f"module 'runyard' has no attribute {name!r}")


__all__ = [
    "AlertLevel",
    "Api",
    "Artifact",
    "Config",
    "ConfigError",
    "Run",
    "RunFinishedError",
    "Settings",
    "StopRun",
    "Summary",
    "agent",
    "alert",
    "config",
    "define_metric",
    "errors",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_code",
    "login",
    "mark_preempting",
    "plot",
    "plot_table",
    "run",
    "save",
    "summary",
    "sweep",
    "unwatch",
    "use_artifact",
    "watch",
    *_MEDIA,
]
