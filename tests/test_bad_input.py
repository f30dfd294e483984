"""Bad input a user causes (issue 14): `runyard ui` with a mistyped --dir, in a folder without
a store, on a taken port; an agent started in the wrong folder; a misspelled state in a
filter; a short or mistyped run id; `runyard server entities create` of a new team."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import runyard
from runyard.api import Api
from runyard.cli import main
from runyard.server.cli import check_port


def invoke(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, list(args), input=input)


def test_ui_refuses_a_missing_dir_and_a_folder_without_a_store(tmp_path: Path) -> None:
    typo = tmp_path / "typo" / "deeper"
    result = invoke("ui", "--no-browser", "--dir", str(typo))
    assert result.exit_code != 0 and "does not exist" in result.output
    assert "--create" in result.output and not (tmp_path / "typo").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = invoke("ui", "--no-browser", "--dir", str(empty))
    assert result.exit_code != 0 and "holds no runyard store" in result.output
    assert list(empty.iterdir()) == []
    # no --dir, and no .runyard here or above: refused, nothing made
    result = invoke("ui", "--no-browser")
    assert result.exit_code != 0 and "no .runyard folder in" in result.output
    assert not (tmp_path / ".runyard").exists()


def test_ui_on_a_taken_port_says_so_before_any_url(tmp_path: Path, shared_server: Any) -> None:
    with runyard.init(project="p"):
        pass  # a store here, so that only the port is wrong
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("ui", "--no-browser", "--port", str(port))
    assert result.exit_code != 0 and f"port {port} on 127.0.0.1 is taken" in result.output
    assert "--port" in result.output and "runyard dashboard:" not in result.output
    # a runyard server there: named, and no browser (the command ends before any URL)
    result = invoke("ui", "--port", str(shared_server.port))
    assert result.exit_code != 0 and "a runyard server answers there" in result.output
    assert "runyard dashboard:" not in result.output


def test_a_port_in_time_wait_is_free_for_uvicorn() -> None:
    """The check binds as uvicorn does (SO_REUSEADDR): the connections a server just closed
    (TIME_WAIT on its port) do not make the port look taken."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server side closes first: its end is in TIME_WAIT
    client.close()
    listener.close()
    assert check_port("127.0.0.1", port) is None
    plain = socket.socket()
    try:  # without SO_REUSEADDR the same bind fails: the check above is not vacuous
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    finally:
        plain.close()


def test_agent_in_the_wrong_folder_starts_nothing(tmp_path: Path) -> None:
    program = tmp_path / "project"
    program.mkdir()
    (program / "train.py").write_text("import runyard\nrunyard.init().finish()\n")
    store = Api().store
    sweep = store.create_sweep(
        sweep_id="wrongdir", entity="e", project="p", name=None, description=None,
        method="grid", seed=0,
        config={
            "program": "train.py",
            "method": "grid",
            "command": ["${env}", "${interpreter}", "${program}", "${args_hydra}"],
            "parameters": {"lr": {"values": [0.1, 0.2]}},
        },
    )  # fmt: skip
    result = invoke("agent", "e/p/wrongdir", "--count", "1")
    assert result.exit_code != 0, result.output
    assert "'train.py' is not in" in result.output and "cd <that folder>" in result.output
    assert store.sweep_trials(sweep.id) == []  # no failed run counted, none fed the search
    with store.sweep_transaction(sweep.id) as tx:
        assert tx.agents() == []  # and no agent registered


def test_filter_values_and_run_ids(tmp_path: Path, shared_server: Any) -> None:
    ids = []
    for name in ("alpha", "beta"):
        with runyard.init(project="bad", name=name) as run:
            run.log({"x": 1})
        ids.append(run.id)
    result = invoke("runs", "ls", "-f", "state = finshed")
    assert result.exit_code != 0
    assert "did you mean 'finished'" in result.output and "pending, running" in result.output
    result = invoke("runs", "ls", "-f", "state in [running, done]")
    assert result.exit_code != 0 and "'done' is not a run state" in result.output
    assert "2 run(s)" in invoke("runs", "ls", "-f", "state != crashed").output
    response = httpx.get(f"{shared_server.api}/runs", params={"filter": "state = finshed"})
    assert response.status_code == 422 and "finished" in response.json()["error"]["message"]

    shown = invoke("runs", "show", ids[0][:4])
    assert shown.exit_code == 0 and "alpha" in shown.output
    result = invoke("runs", "show", "beta")
    assert result.exit_code != 0 and f"did you mean {ids[1]}" not in result.output
    assert ids[1] in result.output and "(beta)" in result.output  # a run so named
    result = invoke("runs", "show", ids[0][:-1] + "?")
    assert result.exit_code != 0 and ids[0] in result.output  # an id that starts alike


def test_entities_create_says_created_for_a_new_team(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    first = invoke("server", "entities", "create", "vision-team", "--store", url)
    assert first.exit_code == 0 and "created team vision-team" in first.output
    again = invoke("server", "entities", "create", "vision-team", "--store", url)
    assert again.exit_code == 0 and "exists already" in again.output
