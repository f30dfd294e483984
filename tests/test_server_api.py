"""The server's HTTP API against a real `runyard server` subprocess, on SQLite and PostgreSQL.

One server per backend and module (it keeps no state between requests); every test uses its
own run ids and projects.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from runyard._json import restore
from runyard.store.sql import SCHEMA_REVISION
from tests.serverproc import ServerProc, running_server

MAX_BODY_MB = 1
MAX_FILE_MB = 2


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProc]:
    folder = tmp_path_factory.mktemp(f"server-{request.param}")
    args = [
        "--files-root",
        str(folder / "files"),
        "--max-body-mb",
        str(MAX_BODY_MB),
        "--max-file-mb",
        str(MAX_FILE_MB),
    ]
    if request.param == "sqlite":
        with running_server(f"sqlite:///{folder / 'store.db'}", extra_args=args) as proc:
            yield proc
    else:
        from tests import pg

        with pg.fresh_schema() as url, running_server(url, extra_args=args) as proc:
            yield proc


@pytest.fixture
def client(server: ServerProc) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api, timeout=30) as http:
        yield http


def uid() -> str:
    return uuid.uuid4().hex[:12]


def header(run_id: str, project: str = "p", entity: str = "e", **extra: Any) -> dict[str, Any]:
    return {
        "entity": entity,
        "project": project,
        "run_id": run_id,
        "name": f"name-{run_id}",
        "config": {"lr": 0.1},
        "tags": ["t"],
        "start_time": 1000.0,
        **extra,
    }


def post_batch(
    client: httpx.Client,
    journal: str,
    head: dict[str, Any],
    records: list[list[Any]],
    **extra: Any,
) -> httpx.Response:
    body = {"header": head, "records": records, **extra}
    return client.post(f"/journals/{journal}/batches", content=orjson.dumps(body))


def make_run(
    client: httpx.Client,
    project: str,
    run_id: str,
    *,
    config: dict[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
    finish: str | None = "finished",
    **head: Any,
) -> None:
    records: list[list[Any]] = [[1, "run", {}]]
    for row in rows or []:
        records.append([len(records) + 1, "row", row])
    if finish:
        records.append([len(records) + 1, "finish", {"state": finish, "exit_code": 0}])
    h = header(run_id, project, config=config or {"lr": 0.1}, **head)
    response = post_batch(client, uid(), h, records, summary=summary or {})
    assert response.status_code == 200, response.text
    assert response.json() == {"applied_seq": len(records)}


def error_of(response: httpx.Response) -> dict[str, str]:
    doc = response.json()
    assert set(doc) == {"error"}, doc
    assert set(doc["error"]) == {"code", "message"}
    assert doc["error"]["message"]
    return dict(doc["error"])


# -- health ------------------------------------------------------------------------------------


def test_health_and_openapi(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["schema_revision"] == SCHEMA_REVISION
    assert health["auth"] is False
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/api/v1/journals/{journal_id}/batches",
        "/api/v1/runs/{entity}/{project}/{run_id}/series",
        "/api/v1/runs/{entity}/{project}/{run_id}/files/{name}",
        "/api/v1/sweeps/{sweep_id}/agents/{agent_id}/next",
        "/api/v1/keys/{key_id}",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200
    viewer = client.get("/viewer").json()
    assert viewer["admin"] is True and viewer["user"] is None


# -- journals ----------------------------------------------------------------------------------


def test_batch_creates_run_and_resend_is_idempotent(client: httpx.Client) -> None:
    run_id, journal, project = uid(), uid(), uid()
    h = header(run_id, project, config={"lr": 0.1, "bad": math.nan})
    records: list[list[Any]] = [
        [1, "run", {}],
        [2, "row", {"_step": 0, "_runtime": 0.5, "loss": 1.0, "acc": 0.1}],
        [3, "row", {"_step": 1, "_runtime": 1.0, "loss": {"__f__": "nan"}, "acc": 0.2}],
        [4, "console", [["stdout", 1001.0, "hello"], ["stderr", 1002.0, "oops"]]],
    ]
    body = {
        "header": h,
        "records": records,
        "summary": {"loss": {"__f__": "inf"}, "acc": 0.2},
        "heartbeat_at": 1003.0,
    }
    # NaN in the header's config cannot be plain JSON: the client sends markers.
    raw = orjson.dumps(
        {
            **body,
            "header": {**h, "config": {"lr": 0.1, "bad": {"__f__": "nan"}}},
        }
    )
    first = client.post(f"/journals/{journal}/batches", content=raw)
    assert first.status_code == 200, first.text
    assert first.json() == {"applied_seq": 4}
    again = client.post(f"/journals/{journal}/batches", content=raw)
    assert again.json() == {"applied_seq": 4}
    assert client.get(f"/journals/{journal}").json() == {"applied_seq": 4}
    assert client.get(f"/journals/{uid()}").json() == {"applied_seq": 0}

    run = client.get(f"/runs/e/{project}/{run_id}").json()
    assert run["state"] == "running"
    assert run["name"] == f"name-{run_id}"
    assert run["config"]["bad"] == {"__f__": "nan"}
    assert run["summary"]["loss"] == {"__f__": "inf"}
    assert run["last_step"] == 1
    rows = client.get(f"/runs/e/{project}/{run_id}/history").json()["rows"]
    assert [r["_step"] for r in rows] == [0, 1]  # nothing duplicated by the re-sent batch
    assert rows[1]["loss"] == {"__f__": "nan"}
    assert math.isnan(restore(rows[1])["loss"])
    assert client.get(f"/runs/e/{project}/{run_id}/metrics").json() == ["acc", "loss"]
    lines = client.get(f"/runs/e/{project}/{run_id}/console").json()["lines"]
    assert lines == [["stdout", 1001.0, "hello"], ["stderr", 1002.0, "oops"]]
    assert client.get(f"/runs/e/{project}/{run_id}/console", params={"limit": 1}).json()[
        "lines"
    ] == [["stderr", 1002.0, "oops"]]

    # The next batch overlaps the first (records 3, 4 again) and finishes the run.
    more = records[2:] + [
        [5, "row", {"_step": 2, "loss": 0.25, "acc": 0.3}],
        [6, "finish", {"state": "finished", "exit_code": 0, "runtime": 3.0}],
    ]
    response = post_batch(client, journal, h, more, summary={"loss": 0.25})
    assert response.json() == {"applied_seq": 6}
    run = client.get(f"/runs/e/{project}/{run_id}").json()
    assert run["state"] == "finished" and run["exit_code"] == 0 and run["runtime"] == 3.0
    history = client.get(
        f"/runs/e/{project}/{run_id}/history", params={"keys": "loss", "min_step": 1}
    ).json()["rows"]
    assert [r["_step"] for r in history] == [1, 2]
    assert set(history[1]) == {"_step", "_runtime", "_timestamp", "loss"}
    assert (
        client.get(f"/runs/e/{project}/{run_id}/history", params={"max_step": 0}).json()["rows"][0][
            "_step"
        ]
        == 0
    )


def test_large_batch(client: httpx.Client) -> None:
    """The SDK's largest batch: 2000 rows of 10 metrics."""
    run_id, project = uid(), uid()
    records: list[list[Any]] = [[1, "run", {}]]
    for step in range(2000):
        row: dict[str, Any] = {"_step": step, "_runtime": step / 10}
        row.update({f"m{i}": step * 0.001 + i for i in range(10)})
        records.append([step + 2, "row", row])
    response = post_batch(client, uid(), header(run_id, project), records)
    assert response.status_code == 200, response.text
    assert response.json() == {"applied_seq": 2001}
    rows = client.get(f"/runs/e/{project}/{run_id}/history", params={"keys": "m3"}).json()["rows"]
    assert len(rows) == 2000
    assert rows[-1]["m3"] == pytest.approx(1999 * 0.001 + 3)


def test_run_conflict_is_409_and_resume_continues(client: httpx.Client) -> None:
    run_id, project = uid(), uid()
    make_run(client, project, run_id, rows=[{"_step": 0, "x": 1}])
    response = post_batch(client, uid(), header(run_id, project), [[1, "run", {}]])
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "conflict" and "resume" in error["message"]
    resumed = post_batch(
        client, uid(), header(run_id, project, resume=True), [[1, "row", {"_step": 1, "x": 2}]]
    )
    assert resumed.status_code == 200, resumed.text
    run = client.get(f"/runs/e/{project}/{run_id}").json()
    assert run["state"] == "running" and run["last_step"] == 1


BAD_BATCHES: list[tuple[str, bytes, str]] = [
    ("not json", b"{bad", "not valid JSON"),
    ("empty", b"", "empty body"),
    ("array", b"[1, 2]", "JSON object"),
    ("no header", orjson.dumps({"records": []}), "header"),
    (
        "no entity",
        orjson.dumps({"header": {"project": "p", "run_id": "r"}, "records": []}),
        "entity",
    ),
    ("entity slash", orjson.dumps({"header": header("r", entity="a/b"), "records": []}), "'/'"),
    ("long run id", orjson.dumps({"header": header("r" * 65), "records": []}), "longer than 64"),
    ("nul name", orjson.dumps({"header": header("r", name="a\x00b"), "records": []}), "NUL"),
    ("pid text", orjson.dumps({"header": header("r", pid="12"), "records": []}), "pid"),
    (
        "records dict",
        orjson.dumps({"header": header("r"), "records": {}}),
        "records must be a list",
    ),
    (
        "record pair",
        orjson.dumps({"header": header("r"), "records": [[1, "row"]]}),
        "[seq, kind, payload]",
    ),
    ("seq text", orjson.dumps({"header": header("r"), "records": [["1", "run", {}]]}), "seq"),
    ("seq zero", orjson.dumps({"header": header("r"), "records": [[0, "run", {}]]}), "seq"),
    (
        "seq order",
        orjson.dumps({"header": header("r"), "records": [[2, "run", {}], [1, "run", {}]]}),
        "increasing",
    ),
    ("kind", orjson.dumps({"header": header("r"), "records": [[1, "bogus", {}]]}), "unknown kind"),
    (
        "row no step",
        orjson.dumps({"header": header("r"), "records": [[1, "row", {"x": 1}]]}),
        "_step",
    ),
    (
        "row unresolved media reference",
        orjson.dumps(
            {"header": header("r"), "records": [[1, "row", {"_step": 0, "x": {"__m__": [1]}}]]}
        ),
        "'x'",
    ),
    (
        "finish state",
        orjson.dumps({"header": header("r"), "records": [[1, "finish", {"state": "great"}]]}),
        "finish.state",
    ),
    (
        "console line",
        orjson.dumps({"header": header("r"), "records": [[1, "console", [["stdout", 1.0]]]]}),
        "console line",
    ),
    (
        "summary list",
        orjson.dumps({"header": header("r"), "records": [], "summary": [1]}),
        "summary",
    ),
    (
        "heartbeat",
        orjson.dumps({"header": header("r"), "records": [], "heartbeat_at": "now"}),
        "heartbeat_at",
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [(b, e) for _, b, e in BAD_BATCHES], ids=[n for n, _, _ in BAD_BATCHES]
)
def test_malformed_batch_is_422(client: httpx.Client, body: bytes, expected: str) -> None:
    journal = uid()
    response = client.post(f"/journals/{journal}/batches", content=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid"
    assert expected in error["message"]
    assert client.get(f"/journals/{journal}").json() == {"applied_seq": 0}


def test_body_size_limit_is_413(client: httpx.Client) -> None:
    big = b"x" * (MAX_BODY_MB * 2**20 + 1)
    response = client.post(f"/journals/{uid()}/batches", content=big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(MAX_BODY_MB * 4):
            yield b" " * (2**18 + 1)

    streamed = client.post(f"/journals/{uid()}/batches", content=chunks())
    assert streamed.status_code == 413
    assert "limit" in error_of(streamed)["message"]


# -- runs --------------------------------------------------------------------------------------


def test_runs_filter_sort_paginate(client: httpx.Client) -> None:
    project = uid()
    for i, lr in enumerate([0.001, 0.01, 0.1, 0.5, 1.0]):
        make_run(
            client,
            project,
            f"run{i}",
            config={"lr": lr, "opt": "adam" if i % 2 else "sgd"},
            summary={"loss": 1.0 - lr},
            finish="finished" if i < 4 else "failed",
        )
    base = {"entity": "e", "project": project}
    everything = client.get("/runs", params=base).json()
    assert everything["total"] == 5
    assert {r["run_id"] for r in everything["runs"]} == {f"run{i}" for i in range(5)}

    found = client.get("/runs", params={**base, "filter": "config.lr>0.05"}).json()
    assert {r["run_id"] for r in found["runs"]} == {"run2", "run3", "run4"}
    spec = orjson.dumps({"config.opt": "adam", "summary.loss": {"$lt": 0.95}}).decode()
    found = client.get("/runs", params={**base, "filter": spec}).json()
    assert {r["run_id"] for r in found["runs"]} == {"run3"}
    both = client.get(
        "/runs", params=[*base.items(), ("filter", "config.lr>0.005"), ("filter", "config.opt=sgd")]
    ).json()
    assert {r["run_id"] for r in both["runs"]} == {"run2", "run4"}

    ordered = client.get("/runs", params={**base, "sort": "-config.lr"}).json()
    assert [r["run_id"] for r in ordered["runs"]] == ["run4", "run3", "run2", "run1", "run0"]
    page = client.get("/runs", params={**base, "sort": "config.lr", "limit": 2, "offset": 1}).json()
    assert page["total"] == 5
    assert [r["run_id"] for r in page["runs"]] == ["run1", "run2"]

    failed = client.get("/runs", params={**base, "state": "failed,crashed"}).json()
    assert [r["run_id"] for r in failed["runs"]] == ["run4"]
    picked = client.get("/runs", params={**base, "run_id": "run0,run3"}).json()
    assert {r["run_id"] for r in picked["runs"]} == {"run0", "run3"}

    projects = client.get("/projects").json()
    assert {"entity": "e", "project": project, "runs": 5} in projects

    for bad in ("config.lr <<< 1", "{not json", '["a"]', "nosuchfield=1"):
        response = client.get("/runs", params={**base, "filter": bad})
        assert response.status_code == 422, (bad, response.text)
        assert error_of(response)["code"] == "invalid"
    assert client.get("/runs", params={**base, "sort": "-nosuchfield"}).status_code == 422
    assert client.get("/runs", params={"limit": 0}).status_code == 422


def test_run_reads_404_and_state(client: httpx.Client) -> None:
    project = uid()
    for path in ("", "/metrics", "/history", "/console", "/files", "/files/a.txt"):
        response = client.get(f"/runs/e/{project}/nope{path}")
        assert response.status_code == 404, path
        assert "no run" in error_of(response)["message"]
    assert client.get(f"/runs/e/{project}/nope/series", params={"key": "x"}).status_code == 404

    run_id = uid()
    make_run(client, project, run_id, finish=None)
    changed = client.post(
        f"/runs/e/{project}/{run_id}/state", json={"state": "crashed", "failure": "gone"}
    )
    assert changed.json() == {"changed": True}
    again = client.post(f"/runs/e/{project}/{run_id}/state", json={"state": "crashed"})
    assert again.json() == {"changed": False}  # only_if_running
    run = client.get(f"/runs/e/{project}/{run_id}").json()
    assert run["state"] == "crashed" and run["failure"] == "gone"
    bad = client.post(f"/runs/e/{project}/{run_id}/state", json={"state": "happy"})
    assert bad.status_code == 422
    assert "state" in error_of(bad)["message"]


def test_series_downsampling_keeps_extremes(client: httpx.Client) -> None:
    project, run_id = uid(), uid()
    rows: list[dict[str, Any]] = []
    for step in range(1000):
        value: Any = math.sin(step / 50)
        if step == 377:
            value = 50.0  # a spike
        if step == 611:
            value = -40.0  # a dip
        if step == 5:
            value = "text"  # non-numeric: left out
        rows.append({"_step": step, "loss": value})
    make_run(client, project, run_id, rows=rows)
    series = client.get(
        f"/runs/e/{project}/{run_id}/series", params={"key": "loss", "samples": 100}
    ).json()
    assert series["key"] == "loss"
    assert series["downsampled"] is True
    assert series["total"] == 999
    assert len(series["steps"]) == len(series["values"]) <= 100
    assert series["steps"] == sorted(series["steps"])
    assert 377 in series["steps"] and 611 in series["steps"]
    # the first and last points are kept: the chart ends where the summary's last value is
    assert series["steps"][0] == 0 and series["steps"][-1] == 999
    assert series["values"][-1] == math.sin(999 / 50)
    assert max(series["values"]) == 50.0 and min(series["values"]) == -40.0
    window = client.get(
        f"/runs/e/{project}/{run_id}/series",
        params={"key": "loss", "min_step": 10, "max_step": 19},
    ).json()
    assert window["downsampled"] is False and window["steps"] == list(range(10, 20))
    missing = client.get(f"/runs/e/{project}/{run_id}/series", params={"key": "nope"}).json()
    assert missing["steps"] == [] and missing["total"] == 0
    assert (
        client.get(f"/runs/e/{project}/{run_id}/series", params={"key": "loss", "samples": 1})
    ).status_code == 422


# -- files -------------------------------------------------------------------------------------


def test_files(client: httpx.Client, server: ServerProc) -> None:
    project, run_id = uid(), uid()
    base = f"/runs/e/{project}/{run_id}/files"
    assert client.put(f"{base}/a.txt", content=b"x").status_code == 404  # no such run
    make_run(client, project, run_id)
    saved = client.put(f"{base}/model/weights.bin", content=b"\x00\x01binary")
    assert saved.status_code == 200, saved.text
    assert saved.json()["name"] == "model/weights.bin" and saved.json()["size"] == 8
    client.put(f"{base}/notes.tmp", content=b"kept")  # a user's .tmp file is a file too
    client.put(f"{base}/model/weights.bin", content=b"replaced")
    got = client.get(f"{base}/model/weights.bin")
    assert got.status_code == 200 and got.content == b"replaced"
    listed = client.get(base).json()
    assert [f["name"] for f in listed] == ["model/weights.bin", "notes.tmp"]
    assert listed[0]["size"] == 8
    assert client.get(f"{base}/absent.txt").status_code == 404

    for bad in ("%2E%2E/%2E%2E/%2E%2E/escape.txt", "a/%2E%2E/b", "%2Fetc/passwd", "a//b", "%2E/a"):
        response = client.put(f"{base}/{bad}", content=b"evil")
        assert response.status_code == 400, (bad, response.text)
        assert "invalid file name" in error_of(response)["message"]
        assert client.get(f"{base}/{bad}").status_code == 400
    folder = Path(server.args[server.args.index("--files-root") + 1]).parent
    assert not list(folder.rglob("escape.txt")) and not list(folder.rglob("passwd"))

    too_big = client.put(f"{base}/big.bin", content=b"0" * (MAX_FILE_MB * 2**20 + 1))
    assert too_big.status_code == 413
    assert error_of(too_big)["code"] == "too_large"
    # Bigger than the body limit but within the file limit: fine.
    ok = client.put(f"{base}/mid.bin", content=b"0" * (MAX_BODY_MB * 2**20 + 10))
    assert ok.status_code == 200
    # Names are keys of the run's file table: "notes.tmp" and "notes.tmp/inner" coexist.
    assert client.put(f"{base}/notes.tmp/inner", content=b"x").status_code == 200
    got = client.get(f"{base}/notes.tmp/inner")
    assert got.content == b"x" and got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-security-policy"] == "sandbox"
    assert client.put(f"{base}/page.html", content=b"<script>1</script>").status_code == 200
    page = client.get(f"{base}/page.html")
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == "sandbox allow-scripts"
    # Content the entity already has is named again without sending it (dedup by hash).
    key = "sha256:" + hashlib.sha256(b"x").hexdigest()
    linked = client.put(f"{base}/copy", content=b"", headers={"x-runyard-link": key})
    assert linked.status_code == 200 and linked.json()["sha256"] == key[7:]
    assert client.get(f"{base}/copy").content == b"x"
    unknown = client.put(
        f"{base}/c2", content=b"", headers={"x-runyard-link": "sha256:" + "0" * 64}
    )
    assert unknown.status_code == 409
    # A client-given digest is verified.
    wrong = client.put(f"{base}/v", content=b"abc", headers={"x-runyard-blob": key})
    assert wrong.status_code == 400 and "digest" in error_of(wrong)["message"]


# -- sweeps ------------------------------------------------------------------------------------

GRID = {
    "program": "train.py",
    "method": "grid",
    "metric": {"name": "loss", "goal": "minimize"},
    "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}},
}


def test_sweep_lifecycle(client: httpx.Client) -> None:
    project = uid()
    bad = client.post(
        "/sweeps", json={"entity": "e", "project": project, "config": {"method": "grid"}}
    )
    assert bad.status_code == 422
    assert "parameters" in error_of(bad)["message"]
    wrong_method = client.post(
        "/sweeps", json={"entity": "e", "project": project, "config": GRID, "method": "random"}
    )
    assert wrong_method.status_code == 422

    created = client.post(
        "/sweeps", json={"entity": "e", "project": project, "config": GRID, "seed": 7}
    )
    assert created.status_code == 200, created.text
    sweep = created.json()
    sweep_id = sweep["id"]
    assert sweep["state"] == "running" and sweep["method"] == "grid" and sweep["seed"] == 7
    duplicate = client.post(
        "/sweeps", json={"sweep_id": sweep_id, "entity": "e", "project": project, "config": GRID}
    )
    assert duplicate.status_code == 409
    assert client.get(f"/sweeps/{sweep_id}").json()["id"] == sweep_id
    assert [s["id"] for s in client.get("/sweeps", params={"project": project}).json()] == [
        sweep_id
    ]
    assert client.get("/sweeps/nope").status_code == 404

    agent = client.post(
        f"/sweeps/{sweep_id}/agents", json={"agent_id": "a1", "host": "h", "pid": 1}
    )
    assert agent.status_code == 200 and agent.json()["state"] == "running"
    assert client.post(f"/sweeps/{sweep_id}/agents", json={"agent_id": "a1"}).status_code == 409

    assigned = []
    for value in (0.5, 0.2, 0.9):
        decision = client.post(f"/sweeps/{sweep_id}/agents/a1/next").json()
        assert decision["kind"] == "run", decision
        assigned.append(decision)
        hb = client.post(
            f"/sweeps/{sweep_id}/agents/a1/heartbeat",
            json={"current_run_id": decision["run_id"], "runs_done": len(assigned) - 1},
        )
        assert hb.json() == {"ok": True}
        assert client.get(f"/sweeps/{sweep_id}/runs/{decision['run_id']}/stop").json() == {
            "reason": None
        }
        # The trial's process joins its pending run and reports the metric.
        head = header(
            decision["run_id"],
            project,
            config={"lr": decision["params"]["lr"]},
            sweep_id=sweep_id,
            join_sweep=True,
        )
        records = [
            [1, "run", {}],
            [2, "row", {"_step": 0, "loss": value}],
            [3, "finish", {"state": "finished", "exit_code": 0}],
        ]
        ok = post_batch(client, uid(), head, records, summary={"loss": value})
        assert ok.status_code == 200, ok.text
        finished = client.post(
            f"/sweeps/{sweep_id}/runs/{decision['run_id']}/finish", json={"exit_code": 0}
        )
        assert finished.json()["state"] == "finished"
    assert sorted(d["params"]["lr"] for d in assigned) == [0.001, 0.01, 0.1]
    done = client.post(f"/sweeps/{sweep_id}/agents/a1/next").json()
    assert done["kind"] == "done" and "grid" in done["reason"]

    best = client.get(f"/sweeps/{sweep_id}/best", params={"limit": 2}).json()
    assert [b["value"] for b in best] == [0.2, 0.5]
    assert best[0]["trial"]["run_id"] == assigned[1]["run_id"]
    trials = client.get(f"/sweeps/{sweep_id}/runs").json()
    assert [t["run_id"] for t in trials] == [d["run_id"] for d in assigned]
    runs = client.get("/runs", params={"sweep_id": sweep_id}).json()
    assert runs["total"] == 3
    assert client.post(f"/sweeps/{sweep_id}/runs/nope/finish", json={}).json() is None

    state = client.post(f"/sweeps/{sweep_id}/state", json={"state": "running"})
    assert state.status_code == 409  # finished by the grid: it cannot run again
    assert client.post(f"/sweeps/{sweep_id}/state", json={"state": "bogus"}).status_code == 422


def test_sweep_pause_cancel_fail(client: httpx.Client) -> None:
    project = uid()
    config = {**GRID, "method": "random", "parameters": {"lr": {"min": 0.0, "max": 1.0}}}
    sweep_id = client.post(
        "/sweeps", json={"entity": "e", "project": project, "config": config}
    ).json()["id"]
    paused = client.post(f"/sweeps/{sweep_id}/state", json={"state": "paused"}).json()
    assert paused["state"] == "paused"
    assert client.post(f"/sweeps/{sweep_id}/agents/a/next").json()["kind"] == "wait"
    client.post(f"/sweeps/{sweep_id}/state", json={"state": "running"})
    first = client.post(f"/sweeps/{sweep_id}/agents/a/next").json()
    second = client.post(f"/sweeps/{sweep_id}/agents/a/next").json()
    assert first["kind"] == second["kind"] == "run"
    assert 0.0 <= first["params"]["lr"] <= 1.0
    failed = client.post(
        f"/sweeps/{sweep_id}/runs/{second['run_id']}/fail", json={"reason": "no GPU"}
    )
    assert failed.json() == {"ok": True}
    trials = {t["run_id"]: t for t in client.get(f"/sweeps/{sweep_id}/runs").json()}
    assert trials[second["run_id"]]["state"] == "failed"
    assert trials[second["run_id"]]["failure"] == "no GPU"
    client.post(f"/sweeps/{sweep_id}/state", json={"state": "canceled"})
    stop = client.get(f"/sweeps/{sweep_id}/runs/{first['run_id']}/stop").json()
    assert stop["reason"] and "canceled" in stop["reason"]
    assert client.post(f"/sweeps/{sweep_id}/agents/a/next").json()["kind"] == "done"
    stopped = client.post(
        f"/sweeps/{sweep_id}/runs/{first['run_id']}/finish",
        json={"exit_code": -15, "stop_reason": stop["reason"]},
    ).json()
    assert stopped["state"] == "stopped"


# -- admin without auth: the local admin --------------------------------------------------------


def test_admin_routes_without_auth(client: httpx.Client) -> None:
    team = f"team-{uid()}"
    created = client.post("/entities", json={"name": team, "kind": "team"})
    assert created.status_code == 200 and created.json()["kind"] == "team"
    member = client.post(f"/entities/{team}/members", json={"user": "carol"}).json()
    assert member["members"] == [{"user": "carol", "role": "member"}]
    assert client.post("/entities", json={"name": team, "kind": "user"}).status_code == 409
    assert client.post("/entities/nope-team/members", json={"user": "x"}).status_code == 404
    names = {e["name"] for e in client.get("/entities").json()}
    assert {team, "carol"} <= names
    key = client.post("/keys", json={"user": "carol"}).json()
    assert key["key"].startswith(f"ry_{key['key_id']}_")
    listed = client.get("/keys", params={"user": "carol"}).json()
    assert [k["key_id"] for k in listed] == [key["key_id"]]
    assert "key" not in listed[0] and "secret_hash" not in listed[0]
    revoked = client.delete(f"/keys/{key['key_id']}").json()
    assert revoked["revoked_at"] is not None
    assert client.delete("/keys/nope").status_code == 404


# -- several worker processes over one PostgreSQL -----------------------------------------------


@pytest.mark.slow
def test_workers_share_one_store_and_never_share_a_grid_cell(tmp_path: Path) -> None:
    """Two uvicorn workers, eight agents asking at once: every grid cell handed out once."""
    from concurrent.futures import ThreadPoolExecutor

    from tests import pg

    cells = list(range(12))
    config = {**GRID, "parameters": {"x": {"values": cells}}}
    with (
        pg.fresh_schema() as url,
        running_server(url, workers=2, extra_args=["--files-root", str(tmp_path)]) as proc,
        httpx.Client(base_url=proc.api, timeout=60) as http,
    ):
        sweep_id = http.post(
            "/sweeps", json={"entity": "e", "project": "p", "config": config}
        ).json()["id"]

        def agent(n: int) -> list[int]:
            got = []
            with httpx.Client(base_url=proc.api, timeout=60) as own:
                while True:
                    decision = own.post(f"/sweeps/{sweep_id}/agents/a{n}/next").json()
                    if decision["kind"] != "run":
                        return got
                    got.append(decision["params"]["x"])

        with ThreadPoolExecutor(8) as pool:
            handed = [x for xs in pool.map(agent, range(8)) for x in xs]
        assert sorted(handed) == cells
        assert len(http.get(f"/sweeps/{sweep_id}/runs").json()) == len(cells)


def test_series_of_many_runs_in_one_request(client: httpx.Client) -> None:
    project = uid()
    for i, n in enumerate((30, 500)):
        rows = [
            {"_step": s, "_runtime": s * 0.5, "loss": 1.0 / (s + 1 + i), "acc": s} for s in range(n)
        ]
        make_run(client, project, f"r{i}", rows=rows)
    url = f"/projects/e/{project}/series"
    body = {"keys": ["loss", "acc"], "runs": ["r0", "r1", "nope"], "samples": 100}
    got = client.post(url, json=body).json()
    assert got["x"] == "_step" and set(got["series"]) == {"loss", "acc"}
    loss = got["series"]["loss"]
    assert set(loss) == {"r0", "r1"}  # a run the project lacks is left out
    assert loss["r0"]["steps"] == list(range(30)) and not loss["r0"]["downsampled"]
    assert "xs" not in loss["r0"]
    one = client.get(f"/runs/e/{project}/r1/series", params={"key": "loss", "samples": 100})
    assert {"key": "loss", **loss["r1"]} == one.json()  # the same points as /series
    assert loss["r1"]["steps"][-1] == 499 and loss["r1"]["values"][-1] == 1.0 / 501
    by_time = client.post(url, json={**body, "x": "_runtime"}).json()["series"]["loss"]["r0"]
    assert by_time["xs"] == [s * 0.5 for s in range(30)]
    tail = client.post(url, json={**body, "since": {"r1": 495}}).json()["series"]["acc"]["r1"]
    assert tail["steps"] == [496, 497, 498, 499] and tail["total"] == 4
    too_many = client.post(url, json={**body, "samples": 100_000, "runs": ["r0"] * 5000})
    assert too_many.status_code == 422 and "samples" in error_of(too_many)["message"]


def test_series_of_many_runs_keeps_non_finite_values(client: httpx.Client) -> None:
    """NaN and ±inf come back as the markers of every other route (the dashboard decodes
    them), in values and in xs, while a run of finite values is sent as it is."""
    project = uid()
    nan, inf = {"__f__": "nan"}, {"__f__": "inf"}
    rows = [{"_step": 0, "loss": 1.0}, {"_step": 1, "loss": nan}, {"_step": 2, "loss": inf}]
    rows += [{"_step": 3, "loss": {"__f__": "-inf"}, "x": inf}, {"_step": 4, "loss": 2.0, "x": 1}]
    make_run(client, project, "odd", rows=rows)
    make_run(client, project, "plain", rows=[{"_step": s, "loss": s / 2} for s in range(3)])
    url = f"/projects/e/{project}/series"
    got = client.post(url, json={"keys": ["loss"], "runs": ["odd", "plain"]}).json()
    odd = got["series"]["loss"]["odd"]
    assert odd["steps"] == [0, 1, 2, 3, 4]
    assert odd["values"] == [1.0, nan, inf, {"__f__": "-inf"}, 2.0]
    assert got["series"]["loss"]["plain"]["values"] == [0.0, 0.5, 1.0]
    by_x = client.post(url, json={"keys": ["loss"], "runs": ["odd"], "x": "x"}).json()
    assert by_x["series"]["loss"]["odd"]["xs"] == [inf, 1.0]


def test_saved_workspace(client: httpx.Client) -> None:
    project = uid()
    url = f"/projects/e/{project}/workspace"
    assert client.get(url).json() == {"scope": None, "doc": None}
    assert client.put(url, json={"sections": []}).status_code == 400  # no such project yet
    make_run(client, project, "r0")
    shared = {"version": 1, "sections": [{"name": "train", "panels": [{"kind": "line"}]}]}
    saved = client.put(url, params={"scope": "project"}, json=shared).json()
    assert saved["scope"] == "project" and saved["doc"] == shared
    assert client.get(url).json()["doc"] == shared  # nobody's own yet: the project's
    mine = {"version": 1, "sections": []}
    assert client.put(url, json=mine).json()["scope"] == "user"
    assert client.get(url).json()["doc"] == mine
    assert client.get(url, params={"scope": "project"}).json()["doc"] == shared
    assert client.delete(url).json() == {"deleted": True}
    assert client.get(url).json()["doc"] == shared
    big = client.put(url, json={"x": "y" * 600_000})
    assert big.status_code == 422 and "bytes" in error_of(big)["message"]


def test_http_store_keeps_workspaces(server: ServerProc, client: httpx.Client) -> None:
    from runyard.store.http import HTTPStore

    project = uid()
    make_run(client, project, "r0")
    store = HTTPStore(server.url)
    try:
        assert store.get_workspace("e", project, "local") is None
        saved = store.put_workspace("e", project, "project", None, {"v": 1})
        assert (saved.scope, saved.doc) == ("project", {"v": 1})
        found = store.get_workspace("e", project, "local")
        assert found is not None and found.doc == {"v": 1}
        assert store.delete_workspace("e", project, "project", None) is True
    finally:
        store.close()
