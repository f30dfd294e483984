"""Auth of the server: API keys, entities and teams, admin routes, what is stored, and when auth
is on. Real server subprocesses; keys are made directly in the store (as the CLI does)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from runyard.cli import main
from runyard.store.sql import SQLStore
from tests.serverproc import ServerProc, auth_headers, create_admin_key, create_key, running_server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('auth') / 'store.db'}"
    else:
        from tests import pg

        with pg.fresh_schema() as url:
            yield url


@pytest.fixture(scope="module")
def server(store_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    files = tmp_path_factory.mktemp("auth-files")
    with running_server(store_url, auth=True, extra_args=["--files-root", str(files)]) as proc:
        yield proc


@pytest.fixture(scope="module")
def keys(server: ServerProc) -> dict[str, str]:
    return {
        "admin": create_admin_key(server.store_url, "root"),
        "alice": create_key(server.store_url, "alice"),
        "bob": create_key(server.store_url, "bob"),
    }


def client(server: ServerProc, key: str | None) -> httpx.Client:
    headers = auth_headers(key) if key else {}
    return httpx.Client(base_url=server.api, headers=headers, timeout=30)


def uid() -> str:
    return uuid.uuid4().hex[:10]


def write_run(http: httpx.Client, entity: str, project: str, run_id: str) -> httpx.Response:
    body = {
        "header": {"entity": entity, "project": project, "run_id": run_id},
        "records": [[1, "run", {}], [2, "row", {"_step": 0, "x": 1.0}]],
    }
    return http.post(f"/journals/{uid()}/batches", content=orjson.dumps(body))


def error_message(response: httpx.Response) -> str:
    doc: dict[str, Any] = response.json()
    return str(doc["error"]["message"])


def test_health_needs_no_key_and_says_auth_is_on(server: ServerProc) -> None:
    with client(server, None) as http:
        health = http.get("/health")
    assert health.status_code == 200 and health.json()["auth"] is True


def test_start_without_keys_prints_how_to_make_the_admin_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with running_server(url, auth=True) as proc:
        assert "runyard server keys create --admin --user NAME --store" in proc.output()


def test_missing_wrong_and_revoked_keys_are_401(server: ServerProc, keys: dict[str, str]) -> None:
    with client(server, None) as http:
        response = http.get("/runs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "runyard server keys create" in error_message(response)
    assert response.json()["error"]["code"] == "unauthorized"

    key_id = keys["alice"].split("_")[1]
    for wrong in (
        "nonsense",
        "ry_",
        f"ry_{key_id}_wrongsecret",
        f"ry_{uid()}_{keys['alice'].split('_', 2)[2]}",
    ):
        with client(server, wrong) as http:
            response = http.get("/runs")
        assert response.status_code == 401, wrong
        assert "unknown, malformed or revoked" in error_message(response)

    doomed = create_key(server.store_url, "alice", description="to revoke")
    with client(server, doomed) as http:
        assert http.get("/viewer").status_code == 200
    with client(server, keys["admin"]) as http:
        revoked = http.delete(f"/keys/{doomed.split('_')[1]}")
    assert revoked.status_code == 200
    with client(server, doomed) as http:
        assert http.get("/viewer").status_code == 401


def test_entities_are_private_to_their_user(server: ServerProc, keys: dict[str, str]) -> None:
    project, run_id = uid(), uid()
    with client(server, keys["alice"]) as alice, client(server, keys["bob"]) as bob:
        assert write_run(alice, "alice", project, run_id).status_code == 200
        forbidden = write_run(alice, "bob", project, uid())
        assert forbidden.status_code == 403
        assert "may not access entity 'bob'" in error_message(forbidden)
        assert "add-member" in error_message(forbidden)
        assert write_run(bob, "bob", project, uid()).status_code == 200

        assert alice.get(f"/runs/alice/{project}/{run_id}").status_code == 200
        assert bob.get(f"/runs/alice/{project}/{run_id}").status_code == 403
        assert bob.get(f"/runs/alice/{project}/{run_id}/history").status_code == 403
        assert bob.get(f"/runs/alice/{project}/{run_id}/files").status_code == 403
        assert bob.put(f"/runs/alice/{project}/{run_id}/files/x", content=b"x").status_code == 403
        changed = bob.post(f"/runs/alice/{project}/{run_id}/state", json={"state": "killed"})
        assert changed.status_code == 403
        assert bob.get("/runs", params={"entity": "alice"}).status_code == 403

        alice_runs = alice.get("/runs").json()["runs"]
        assert {r["entity"] for r in alice_runs} == {"alice"}
        bob_runs = bob.get("/runs", params={"project": project}).json()
        assert {r["entity"] for r in bob_runs["runs"]} == {"bob"} and bob_runs["total"] == 1
        assert {p["entity"] for p in alice.get("/projects").json()} == {"alice"}
        viewer = alice.get("/viewer").json()
        assert viewer["user"] == "alice" and viewer["admin"] is False
        assert "bob" not in viewer["entities"]

    with client(server, keys["admin"]) as admin:
        every = admin.get("/runs", params={"project": project}).json()
        assert {r["entity"] for r in every["runs"]} == {"alice", "bob"}


def test_journals_follow_their_run_entity(server: ServerProc, keys: dict[str, str]) -> None:
    """A key cannot write into another entity's run by reusing its journal id."""
    journal, project = uid(), uid()
    body: dict[str, Any] = {
        "header": {"entity": "bob", "project": project, "run_id": uid()},
        "records": [[1, "run", {}]],
    }
    with client(server, keys["bob"]) as bob, client(server, keys["alice"]) as alice:
        assert (
            bob.post(f"/journals/{journal}/batches", content=orjson.dumps(body)).status_code == 200
        )
        hijack = {
            "header": {"entity": "alice", "project": project, "run_id": uid()},
            "records": [[2, "row", {"_step": 0, "x": 1}]],
        }
        response = alice.post(f"/journals/{journal}/batches", content=orjson.dumps(hijack))
        assert response.status_code == 403
        assert alice.get(f"/journals/{journal}").status_code == 403
        assert bob.get(f"/journals/{journal}").json() == {"applied_seq": 1}


def test_team_membership_grants_access(server: ServerProc, keys: dict[str, str]) -> None:
    team, project, run_id = f"team-{uid()}", uid(), uid()
    with client(server, keys["admin"]) as admin:
        assert admin.post("/entities", json={"name": team, "kind": "team"}).status_code == 200
        with client(server, keys["alice"]) as alice:
            assert write_run(alice, team, project, run_id).status_code == 403
        member = admin.post(f"/entities/{team}/members", json={"user": "alice"})
        assert member.status_code == 200
    with client(server, keys["alice"]) as alice, client(server, keys["bob"]) as bob:
        assert write_run(alice, team, project, run_id).status_code == 200
        assert alice.get(f"/runs/{team}/{project}/{run_id}").status_code == 200
        assert team in alice.get("/viewer").json()["entities"]
        assert {r["entity"] for r in alice.get("/runs").json()["runs"]} >= {team, "alice"}
        assert bob.get(f"/runs/{team}/{project}/{run_id}").status_code == 403
        assert team not in {r["entity"] for r in bob.get("/runs").json()["runs"]}

        # Sweeps follow the sweep's entity.
        config = {
            "program": "train.py",
            "method": "random",
            "parameters": {"lr": {"min": 0.0, "max": 1.0}},
            "metric": {"name": "loss"},
        }
        created = alice.post("/sweeps", json={"entity": team, "project": project, "config": config})
        assert created.status_code == 200, created.text
        sweep_id = created.json()["id"]
        assert (
            bob.post(
                "/sweeps", json={"entity": team, "project": project, "config": config}
            ).status_code
            == 403
        )
        assert bob.get(f"/sweeps/{sweep_id}").status_code == 403
        assert bob.post(f"/sweeps/{sweep_id}/agents/a/next").status_code == 403
        assert bob.post(f"/sweeps/{sweep_id}/state", json={"state": "paused"}).status_code == 403
        assert sweep_id not in {s["id"] for s in bob.get("/sweeps").json()}
        assert sweep_id in {s["id"] for s in alice.get("/sweeps").json()}
        assert alice.post(f"/sweeps/{sweep_id}/agents/a/next").json()["kind"] == "run"
        # Without an entity, a sweep goes to the key's user.
        own = alice.post("/sweeps", json={"project": project, "config": config}).json()
        assert own["entity"] == "alice"


def test_workspace_routes_follow_the_project_entity(
    server: ServerProc, keys: dict[str, str]
) -> None:
    """The batched series and the saved workspaces: another entity's are 403; in a team, each
    member's own workspace is theirs alone, the project's is shared."""
    team, project, run_id = f"team-{uid()}", uid(), uid()
    with client(server, keys["admin"]) as admin:
        admin.post("/entities", json={"name": team, "kind": "team"}).raise_for_status()
        for user in ("alice", "bob"):
            admin.post(f"/entities/{team}/members", json={"user": user}).raise_for_status()
    with client(server, keys["alice"]) as alice, client(server, keys["bob"]) as bob:
        assert write_run(alice, "alice", project, run_id).status_code == 200
        batch = {"keys": ["x"], "runs": [run_id]}
        assert alice.post(f"/projects/alice/{project}/series", json=batch).status_code == 200
        assert bob.post(f"/projects/alice/{project}/series", json=batch).status_code == 403
        ws = f"/projects/alice/{project}/workspace"
        assert alice.put(ws, json={"a": 1}).status_code == 200
        assert bob.get(ws).status_code == 403
        assert bob.put(ws, json={"b": 1}, params={"scope": "project"}).status_code == 403

        assert write_run(alice, team, project, run_id).status_code == 200
        ws = f"/projects/{team}/{project}/workspace"
        assert alice.put(ws, json={"mine": "alice"}).json()["user"] == "alice"
        assert bob.get(ws).json()["doc"] is None  # alice's own is not bob's
        assert bob.put(ws, params={"scope": "project"}, json={"shared": 1}).status_code == 200
        assert bob.get(ws).json()["doc"] == {"shared": 1}
        assert alice.get(ws).json()["doc"] == {"mine": "alice"}


def test_admin_routes_need_an_admin_key(server: ServerProc, keys: dict[str, str]) -> None:
    with client(server, keys["alice"]) as alice:
        for method, path, body in (
            ("GET", "/entities", None),
            ("POST", "/entities", {"name": "x", "kind": "team"}),
            ("POST", "/entities/x/members", {"user": "alice"}),
            ("GET", "/keys", None),
            ("POST", "/keys", {"user": "alice", "admin": True}),
            ("DELETE", "/keys/abc", None),
        ):
            response = alice.request(method, path, json=body)
            assert response.status_code == 403, (method, path)
            assert "admin key" in error_message(response)
    with client(server, None) as anonymous:
        assert anonymous.get("/entities").status_code == 401
    with client(server, keys["admin"]) as admin:
        made = admin.post("/keys", json={"user": "dave", "description": "ci"}).json()
        assert made["user"] == "dave" and made["admin"] is False
        entities = {e["name"]: e for e in admin.get("/entities").json()}
        assert entities["dave"]["kind"] == "user"
    with client(server, made["key"]) as dave:
        assert dave.get("/viewer").json()["user"] == "dave"


def test_only_hashes_are_stored(server: ServerProc) -> None:
    key = create_key(server.store_url, "erin")
    _, key_id, secret = key.split("_", 2)
    store = SQLStore(server.store_url, migrate=False)
    try:
        with store.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM api_keys"))]
    finally:
        store.close()
    row = next(r for r in rows if r["key_id"] == key_id)
    assert row["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    for stored in rows:
        for value in stored.values():
            assert secret not in str(value)
            assert key not in str(value)


def test_non_loopback_host_forces_auth(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'open.db'}"
    with running_server(url, host="0.0.0.0") as proc, client(proc, None) as http:
        assert http.get("/health").json()["auth"] is True
        assert http.get("/runs").status_code == 401
    result = CliRunner().invoke(
        main, ["server", "--store", url, "--host", "0.0.0.0", "--no-auth", "--port", "1"]
    )
    assert result.exit_code != 0
    assert "--no-auth is only allowed on a loopback host" in result.output


def test_loopback_server_without_auth_flag_is_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'local.db'}"
    with running_server(url) as proc, client(proc, None) as http:
        assert http.get("/health").json()["auth"] is False
        assert write_run(http, "anyone", "p", "r").status_code == 200


def test_cli_keys_and_entities(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()

    created = runner.invoke(
        main, ["server", "keys", "create", "--user", "frank", "--admin", "--store", url]
    )
    assert created.exit_code == 0, created.output
    key = created.output.strip().splitlines()[-1]
    assert key.startswith("ry_")
    listed = runner.invoke(main, ["server", "keys", "list", "--store", url])
    assert listed.exit_code == 0 and "frank" in listed.output and key not in listed.output

    team = runner.invoke(main, ["server", "entities", "create", "ml", "--store", url])
    assert team.exit_code == 0, team.output
    added = runner.invoke(main, ["server", "entities", "add-member", "ml", "gina", "--store", url])
    assert added.exit_code == 0 and "gina (member)" in added.output
    missing = runner.invoke(
        main, ["server", "entities", "add-member", "nope", "gina", "--store", url]
    )
    assert missing.exit_code != 0 and "no team 'nope'" in missing.output
    shown = runner.invoke(main, ["server", "entities", "list", "--format", "json", "--store", url])
    doc = {e["name"]: e for e in orjson.loads(shown.output)}
    assert doc["ml"]["kind"] == "team" and doc["ml"]["members"] == [
        {"user": "gina", "role": "member"}
    ]
    assert doc["frank"]["kind"] == "user" and doc["gina"]["kind"] == "user"

    with running_server(url, auth=True) as proc:
        with client(proc, key) as http:
            assert http.get("/viewer").json() == {
                "user": "frank",
                "admin": True,
                "entities": ["frank", "gina", "ml"],
            }
        revoked = runner.invoke(main, ["server", "keys", "revoke", key, "--store", url])
        assert revoked.exit_code == 0, revoked.output
        with client(proc, key) as http:
            assert http.get("/viewer").status_code == 401
    bad = runner.invoke(main, ["server", "keys", "create", "--user", "no/slash", "--store", url])
    assert bad.exit_code != 0 and "invalid user name" in bad.output
    http_store = runner.invoke(main, ["server", "keys", "list", "--store", "http://x:1"])
    assert http_store.exit_code != 0 and "server URL" in http_store.output
