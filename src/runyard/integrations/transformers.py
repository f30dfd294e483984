"""``RunyardCallback`` for Hugging Face Transformers' ``Trainer``: W&B's ``WandbCallback``
habits, writing to runyard's store; no server or wandb package needed.

    import runyard.integrations.transformers  # registers report_to="runyard"
    args = TrainingArguments(..., report_to="runyard")
    # or: Trainer(..., callbacks=[RunyardCallback(project="nlp")])

What it records, as ``WandbCallback`` does (transformers/integrations/integration_utils.py):

* ``on_train_begin``: starts a run (or uses the current one), named ``args.run_name``, in the
  project ``RUNYARD_PROJECT``/``WANDB_PROJECT`` (default ``huggingface``); its config is the
  model's config overlaid with ``TrainingArguments.to_dict()``, plus ``model/num_parameters``;
  ``train/global_step`` is defined as every metric's step metric;
* ``on_log``: the Trainer's logs, keys rewritten ``eval_x`` -> ``eval/x``, ``test_x`` ->
  ``test/x``, others ``train/x``, with ``train/global_step``; the end-of-training scalars
  (``train_runtime``, ``train_loss``, ``total_flos``, ...) go to the summary only;
* model artifacts (``model-<run name>``, or ``model-<run id>`` without a run name) by
  ``RUNYARD_LOG_MODEL`` (else ``WANDB_LOG_MODEL``): ``checkpoint`` logs each saved checkpoint
  folder (aliases ``epoch_<e>``, ``checkpoint_global_step_<n>``), ``end`` the final model
  (alias ``final_model``), ``false`` (the default) nothing; either one first logs the model's
  architecture (alias ``base_model``);
* ``RUNYARD_WATCH``/``WANDB_WATCH`` (``gradients``, ``parameters``, ``all``): ``run.watch``;
* ``on_train_end``: finishes the run it started (a later ``trainer.evaluate()`` resumes it).

Only the world's process zero logs. Importing this module imports transformers (``import
runyard`` does not) and adds ``"runyard"`` to transformers' table of ``report_to`` names.
"""

from __future__ import annotations

import numbers
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    from transformers import TrainerCallback
except ImportError as exc:  # say what to install, not just the missing module
    raise ImportError(
        f"runyard.integrations.transformers needs the transformers package ({exc}); "
        f"install it with: pip install transformers"
    ) from exc

from runyard.integrations._common import (
    check_init_kwargs,
    default_project,
    end_run,
    plain_params,
    reopen,
    start_or_adopt,
)

if TYPE_CHECKING:
    from runyard.sdk.run import Run

LOG_MODEL_CHOICES = ("checkpoint", "end", "false")
WATCH_CHOICES = ("gradients", "parameters", "all", "false")

#: Logged once at the end of training: summary values, not history (as WandbCallback does).
SINGLE_VALUE_SCALARS = (
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
    "train_loss",
    "total_flos",
)


def rewrite_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """W&B's key layout: ``eval_x`` -> ``eval/x``, ``test_x`` -> ``test/x``, else ``train/x``."""
    out: dict[str, Any] = {}
    for key, value in logs.items():
        if key.startswith("eval_"):
            out["eval/" + key[5:]] = value
        elif key.startswith("test_"):
            out["test/" + key[5:]] = value
        else:
            out["train/" + key] = value
    return out


def _env_choice(names: tuple[str, ...], choices: tuple[str, ...], default: str) -> str:
    for name in names:
        raw = os.environ.get(name)
        if raw is None or raw.strip() == "":
            continue
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(
                f"RunyardCallback: {name}={raw!r} is not valid; use one of {', '.join(choices)}"
            )
        return value
    return default


class RunyardCallback(TrainerCallback):
    """A ``transformers.TrainerCallback`` logging the Trainer's config, metrics and (when
    asked) model checkpoints into a runyard run. Keyword arguments go to ``runyard.init``
    (``project``, ``entity``, ``name``, ``tags``, ...)."""

    def __init__(self, **init_kwargs: Any) -> None:
        check_init_kwargs("RunyardCallback", init_kwargs)
        self._init_kwargs = init_kwargs
        self._log_model = _env_choice(
            ("RUNYARD_LOG_MODEL", "WANDB_LOG_MODEL"), LOG_MODEL_CHOICES, "false"
        )
        self._watch = _env_choice(("RUNYARD_WATCH", "WANDB_WATCH"), WATCH_CHOICES, "false")
        self._run: Run | None = None
        self._started_here = False
        self._initialized = False

    @property
    def run(self) -> Run | None:
        """The runyard run this callback logs to (``None`` before training starts)."""
        return self._run

    def _active(self) -> Run:
        assert self._run is not None
        if self._run._finished and self._started_here:
            self._run = reopen(self._run)  # evaluate()/predict() after train()
        return self._run

    def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
        """Start (or adopt) the run and record the Trainer's and the model's configuration."""
        self._initialized = True
        if not state.is_world_process_zero:
            return
        combined: dict[str, Any] = {}
        model_config = getattr(model, "config", None)
        if model_config is not None:
            as_dict = model_config if isinstance(model_config, dict) else model_config.to_dict()
            combined.update(plain_params(as_dict))
        combined.update(plain_params(args.to_dict()))
        peft_config = getattr(model, "peft_config", None)
        if peft_config is not None:
            combined = {"peft_config": plain_params({"c": peft_config})["c"], **combined}
        init_args: dict[str, Any] = {"project": default_project("huggingface")}
        if state.trial_name is not None:
            init_args["name"] = state.trial_name
            init_args["group"] = args.run_name or args.output_dir
        elif args.run_name is not None:
            init_args["name"] = args.run_name
        init_args.update(self._init_kwargs)
        run, self._started_here = start_or_adopt(init_args, "RunyardCallback", warn=False)
        self._run = run
        run.config.update(combined, allow_val_change=True)
        run.define_metric("train/global_step")
        run.define_metric("*", step_metric="train/global_step", step_sync=True)
        if self._watch != "false" and model is not None:
            run.watch(model, log=self._watch, log_freq=max(100, int(state.logging_steps or 0)))
        num_parameters = getattr(model, "num_parameters", None)
        if callable(num_parameters):
            run.config.update({"model/num_parameters": num_parameters()}, allow_val_change=True)
        if self._log_model != "false" and model is not None:
            self._log_architecture(run, args, model)

    def _model_name(self, run: Run, args: Any) -> str:
        if args.run_name is None or args.run_name == args.output_dir:
            return f"model-{run.id}"
        return f"model-{run.name}"

    def _log_architecture(self, run: Run, args: Any, model: Any) -> None:
        from runyard.artifacts.artifact import Artifact

        config = getattr(model, "config", None)
        artifact = Artifact(
            self._model_name(run, args),
            "model",
            metadata={
                "model_config": plain_params(config.to_dict()) if config is not None else None,
                "num_parameters": run.config.as_dict().get("model/num_parameters"),
                "initial_model": True,
            },
        )
        with artifact.new_file("model_architecture.txt") as fh:
            fh.write(str(model))
        run.log_artifact(artifact, aliases=["base_model"])

    def _numeric_summary(self, run: Run) -> dict[str, Any]:
        return {
            k: v
            for k, v in dict(run.summary).items()
            if isinstance(v, numbers.Number) and not isinstance(v, bool) and not k.startswith("_")
        }

    # -- the Trainer's events ---------------------------------------------------------------

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
    ) -> None:
        if state.is_hyper_param_search:
            if self._run is not None and self._started_here:
                end_run(self._run, failed=False)
            self._run = None
            self._initialized = False
            args.run_name = None
        if not self._initialized:
            self.setup(args, state, model, **kwargs)

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not self._initialized:
            self.setup(args, state, model)
        if not state.is_world_process_zero or self._run is None:
            return
        run = self._active()
        logs = logs or {}
        for key, value in logs.items():
            if key in SINGLE_VALUE_SCALARS:
                run.summary[key] = value
        rest = {k: v for k, v in logs.items() if k not in SINGLE_VALUE_SCALARS}
        run.log({**rewrite_logs(rest), "train/global_step": state.global_step})

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._log_model != "checkpoint" or self._run is None or not state.is_world_process_zero:
            return
        from runyard.artifacts.artifact import Artifact

        run = self._active()
        metadata = self._numeric_summary(run)
        metadata["model/num_parameters"] = run.config.as_dict().get("model/num_parameters")
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        artifact = Artifact(self._model_name(run, args), "model", metadata=metadata)
        artifact.add_dir(folder)
        epoch = round(state.epoch, 2) if state.epoch is not None else 0
        run.log_artifact(
            artifact,
            aliases=[f"epoch_{epoch}", f"checkpoint_global_step_{state.global_step}"],
        )

    def on_train_end(
        self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any
    ) -> None:
        if self._run is None or not state.is_world_process_zero:
            return
        run = self._active()
        if self._log_model == "end" and model is not None:
            self._log_final_model(run, args, state, model, kwargs.get("processing_class"))
        if self._started_here:
            end_run(run, failed=False)

    def _log_final_model(
        self, run: Run, args: Any, state: Any, model: Any, processing_class: Any
    ) -> None:
        from runyard.artifacts.artifact import Artifact

        if args.load_best_model_at_end:
            metadata: dict[str, Any] = {
                f"eval/{args.metric_for_best_model}": state.best_metric,
                "train/total_floss": state.total_flos,
                "model/num_parameters": run.config.as_dict().get("model/num_parameters"),
            }
        else:
            metadata = self._numeric_summary(run)
        metadata["final_model"] = True
        with tempfile.TemporaryDirectory() as folder:
            save_pretrained = getattr(model, "save_pretrained", None)
            if callable(save_pretrained):
                save_pretrained(folder)
            else:
                import torch

                torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
            if processing_class is not None and hasattr(processing_class, "save_pretrained"):
                processing_class.save_pretrained(folder)
            Path(folder, "model_architecture.txt").write_text(str(model))
            artifact = Artifact(self._model_name(run, args), "model", metadata=metadata)
            artifact.add_dir(folder)
            run.log_artifact(artifact, aliases=["final_model"])

    def on_predict(self, args: Any, state: Any, control: Any, metrics: Any, **kwargs: Any) -> None:
        if not self._initialized:
            self.setup(args, state, kwargs.get("model"))
        if not state.is_world_process_zero or self._run is None:
            return
        self._active().log(rewrite_logs(dict(metrics)))


def _register() -> None:
    """Make ``report_to="runyard"`` name this callback. transformers has no plugin mechanism
    for reporting integrations; its table is a module-level dict, read when a Trainer is made."""
    try:
        from transformers.integrations import integration_utils
    except ImportError:  # pragma: no cover - a transformers without the table
        return
    table = getattr(integration_utils, "INTEGRATION_TO_CALLBACK", None)
    if isinstance(table, dict):
        table.setdefault("runyard", RunyardCallback)


_register()

__all__ = ["RunyardCallback", "rewrite_logs"]
