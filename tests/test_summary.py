"""summary: last value by default, define_metric aggregates, explicit values win."""

from __future__ import annotations

from pathlib import Path

import pytest

import runyard
from tests.conftest import api


def test_last_value_by_default(root: Path) -> None:
    run = runyard.init(project="p")
    for loss in (3.0, 1.0, 2.0):
        runyard.log({"loss": loss, "note": f"l={loss}"})
    assert runyard.summary["loss"] == 2.0
    run.finish()
    summary = api(root).run(run.path).summary
    assert summary["loss"] == 2.0 and summary["note"] == "l=2.0" and summary["_step"] == 2


def test_define_metric_aggregates_and_globs(root: Path) -> None:
    run = runyard.init(project="p")
    run.define_metric("loss", summary="min,max,mean")
    run.define_metric("val/*", summary="best", goal="maximize")
    run.define_metric("hidden", summary="none")
    run.define_metric("acc", summary="last,first")
    for value in (3.0, 1.0, 2.0):
        run.log({"loss": value, "val/acc": value / 10, "hidden": value, "acc": value})
    run.finish()
    summary = api(root).run(run.path).summary
    assert summary["loss"] == {"min": 1.0, "max": 3.0, "mean": 2.0}
    assert summary["val/acc"] == {"best": 0.3}
    assert "hidden" not in summary
    assert summary["acc"] == {"last": 2.0, "first": 3.0}
    defs = {d["name"]: d for d in api(root).run(run.path).metric_definitions}
    assert defs["val/*"]["goal"] == "maximize"


def test_step_metric_is_recorded() -> None:
    run = runyard.init(project="p")
    d = run.define_metric("val/loss", step_metric="epoch")
    assert d.step_metric == "epoch"


def test_explicit_summary_value_wins(root: Path) -> None:
    run = runyard.init(project="p")
    run.log({"acc": 0.5})
    run.summary["acc"] = 0.99
    run.summary["best_epoch"] = 7
    run.log({"acc": 0.6})
    assert run.summary["acc"] == 0.99
    run.finish()
    summary = api(root).run(run.path).summary
    assert summary["acc"] == 0.99 and summary["best_epoch"] == 7


def test_define_metric_rejects_bad_arguments() -> None:
    run = runyard.init(project="p")
    with pytest.raises(ValueError, match="'median' is not one of"):
        run.define_metric("loss", summary="median")
    with pytest.raises(ValueError, match="needs goal"):
        run.define_metric("loss", summary="best")
    with pytest.raises(ValueError, match="'minimize' or 'maximize'"):
        run.define_metric("loss", summary="best", goal="up")
