"""Run states from real processes: finished, failed, killed, crashed (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import api, run_python

PRELUDE = """
import os, sys, time
import runyard
run = runyard.init(project="states", id=os.environ.get("RID"))
"""


def test_finished_by_atexit(tmp_path: Path, root: Path) -> None:
    run_python(
        PRELUDE + "runyard.log({'x': 1})\nprint('hello from the run')\n",
        tmp_path,
        env={"RID": "fin1"},
    )
    run = api(root).run("states/fin1")
    assert run.state == "finished"
    assert run.summary["x"] == 1
    assert ("stdout", "hello from the run") in [(s, t) for s, _, t in run.console()]
    meta = run.metadata
    assert meta["program"].endswith("script_under_test.py") and meta["python"]


def test_uncaught_exception_marks_failed_with_traceback(tmp_path: Path, root: Path) -> None:
    proc = run_python(
        PRELUDE + "runyard.log({'x': 1})\nraise ValueError('boom in training')\n",
        tmp_path,
        env={"RID": "fail1"},
        check=False,
    )
    assert proc.returncode == 1
    assert "boom in training" in proc.stderr  # the user still sees their traceback
    run = api(root).run("states/fail1")
    assert run.state == "failed"
    assert "ValueError: boom in training" in run.failure
    assert run.summary["x"] == 1


def test_finish_with_nonzero_exit_code_is_failed(tmp_path: Path, root: Path) -> None:
    run_python(PRELUDE + "runyard.finish(exit_code=3)\n", tmp_path, env={"RID": "code3"})
    run = api(root).run("states/code3")
    assert run.state == "failed" and run.exit_code == 3


def _start_logger(tmp_path: Path, rid: str) -> subprocess.Popen[str]:
    script = tmp_path / f"{rid}.py"
    script.write_text(
        PRELUDE
        + """
i = 0
while True:
    runyard.log({"i": i})
    print(f"logged {i}", file=sys.__stdout__, flush=True)
    i += 1
    if i % 50 == 0:
        time.sleep(0.01)
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    env.update({"RID": rid, "RUNYARD_SILENT": "true", "RUNYARD_DISABLE_GIT": "true"})
    return subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


def _wait_for_logs(proc: subprocess.Popen[str], count: int) -> int:
    assert proc.stdout is not None
    last = -1
    deadline = time.monotonic() + 60
    while last < count and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        last = int(line.split()[1])
    return last


def test_sigterm_marks_killed(tmp_path: Path, root: Path) -> None:
    proc = _start_logger(tmp_path, "term1")
    try:
        _wait_for_logs(proc, 200)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        _stop(proc)
    run = api(root).run("states/term1")
    assert run.state == "killed" and run.failure == "terminated by SIGTERM"
    assert run.exit_code == 143 and run.summary["i"] >= 200


def test_sigint_marks_killed(tmp_path: Path, root: Path) -> None:
    proc = _start_logger(tmp_path, "int1")
    try:
        _wait_for_logs(proc, 100)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        _stop(proc)
    assert api(root).run("states/int1").state == "killed"


def test_kill_9_loses_nothing_that_log_returned(tmp_path: Path, root: Path) -> None:
    proc = _start_logger(tmp_path, "nine")
    try:
        _wait_for_logs(proc, 3000)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        (journal,) = (root / "journal").glob("nine-*.journal")
        backup = journal.read_bytes()
        # Everything the process printed as logged (log() had returned) must survive.
        assert proc.stdout is not None
        printed = [int(line.split()[1]) for line in proc.stdout.read().splitlines() if line]
    finally:
        _stop(proc)
    last_returned = max(printed, default=3000)
    run = api(root).run("states/nine")  # opening the Api recovers the journal
    assert run.state == "crashed"
    assert "SIGKILL" in run.failure
    steps = [r["_step"] for r in run.scan_history(keys=["i"])]
    assert steps[: last_returned + 1] == list(range(last_returned + 1))
    assert len(steps) == len(set(steps))
    # Recovering again changes nothing (idempotent).
    from runyard.sdk.recovery import recover_journal

    assert not journal.exists()  # applied, so retired
    store = api(root).store
    journal.write_bytes(backup)
    result = recover_journal(journal, store)
    assert result is not None and result.state == "crashed"
    again = [r["_step"] for r in api(root).run("states/nine").scan_history(keys=["i"])]
    assert again == steps


def test_git_commit_and_dirty_state_are_recorded(tmp_path: Path, root: Path) -> None:
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "tracked.txt").write_text("v1")
    subprocess.run([*git, "add", "tracked.txt"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "first"], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "tracked.txt").write_text("v2")  # uncommitted change: dirty
    run_python(
        PRELUDE + "runyard.log({'x': 1})\n",
        tmp_path,
        env={"RID": "git1", "RUNYARD_DISABLE_GIT": "false"},
    )
    meta = api(root).run("states/git1").metadata
    assert meta["git"]["commit"] == head and meta["git"]["dirty"] is True
    assert meta["args"] == [] and meta["host"]
