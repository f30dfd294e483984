"""A small real training, written the way W&B's Hydra guide writes it.

`import runyard as wandb` is the only change from a W&B project. Trains a linear model (SGD) or a
small MLP on scikit-learn's bundled digits or wine dataset (no download) and logs train loss and
test accuracy each epoch. Returns the final test accuracy (the objective for Hydra sweepers).
In a sweep with `early_terminate`, `run.should_stop` (runyard's, not W&B's) ends a weak trial
early; the run is then recorded as `stopped` with what it logged.
"""

from __future__ import annotations

import warnings

import hydra
import numpy as np
import omegaconf
from sklearn.datasets import load_digits, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import runyard as wandb

DATASETS = {"digits": load_digits, "wine": load_wine}


def build_model(cfg: omegaconf.DictConfig, lr: float, seed: int) -> SGDClassifier | MLPClassifier:
    if cfg.model.kind == "sgd":
        return SGDClassifier(
            loss="log_loss",
            learning_rate="constant",
            eta0=lr,
            alpha=cfg.model.alpha,
            random_state=seed,
        )
    return MLPClassifier(
        hidden_layer_sizes=tuple(cfg.model.hidden),
        learning_rate_init=lr,
        alpha=cfg.model.alpha,
        random_state=seed,
    )


@hydra.main(config_path="configs", config_name="defaults", version_base=None)
def run_experiment(cfg: omegaconf.DictConfig) -> float:
    wandb.config = omegaconf.OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    run = wandb.init(entity=cfg.wandb.entity, project=cfg.wandb.project)
    x, y = DATASETS[cfg.dataset.name](return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=cfg.dataset.test_size, random_state=cfg.train.seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    model = build_model(cfg, cfg.train.lr, cfg.train.seed)
    classes = np.unique(y)
    accuracy = 0.0
    for epoch in range(cfg.train.epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train, y_train, classes=classes)
        loss = log_loss(y_train, model.predict_proba(x_train), labels=classes)
        accuracy = float(accuracy_score(y_test, model.predict(x_test)))
        wandb.log({"epoch": epoch, "train/loss": loss, "test/accuracy": accuracy})
        if run.should_stop:  # the sweep's early termination stopped this trial
            break
    wandb.summary["test/accuracy"] = accuracy
    return accuracy


if __name__ == "__main__":
    run_experiment()
