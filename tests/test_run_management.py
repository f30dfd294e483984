"""Editing and deleting runs (issue 14): ``Store.update_run``/``delete_run``/
``runs_by_id_prefix`` on SQLite and PostgreSQL, blob content shared with other runs, artifacts
and uploads in flight, ``Api`` (update, delete, lazy paging, sweeps, id prefixes), the CLI
(``runyard runs rename|tag|stop|delete``) and the server's permission checks (--auth)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import runyard
from runyard.api import Api
from runyard.cli import main
from runyard.store.base import JournalBatch, RunActiveError, StoreError
from runyard.store.sql import SQLStore
from tests.serverproc import ServerProc, auth_headers, create_key, running_server


def _key(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["sqlite", "postgresql"])
def sql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLStore]:
    files = tmp_path / "files"
    if request.param == "sqlite":
        made = SQLStore(f"sqlite:///{tmp_path / 'store.db'}")
        yield made
        made.close()
    else:
        from tests import pg

        with pg.fresh_schema() as url:
            made = SQLStore(url, files_root=files)
            yield made
            made.close()


def make_run(
    store: Any, run_id: str, *, entity: str = "e", project: str = "p", finished: bool = True
) -> None:
    header = {
        "entity": entity,
        "project": project,
        "run_id": run_id,
        "name": f"name-{run_id}",
        "config": {"lr": 0.1},
        "tags": ["a"],
        "start_time": time.time(),
    }
    records: list[Any] = [(1, "run", header)]
    records += [
        (i + 2, "row", {"_step": i, "_runtime": 0.1, "loss": 1.0 / (i + 1)}) for i in range(3)
    ]
    if finished:
        records.append((6, "finish", {"state": "finished", "exit_code": 0, "runtime": 1.0}))
    store.apply(JournalBatch(f"j-{run_id}", header, records, summary={"loss": 0.33}))


# -- the store: both SQL backends --------------------------------------------------------------


def test_update_run_fields_and_their_checks(sql: SQLStore) -> None:
    make_run(sql, "u1")
    after = sql.update_run(
        "e", "p", "u1", name="renamed", tags=["x", "y", "x"], notes="n", group="g",
        job_type="train", config={"lr": 0.2}, summary={"loss": 0.1, "best": 0.05},
    )  # fmt: skip
    assert (after.name, after.tags, after.notes, after.group, after.job_type) == (
        "renamed", ["x", "y"], "n", "g", "train",
    )  # fmt: skip
    assert after.config == {"lr": 0.2} and after.summary == {"loss": 0.1, "best": 0.05}
    assert sql.update_run("e", "p", "u1", notes=None).notes is None
    for bad, word in (
        ({"name": ""}, "name"),
        ({"tags": "x"}, "tags must be a list"),
        ({"summary": [1]}, "summary must be an object"),
        ({"state": "finished"}, "is not a field"),
        ({"name": "x" * 257}, "256"),
    ):
        with pytest.raises(StoreError, match=word):
            sql.update_run("e", "p", "u1", **bad)
    with pytest.raises(LookupError):
        sql.update_run("e", "p", "nope", name="x")


def test_delete_keeps_content_that_others_hold(sql: SQLStore) -> None:
    for run_id in ("d1", "d2"):
        make_run(sql, run_id)
    shared, own, leased, artifact = b"shared bytes", b"only d1", b"leased by an upload", b"art"
    sql.put_file("e", "p", "d1", "a.bin", shared)
    sql.put_file("e", "p", "d1", "copy/a.bin", shared)  # the same content under two names
    sql.put_file("e", "p", "d1", "own.bin", own)
    sql.put_file("e", "p", "d1", "leased.bin", leased)
    sql.put_file("e", "p", "d1", "art.bin", artifact)
    sql.put_file("e", "p", "d2", "b.bin", shared)
    from runyard.artifacts import artifact_store_for

    arts = artifact_store_for(sql)
    arts.begin("e", [_key(leased)])  # an artifact upload in flight holds it
    arts.ingest("e", _key(artifact), [artifact])  # artifact content (the artifact GC's)

    plan = sql.delete_run("e", "p", "d1", dry_run=True)
    assert (plan.files, plan.dry_run) == (5, True)
    assert plan.file_bytes == 2 * len(shared) + len(own) + len(leased) + len(artifact)
    assert plan.freed_bytes == len(own) and plan.history_rows == 3
    assert sql.find_run("e", "p", "d1") is not None  # a dry run deletes nothing

    report = sql.delete_run("e", "p", "d1")
    assert report.freed_bytes == len(own) and report.files == 5
    assert sql.find_run("e", "p", "d1") is None
    assert not sql.blobs.exists(_key(own))
    for kept in (shared, leased, artifact):
        assert sql.blobs.exists(_key(kept))
    assert sql.read_file("e", "p", "d2", "b.bin") == shared
    assert [r.run_id for r in sql.list_runs(runyard_query("e", "p"))] == ["d2"]
    assert sql.metric_names(sql.find_run("e", "p", "d2").pk) == ["loss"]  # type: ignore[union-attr]
    # the last holder goes: the shared content goes too
    assert sql.delete_run("e", "p", "d2").freed_bytes == len(shared)
    assert not sql.blobs.exists(_key(shared))
    with pytest.raises(LookupError):
        sql.delete_run("e", "p", "d2")


def runyard_query(entity: str, project: str) -> Any:
    from runyard.store.base import RunQuery

    return RunQuery(entity=entity, project=project)


def test_delete_refuses_a_running_run_unless_forced(sql: SQLStore) -> None:
    make_run(sql, "live", finished=False)
    with pytest.raises(RunActiveError, match="runyard runs stop live"):
        sql.delete_run("e", "p", "live")
    assert sql.delete_run("e", "p", "live", force=True).history_rows == 3


def test_upload_racing_a_deletion_of_the_same_content(sql: SQLStore) -> None:
    """Runs holding the same content are deleted while another run stores it again and again:
    every stored file of the survivor stays readable (store/sql_manage.py's protocol)."""
    data = b"content stored by both" * 10
    make_run(sql, "keep")
    victims = [f"v{i}" for i in range(12)]
    for v in victims:
        make_run(sql, v)
        sql.put_file("e", "p", v, "f.bin", data)
    errors: list[BaseException] = []

    def upload() -> None:
        try:
            for i in range(12):
                sql.put_file("e", "p", "keep", f"f{i}.bin", data)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    for v in victims:
        sql.delete_run("e", "p", v)
    thread.join()
    assert not errors
    for i in range(12):
        assert sql.read_file("e", "p", "keep", f"f{i}.bin") == data
    # the protocol's check itself: content put, then deleted before its row, is noticed
    from runyard.store.sql import _ContentGone

    make_run(sql, "w")
    info = sql._put_blob(b"fresh", None, None)
    sql.put_file("e", "p", "w", "x.bin", b"fresh")
    sql.delete_run("e", "p", "keep")
    sql.delete_run("e", "p", "w")
    assert not sql.blobs.exists(info.key)
    make_run(sql, "late")
    with pytest.raises(_ContentGone):
        sql._name_blob(sql.find_run("e", "p", "late").pk, "x.bin", info)  # type: ignore[union-attr]
    assert sql.put_file("e", "p", "late", "x.bin", b"fresh").size == 5  # put again


def test_id_prefix_is_one_query_of_a_few_runs(sql: SQLStore) -> None:
    for run_id in ("abc111", "abc222", "abd333"):
        make_run(sql, run_id)
    make_run(sql, "abc999", entity="other")
    assert {r.run_id for r in sql.runs_by_id_prefix("abc", "e")} == {"abc111", "abc222"}
    assert [r.run_id for r in sql.runs_by_id_prefix("abd")] == ["abd333"]
    assert [r.run_id for r in sql.runs_by_id_prefix("abc", entities=["other"])] == ["abc999"]
    assert len(sql.runs_by_id_prefix("ab", limit=2)) == 2
    assert sql.runs_by_id_prefix("%") == [] and sql.runs_by_id_prefix("ABC") == []


# -- Api, CLI (embedded store) --------------------------------------------------------------------


def _runs(n: int, project: str = "p", **init: Any) -> list[str]:
    ids = []
    for i in range(n):
        run = runyard.init(project=project, name=f"r{i}", config={"i": i}, **init)
        run.log({"acc": i / 10})
        run.finish()
        ids.append(run.id)
    return ids


def test_api_update_delete_paging_and_sweeps(tmp_path: Path) -> None:
    ids = _runs(7)
    api = Api()
    runs = api.runs("p", per_page=3)
    assert len(runs._loaded) == 0 and runs[0].id == ids[-1] and len(runs._loaded) == 3
    assert len(runs) == 7 and [r.id for r in runs] == ids[::-1] and runs[-1].id == ids[0]
    assert [r.id for r in runs[1:3]] == ids[-2:-4:-1]
    assert len(api.runs("p", limit=5, per_page=2)) == 5
    assert list(api.runs("p", filters={"config.i": {"$gte": 5}})) and not api.runs("nowhere")

    run = api.run(f"p/{ids[0][:5]}")  # a unique prefix
    run.name = "best-one"
    run.tags.append("keep")
    run.notes = "after the fact"
    run.summary["acc_best"] = 0.9
    run.config["note"] = "edited"
    run.update()
    again = Api().run(ids[0])
    assert (again.name, again.tags, again.notes) == ("best-one", ["keep"], "after the fact")
    assert again.summary["acc_best"] == 0.9 and again.config["note"] == "edited"

    # a sweep's runs and its best run, by its metric or another order
    store = api.store
    sweep = store.create_sweep(
        sweep_id="sw1", entity=again.entity, project="p", name=None, description=None,
        method="random", config={"metric": {"name": "acc", "goal": "maximize"}}, seed=0,
    )  # fmt: skip
    with store.sweep_transaction(sweep.id) as tx:
        for i, acc in enumerate((0.2, 0.7, 0.4)):
            tx.add_trial(f"t{i}", f"trial-{i}", {"x": i}, {"x": i}, None)
            tx.set_trial_result(f"t{i}", "finished", {"acc": acc})
    found = api.sweep(f"p/{sweep.id}")
    assert sorted(r.id for r in found.runs) == ["t0", "t1", "t2"]
    assert found.best_run().id == "t1"  # type: ignore[union-attr]
    assert found.best_run(order="+summary_metrics.acc").id == "t0"  # type: ignore[union-attr]
    with pytest.raises(LookupError, match="runyard sweep ls"):
        api.sweep("nope")

    # delete, with the artifacts it logged
    with runyard.init(project="p", name="with-art") as logged:
        (tmp_path / "w.txt").write_text("weights")
        art = runyard.Artifact("model", type="model")
        art.add_file(str(tmp_path / "w.txt"))
        logged.log_artifact(art)
    gone = api.run(logged.id)
    report = gone.delete(delete_artifacts=True)
    assert report.path == gone.path
    with pytest.raises(LookupError):
        api.run(logged.id)
    with pytest.raises(Exception, match="model"):
        api.artifact(f"{gone.entity}/p/model:latest")


def test_cli_rename_tag_stop_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNYARD_STOP_POLL_INTERVAL", "0.05")
    ids = _runs(2, project="c")
    cli = CliRunner()

    def ok(*args: str, input: str | None = None) -> str:
        result = cli.invoke(main, list(args), input=input)
        assert result.exit_code == 0, result.output
        return result.output

    assert "r0 -> first" in ok("runs", "rename", ids[0][:6], "first")
    assert "tags of" in ok("runs", "tag", ids[0], "best", "v2")
    out = ok("runs", "tag", ids[0], "-r", "v2", "-r", "absent")
    assert "best" in out and "v2" not in out.split("not tagged")[0] and "absent" in out
    assert Api().run(ids[0]).tags == ["best"]

    # delete asks, says what goes, and deletes only on a yes
    out = ok("runs", "delete", ids[0], ids[1], input="n\n")
    assert "2 run(s)" in out and "nothing deleted" in out
    assert len(Api().runs("c")) == 2
    refused = cli.invoke(main, ["runs", "delete", ids[0]], input="")
    assert refused.exit_code != 0 and "--yes" in refused.output
    assert "would delete" in ok("runs", "delete", ids[0], "--dry-run")
    assert "deleted 1 run(s)" in ok("runs", "delete", ids[0], input="y\n")
    assert "deleted 1 run(s)" in ok("runs", "delete", ids[1], "--yes")
    assert len(Api().runs("c")) == 0

    # stop: a live run learns it (should_stop) and ends stopped
    live = runyard.init(project="c", name="live")
    live.log({"acc": 0.5})
    _wait(lambda: len(Api(recover=False).runs("c")) > 0)  # the shipper delivers it meanwhile
    refused = cli.invoke(main, ["runs", "delete", live.id, "--yes"])
    assert refused.exit_code != 0 and "runyard runs stop" in refused.output
    _stop_from_the_cli(cli, live)
    refused = cli.invoke(main, ["runs", "stop", live.id])
    assert refused.exit_code != 0 and "not running" in refused.output


def test_cli_stops_a_preempting_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """W&B lets a preempting run be stopped: `runyard runs stop` takes it, its process learns
    it (should_stop) and it ends `stopped` (not `preempted`); as a live run, delete refuses it
    without --force."""
    monkeypatch.setenv("RUNYARD_STOP_POLL_INTERVAL", "0.05")
    cli = CliRunner()
    live = runyard.init(project="pre", name="requeued")
    live.log({"acc": 0.5})
    live.mark_preempting()
    # the shipper delivers the preempt record in the background
    _wait(lambda: [r.state for r in Api(recover=False).runs("pre")][:1] == ["preempting"])
    assert Api(recover=False).run(live.id).state == "preempting"
    refused = cli.invoke(main, ["runs", "delete", live.id, "--yes"])
    assert refused.exit_code != 0 and "preempting" in refused.output
    assert "runyard runs stop" in refused.output
    _stop_from_the_cli(cli, live)


def _wait(done: Callable[[], bool], seconds: float = 10) -> None:
    """Poll ``done()`` until it is true or ``seconds`` pass (the caller asserts the outcome)."""
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)


def _stop_from_the_cli(cli: CliRunner, live: runyard.Run) -> None:
    """`runyard runs stop` of a live run: it says so, the run's process learns it
    (should_stop, with the command as the reason) and the run ends `stopped`."""
    result = cli.invoke(main, ["runs", "stop", live.id])
    assert result.exit_code == 0, result.output
    assert "stopped" in result.output
    _wait(lambda: live.should_stop)
    assert live.should_stop and "runyard runs stop" in (live.stop_reason or "")
    live.finish()
    assert Api().run(live.id).state == "stopped"


# -- through a server with --auth --------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProc, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("manage-server")
    url = f"sqlite:///{folder / 'server.db'}"
    with running_server(url, auth=True, extra_args=["--files-root", str(folder / "files")]) as s:
        yield s, {"alice": create_key(url, "alice"), "bob": create_key(url, "bob")}


def test_server_edits_and_deletes_only_the_keys_entities(
    auth_server: tuple[ServerProc, dict[str, str]],
) -> None:
    server, keys = auth_server
    alice = Api(store=server.url, api_key=keys["alice"], recover=False)
    bob = Api(store=server.url, api_key=keys["bob"], recover=False)
    make_run(alice.store, "srv111", entity="alice")
    make_run(alice.store, "srv112", entity="alice")
    make_run(bob.store, "srv999", entity="bob")
    alice.store.put_file("alice", "p", "srv111", "f.txt", b"alice's file")

    run = alice.run("alice/p/srv111")
    run.name = "from-alice"
    run.update()
    assert alice.run("srv111").name == "from-alice"
    # bob's key: no prefix match among alice's runs, no edit, no deletion
    assert [r.run_id for r in bob.store.runs_by_id_prefix("srv")] == ["srv999"]
    with pytest.raises(LookupError, match="ambiguous"):
        alice.run("srv11")
    with httpx.Client(base_url=server.api, headers=auth_headers(keys["bob"])) as http:
        patched = http.patch("/runs/alice/p/srv111", json={"name": "bob-was-here"})
        deleted = http.delete("/runs/alice/p/srv111")
        assert (patched.status_code, deleted.status_code) == (403, 403)
        assert "may not access entity 'alice'" in patched.json()["error"]["message"]
        bad = http.patch("/runs/bob/p/srv999", json={"tags": "x"})
        assert bad.status_code == 422
    with pytest.raises(StoreError, match="may not access"):
        bob.store.update_run("alice", "p", "srv111", name="x")
    with pytest.raises(StoreError, match="may not access"):
        bob.store.delete_run("alice", "p", "srv111")
    assert alice.run("srv111").name == "from-alice"

    report = alice.run("srv111").delete()
    assert (report.files, report.freed_bytes) == (1, len(b"alice's file"))
    with pytest.raises(LookupError, match="srv112"):
        alice.run("srv111")  # suggests the runs whose ids start alike
