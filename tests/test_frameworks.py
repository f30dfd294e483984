"""The framework loggers on the embedded store: runyard's Lightning ``RunyardLogger`` and
Transformers ``RunyardCallback``, training tiny real models on the CPU (built from configs,
nothing downloaded), read back through ``Api`` and the artifact store.

All in this one pytest process: torch, lightning and transformers are imported once (seconds
each); each module-scoped fixture trains once and the tests check what it logged.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.api import Api
from runyard.artifacts import artifact_store_for

torch = pytest.importorskip("torch")  # the dev extra: torch==2.13.0 (CPU), lightning, transformers
L = pytest.importorskip("lightning")

pytestmark = pytest.mark.slow


def test_import_runyard_imports_no_framework() -> None:
    code = (
        "import sys, runyard, runyard.integrations, runyard.integrations._common\n"
        "bad = [m for m in ('torch', 'lightning', 'pytorch_lightning', 'transformers') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The store of the module-scoped trainings (conftest's ``isolated`` gives each test its
    own; these run once and several tests read what they logged)."""
    folder = tmp_path_factory.mktemp("frameworks")
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith(("RUNYARD_", "WANDB_")):
                mp.delenv(var)
        mp.setenv("RUNYARD_DIR", str(folder / ".runyard"))
        mp.setenv("RUNYARD_CONFIG_DIR", str(folder / ".runyard-config"))
        mp.setenv("RUNYARD_CACHE_DIR", str(folder / ".runyard-cache"))
        mp.setenv("RUNYARD_CONSOLE", "off")
        mp.setenv("RUNYARD_DISABLE_STATS", "true")
        mp.setenv("RUNYARD_DISABLE_GIT", "true")
        mp.setenv("RUNYARD_SILENT", "true")
        mp.chdir(folder)
        yield folder


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- PyTorch Lightning ------------------------------------------------------------------------


class Regressor(L.LightningModule):  # type: ignore[misc]
    """A tiny regressor; its val_loss is set per epoch so the best checkpoint is known."""

    def __init__(self, lr: float = 0.05, hidden: int = 8, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def forward(self, x: Any) -> Any:
        return self.net(x)

    def training_step(self, batch: Any, index: int) -> Any:
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("diverged on purpose")
        x, y = batch
        loss = torch.nn.functional.mse_loss(self(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: Any, index: int) -> None:
        # epoch 0 is the best (0.5), epoch 1 worse (0.9): "best" must not follow "latest"
        self.log("val_loss", [0.5, 0.9][self.current_epoch % 2])

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def _loaders() -> tuple[Any, Any]:
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = torch.randn(32, 4)
    y = x.sum(dim=1, keepdim=True)
    return (
        DataLoader(TensorDataset(x, y), batch_size=8),
        DataLoader(TensorDataset(x[:8], y[:8]), batch_size=8),
    )


def _trainer(logger: Any, root: Path, **kwargs: Any) -> Any:
    return L.Trainer(
        max_epochs=2,
        logger=logger,
        accelerator="cpu",
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(root),
        **kwargs,
    )


@pytest.fixture(scope="module")
def lightning_fit(shared_root: Path) -> dict[str, Any]:
    from lightning.pytorch.callbacks import ModelCheckpoint

    from runyard.integrations.lightning import RunyardLogger

    logger = RunyardLogger(project="pl", name="tiny", log_model="all", tags=["pl"])
    model = Regressor()
    logger.watch(model, log="all", log_freq=2)
    checkpoint = ModelCheckpoint(monitor="val_loss", mode="min", save_top_k=2)
    trainer = _trainer(logger, shared_root, callbacks=[checkpoint])
    train, val = _loaders()
    trainer.fit(model, train, val)
    assert logger._experiment is not None
    fitted_state = logger._experiment.state  # (.experiment would resume it)
    run_path = logger._experiment.path
    best = {"path": checkpoint.best_model_path, "sha": _sha256(checkpoint.best_model_path)}
    best["score"] = float(checkpoint.best_model_score)
    trainer.validate(model, val)  # after fit finished the run: resumes it
    return {"logger": logger, "run": run_path, "state": fitted_state, "best": best}


def test_lightning_hparams_metrics_and_step_metric(
    shared_root: Path, lightning_fit: dict[str, Any]
) -> None:
    from lightning.pytorch.loggers import Logger

    assert isinstance(lightning_fit["logger"], Logger)
    assert lightning_fit["state"] == "finished"  # finalize("success") ended the fit's run
    run = Api(dir=shared_root / ".runyard").run(lightning_fit["run"])
    assert run.state == "finished" and run.name == "tiny" and run.tags == ["pl"]
    assert run.config["lr"] == 0.05 and run.config["hidden"] == 8
    rows = list(run.scan_history())
    losses = [r for r in rows if "train_loss" in r]
    assert [r["trainer/global_step"] for r in losses] == list(range(8))  # 4 batches x 2 epochs
    vals = [r for r in rows if "val_loss" in r]
    assert [r["val_loss"] for r in vals][:2] == pytest.approx([0.5, 0.9]) and len(vals) == 3
    defs = {d["name"]: d for d in run.metric_definitions}
    assert defs["*"]["step_metric"] == "trainer/global_step"


def test_lightning_watch_histograms(shared_root: Path, lightning_fit: dict[str, Any]) -> None:
    rows = list(Api(dir=shared_root / ".runyard").run(lightning_fit["run"]).scan_history())
    grads = [r for r in rows if "gradients/net.0.weight" in r]
    params = [r for r in rows if "parameters/net.2.bias" in r]
    assert len(grads) == len(params) == 4  # every 2nd of 8 backward passes / forward calls
    assert grads[0]["gradients/net.0.weight"]["_type"] == "histogram"


def test_lightning_checkpoints_are_model_artifacts_with_best_and_latest(
    shared_root: Path, lightning_fit: dict[str, Any]
) -> None:
    api = Api(dir=shared_root / ".runyard")
    run = api.run(lightning_fit["run"])
    store = artifact_store_for(api.store)
    versions = store.versions(run.entity, "pl", f"model-{run.id}")
    assert len(versions) == 2 and all(v.type == "model" for v in versions)
    best = store.get(run.entity, "pl", f"model-{run.id}", "best")
    latest = store.get(run.entity, "pl", f"model-{run.id}", "latest")
    assert best.version != latest.version  # epoch 0 stayed the best
    assert best.metadata["score"] == pytest.approx(lightning_fit["best"]["score"]) == 0.5
    assert best.metadata["original_filename"] == Path(lightning_fit["best"]["path"]).name
    assert best.metadata["ModelCheckpoint"]["monitor"] == "val_loss"
    assert best.created_by == run.id
    downloaded = api.artifact(f"{run.entity}/pl/model-{run.id}:best").download(
        str(shared_root / "best-download")
    )
    assert os.listdir(downloaded) == ["model.ckpt"]
    assert _sha256(Path(downloaded) / "model.ckpt") == lightning_fit["best"]["sha"]


def test_lightning_failing_fit_marks_the_run_failed(root: Path) -> None:
    from runyard.integrations.lightning import RunyardLogger

    logger = RunyardLogger(project="pl-fail", log_model=True)
    train, val = _loaders()
    with pytest.raises(RuntimeError, match="diverged on purpose"):
        _trainer(logger, root.parent).fit(Regressor(fail_at=2), train, val)
    assert logger._experiment is not None
    run = Api(dir=root).run(logger._experiment.path)
    assert run.state == "failed"
    assert "diverged on purpose" in (run.failure or "")
    assert [r["trainer/global_step"] for r in run.scan_history() if "train_loss" in r] == [0, 1]
    assert runyard.run is None  # finished, not left open


def test_lightning_other_ranks_log_nothing(root: Path) -> None:
    from lightning_utilities.core.rank_zero import rank_zero_only

    from runyard.integrations.lightning import RunyardLogger

    logger = RunyardLogger(project="pl-rank1")
    saved = rank_zero_only.rank
    rank_zero_only.rank = 1
    try:
        logger.log_hyperparams({"a": 1})
        logger.log_metrics({"x": 1.0}, step=0)
        logger.experiment.log({"y": 2})  # a no-op stand-in on rank 1
        logger.finalize("success")
    finally:
        rank_zero_only.rank = saved
    assert logger._experiment is None and runyard.run is None
    assert not [r for r in Api(dir=root).runs() if r.project == "pl-rank1"]


def test_lightning_logger_refuses_bad_arguments() -> None:
    from runyard.integrations.lightning import RunyardLogger

    with pytest.raises(ValueError, match="offline=True"):
        RunyardLogger(offline=True, log_model=True)
    with pytest.raises(ValueError, match="log_model='best'"):
        RunyardLogger(log_model="best")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['colour'\]"):
        RunyardLogger(colour="red")


def test_pytorch_lightning_package_trains_with_its_own_logger_class(root: Path) -> None:
    pl = pytest.importorskip("pytorch_lightning")

    from runyard.integrations.pytorch_lightning import RunyardLogger

    class Tiny(pl.LightningModule):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.save_hyperparameters({"width": 3})
            self.net = torch.nn.Linear(4, 1)

        def training_step(self, batch: Any, index: int) -> Any:
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("loss", loss)
            return loss

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    logger = RunyardLogger(project="pl-standalone")
    assert isinstance(logger, pl.loggers.Logger)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=logger,
        accelerator="cpu",
        log_every_n_steps=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(root.parent),
    )
    trainer.fit(Tiny(), _loaders()[0])
    assert logger._experiment is not None
    run = Api(dir=root).run(logger._experiment.path)
    assert run.state == "finished" and run.config == {"width": 3}
    assert [r["trainer/global_step"] for r in run.scan_history() if "loss" in r] == [0, 1, 2, 3]


# -- Hugging Face Transformers ----------------------------------------------------------------


class Tokens(torch.utils.data.Dataset):  # type: ignore[misc]
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = torch.tensor([(i * 7 + j) % 50 for j in range(8)])
        return {
            "input_ids": ids,
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": torch.tensor(i % 2),
        }


def _bert() -> Any:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def _hf_args(output_dir: Path, **kwargs: Any) -> Any:
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir),
        logging_steps=1,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        use_cpu=True,
        learning_rate=1e-3,
        disable_tqdm=True,
        **kwargs,
    )


@pytest.fixture(scope="module")
def hf_train(shared_root: Path) -> dict[str, Any]:
    from transformers import Trainer

    import runyard.integrations.transformers  # noqa: F401  (registers report_to="runyard")

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNYARD_LOG_MODEL", "checkpoint")
        args = _hf_args(
            shared_root / "hf-out",
            report_to="runyard",
            run_name="hf-tiny",
            max_steps=4,
            eval_strategy="steps",
            eval_steps=2,
            save_strategy="steps",
            save_steps=2,
        )
        trainer = Trainer(model=_bert(), args=args, train_dataset=Tokens(), eval_dataset=Tokens())
    callback = next(
        c for c in trainer.callback_handler.callbacks if type(c).__name__ == "RunyardCallback"
    )
    trainer.train()
    assert callback.run is not None
    state_after_train = callback.run.state
    trainer.evaluate()  # after train() finished the run: resumes it
    resumed = callback.run
    assert resumed.state == "running" and not resumed._finished
    resumed.finish()  # (else at exit, as for any run)
    weights = shared_root / "hf-out" / "checkpoint-4" / "model.safetensors"
    return {
        "run": callback.run.path,
        "state": state_after_train,
        "sha": _sha256(weights),
    }


def test_transformers_config_metrics_and_step_metric(
    shared_root: Path, hf_train: dict[str, Any]
) -> None:
    assert hf_train["state"] == "finished"  # on_train_end
    run = Api(dir=shared_root / ".runyard").run(hf_train["run"])
    assert run.project == "huggingface" and run.name == "hf-tiny"
    assert run.state == "finished"
    assert run.config["hidden_size"] == 16 and run.config["max_steps"] == 4  # model + args
    assert run.config["learning_rate"] == 1e-3 and run.config["model/num_parameters"] > 0
    rows = list(run.scan_history())
    losses = [r for r in rows if "train/loss" in r]
    assert [r["train/global_step"] for r in losses] == [1, 2, 3, 4]
    assert all(isinstance(r["train/loss"], float) for r in losses)
    evals = [r for r in rows if "eval/loss" in r]
    assert [r["train/global_step"] for r in evals] == [2, 4, 4]  # + the evaluate() after train
    assert all("eval_loss" not in r and "train/eval_loss" not in r for r in rows)
    defs = {d["name"]: d for d in run.metric_definitions}
    assert defs["*"]["step_metric"] == "train/global_step"
    # the end-of-training scalars are summary values, not history
    assert isinstance(run.summary["train_loss"], float) and "train_runtime" in run.summary
    assert not any("train/train_loss" in r for r in rows)


def test_transformers_checkpoints_as_model_artifacts(
    shared_root: Path, hf_train: dict[str, Any]
) -> None:
    api = Api(dir=shared_root / ".runyard")
    run = api.run(hf_train["run"])
    store = artifact_store_for(api.store)
    versions = store.versions(run.entity, "huggingface", "model-hf-tiny")
    aliases = sorted(a for v in versions for a in v.aliases)
    assert len(versions) == 3  # the architecture, then checkpoint-2 and checkpoint-4
    assert "base_model" in aliases and "latest" in aliases
    assert "checkpoint_global_step_2" in aliases and "checkpoint_global_step_4" in aliases
    latest = store.get(run.entity, "huggingface", "model-hf-tiny", "checkpoint_global_step_4")
    assert "latest" in latest.aliases and latest.type == "model"
    assert latest.created_by == run.id
    paths = {e.path for e in latest.entries or []}
    assert {"model.safetensors", "config.json", "trainer_state.json"} <= paths
    got = api.artifact(f"{run.entity}/huggingface/model-hf-tiny:latest").download(
        str(shared_root / "hf-download")
    )
    assert _sha256(Path(got) / "model.safetensors") == hf_train["sha"]


def test_transformers_callback_logs_the_final_model_at_end(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import Trainer

    from runyard.integrations.transformers import RunyardCallback

    monkeypatch.setenv("RUNYARD_LOG_MODEL", "end")
    callback = RunyardCallback(project="hf-end", tags=["hf"])
    args = _hf_args(root.parent / "out", report_to="none", max_steps=2, save_strategy="no")
    Trainer(model=_bert(), args=args, train_dataset=Tokens(), callbacks=[callback]).train()
    assert callback.run is not None
    api = Api(dir=root)
    run = api.run(callback.run.path)
    assert run.state == "finished" and run.tags == ["hf"]
    final = api.artifact(f"hf-end/model-{run.id}:final_model")  # no run_name: the run's id
    assert final.metadata["final_model"] is True
    assert {"model.safetensors", "config.json", "model_architecture.txt"} <= {
        e.path for e in final.files()
    }


def test_transformers_log_model_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from runyard.integrations.transformers import RunyardCallback

    monkeypatch.setenv("RUNYARD_LOG_MODEL", "always")
    with pytest.raises(ValueError, match="RUNYARD_LOG_MODEL='always' is not valid"):
        RunyardCallback()


def test_lightning_ctrl_c_marks_the_run_killed(root: Path) -> None:
    import signal

    from runyard.integrations.lightning import RunyardLogger

    class Interrupted(Regressor):
        def training_step(self, batch: Any, index: int) -> Any:
            if self.global_step == 1:
                raise KeyboardInterrupt
            return super().training_step(batch, index)

    logger = RunyardLogger(project="pl-ctrl-c")
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit):  # Lightning's graceful shutdown ends with sys.exit(1)
            _trainer(logger, root.parent).fit(Interrupted(), *_loaders())
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores SIGINT from then on
    assert logger._experiment is not None
    assert Api(dir=root).run(logger._experiment.path).state == "killed"


def test_lightning_logger_in_a_run_already_started_and_media_helpers(root: Path) -> None:
    import numpy as np

    from runyard.integrations.lightning import RunyardLogger

    run = runyard.init(project="mine", config={"seed": 1})
    with pytest.warns(UserWarning, match="already in progress"):
        logger = RunyardLogger(project="ignored", prefix="fold0")
        assert logger.experiment is run
    logger.log_hyperparams({"lr": 0.1, "act": torch.nn.ReLU, "fn": print})
    logger.log_metrics({"acc": 0.5}, step=3)
    logger.log_image("samples", [np.zeros((4, 4, 3), dtype=np.uint8)] * 2, caption=["a", "b"])
    logger.log_table("preds", columns=["x", "y"], data=[[1, "one"], [2, "two"]])
    logger.log_text("notes", columns=["text"], data=[["hello"]])
    with pytest.raises(ValueError, match="caption must be a list with one value per item"):
        logger.log_image("bad", [np.zeros((2, 2))], caption=["a", "b"])
    logger.finalize("success")
    assert not run._finished  # the user's run: the user finishes it
    run.finish()
    stored = Api(dir=root).run(run.path)
    assert stored.config["seed"] == 1 and stored.config["lr"] == 0.1
    assert stored.config["act"] == "torch.nn.modules.activation.ReLU"
    assert stored.config["fn"].startswith("<built-in function print")
    rows = list(stored.scan_history())
    assert rows[0]["fold0-acc"] == 0.5 and rows[0]["trainer/global_step"] == 3
    images = rows[1]["fold0-samples"]  # the prefix applies to every key, as in WandbLogger
    assert images["_type"] == "images/separated" and images["count"] == 2
    assert images["captions"] == ["a", "b"]
    assert rows[2]["fold0-preds"]["_type"] == "table-file"
    assert rows[3]["fold0-notes"]["_type"] == "table-file"


@pytest.mark.parametrize(
    ("module", "package"),
    [("lightning", "lightning"), ("transformers", "transformers")],
)
def test_integration_without_its_framework_says_what_to_install(module: str, package: str) -> None:
    code = (
        f"import sys; sys.modules[{package!r}] = None\n"  # as if it were not installed
        f"try:\n    import runyard.integrations.{module}\n"
        f"except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert f"needs the {package} package" in out and f"pip install {package}" in out
