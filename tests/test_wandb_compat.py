"""Conformance: the real ``wandb`` client (pinned in the dev extra) against a real runyard server.

Unmodified W&B code runs in its own processes (``tests/wandbclient.py``: no network but
127.0.0.1) against one ``runyard server`` with auth on, shared by the module, and the tests
assert what arrived through runyard's own ``Api`` — the same reads as for a runyard-native run.
Importing wandb and starting its service costs seconds per process, so one script plays several
scenarios in a row (each ``wandb.init`` is a run of its own, with its own file stream, exactly
as in separate processes) and the tests below check what each scenario stored.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from runyard.api import Api
from tests.serverproc import ServerProc, create_admin_key, create_key, running_server
from tests.wandbclient import (
    run_cli,
    run_script,
    start_script,
    started,
    stoppable_run,
    wait_for_run,
    wandb_env,
)


@dataclass
class Door:
    server: ServerProc
    admin: str
    alice: str  # user alice, member of team "lab"
    bob: str

    @property
    def url(self) -> str:
        return self.server.url

    def api(self) -> Api:
        return Api(store=self.server.url, api_key=self.admin, recover=False)

    def run(self, path: str) -> object:
        return self.api().run(path)

    def graphql(
        self, key: str | None, query: str, variables: dict[str, object] | None = None
    ) -> httpx.Response:
        headers = {}
        if key is not None:
            token = base64.b64encode(f"api:{key}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
            timeout=30,
        )


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    root = tmp_path_factory.mktemp("wandb-door")
    store_url = f"sqlite:///{root / 'runyard.db'}"
    admin = create_admin_key(store_url)
    alice = create_key(store_url, "alice")
    bob = create_key(store_url, "bob")
    from runyard.store import open_store
    from runyard.store.sql import SQLStore
    from runyard.store.sql_auth import AuthStore

    store = open_store(store_url)
    assert isinstance(store, SQLStore)
    auth = AuthStore(store)
    auth.create_entity("lab", "team")
    auth.add_member("lab", "alice")
    with running_server(store_url, auth=True) as server:
        yield Door(server, admin, alice, bob)


#: Scenarios played by one client process (alice's key), in order; see the tests below.
SESSION = """
import json, os, sys, time
import numpy as np
import wandb
from wandb.sdk.lib import run_stopping

# 1. the scalar path
run = wandb.init(
    project="door", name="first-run", group="g1", job_type="train",
    tags=["a", "b"], notes="some notes",
    config={"lr": 0.1, "layers": [1, 2], "optim": {"name": "adam", "beta": 0.9}},
)
run.config.update({"batch_size": 32})
for i in range(5):
    run.log({"loss": 1 / (i + 1), "acc": i / 10, "val": {"loss": 2.0 - i},
             "flag": i % 2 == 0, "phase": "warm" if i < 2 else "main"})
pixels = np.zeros((4, 6, 3), dtype="uint8")
pixels[0, 0] = 255
run.log({"loss": float("nan"), "img": wandb.Image(pixels, caption="first"),
         "hist": wandb.Histogram([1, 2, 2, 3, 3, 3]), "page": wandb.Html("<b>hi</b>"),
         "tbl": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
run.alert(title="diverged", text="loss is NaN", level=wandb.AlertLevel.WARN)
print("hello from stdout")
print("oops on stderr", file=sys.stderr)
run.summary["best"] = 42
run.finish()
print("PATH", run.path)

# 2. entities: bob's is refused, the team's works
try:
    wandb.init(project="secret", entity="bob", id="intruder1")
except Exception as exc:
    print("REFUSED", exc)
run = wandb.init(project="shared", entity="lab", id="teamrun1")
run.define_metric("epoch")
run.define_metric("x", step_metric="epoch", summary="max")
for epoch, x in enumerate([1, 3, 2]):
    run.log({"x": x, "epoch": epoch})
run.finish()

# 3. resume="allow" creates, resume="must" continues, "must" of nothing fails
run = wandb.init(project="resumes", entity="lab", id="res1", resume="allow",
                 config={"lr": 0.1})
for i in range(3):
    run.log({"loss": 10 - i})
run.finish()
try:
    wandb.init(project="resumes", entity="lab", id="nosuchrun", resume="must")
except Exception as exc:
    print("MUST-FAILED", type(exc).__name__)
run = wandb.init(project="resumes", entity="lab", id="res1", resume="must")
print("RESUMED", run.resumed)
run.config.update({"phase": 2})
for i in range(2):
    run.log({"loss": 5 - i})
run.finish()

# 4. artifacts: a model (a file and a folder), a second version, the same content again
# (no new version: W&B's digest deduplication), then used by another run
os.makedirs("ckpt", exist_ok=True)
open("ckpt/a.txt", "w").write("hello a")
open("ckpt/b.bin", "wb").write(bytes(range(256)) * 4)
open("model.pt", "wb").write(b"weights-1" * 100)
run = wandb.init(project="arts", entity="lab", id="producer")
art = wandb.Artifact("net", type="model", metadata={"epochs": 3})
art.add_file("model.pt")
art.add_dir("ckpt", name="ckpt")
run.log_artifact(art, aliases=["best"]).wait()
open("model.pt", "wb").write(b"weights-2" * 100)
art = wandb.Artifact("net", type="model", metadata={"epochs": 6})
art.add_file("model.pt")
run.log_artifact(art).wait()
art = wandb.Artifact("net", type="model", metadata={"epochs": 6})
art.add_file("model.pt")
run.log_artifact(art, aliases=["final"]).wait()
run.finish()
run = wandb.init(project="arts", entity="lab", id="consumer")
used = run.use_artifact("net:best")
root = used.download(root="downloaded")
print("ART" + json.dumps({
    "version": used.version, "aliases": sorted(used.aliases), "metadata": used.metadata,
    "files": sorted(os.path.relpath(os.path.join(d, f), root)
                    for d, _, fs in os.walk(root) for f in fs),
    "a": open(os.path.join(root, "ckpt/a.txt")).read(),
}))
run.finish()

# 5. an offline run (the test syncs it later with `wandb sync`)
run = wandb.init(project="offline", id="off1", config={"a": 1}, mode="offline")
for i in range(4):
    run.log({"x": i * i})
print("offline hello")
run.finish()

# 6. a run stopped from runyard (the test stops it once it logs)
""" + stoppable_run('project="door", id="stopme"', 3000)


class SessionOutput(str):
    """What :data:`SESSION` printed; ``home`` is the folder it ran in."""

    home: Path


@pytest.fixture(scope="module")
def session(door: Door, tmp_path_factory: pytest.TempPathFactory) -> SessionOutput:
    """Play :data:`SESSION`; stop its last run through runyard's API once it logs. Its output."""
    home = tmp_path_factory.mktemp("session")
    with start_script(SESSION, home, door.url, door.alice) as proc:
        wait_for_run(door.api(), "alice/door/stopme", proc, steps=5)
        stopped = httpx.post(
            f"{door.server.api}/runs/alice/door/stopme/state",
            json={"state": "stopped"},
            headers={"Authorization": f"Bearer {door.alice}"},
        )
        assert stopped.json() == {"changed": True}
        out, _ = proc.communicate(timeout=60)
    result = SessionOutput(out)
    result.home = home
    return result


def test_init_log_config_summary_finish_console(door: Door, session: str) -> None:
    """The scalar path: everything a plain training script sends arrives, stored as a native
    run's (flat ``a/b`` keys, NaN kept, config without W&B's wrappers)."""
    path = session.split("PATH", 1)[1].split()[0]
    assert path.startswith("alice/door/")
    run = door.api().run(path)
    assert run.state == "finished"
    assert run.exit_code == 0
    assert run.name == "first-run"
    assert (run.group, run.job_type, run.notes) == ("g1", "train", "some notes")
    assert sorted(run.tags) == ["a", "b"]
    assert run.config == {
        "lr": 0.1,
        "layers": [1, 2],
        "optim": {"name": "adam", "beta": 0.9},
        "batch_size": 32,
    }
    rows = run.history(pandas=False, samples=None)
    assert [r["_step"] for r in rows] == [0, 1, 2, 3, 4, 5]
    assert [r.get("loss") for r in rows[:5]] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert math.isnan(rows[5]["loss"])
    assert [r["val/loss"] for r in rows[:5]] == [2.0, 1.0, 0.0, -1.0, -2.0]
    assert [r["flag"] for r in rows[:5]] == [True, False, True, False, True]
    assert rows[4]["phase"] == "main"
    assert all(r["_timestamp"] > 1e9 and r["_runtime"] >= 0 for r in rows)
    summary = run.summary
    assert summary["best"] == 42
    assert summary["acc"] == 0.4 and summary["val/loss"] == -2.0
    assert summary["_step"] == 5
    assert "_wandb" not in summary
    assert run.metadata["python"].count(".") == 2
    assert run.metadata["wandb"]["client"] == "wandb 0.31.0"
    lines = run.console()
    assert ("stdout", "hello from stdout") in [(s, t) for s, _, t in lines]
    assert ("stderr", "oops on stderr") in [(s, t) for s, _, t in lines]
    files = {f.name for f in door.api().store.list_files("alice", "door", run.id)}
    assert {"wandb-metadata.json", "requirements.txt", "output.log"} <= files


def test_media_system_metrics_and_alerts(door: Door, session: str) -> None:
    """Media values arrive as runyard stores its own (W&B's references, the files as run files
    under the same names), system metrics as the run's system series, run.alert() as an alert."""
    path = session.split("PATH", 1)[1].split()[0]
    run = door.api().run(path)
    row = run.history(pandas=False, samples=None)[5]
    img = row["img"]
    assert img["_type"] == "image-file" and img["caption"] == "first"
    assert (img["width"], img["height"]) == (6, 4)
    picture = run.load(img)
    assert picture.size == (6, 4) and picture.getpixel((0, 0))[:3] == (255, 255, 255)
    assert row["hist"]["_type"] == "histogram" and sum(row["hist"]["values"]) == 6
    assert row["page"]["_type"] == "html-file"
    assert b"<b>hi</b>" in door.api().store.read_file("alice", "door", run.id, row["page"]["path"])
    table = run.load(row["tbl"])
    assert list(table.columns) == ["a", "b"] and table["b"].tolist() == ["x", "y"]
    assert run.summary["img"]["path"] == img["path"]
    system = run.history(stream="system", pandas=False, samples=None)
    assert system and all(r["_timestamp"] > 1e9 for r in system)
    assert any(k.startswith("system.") for k in system[0])
    alerts = door.api().store.alerts(run.record.pk)
    assert [(a.title, a.text, a.level) for a in alerts] == [("diverged", "loss is NaN", "WARN")]


def test_artifacts_logged_versioned_deduplicated_and_used(door: Door, session: str) -> None:
    """log_artifact with a file and a folder, a second version, the same content again (the same
    version, as W&B deduplicates by digest), aliases, use_artifact + download by another run:
    runyard's artifact store has the versions, blobs and lineage."""
    used = json.loads(session.split("ART", 1)[1].splitlines()[0])
    assert used["version"] == "v0" and used["aliases"] == ["best"]
    assert used["metadata"] == {"epochs": 3}
    assert used["files"] == ["ckpt/a.txt", "ckpt/b.bin", "model.pt"] and used["a"] == "hello a"
    from runyard.artifacts import artifact_store_for

    api = door.api()
    store = artifact_store_for(api.store)
    versions = store.versions("lab", "arts", "net")
    assert [(v.version, sorted(v.aliases)) for v in versions] == [
        (1, ["final", "latest"]),
        (0, ["best"]),
    ]
    v0 = store.get("lab", "arts", "net", "best")
    assert v0.type == "model" and v0.created_by == "producer" and v0.metadata == {"epochs": 3}
    assert sorted(e.path for e in v0.entries or []) == ["ckpt/a.txt", "ckpt/b.bin", "model.pt"]
    assert [r.run_id for r in store.used_by(v0)] == ["consumer"]
    model = next(e for e in v0.entries or [] if e.path == "model.pt")
    assert b"".join(store.open_blob("lab", str(model.blob))) == b"weights-1" * 100


def test_a_key_reaches_only_its_entities(door: Door, session: str) -> None:
    """alice (member of team lab) logs to lab, cannot log to bob's entity; nothing of bob's is
    visible to her through any door route, and the message says what to do."""
    assert "REFUSED" in session
    assert "may not access entity 'bob'" in session
    api = door.api()
    assert api.store.find_run("bob", "secret", "intruder1") is None
    team_run = api.run("lab/shared/teamrun1")
    assert team_run.state == "finished"
    # define_metric arrives as runyard's metric definitions (the dashboard's x axis, summaries)
    assert team_run.summary["x"] == {"max": 3}
    defs = {d["name"]: d for d in team_run.metric_definitions}
    assert defs["x"]["step_metric"] == "epoch" and defs["x"]["summary"] == ["max"]

    # bob's own run, then alice pokes at it through each route of the door.
    bob_run = door.graphql(
        door.bob,
        "mutation U($n: String, $p: String) { upsertBucket(input: {name: $n, modelName: $p}) "
        "{ bucket { name project { entity { name } } } } }",
        {"n": "bobrun1", "p": "private"},
    )
    assert bob_run.json()["data"]["upsertBucket"]["bucket"]["project"]["entity"]["name"] == "bob"
    peek = door.graphql(
        door.alice,
        'query { project(name: "private", entityName: "bob") { run(name: "bobrun1") { name } } }',
    )
    assert peek.status_code == 200
    assert peek.json()["data"]["project"] is None
    assert "may not access entity 'bob'" in peek.json()["errors"][0]["message"]
    auth = {"Authorization": "Basic " + base64.b64encode(f"api:{door.alice}".encode()).decode()}
    stream = httpx.post(
        f"{door.url}/files/bob/private/bobrun1/file_stream",
        json={"files": {"wandb-history.jsonl": {"offset": 0, "content": ['{"_step": 0}']}}},
        headers=auth,
    )
    assert stream.status_code == 403
    files = door.graphql(
        door.alice,
        'mutation { createRunFiles(input: {entityName: "bob", projectName: "private", '
        'runName: "bobrun1", files: ["x.txt"]}) { files { uploadUrl } } }',
    )
    assert files.json()["data"]["createRunFiles"] is None
    assert api.run("bob/private/bobrun1").record.last_step == -1
    # artifacts: alice (a member of lab) reads lab's model; bob cannot, by name or by id
    query = 'query { project(name: "arts", entityName: "lab") { artifact(name: "net:v0") { id } } }'
    art_id = door.graphql(door.alice, query).json()["data"]["project"]["artifact"]["id"]
    assert (
        "may not access entity 'lab'"
        in door.graphql(door.bob, query).json()["errors"][0]["message"]
    )
    by_id = door.graphql(
        door.bob, "query Q($id: ID!) { artifact(id: $id) { digest } }", {"id": art_id}
    )
    assert by_id.json()["data"]["artifact"] is None
    assert "may not access entity 'lab'" in by_id.json()["errors"][0]["message"]


def test_resume_allow_then_must(door: Door, session: str) -> None:
    """resume="allow" creates the run, resume="must" continues it (steps go on, the config
    merges), resume="must" of a run that does not exist fails with the client's own message."""
    assert "MUST-FAILED UsageError" in session
    assert "RESUMED True" in session
    run = door.api().run("lab/resumes/res1")
    assert run.state == "finished"
    rows = run.history(pandas=False, samples=None)
    assert [(r["_step"], r["loss"]) for r in rows] == [(0, 10), (1, 9), (2, 8), (3, 5), (4, 4)]
    assert run.config == {"lr": 0.1, "phase": 2}
    assert run.summary["loss"] == 4 and run.summary["_step"] == 4
    assert door.api().store.find_run("lab", "resumes", "nosuchrun") is None


def test_a_run_stopped_from_runyard_stops_the_client(door: Door, session: str) -> None:
    """Stopping a running run through runyard's API (what `runyard runs stop` and the dashboard
    do) answers the client's file stream with `stopped`, as W&B's stop button does: the script
    gets a KeyboardInterrupt and the run stays `stopped`."""
    assert "INTERRUPTED" in session and "NOT STOPPED" not in session
    run = door.api().run("alice/door/stopme")
    assert run.state == "stopped"
    assert 5 <= run.record.last_step < 2999


def test_login_host_offline_run_then_wandb_sync(
    door: Door, session: SessionOutput, tmp_path: Path
) -> None:
    """`wandb login --host` with a runyard key is all `wandb sync` needs; an offline run synced
    later arrives whole (in the key's entity)."""
    run_cli(["login", "--host", door.url, door.bob], tmp_path, None, None)
    runs = sorted(str(p) for p in (session.home / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_cli(["sync", runs[0]], tmp_path, None, None)
    run = door.api().run("bob/offline/off1")
    assert run.state == "finished" and run.config == {"a": 1}
    assert [r["x"] for r in run.history(pandas=False, samples=None)] == [0, 1, 4, 9]
    assert "offline hello" in [t for _, _, t in run.console()]


def test_door_answers_errors_a_client_can_act_on(door: Door) -> None:
    """No key / a bad key: 401 with the fix; an operation runyard does not serve: HTTP 200 with
    a GraphQL error (the client retries 5xx for minutes); a bad body: 400; upload URLs only
    work for the run and file they were signed for."""
    none = door.graphql(None, "query { viewer { entity } }")
    assert none.status_code == 401
    assert "wandb login --host" in none.json()["errors"][0]["message"]
    bad = door.graphql("ry_0000_notakey" + "x" * 40, "query { viewer { entity } }")
    assert bad.status_code == 401
    viewer = door.graphql(
        door.alice, "query Viewer { viewer { entity teams { edges { node { name } } } } }"
    )
    assert viewer.json()["data"]["viewer"] == {
        "entity": "alice",
        "teams": {"edges": [{"node": {"name": "lab"}}]},
    }
    unknown = door.graphql(door.alice, "mutation Launch { pushToRunQueue(input: {}) { id } }")
    assert unknown.status_code == 200
    assert unknown.json()["data"] == {"pushToRunQueue": None}
    assert "does not serve" in unknown.json()["errors"][0]["message"]
    garbage = httpx.post(
        f"{door.url}/graphql",
        content=b"{not json",
        headers={"Authorization": "Bearer " + door.alice},
    )
    assert garbage.status_code == 400

    made = door.graphql(
        door.alice,
        'mutation { upsertBucket(input: {name: "upl1", modelName: "files"}) { bucket { id } } }',
    )
    assert made.json()["data"]["upsertBucket"]["bucket"]["id"]
    urls = door.graphql(
        door.alice,
        'mutation { createRunFiles(input: {entityName: "alice", projectName: "files", '
        'runName: "upl1", files: ["notes/a.txt"]}) { files { name uploadUrl } } }',
    ).json()["data"]["createRunFiles"]["files"]
    url = urls[0]["uploadUrl"]
    assert httpx.put(url.replace("a.txt", "b.txt"), content=b"x").status_code == 403
    assert httpx.put(url.split("?")[0], content=b"x").status_code == 401
    assert httpx.put(url, content=b"hello").status_code == 200
    assert door.api().store.read_file("alice", "files", "upl1", "notes/a.txt") == b"hello"
    again = door.graphql(
        door.alice,
        'mutation { upsertBucket(input: {name: "upl1", modelName: "files"}) { bucket { id } } }',
    )
    assert again.json()["data"]["upsertBucket"]["bucket"]["id"]  # running: the same session
    httpx.post(
        f"{door.url}/files/alice/files/upl1/file_stream",
        json={"complete": True, "exitcode": 0},
        headers={"Authorization": "Bearer " + door.alice},
    ).raise_for_status()
    ended = door.graphql(
        door.alice,
        'mutation { upsertBucket(input: {name: "upl1", modelName: "files"}) { bucket { id } } }',
    ).json()
    assert "already exists in runyard (finished)" in ended["errors"][0]["message"]
    assert "resume='allow'" in ended["errors"][0]["message"]
    missing = httpx.post(
        f"{door.url}/files/alice/files/nosuchrun/file_stream",
        json={},
        headers={"Authorization": "Bearer " + door.alice},
    )
    assert missing.status_code == 404


#: `wandb agent`, with the agent's poll of its runs every 1 s instead of 5 (timing only).
AGENT = """
import sys
from wandb import wandb_agent
wandb_agent.Agent.POLL_INTERVAL = 1
from wandb.cli.cli import cli
sys.argv = ["wandb", "agent", *sys.argv[1:]]
cli()
"""


@dataclass
class SweepResult:
    sweep_id: str
    outputs: list[str]
    returncodes: list[int | None]


@pytest.fixture(scope="module")
def swept(door: Door, tmp_path_factory: pytest.TempPathFactory) -> SweepResult:
    """`wandb sweep` of a 3-cell grid with run_cap 2, then two `wandb agent`s until they exit
    (both ask for runs at once: the controller's lock gives them different cells)."""
    home = tmp_path_factory.mktemp("sweep")
    (home / "sweep.yaml").write_text(
        "program: train.py\n"
        "method: grid\n"
        "metric: {name: loss, goal: minimize}\n"
        "run_cap: 2\n"
        "parameters:\n"
        "  lr: {values: [0.01, 0.1, 1.0]}\n"
        "  batch_size: {value: 16}\n"
    )
    (home / "train.py").write_text(
        "import wandb\n"
        "run = wandb.init()\n"
        "run.log({'loss': run.config.lr * run.config.batch_size})\n"
        "run.finish()\n"
    )
    (home / "agent.py").write_text(AGENT)
    created = run_cli(
        ["sweep", "--project", "grid", "sweep.yaml"],
        home,
        door.url,
        door.alice,
        env={"WANDB_SILENT": "false"},
    )
    words = [w for w in (created.stdout + created.stderr).split() if w.startswith("alice/")]
    sweep_path = words[-1]
    env = wandb_env(home, door.url, door.alice)
    with ExitStack() as stack:
        agents = [
            stack.enter_context(started([sys.executable, "agent.py", sweep_path], home, env))
            for _ in range(2)
        ]
        outputs = [a.communicate(timeout=120)[0] for a in agents]
    return SweepResult(sweep_path.rsplit("/", 1)[1], outputs, [a.returncode for a in agents])


def test_wandb_sweep_and_two_wandb_agents_on_a_grid(door: Door, swept: SweepResult) -> None:
    """`wandb sweep` creates a runyard sweep; two `wandb agent`s get their runs from runyard's
    controller (in the server, under the sweep's lock): no grid cell twice, exactly run_cap
    runs, each run's metrics stored; then both agents are told to exit."""
    assert swept.returncodes == [0, 0], swept.outputs
    api = door.api()
    sweep = api.store.get_sweep(swept.sweep_id)
    assert sweep is not None and (sweep.entity, sweep.project) == ("alice", "grid")
    assert sweep.state == "finished"
    runs = [api.run(f"alice/grid/{t.run_id}") for t in api.store.sweep_trials(sweep.id)]
    assert len(runs) == 2  # run_cap, exactly
    cells = {(r.config["lr"], r.config["batch_size"]) for r in runs}
    assert len(cells) == 2  # no cell twice
    assert all(r.state == "finished" and r.sweep_id == sweep.id for r in runs)
    for r in runs:
        assert r.summary["loss"] == r.config["lr"] * r.config["batch_size"]
        assert r.sweep_params == {"lr": r.config["lr"], "batch_size": r.config["batch_size"]}
    agents = api.store.controller(sweep.id).agents()
    assert len(agents) == 2
    assert {r.record.agent_id for r in runs} <= {a.id for a in agents}
    assert all("Received exit command" in out for out in swept.outputs), swept.outputs


def test_wandb_api_reads_what_runyard_stored(
    door: Door, session: str, swept: SweepResult, tmp_path: Path
) -> None:
    """`wandb.Api()` — what users script against — reads the runs back through the door: runs
    with filters and order, a run's config/summary/history (sampled, by keys, scanned), its
    files (downloaded), its console, a sweep's runs; all equal to what runyard's Api has."""
    proc = run_script(
        f"""
        import json, wandb
        api = wandb.Api()
        out = {{}}
        runs = api.runs("lab/resumes", filters={{"config.lr": 0.1, "state": "finished"}})
        out["filtered"] = [r.id for r in runs]
        out["none"] = len(api.runs("lab/resumes", filters={{"config.lr": 99}}))
        ordered = api.runs("alice/grid", order="+summary_metrics.loss")
        out["ordered"] = [r.summary["loss"] for r in ordered]
        run = api.run("lab/resumes/res1")
        out["config"] = run.config
        out["summary_loss"] = run.summary["loss"]
        out["last_step"] = run.lastHistoryStep
        out["history"] = run.history(pandas=False)
        out["history_keys"] = run.history(keys=["loss"], pandas=False)
        out["scan"] = list(run.scan_history())
        out["scan_keys"] = list(run.scan_history(keys=["loss"]))
        first = [r for r in api.runs("alice/door") if r.name == "first-run"][0]
        out["files"] = sorted(f.name for f in first.files())
        out["metadata"] = json.load(first.file("wandb-metadata.json").download(root="dl"))
        out["console"] = [line.content for line in first.console_logs()]
        sweep = api.sweep("alice/grid/{swept.sweep_id}")
        out["sweep"] = [sweep.state, sorted(r.id for r in sweep.runs)]
        print("OUT" + json.dumps(out))
        """,
        tmp_path,
        door.url,
        door.alice,
        name="read.py",
    )
    out = json.loads(proc.stdout.split("OUT", 1)[1])
    api = door.api()
    assert out["filtered"] == ["res1"] and out["none"] == 0
    assert out["ordered"] == sorted(out["ordered"]) and len(out["ordered"]) == 2
    res1 = api.run("lab/resumes/res1")
    assert out["config"] == res1.config == {"lr": 0.1, "phase": 2}
    assert out["summary_loss"] == 4 and out["last_step"] == 4
    rows = res1.history(pandas=False, samples=None)
    assert out["history"] == rows
    assert out["scan"] == rows
    assert out["history_keys"] == [{"_step": r["_step"], "loss": r["loss"]} for r in rows]
    assert out["scan_keys"] == out["history_keys"]
    first = api.run(session.split("PATH", 1)[1].split()[0])
    files = sorted(f.name for f in api.store.list_files(first.entity, first.project, first.id))
    assert out["files"] == files
    stored = json.loads(
        api.store.read_file(first.entity, first.project, first.id, "wandb-metadata.json")
    )
    assert out["metadata"] == stored
    assert "hello from stdout" in out["console"] and "oops on stderr" in out["console"]
    trials = sorted(t.run_id for t in api.store.sweep_trials(swept.sweep_id))
    assert out["sweep"] == ["FINISHED", trials]


#: A job on a machine that may take its processor away (SLURM, spot instances): it says so with
#: run.mark_preempting(), waits until the test saw the state, then dies by its SIGTERM handler's
#: exit code; the requeued job resumes the run and finishes it.
PREEMPTED_JOB = """
import sys
import wandb
run = wandb.init(project="preempt", id="pre1", resume="allow")
start = 3 if run.resumed else 0
for i in range(start, start + 3):
    run.log({"v": i})
if not run.resumed:
    run.mark_preempting()
    print("MARKED", flush=True)
    sys.stdin.readline()  # the test saw `preempting`
    sys.exit(128 + 15)
run.finish()
"""


def test_mark_preempting_is_runyards_preempting_then_preempted(door: Door, tmp_path: Path) -> None:
    """The real client's run.mark_preempting() (the file stream's `preempting`) makes the run
    `preempting` in runyard while it runs, as runyard's own mark_preempting() does; the job's
    non-zero exit then ends it `preempted` (not failed), and the requeued job resumes it."""
    home = tmp_path / "job"
    with start_script(PREEMPTED_JOB, home, door.url, door.alice, stdin=True, name="job.py") as proc:
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.readline().strip() == "MARKED"
        wait_for_run(door.api(), "alice/preempt/pre1", proc, state="preempting", timeout=60)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out
    run = door.api().run("alice/preempt/pre1")
    assert run.state == "preempted" and run.exit_code == 143
    assert door.api().runs("alice/preempt", filters={"state": "preempted"})[0].id == "pre1"

    run_script(PREEMPTED_JOB, home, door.url, door.alice, name="job.py")
    run = door.api().run("alice/preempt/pre1")
    assert run.state == "finished"
    assert [r["v"] for r in run.history(pandas=False, samples=None)] == [0, 1, 2, 3, 4, 5]
