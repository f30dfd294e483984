"""`make demo`: train a small classifier a few times and track every run with runyard.

A real training on scikit-learn's bundled digits dataset (no download): a linear model trained
by SGD, one run per learning rate, logging train loss and test accuracy each epoch into the
embedded store (./.runyard). Then it lists the runs with `runyard runs ls`.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import runyard as wandb

PROJECT = "quickstart"


def train(lr: float, epochs: int = 15, seed: int = 0) -> float:
    config = {"model": {"kind": "sgd-logreg", "alpha": 1e-4}, "optimizer": {"lr": lr}, "seed": seed}
    run = wandb.init(project=PROJECT, config=config, group="lr-scan", tags=["demo"])
    wandb.define_metric("test/accuracy", summary="max,last")
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=seed)
    scaler = StandardScaler().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    model = SGDClassifier(
        loss="log_loss",
        learning_rate="constant",
        eta0=wandb.config.optimizer.lr,
        alpha=wandb.config.model.alpha,
        random_state=seed,
    )
    classes = np.unique(y)
    accuracy = 0.0
    for epoch in range(epochs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train, y_train, classes=classes)
        loss = log_loss(y_train, model.predict_proba(x_train), labels=classes)
        accuracy = float(accuracy_score(y_test, model.predict(x_test)))
        wandb.log({"epoch": epoch, "train/loss": loss, "test/accuracy": accuracy})
    print(f"lr={lr:<6} test accuracy {accuracy:.3f}")
    run.finish()
    return accuracy


def main() -> None:
    for lr in (0.0003, 0.003, 0.03, 0.3):
        train(lr)
    print()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "runyard.cli",
            "runs",
            "ls",
            PROJECT,
            "--limit",
            "8",
            "--sort",
            "-summary.test/accuracy.max",
            "--columns",
            "config.optimizer.lr,summary.test/accuracy.max,summary.train/loss",
        ],
        check=True,
    )
    print("\nNext: `.venv/bin/runyard runs show <id>` or `.venv/bin/runyard runs export <id>`")


if __name__ == "__main__":
    main()
