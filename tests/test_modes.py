"""Modes (offline, disabled), reinit and resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import runyard
from tests.conftest import api

CLI = [sys.executable, "-m", "runyard.cli"]


def test_offline_writes_only_the_journal_until_sync(tmp_path: Path, root: Path) -> None:
    run = runyard.init(project="off", mode="offline", config={"a": 1})
    for i in range(10):
        run.log({"i": i})
    run.finish()
    assert not (root / "runyard.db").exists()
    assert run.journal_path is not None and run.journal_path.parent == root / "journal"
    opened = api(root)
    assert opened.runs("off") == []  # opening the Api does not upload offline runs
    out = subprocess.run(CLI + ["sync"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "1 run(s) synced" in out.stdout
    assert not run.journal_path.exists()  # everything is in the store now
    stored = api(root).run(f"off/{run.id}")
    assert stored.state == "finished" and stored.config == {"a": 1}
    assert [r["i"] for r in stored.scan_history()] == list(range(10))
    again = subprocess.run(CLI + ["sync"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "nothing to sync" in again.stdout


def test_disabled_mode_is_a_silent_no_op(tmp_path: Path) -> None:
    run = runyard.init(project="p", mode="disabled", config={"a": 1})
    run.log({"x": 1})
    runyard.log({"x": 2})
    run.define_metric("x", summary="max")
    assert run.config.a == 1
    run.finish()
    assert not (tmp_path / ".runyard").exists()


def test_env_mode_and_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode='cloud' is not valid"):
        runyard.init(mode="cloud")


def test_second_init_finishes_the_first_run_by_default(root: Path) -> None:
    first = runyard.init(project="p", config={"job": 1})
    first.log({"x": 1})
    second = runyard.init(project="p", config={"job": 2})
    assert first.state == "finished" and runyard.run is second
    second.log({"x": 2})
    second.finish()
    stored = {r.config["job"]: r for r in api(root).runs("p")}
    assert stored[1].id != stored[2].id
    assert stored[1].summary["x"] == 1 and stored[2].summary["x"] == 2


def test_reinit_choices() -> None:
    first = runyard.init(project="p")
    assert runyard.init(project="p", reinit="return_previous") is first
    assert runyard.init(project="p", reinit=False) is first
    other = runyard.init(project="p", reinit="create_new")
    assert first.state == "running" and other.state == "running" and runyard.run is other
    other.finish()
    assert runyard.run is first
    third = runyard.init(project="p", reinit="create_new")
    runyard.log({"to": "third"})  # module-level log follows the newest run
    assert third.summary["to"] == "third" and "to" not in first.summary
    third.finish()
    with pytest.raises(ValueError, match="reinit='sometimes' is not valid"):
        runyard.init(reinit="sometimes")


def test_resume_continues_steps_and_config(root: Path) -> None:
    run = runyard.init(project="p", id="resume-me", config={"a": 1})
    run.log({"x": 1})
    run.log({"x": 2})
    run.finish()
    with pytest.raises(ValueError, match="already exists; pass resume='allow'"):
        runyard.init(project="p", id="resume-me")
    with pytest.raises(ValueError, match="does not exist"):
        runyard.init(project="p", id="nobody", resume="must")
    again = runyard.init(project="p", id="resume-me", resume="allow", config={"b": 2})
    assert again.resumed and again.step == 2 and again.config.as_dict() == {"a": 1, "b": 2}
    again.log({"x": 3})
    again.finish()
    stored = api(root).run("p/resume-me")
    assert [r["x"] for r in stored.scan_history()] == [1, 2, 3]
    assert stored.state == "finished" and stored.summary["x"] == 3
    assert stored.config == {"a": 1, "b": 2}  # the resumed session's config is stored too
    assert stored.metadata["resume"]["decision"] == "resumed"
    assert stored.metadata["resume"]["decided_by"] == "store at init"


def test_env_variables_configure_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    store_dir = tmp_path / "elsewhere"
    monkeypatch.setenv("RUNYARD_DIR", str(store_dir))
    monkeypatch.setenv("RUNYARD_PROJECT", "envproj")
    monkeypatch.setenv("RUNYARD_ENTITY", "team")
    monkeypatch.setenv("RUNYARD_RUN_ID", "envrun1")
    monkeypatch.setenv("RUNYARD_RUN_GROUP", "g1")
    monkeypatch.setenv("RUNYARD_JOB_TYPE", "train")
    monkeypatch.setenv("RUNYARD_TAGS", "a, b")
    monkeypatch.setenv("RUNYARD_NAME", "my-name")
    monkeypatch.setenv("RUNYARD_START_METHOD", "thread")
    run = runyard.init(settings=runyard.Settings(start_method="thread"))
    run.finish()
    stored = api(store_dir).run("team/envproj/envrun1")
    assert (stored.group, stored.job_type, stored.tags, stored.name) == (
        "g1",
        "train",
        ["a", "b"],
        "my-name",
    )


def test_settings_rejects_unknown_fields() -> None:
    with pytest.raises(TypeError, match="unknown setting"):
        runyard.init(settings={"colour": "blue"})


def test_context_manager_marks_failure(root: Path) -> None:
    with pytest.raises(RuntimeError), runyard.init(project="p", id="ctx") as run:
        run.log({"x": 1})
        raise RuntimeError("inside")
    stored = api(root).run("p/ctx")
    assert stored.state == "failed" and "RuntimeError: inside" in stored.failure


def test_runs_ls_json_lists_runs(tmp_path: Path) -> None:
    for lr in (0.1, 0.01):
        r = runyard.init(project="cli", config={"lr": lr})
        r.log({"loss": lr * 10})
        r.finish()
    out = subprocess.run(
        CLI + ["runs", "ls", "cli", "--format", "json", "-f", "config.lr<0.05", "-c", "config.lr"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(out.stdout)
    assert [r["config.lr"] for r in rows] == [0.01]


def test_applied_journals_are_deleted_unless_kept(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = runyard.init(project="p")
    run.log({"a": 1})
    run.finish()
    assert run.journal_path is None and list((root / "journal").rglob("*.journal")) == []
    monkeypatch.setenv("RUNYARD_KEEP_JOURNALS", "true")
    kept = runyard.init(project="p")
    kept.log({"a": 1})
    kept.finish()
    assert kept.journal_path is not None and kept.journal_path.parent == root / "journal" / "done"
    assert kept.journal_path.read_bytes().count(b"\n") >= 3  # run, row, finish (+ meta)


def test_save_copies_a_file_into_the_runs_folder(tmp_path: Path, root: Path) -> None:
    (tmp_path / "model.txt").write_text("weights")
    run = runyard.init(project="p")
    [saved] = run.save("model.txt")  # W&B's return: the copies' paths
    assert Path(saved).read_text() == "weights"
    assert Path(saved).parent == root / "files" / run.entity / "p" / run.id
    with pytest.raises(FileNotFoundError, match="is not a file"):
        run.save("missing.txt")


def test_every_environment_variable_is_documented() -> None:
    from runyard.sdk.settings import ENV_VARS
    from tests.conftest import REPO

    doc = (REPO / "docs" / "configuration.md").read_text()
    missing = [var for var in ENV_VARS if f"`{var}`" not in doc]
    assert missing == []
