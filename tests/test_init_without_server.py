"""``init(id=...)`` never needs the server (docs/online.md, sdk/resume.py).

A real ``runyard server`` is stopped with SIGSTOP (it accepts connections and never answers,
like a hung host) or is not running at all (connections refused). The run starts anyway,
decides from a local journal where one exists, and reconciles with the stored run when the
server answers: every row lands once, after the stored ones; ``resume='must'`` alone waits, a
bounded time, and fails with one clear message.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import runyard
from runyard.sdk.resume import ResumeTimeoutError
from runyard.store import open_store
from runyard.store.base import RunQuery, RunRecord, Store
from tests.conftest import killed_child
from tests.serverproc import ServerProc

CLI = [sys.executable, "-m", "runyard"]
#: init() must return well within this while the server does not answer; a blocking init()
#: waited for the HTTP timeouts (5 s to connect, 60 s to read), so this only catches a hang.
NOT_BLOCKED = 5.0


@pytest.fixture
def server(shared_server: ServerProc) -> ServerProc:
    return shared_server


@pytest.fixture(autouse=True)
def _client(server: ServerProc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_BASE_URL", server.url)
    monkeypatch.setenv("RUNYARD_FINISH_TIMEOUT", "20")


@contextmanager
def stopped(server: ServerProc) -> Iterator[None]:
    """The server frozen (SIGSTOP): connections are accepted, nothing is answered."""
    server._signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server._signal(signal.SIGCONT)


def _run(server: ServerProc, run_id: str, project: str = "p") -> tuple[Store, RunRecord]:
    store = open_store(server.store_url)
    found = store.list_runs(RunQuery(project=project, run_ids=[run_id]))
    assert len(found) == 1, [r.path for r in found]
    return store, found[0]


def _rows(store: Store, run: RunRecord) -> list[tuple[int, object]]:
    return [(row["_step"], row.get("v")) for row in store.history(run.pk)]


def _first_session(run_id: str, n: int = 3, config: dict[str, object] | None = None) -> None:
    with runyard.init(project="p", id=run_id, config=config or {"a": 1}) as run:
        for i in range(n):
            run.log({"v": i})


def _log_session(run_id: str, values: range, settings: runyard.Settings | None = None) -> None:
    """A session of ``run_id`` logging ``values`` (then the caller's child is killed)."""
    run = runyard.init(project="p", id=run_id, resume="allow", settings=settings)
    for value in values:
        run.log({"v": value})


def _timed_init(**kwargs: object) -> runyard.Run:
    started = time.monotonic()
    run = runyard.init(project="p", **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < NOT_BLOCKED
    return run


def test_resume_allow_while_the_server_is_stopped_continues_after_the_stored_steps(
    server: ServerProc,
) -> None:
    _first_session("frozen1", config={"a": 1, "nested": {"x": 1}})
    with stopped(server):
        run = _timed_init(id="frozen1", resume="allow", config={"b": 2, "nested": {"y": 2}})
        assert not run.resumed and run.step == 0  # nobody could say yet
        run.log({"v": 10})
        run.log({"v": 11})
    run.log({"v": 12})
    run.finish()
    store, stored = _run(server, "frozen1")
    # The rows logged before the answer moved behind the stored ones; none is lost or doubled.
    assert _rows(store, stored) == [(0, 0), (1, 1), (2, 2), (3, 10), (4, 11), (5, 12)]
    assert stored.state == "finished"
    assert stored.config == {"a": 1, "b": 2, "nested": {"x": 1, "y": 2}}
    assert stored.summary["v"] == 12 and stored.summary["_step"] == 5
    decision = stored.meta["resume"]
    assert decision["decision"] == "resumed" and decision["decided_by"] == "store after start"
    assert decision["first_step"] == 3 and decision["step_offset"] == 3
    assert run.resumed and run.resume_decision == decision


def test_explicit_steps_logged_meanwhile_keep_their_values(server: ServerProc) -> None:
    """W&B semantics once the stored step is known: a step below it is dropped, others stay."""
    _first_session("frozen2", n=5)
    with stopped(server):
        run = _timed_init(id="frozen2", resume="allow")
        run.log({"v": 100}, step=2)  # below the stored run's next step (5): dropped
        run.log({"v": 107}, step=7)
        run.log({"v": 108}, step=8)
    run.log({"v": 109}, step=9)
    run.finish()
    store, stored = _run(server, "frozen2")
    assert _rows(store, stored) == [*((i, i) for i in range(5)), (7, 107), (8, 108), (9, 109)]


def test_resume_must_waits_a_bounded_time_then_names_the_server_and_the_fix(
    server: ServerProc,
) -> None:
    with stopped(server), pytest.raises(ResumeTimeoutError) as caught:
        runyard.init(
            project="p",
            id="never-answered",
            resume="must",
            settings=runyard.Settings(init_timeout=0.1, resume_timeout=0.5),
        )
    message = str(caught.value)
    assert server.url in message and "did not answer within 0.5s" in message
    assert "RUNYARD_RESUME_TIMEOUT" in message and "resume='allow'" in message


def test_a_local_journal_decides_while_the_server_is_stopped(
    server: ServerProc, tmp_path: Path
) -> None:
    """A session killed before its rows were shipped left a journal: the next session
    resumes after it without the server, and the server gets each row once."""
    _first_session("local1")
    # the server answers this session (not provisional); nothing is shipped before the kill
    settings = runyard.Settings(init_timeout=60, flush_interval=60)
    assert killed_child(_log_session, "local1", range(3, 6), settings) == -signal.SIGKILL
    with stopped(server):
        with pytest.raises(ValueError, match=r"already exists .*journal"):
            runyard.init(project="p", id="local1")  # no resume=: refused, as the store would
        run = _timed_init(id="local1", resume="allow")
        assert run.resumed and run.step == 6
        with pytest.raises(ValueError, match="still running in process"):
            runyard.init(project="p", id="local1", resume="allow", reinit="create_new")
        run.log({"v": 6})
    run.finish()
    store, stored = _run(server, "local1")
    assert _rows(store, stored) == [(i, i) for i in range(7)]
    assert stored.meta["resume"]["decided_by"] == "store after start"
    assert stored.meta["resume"]["step_offset"] == 0


def test_an_existing_id_without_resume_is_kept_out_and_said(
    server: ServerProc, capfd: pytest.CaptureFixture[str]
) -> None:
    _first_session("taken1")
    with stopped(server):
        run = _timed_init(id="taken1")
        run.log({"v": 50})
    run.finish()
    err = capfd.readouterr().err
    assert "run " in err and "taken1 already exists in the store" in err
    assert "kept in" in err and "Traceback" not in err
    assert run.journal_path is not None and run.journal_path.exists()
    store, stored = _run(server, "taken1")
    assert _rows(store, stored) == [(0, 0), (1, 1), (2, 2)]  # the stored run is untouched


def test_a_session_killed_before_the_server_answered_is_placed_by_recovery(
    server: ServerProc, tmp_path: Path
) -> None:
    _first_session("dead1", n=4)
    root = tmp_path / ".runyard"
    with stopped(server):
        assert killed_child(_log_session, "dead1", range(20, 23)) == -signal.SIGKILL
    from click.testing import CliRunner

    from runyard.cli import main

    out = CliRunner().invoke(main, ["sync", "--dir", str(root), "--store", server.url])
    assert out.exit_code == 0 and "1 run(s) synced" in out.output, out.output
    store, stored = _run(server, "dead1")
    assert _rows(store, stored) == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 20), (5, 21), (6, 22)]
    assert stored.state == "crashed"
    assert stored.meta["resume"]["decided_by"] == "recovery"


def test_a_run_resumed_while_the_server_is_stopped_keeps_its_metric_definitions(
    server: ServerProc,
) -> None:
    with runyard.init(project="p", id="frozen-defs") as first:
        first.define_metric("acc", summary="max", step_metric="epoch")
        for epoch, acc in enumerate([0.5, 0.9, 0.7]):
            first.log({"acc": acc, "epoch": epoch})
    with stopped(server):
        run = _timed_init(id="frozen-defs", resume="allow")
        run.log({"acc": 0.4, "epoch": 3})
    run.log({"acc": 0.3, "epoch": 4})
    run.finish()
    _store, stored = _run(server, "frozen-defs")
    assert stored.meta["resume"]["decided_by"] == "store after start"
    assert stored.summary["acc"] == {"max": 0.9}
    assert [d["name"] for d in stored.metric_defs] == ["acc"]
