"""Issue 14's done-when: a realistic W&B training script (scikit-learn on digits, ``import
runyard as wandb``, about fifty W&B calls) runs end to end, and every call left its effect in
the store: nothing is silently ignored."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runyard as wandb


def train(workdir: Path) -> wandb.Run:
    """The user's script, as written for W&B."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import SGDClassifier
    from sklearn.model_selection import train_test_split

    (workdir / "train.py").write_text("# the training script\n")
    (workdir / "requirements.txt").write_text("scikit-learn\n")
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16.0, y, random_state=0)
    run = wandb.init(
        project="digits",
        config={"lr": 0.01, "epochs": 4, "model": {"kind": "sgd", "alpha": 1e-4}},
        tags=["baseline"],
        group="sgd",
        job_type="train",
    )
    wandb.config.update({"n_train": len(x_train)})
    wandb.config.batch = 64
    run.name = f"sgd-lr{wandb.config.lr}"
    run.tags = (*run.tags, "digits")
    run.notes = "a W&B script run by runyard"
    wandb.define_metric("epoch")
    wandb.define_metric("val/acc", summary="max")
    wandb.define_metric("val/*", step_metric="epoch")
    wandb.define_metric("train/loss", summary="min")
    model = SGDClassifier(loss="log_loss", alpha=wandb.config.model.alpha, random_state=0)
    classes = np.unique(y)
    for epoch in range(wandb.config.epochs):
        model.partial_fit(x_train, y_train, classes=classes)
        proba = np.clip(model.predict_proba(x_train), 1e-9, 1)
        loss = float(-np.mean(np.log(proba[np.arange(len(y_train)), y_train])))
        wandb.log({"train/loss": loss, "epoch": epoch})
        wandb.log({"val/acc": float(model.score(x_test, y_test)), "epoch": epoch})
    probas = model.predict_proba(x_test)
    preds = probas.argmax(axis=1)
    names = [str(c) for c in classes]
    table = wandb.Table(columns=["id", "truth", "pred"])
    for i in range(20):
        table.add_data(i, int(y_test[i]), int(preds[i]))
    per_class = wandb.Table(
        columns=["digit", "acc"],
        data=[[str(c), float(np.mean(preds[y_test == c] == c))] for c in classes],
    )
    wandb.log(
        {
            "predictions": table,
            "roc": wandb.plot.roc_curve(y_test, probas, labels=names),
            "pr": wandb.plot.pr_curve(y_test, probas, labels=names),
            "confusion": wandb.plot.confusion_matrix(
                y_true=y_test.tolist(), preds=preds.tolist(), class_names=names
            ),
            "per_class": wandb.plot.bar(per_class, "digit", "acc", title="Per-class accuracy"),
            "acc_scatter": wandb.plot.scatter(per_class, "digit", "acc"),
            "acc_hist": wandb.plot.histogram(per_class, "acc"),
            "acc_line": wandb.plot.line(per_class, "digit", "acc"),
            "curves": wandb.plot.line_series(
                xs=[0, 1, 2], ys=[[0.1, 0.5, 0.9], [0.2, 0.4, 0.6]], keys=["a", "b"]
            ),
        }
    )
    wandb.summary["test_acc"] = float(np.mean(preds == y_test))
    run.summary.update({"n_classes": len(classes)})
    np.save(workdir / "weights.npy", model.coef_)
    wandb.save("*.npy")
    run.save(str(workdir / "requirements.txt"), base_path=str(workdir), policy="now")
    run.log_code(str(workdir))
    artifact = wandb.Artifact("digits-model", type="model")
    artifact.add_file(str(workdir / "weights.npy"))
    run.log_artifact(artifact, aliases=["best"])
    wandb.alert(title="done", text=f"test acc {wandb.summary['test_acc']:.3f}")
    print(f"see {run.url}")
    wandb.finish()
    return run


def test_a_wandb_training_script_leaves_every_effect_in_the_store(
    tmp_path: Path, root: Path
) -> None:
    run = train(tmp_path)
    assert run.url == f"http://127.0.0.1:8080/#/r/{run.path}"
    api = wandb.Api(dir=root)
    stored = api.run(run.path)
    # init, config, name/tags/notes setters
    assert stored.config["lr"] == 0.01 and stored.config["model"]["alpha"] == 1e-4
    assert stored.config["n_train"] == 1347 and stored.config["batch"] == 64
    assert stored.name == "sgd-lr0.01" and stored.tags == ["baseline", "digits"]
    assert stored.notes == "a W&B script run by runyard"
    assert (stored.group, stored.job_type, stored.state) == ("sgd", "train", "finished")
    # log + define_metric: the exact definition wins over the glob
    summary = stored.summary
    assert set(summary["val/acc"]) == {"max"} and summary["val/acc"]["max"] > 0.8
    assert set(summary["train/loss"]) == {"min"}
    assert summary["test_acc"] > 0.8 and summary["n_classes"] == 10
    history = stored.history(keys=["val/acc"], pandas=False)
    assert len(history) == 4
    defs = {d["name"]: d for d in stored.record.metric_defs}
    assert defs["val/*"]["step_metric"] == "epoch"
    # a Table and every chart: the table under <key>_table, the spec in meta
    assert summary["predictions"]["_type"] == "table-file"
    assert summary["predictions"]["nrows"] == 20
    visualize = stored.metadata["wandb"]["config"]["visualize"]
    specs = {k: v["panel_config"]["panelDefId"] for k, v in visualize.items()}
    assert specs == {
        "roc": "wandb/area-under-curve/v0",
        "pr": "wandb/area-under-curve/v0",
        "confusion": "wandb/confusion_matrix/v1",
        "per_class": "wandb/bar/v0",
        "acc_scatter": "wandb/scatter/v0",
        "acc_hist": "wandb/histogram/v0",
        "acc_line": "wandb/line/v0",
        "curves": "wandb/lineseries/v0",
    }
    files = root / "files" / run.entity / "digits" / run.id
    for key in specs:
        ref = summary[f"{key}_table"]
        assert ref["_type"] == "table-file", key
        assert key not in summary

    def table_file(key: str) -> dict[str, Any]:
        with stored.open_file(summary[f"{key}_table"]["path"]) as fh:
            doc: dict[str, Any] = json.load(fh)
        return doc

    roc = table_file("roc")
    assert roc["columns"] == ["class", "fpr", "tpr"] and {r[0] for r in roc["data"]} == set(
        str(c) for c in range(10)
    )
    confusion = table_file("confusion")
    assert len(confusion["data"]) == 100
    assert sum(r[2] for r in confusion["data"]) == 450
    query = visualize["roc"]["panel_config"]["userQuery"]["queryFields"][0]["fields"][3]
    assert query["args"][0]["value"] == "roc_table"
    # save, log_code, artifact, alert
    assert (files / "weights.npy").exists() and (files / "requirements.txt").exists()
    code_path = stored.metadata["wandb"]["config"]["code_path"]
    code = api.artifact(f"{run.entity}/digits/{code_path}")
    assert code.type == "code"
    assert [e.path for e in code.files()] == ["requirements.txt", "train.py"]
    model = api.artifact(f"{run.entity}/digits/digits-model:best")
    assert [e.path for e in model.files()] == ["weights.npy"]
    assert [a.title for a in stored.alerts()] == ["done"]


def test_the_script_with_wandb_mode_disabled_stores_nothing(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same script with WANDB_MODE=disabled: every call runs, nothing is stored."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = train(tmp_path)
    assert run.disabled and not (root / "runyard.db").exists()
