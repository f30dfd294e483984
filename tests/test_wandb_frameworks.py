"""Conformance: framework loggers built on the real wandb client, against a real runyard server.

PyTorch Lightning's ``WandbLogger`` (with checkpoints logged as model artifacts) and Hugging
Face's ``Trainer(report_to="wandb")``, on tiny models built from configs (nothing downloaded),
each in its own process (torch==2.13.0, the CPU build; lightning and transformers from the dev
extra). What they logged is read back through runyard's ``Api`` and artifact store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runyard.api import Api
from tests.serverproc import ServerProc, create_key, running_server
from tests.wandbclient import run_script

pytestmark = pytest.mark.slow


#: Lightning's WandbLogger, then HF's Trainer, in one process: torch, lightning, transformers
#: and wandb's service start once (seconds each); each framework makes its own run.
SCRIPT = """
import torch
import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from torch.utils.data import DataLoader, TensorDataset

class Regressor(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 8):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def training_step(self, batch, _):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, _):
        x, y = batch
        self.log("val/loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

torch.manual_seed(0)
x = torch.randn(64, 4)
y = x.sum(dim=1, keepdim=True)
train = DataLoader(TensorDataset(x, y), batch_size=16)
val = DataLoader(TensorDataset(x[:16], y[:16]), batch_size=16)
logger = WandbLogger(project="lightning", name="tiny", log_model="all")
trainer = L.Trainer(
    max_epochs=2, logger=logger, accelerator="cpu", log_every_n_steps=1,
    enable_progress_bar=False, enable_model_summary=False,
    callbacks=[ModelCheckpoint(monitor="val/loss", save_top_k=1)],
)
trainer.fit(Regressor(), train, val)
print("RUN", logger.experiment.path)
logger.experiment.finish()

# -- Hugging Face, in the same process (torch and wandb are imported once)
import os
os.environ["WANDB_PROJECT"] = "hf"

from transformers import (
    BertConfig, BertForSequenceClassification, Trainer, TrainingArguments,
)

class Tokens(torch.utils.data.Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        ids = torch.tensor([(i * 7 + j) % 50 for j in range(8)])
        return {"input_ids": ids, "attention_mask": torch.ones(8, dtype=torch.long),
                "labels": torch.tensor(i % 2)}

torch.manual_seed(0)
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                    num_attention_heads=2, intermediate_size=32, num_labels=2)
args = TrainingArguments(
    output_dir="out", report_to="wandb", run_name="hf-tiny", max_steps=4,
    logging_steps=1, per_device_train_batch_size=4, save_strategy="no", use_cpu=True,
    learning_rate=1e-3,
)
Trainer(model=BertForSequenceClassification(config), args=args,
        train_dataset=Tokens()).train()
import wandb
print("RUN", wandb.run.path)
wandb.finish()
"""


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, str]]:
    root = tmp_path_factory.mktemp("frameworks")
    store_url = f"sqlite:///{root / 'runyard.db'}"
    key = create_key(store_url, "ml")
    with running_server(store_url, auth=True) as proc:
        run_script(SCRIPT, root / "client", proc.url, key, timeout=600)
        yield proc, key


def test_lightning_wandb_logger_with_checkpoint_artifacts(
    logged: tuple[ServerProc, str],
) -> None:
    proc, key = logged
    api = Api(store=proc.url, api_key=key, recover=False)
    runs = api.runs("ml/lightning")
    assert len(runs) == 1
    run = runs[0]
    assert run.state == "finished" and run.name == "tiny"
    assert run.config["lr"] == 0.05 and run.config["hidden"] == 8
    rows = run.history(pandas=False, samples=None)
    losses = [r for r in rows if "train/loss" in r]
    assert len(losses) == 8  # 4 batches x 2 epochs, every step logged
    assert all("trainer/global_step" in r for r in losses)
    assert any("val/loss" in r for r in rows)
    defs = {d["name"]: d for d in run.metric_definitions}
    assert defs["*"]["step_metric"] == "trainer/global_step"
    from runyard.artifacts import artifact_store_for

    store = artifact_store_for(api.store)
    versions = store.versions("ml", "lightning", f"model-{run.id}")
    assert versions and all(v.type == "model" for v in versions)
    latest = store.get("ml", "lightning", f"model-{run.id}", "latest")
    assert "best" in latest.aliases or any("best" in v.aliases for v in versions)
    assert [e.path for e in latest.entries or []] == ["model.ckpt"]
    assert latest.created_by == run.id
    assert latest.metadata.get("score") is not None  # ModelCheckpoint's monitored value


def test_huggingface_trainer_report_to_wandb(logged: tuple[ServerProc, str]) -> None:
    proc, key = logged
    api = Api(store=proc.url, api_key=key, recover=False)
    runs = api.runs("ml/hf")
    assert len(runs) == 1
    run = runs[0]
    assert run.state == "finished" and run.name == "hf-tiny"
    assert run.config["hidden_size"] == 16 and run.config["max_steps"] == 4
    assert run.config["learning_rate"] == 1e-3
    rows = run.history(pandas=False, samples=None)
    losses = [r for r in rows if "train/loss" in r]
    assert [r["train/global_step"] for r in losses] == [1, 2, 3, 4]
    assert all(isinstance(r["train/loss"], float) for r in losses)
    defs = {d["name"]: d for d in run.metric_definitions}
    assert defs["*"]["step_metric"] == "train/global_step"
    # on_train_end sets the final metrics as summary values (run.summary[k] = v)
    assert isinstance(run.summary["train_loss"], float) and "train_runtime" in run.summary
