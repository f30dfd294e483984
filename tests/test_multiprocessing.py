"""init/log/finish in child processes never hang and never mix runs (each case has a timeout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import api, run_python

CHILDREN = """
import multiprocessing as mp
import sys
import runyard

def work(tag):
    run = runyard.init(project="mp", id=tag, config={"tag": tag})
    for i in range(200):
        runyard.log({"i": i})
    {finish}

if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    procs = [ctx.Process(target=work, args=(f"{{sys.argv[1]}}-{{n}}",)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0, p.exitcode
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("explicit_finish", [True, False])
def test_children_started_by_every_method(
    tmp_path: Path, root: Path, method: str, explicit_finish: bool
) -> None:
    code = CHILDREN.replace("{finish}", "run.finish()" if explicit_finish else "pass")
    code = code.replace("{{", "{").replace("}}", "}")
    run_python(code, tmp_path, args=[method], timeout=90)
    runs = {r.id: r for r in api(root).runs("mp")}
    assert sorted(runs) == [f"{method}-{n}" for n in range(3)]
    for run in runs.values():
        assert run.state == "finished", (run.id, run.state)
        assert run.summary["i"] == 199 and run.config["tag"] == run.id


def test_joblib_loky_workers(tmp_path: Path, root: Path) -> None:
    run_python(
        """
        from joblib import Parallel, delayed
        import runyard

        def job(n):
            with runyard.init(project="loky", id=f"job-{n}", config={"n": n}) as run:
                for i in range(100):
                    run.log({"i": i * n})
            return n

        assert Parallel(n_jobs=2, backend="loky")(delayed(job)(n) for n in range(6)) == list(range(6))
        """,
        tmp_path,
        timeout=120,
    )
    runs = {r.id: r for r in api(root).runs("loky")}
    assert sorted(runs) == [f"job-{n}" for n in range(6)]
    assert all(
        r.state == "finished" and r.summary["i"] == 99 * r.config["n"] for r in runs.values()
    )


def test_fork_with_an_active_run_leaves_the_parents_run_intact(tmp_path: Path, root: Path) -> None:
    run_python(
        """
        import os, warnings
        import runyard

        parent = runyard.init(project="fork", id="parent")
        for i in range(100):
            runyard.log({"i": i})
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    runyard.log({"i": -1})   # inherited run: ignored, with a warning
                    parent.log({"i": -2})
                assert any("belongs to process" in str(w.message) for w in caught), caught
                child = runyard.init(project="fork", id="child")
                for i in range(50):
                    runyard.log({"c": i})
                child.finish()
            except BaseException as exc:
                print("child error", repr(exc))
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert status == 0, status
        for i in range(100, 200):
            runyard.log({"i": i})
        parent.finish()
        """,
        tmp_path,
        timeout=90,
    )
    parent = api(root).run("fork/parent")
    assert parent.state == "finished"
    assert [r["i"] for r in parent.scan_history()] == list(range(200))
    child = api(root).run("fork/child")
    assert child.state == "finished" and child.summary["c"] == 49


def test_many_threads_log_to_one_run(root: Path) -> None:
    import threading

    import runyard

    run = runyard.init(project="threads")

    def worker(n: int) -> None:
        for i in range(500):
            run.log({f"t{n}": i})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    run.finish()
    rows = api(root).run(run.path).scan_history()
    assert sum(1 for _ in rows) == 2000
