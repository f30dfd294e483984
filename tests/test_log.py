"""log(): values, flattening, steps and commits — read back from the real store (SQLite, and
PostgreSQL where the store_url fixture says so)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import runyard
from tests.conftest import api


def _history(root: Path, run: runyard.Run) -> list[dict]:
    return api(root).run(run.path).history(samples=None, pandas=False)


def test_values_of_every_supported_type_round_trip(root: Path, store_url: str | None) -> None:
    run = runyard.init(project="p")
    run.log(
        {
            "f": 0.5,
            "i": 3,
            "big": 2**60 + 1,
            "b": True,
            "s": "hello",
            "none": None,
            "np_f32": np.float32(1.5),
            "np_i64": np.int64(7),
            "np_bool": np.bool_(False),
            "arr0d": np.array(2.25),
            "nan": math.nan,
            "inf": math.inf,
            "ninf": -math.inf,
            "np_nan": np.float64("nan"),
        }
    )
    run.finish()
    (row,) = _history(root, run)
    assert row["f"] == 0.5 and row["i"] == 3 and type(row["i"]) is int
    assert row["big"] == 2**60 + 1
    assert row["b"] is True and row["np_bool"] is False
    assert row["s"] == "hello" and row["none"] is None
    assert row["np_f32"] == 1.5 and row["np_i64"] == 7 and row["arr0d"] == 2.25
    assert math.isnan(row["nan"]) and math.isnan(row["np_nan"])
    assert row["inf"] == math.inf and row["ninf"] == -math.inf
    summary = api(root).run(run.path).summary
    assert math.isnan(summary["nan"]) and summary["inf"] == math.inf


def test_nested_dicts_flatten_to_slash_keys(root: Path) -> None:
    run = runyard.init(project="p")
    run.log({"train": {"loss": 1.0, "acc": {"top1": 0.5}}, "test/accuracy": 0.9})
    run.finish()
    (row,) = _history(root, run)
    assert row["train/loss"] == 1.0 and row["train/acc/top1"] == 0.5
    assert row["test/accuracy"] == 0.9
    assert api(root).run(run.path).summary["test/accuracy"] == 0.9


def test_unsupported_value_raises_type_error_naming_the_key() -> None:
    run = runyard.init(project="p")
    with pytest.raises(TypeError, match="'obj'"):
        run.log({"obj": object()})
    with pytest.raises(TypeError, match="dict of values"):
        run.log([1, 2])  # type: ignore[arg-type]
    run.log({"ok": 1})  # the run is still usable
    assert run.step == 1


def test_step_runtime_timestamp_are_recorded(root: Path) -> None:
    run = runyard.init(project="p")
    for i in range(3):
        runyard.log({"x": i})
    run.finish()
    rows = _history(root, run)
    assert [r["_step"] for r in rows] == [0, 1, 2]
    assert all(r["_runtime"] >= 0 for r in rows)
    assert rows[0]["_timestamp"] <= rows[-1]["_timestamp"]
    assert rows[-1]["_runtime"] >= rows[0]["_runtime"]


def test_commit_false_merges_into_the_pending_row(root: Path) -> None:
    run = runyard.init(project="p")
    run.log({"a": 1}, commit=False)
    run.log({"b": 2}, commit=False)
    run.log({"c": 3})
    run.log({"a": 4})
    run.finish()
    rows = _history(root, run)
    assert rows[0] == {**rows[0], "_step": 0, "a": 1, "b": 2, "c": 3}
    assert rows[1]["_step"] == 1 and rows[1]["a"] == 4 and "b" not in rows[1]


def test_explicit_steps_merge_and_lower_steps_are_refused(root: Path) -> None:
    run = runyard.init(project="p")
    run.log({"a": 1}, step=5)
    run.log({"b": 2}, step=5)
    run.log({"a": 3}, step=10)
    with pytest.warns(UserWarning, match="step 7 is lower than the current step 10"):
        run.log({"a": 99}, step=7)
    run.log({"a": 4})  # no step: goes to the current step (10) and commits it
    run.log({"a": 5})
    run.finish()
    rows = _history(root, run)
    assert [(r["_step"], r.get("a"), r.get("b")) for r in rows] == [
        (5, 1, 2),
        (10, 4, None),
        (11, 5, None),
    ]


def test_bad_steps_are_rejected_clearly() -> None:
    run = runyard.init(project="p")
    with pytest.raises(TypeError, match="step must be"):
        run.log({"a": 1}, step="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=">= 0"):
        run.log({"a": 1}, step=-1)
    with pytest.raises(ValueError, match="set by runyard"):
        run.log({"_step": 3})


def test_log_after_finish_and_before_init_explain_what_to_do() -> None:
    with pytest.raises(RuntimeError, match=r"call runyard.init\(\) first"):
        runyard.log({"a": 1})
    run = runyard.init(project="p")
    run.finish()
    with pytest.raises(runyard.RunFinishedError, match="is finished"):
        run.log({"a": 1})


def test_history_keys_and_samples(root: Path, store_url: str | None) -> None:
    run = runyard.init(project="p")
    for i in range(1000):
        data = {"loss": 1 / (i + 1)}
        if i % 100 == 0:
            data["val"] = float(i)
        run.log(data)
    run.finish()
    stored = api(root).run(run.path)
    val = stored.history(keys=["val"], samples=None, pandas=False)
    assert [r["_step"] for r in val] == list(range(0, 1000, 100))
    assert all(set(r) == {"_step", "_runtime", "_timestamp", "val"} for r in val)
    sampled = stored.history(samples=50, pandas=False)
    assert len(sampled) == 50
    assert sampled[0]["_step"] == 0 and sampled[-1]["_step"] == 999
    frame = stored.history(keys=["loss"], samples=None)
    assert list(frame["loss"].iloc[:2]) == [1.0, 0.5]
    assert sorted(stored.metric_names()) == ["loss", "val"]
