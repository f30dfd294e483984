"""The Hydra job callback: every Hydra job is one runyard run, with the job's real status.

Enabled with ``hydra/callbacks=runyard`` (registered by ``hydra_plugins.runyard_sweeper``);
see docs/hydra-callback.md. Per job, in the process that runs it (Hydra's ``run_job``: the
launching process for the basic launcher, the worker for joblib/loky and remote launchers):

* ``on_job_start`` sets the SDK's job context (``runyard.sdk.state.JobContext``): the
  resolved config without ``hydra``, overrides, choices, output dir, job name/number, the
  multirun's group and this callback's parameters. A ``runyard.init()`` in the job picks it up
  and its run becomes the job's run; a sweep assignment in the environment is joined as usual.
* ``on_job_end`` records the return value into the job's run's summary and finishes it as
  ``finished`` or ``failed`` (with the traceback) from Hydra's ``JobReturn``, and every other
  run started in the job that is still open likewise. A job that never called ``init()`` gets
  its run here, created within the job's ``hydra.job.env_set`` (so a sweeper's assignment is
  joined) and dated from the job's start. The context is then cleared.

Hydra's basic launcher runs every job of a multirun in one process, and catches a job's
exception to go on with the next: without this callback the next job's ``init()`` would
finish the failed job's run as ``finished``. Nothing here may break the user's job: every
hook catches its own errors and warns.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

from hydra.core.utils import JobReturn, JobStatus, env_override
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from runyard.integrations.hydra._context import (
    build_context,
    return_value_summary,
    save_hydra_files,
)
from runyard.sdk import state
from runyard.sdk.run import Run
from runyard.sdk.state import JobContext


class RunyardCallback(Callback):
    """Records each Hydra job as a runyard run.

    Parameters (``hydra.callbacks.runyard.<name>``; ``null`` means: what the program's
    ``runyard.init()``, the ``RUNYARD_*`` environment or runyard's defaults say). They are
    defaults for every run started in the job: ``init()`` arguments win over them, and they
    win over the environment.

    * ``project``, ``entity``, ``job_type``, ``mode``: as in ``runyard.init``;
    * ``group``: the group of the job's runs; by default a multirun's sweep folder (relative
      to the launch folder, e.g. ``multirun/2024-05-01/12-00-00``) unless
      ``RUNYARD_RUN_GROUP`` is set; single runs have none;
    * ``tags``: added to the tags of the job's runs;
    * ``save_hydra_files``: copy ``.hydra/{config,overrides,hydra}.yaml`` into the run's files.
    """

    def __init__(
        self,
        project: str | None = None,
        entity: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        tags: Sequence[str] | None = None,
        mode: str | None = None,
        save_hydra_files: bool = True,
    ) -> None:
        self.project = project
        self.entity = entity
        self.group = group
        self.job_type = job_type
        self.tags = [str(t) for t in tags] if tags else []
        self.mode = mode
        self.save_hydra_files = bool(save_hydra_files)
        self._context: JobContext | None = None
        self._started_at: float | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Launchers pickle the callbacks to their workers; a job's context stays in its process.
        return {**self.__dict__, "_context": None, "_started_at": None}

    def on_job_start(self, config: DictConfig, *, task_function: Any, **kwargs: Any) -> None:
        self._started_at = time.time()
        self._context = None
        try:
            context = build_context(
                config,
                project=self.project,
                entity=self.entity,
                group=self.group,
                job_type=self.job_type,
                tags=self.tags,
                mode=self.mode,
            )
        except Exception as exc:
            state.set_job_context(None)
            _warn("could not prepare the job's run", exc)
            return
        self._context = context
        state.set_job_context(context)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        context, self._context = self._context, None
        try:
            if context is not None:
                self._end_job(config, job_return, context)
        except Exception as exc:
            _warn("could not record the job's end", exc)
        finally:
            if state.job_context() is context:
                state.set_job_context(None)

    def _end_job(self, config: DictConfig, job_return: JobReturn, context: JobContext) -> None:
        pid = os.getpid()
        runs = [r for r in context.runs if r._owner_pid == pid]
        if runs:
            job_run = runs[0]
        else:
            context.start_time = self._started_at
            # Hydra has left the job's env_set by now; a sweeper passes the run to join there.
            env_set = OmegaConf.select(config, "hydra.job.env_set", default=None) or {}
            with env_override({str(k): str(v) for k, v in env_set.items()}):
                job_run = state.init(reinit="create_new")
            runs = [job_run]
        failed = job_return.status == JobStatus.FAILED
        # ``_return_value``: the property warns and re-raises for a failed job.
        value = job_return._return_value
        if not job_run._finished and job_return.status == JobStatus.COMPLETED:
            for key, entry in return_value_summary(value).items():
                try:
                    job_run.summary[key] = entry
                except Exception as exc:
                    _warn(f"the return value's {key!r} is not recorded", exc)
        if self.save_hydra_files:
            try:
                save_hydra_files(job_run, config)
            except OSError as exc:
                _warn("could not save the .hydra files", exc)
        for run in runs:
            _end_run(run, value if failed else None, failed)


def _end_run(run: Run, error: BaseException | None, failed: bool) -> None:
    if run._finished:
        return
    if failed and isinstance(error, BaseException):
        run.mark_failed(error)
    elif failed:
        run._finish("failed", exit_code=1, failure="the Hydra job failed")
    else:
        run.finish()


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(
        f"runyard (Hydra callback): {what}: {type(exc).__name__}: {exc}",
        RuntimeWarning,
        stacklevel=3,
    )
