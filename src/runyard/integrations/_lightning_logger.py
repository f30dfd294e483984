"""The body of ``RunyardLogger``, shared by ``runyard.integrations.lightning`` (the ``lightning``
package) and ``runyard.integrations.pytorch_lightning`` (the standalone ``pytorch_lightning``
package): each module mixes it into its package's ``Logger`` class.

Behaviour follows Lightning's ``WandbLogger`` (its constructor, ``trainer/global_step`` as the
step metric, checkpoints as ``model`` artifacts named ``model-<run id>`` holding ``model.ckpt``
with ``latest``/``best`` aliases, ``log_model=False|True|"all"``), writing to runyard's store
(the embedded one, or a server) without the wandb package. Differences, documented in
docs/integrations.md: ``finalize`` finishes the run the logger started (failed/killed when the
fit raised) and a later ``trainer.test()`` resumes it; ``watch`` does not log the graph.

Only rank zero logs (``rank_zero_only``); other ranks get a no-op ``experiment``.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from lightning_utilities.core.rank_zero import rank_zero_only

from runyard.integrations._common import (
    check_init_kwargs,
    default_project,
    end_run,
    plain_params,
    reopen,
    start_or_adopt,
)

if TYPE_CHECKING:
    from lightning.pytorch.loggers.logger import Logger as _Base

    from runyard.sdk.run import Run
else:
    _Base = object

F = TypeVar("F", bound=Callable[..., Any])

#: ModelCheckpoint's settings recorded in each checkpoint artifact's metadata (as W&B does).
CHECKPOINT_SETTINGS = (
    "monitor",
    "mode",
    "save_last",
    "save_top_k",
    "save_weights_only",
    "_every_n_train_steps",
)


def _rank() -> int:
    return int(getattr(rank_zero_only, "rank", 0) or 0)


def _on_rank_zero(fn: F) -> F:
    return rank_zero_only(fn)  # type: ignore[return-value]


class _NoRun:
    """What ``experiment`` is on ranks other than zero: every call does nothing."""

    def __getattr__(self, name: str) -> Any:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> _NoRun:
        return self

    def __getitem__(self, key: Any) -> _NoRun:
        return self

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class RunyardLoggerMixin(_Base):
    """Lightning's ``Logger`` interface over a runyard run (see the module docstring)."""

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        name: str | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        version: str | None = None,
        offline: bool = False,
        dir: str | os.PathLike[str] | None = None,
        id: str | None = None,
        anonymous: bool | None = None,
        project: str | None = None,
        log_model: Literal["all"] | bool = False,
        experiment: Run | None = None,
        prefix: str = "",
        checkpoint_name: str | None = None,
        entity: str | None = None,
        **kwargs: Any,
    ) -> None:
        if log_model not in (False, True, "all"):
            raise ValueError(
                f"RunyardLogger: log_model={log_model!r} is not valid; use False, True "
                f"(checkpoints at the end of training) or 'all' (every checkpoint as it is saved)"
            )
        if offline and log_model:
            raise ValueError(
                f"RunyardLogger: log_model={log_model!r} with offline=True cannot work: "
                f"checkpoints are artifacts, which need the store; use offline=False to log them"
            )
        check_init_kwargs("RunyardLogger", kwargs)
        super().__init__()
        save = save_dir if save_dir is not None else dir
        self._save_dir = os.fspath(save) if save is not None else None
        self._log_model = log_model
        self._prefix = prefix
        self._checkpoint_name = checkpoint_name
        self._experiment: Run | None = experiment
        self._started_here = False
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callbacks: dict[int, Any] = {}
        run_id = version or id
        self._init_kwargs: dict[str, Any] = {
            "name": name,
            "project": project or default_project("lightning_logs"),
            "entity": entity,
            "id": run_id,
            "dir": self._save_dir,
            "mode": "offline" if offline else None,
            **({"resume": "allow"} if run_id else {}),
            **kwargs,
        }
        self._project = self._init_kwargs["project"]
        self._name = name
        self._id = run_id

    # -- the run ---------------------------------------------------------------------------

    @property
    def experiment(self) -> Run:
        """The runyard ``Run`` (started on first use; on ranks other than zero a no-op
        stand-in). Use it for anything runyard does: ``self.logger.experiment.log(...)``."""
        if _rank() > 0:
            return _NoRun()  # type: ignore[return-value]
        if self._experiment is None:
            run, started = start_or_adopt(self._init_kwargs, "RunyardLogger")
            self._experiment, self._started_here = run, started
            if started:
                run.define_metric("trainer/global_step")
                run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        elif self._experiment._finished and self._started_here:
            # trainer.test()/validate() after fit() finished the run: go on in the same run.
            self._experiment = reopen(self._experiment)
        return self._experiment

    @property
    def name(self) -> str | None:
        """The project (Lightning's ``name`` is the folder level above ``version``)."""
        return self._experiment.project if self._experiment is not None else self._project

    @property
    def version(self) -> str | None:
        """The run's id (the run is started on rank zero when it is asked for first)."""
        if self._experiment is not None:
            return self._experiment.id
        if self._id is None and _rank() == 0:
            return self.experiment.id
        return self._id

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    # -- Lightning's Logger hooks ----------------------------------------------------------

    @_on_rank_zero
    def log_hyperparams(
        self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        """Hyperparameters (``save_hyperparameters()``, a dict, Namespace or OmegaConf config)
        into the run's config."""
        self.experiment.config.update(plain_params(params), allow_val_change=True)

    @_on_rank_zero
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """One history row, with ``trainer/global_step`` when Lightning gives the step."""
        row = {self._prefixed(k): v for k, v in metrics.items()}
        if step is not None:
            row["trainer/global_step"] = step
        self.experiment.log(row)

    def _prefixed(self, key: str) -> str:
        return f"{self._prefix}{self.LOGGER_JOIN_CHAR}{key}" if self._prefix else key

    @_on_rank_zero
    def log_table(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[Any]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """A ``runyard.Table`` under ``key`` (columns + rows, or a pandas DataFrame)."""
        from runyard.media import Table

        self.log_metrics({key: Table(columns=columns, data=data, dataframe=dataframe)}, step)

    @_on_rank_zero
    def log_text(
        self,
        key: str,
        columns: list[str] | None = None,
        data: list[list[str]] | None = None,
        dataframe: Any = None,
        step: int | None = None,
    ) -> None:
        """Text as a table, as WandbLogger does."""
        self.log_table(key, columns, data, dataframe, step)

    @_on_rank_zero
    def log_image(
        self, key: str, images: list[Any], step: int | None = None, **kwargs: Any
    ) -> None:
        """Images (tensors, arrays, PIL images, paths) under ``key``; each keyword is a list
        with one value per image (``caption=[...]``)."""
        from runyard.media import Image

        self._log_media(key, images, step, Image, kwargs)

    @_on_rank_zero
    def log_audio(
        self, key: str, audios: list[Any], step: int | None = None, **kwargs: Any
    ) -> None:
        """Audio clips under ``key`` (``sample_rate=[...]``, ``caption=[...]``)."""
        from runyard.media import Audio

        self._log_media(key, audios, step, Audio, kwargs)

    @_on_rank_zero
    def log_video(
        self, key: str, videos: list[Any], step: int | None = None, **kwargs: Any
    ) -> None:
        """Videos under ``key`` (``fps=[...]``, ``caption=[...]``)."""
        from runyard.media import Video

        self._log_media(key, videos, step, Video, kwargs)

    def _log_media(
        self, key: str, items: list[Any], step: int | None, cls: Any, kwargs: dict[str, Any]
    ) -> None:
        if not isinstance(items, list):
            raise TypeError(
                f"RunyardLogger: expected a list of items for {key!r}, got {type(items).__name__}"
            )
        for name, values in kwargs.items():
            if not isinstance(values, list | tuple) or len(values) != len(items):
                raise ValueError(
                    f"RunyardLogger: {name} must be a list with one value per item "
                    f"({len(items)}), got {values!r}"
                )
        per_item = [{k: v[i] for k, v in kwargs.items()} for i in range(len(items))]
        self.log_metrics(
            {key: [cls(item, **kw) for item, kw in zip(items, per_item, strict=True)]}, step
        )

    def watch(
        self,
        model: Any,
        log: str | None = "gradients",
        log_freq: int = 100,
        log_graph: bool = False,
    ) -> None:
        """Gradient and/or parameter histograms of ``model`` every ``log_freq`` batches
        (``run.watch``; the graph is not logged)."""
        if _rank() > 0:
            return
        self.experiment.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    def use_artifact(self, artifact: str, artifact_type: str | None = None) -> Any:
        """Record that the run uses ``artifact`` (``"name:alias"``) and return it."""
        return self.experiment.use_artifact(artifact, type=artifact_type)

    @_on_rank_zero
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if self._log_model == "all" or (
            self._log_model is True and getattr(checkpoint_callback, "save_top_k", None) == -1
        ):
            self._log_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    @_on_rank_zero
    def finalize(self, status: str) -> None:
        """End of ``fit``/``test``...: the checkpoints left to log (``log_model=True``), then
        the run this logger started is finished (``failed``, or ``killed`` for Ctrl-C, when
        Lightning reports a failure)."""
        if self._experiment is None:
            return
        if status == "success":
            for callback in self._checkpoint_callbacks.values():
                self._log_checkpoints(callback)
        if self._started_here:
            end_run(self._experiment, failed=status == "failed")

    # -- checkpoints as artifacts ----------------------------------------------------------

    def _log_checkpoints(self, callback: Any) -> None:
        from runyard.artifacts.artifact import Artifact

        run = self.experiment
        best_path = getattr(callback, "best_model_path", "")
        for _mtime, path, score in self._new_checkpoints(callback):
            metadata = {
                "score": score.item() if hasattr(score, "item") else score,
                "original_filename": Path(path).name,
                callback.__class__.__name__: {  # (a weakref proxy: not type())
                    k: getattr(callback, k) for k in CHECKPOINT_SETTINGS if hasattr(callback, k)
                },
            }
            if not self._checkpoint_name:
                self._checkpoint_name = f"model-{run.id}"
            artifact = Artifact(self._checkpoint_name, "model", metadata=metadata)
            artifact.add_file(path, name="model.ckpt")
            aliases = ["latest", "best"] if path == best_path else ["latest"]
            run.log_artifact(artifact, aliases=aliases)
            self._logged_model_time[path] = _mtime

    def _new_checkpoints(self, callback: Any) -> list[tuple[float, str, Any]]:
        """The callback's checkpoint files not logged yet (or rewritten since), oldest first:
        its last, best and top-k checkpoints with their scores."""
        found: dict[str, Any] = {}
        if getattr(callback, "last_model_path", ""):
            found[callback.last_model_path] = getattr(callback, "current_score", None)
        if getattr(callback, "best_model_path", ""):
            found[callback.best_model_path] = getattr(callback, "best_model_score", None)
        for path, score in (getattr(callback, "best_k_models", None) or {}).items():
            found[path] = score
        files = []
        for path, score in found.items():
            try:
                mtime = Path(path).stat().st_mtime
            except OSError:
                continue
            if path not in self._logged_model_time or self._logged_model_time[path] < mtime:
                files.append((mtime, path, score))
        return sorted(files, key=lambda f: (f[0], f[1]))
