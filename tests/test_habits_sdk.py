"""Issue 14, the SDK half: what a W&B user's script expects of ``import runyard as wandb``.

Run fields set after init() stick (embedded, offline + sync, against a server), names agree,
the entity defaults to the API key's user and a refused key fails at init(), define_metric's
precedence, init(dir=...) as W&B's files folder, resume='must' without an id, W&B's
exception names and WANDB_* variables.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runyard
import runyard as wandb
from runyard.sdk.settings import Settings
from tests.conftest import api, run_python
from tests.serverproc import ServerProc, create_key, running_server

# -- item 1: run.name / tags / notes / group / job_type after init() ---------------------------


def test_run_fields_set_after_init_are_stored(root: Path) -> None:
    run = wandb.init(project="p", name="first", tags=["a"])
    run.name = "renamed"
    run.tags = (*run.tags, "best")
    run.notes = "tried a lower lr"
    run.group = "g1"
    run.job_type = "train"
    wandb.log({"loss": 1.0})
    wandb.finish()
    stored = api(root).run(run.path)
    assert (stored.name, stored.tags, stored.notes) == (
        "renamed",
        ["a", "best"],
        "tried a lower lr",
    )
    assert (stored.group, stored.job_type) == ("g1", "train")
    with pytest.raises(wandb.errors.UsageError, match=r"Api\(\)\.run"):
        run.name = "late"
    with pytest.raises(TypeError, match="list or tuple of strings"):
        wandb.init(project="p").tags = "one-string"


def test_offline_with_wandb_variables_then_sync(tmp_path: Path, root: Path) -> None:
    """``WANDB_MODE=offline WANDB_PROJECT=x python train.py``: offline, to project x; the
    renamed run arrives renamed with ``runyard sync``."""
    run_python(
        """
        import runyard as wandb
        run = wandb.init(config={"lr": 0.1})
        assert run.mode == "offline" and run.project == "x", (run.mode, run.project)
        run.name = "offline-renamed"
        run.tags = ["t1"]
        wandb.log({"acc": 0.5})
        wandb.finish()
        """,
        tmp_path,
        env={
            "WANDB_MODE": "offline",
            "WANDB_PROJECT": "x",
            "WANDB_NOTES": "from the environment",
            "RUNYARD_DIR": str(root),
        },
    )
    assert not (root / "runyard.db").exists()  # offline: nothing written to the store
    sync = subprocess.run(
        [sys.executable, "-m", "runyard", "sync", "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert sync.returncode == 0, sync.stderr
    [stored] = api(root).runs("x")
    assert (stored.name, stored.tags, stored.notes) == (
        "offline-renamed",
        ["t1"],
        "from the environment",
    )


# -- a server with keys: items 1 and 4 ---------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    folder = tmp_path_factory.mktemp("habits-server")
    with running_server(f"sqlite:///{folder / 'server.db'}", auth=True) as proc:
        yield proc


@pytest.fixture(scope="module")
def bob_key(auth_server: ServerProc) -> str:
    create_key(auth_server.store_url, "alice")
    return create_key(auth_server.store_url, "bob")


def test_against_a_server_entity_is_the_keys_user_and_renames_stick(
    auth_server: ServerProc, bob_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_BASE_URL", auth_server.url)
    monkeypatch.setenv("RUNYARD_API_KEY", bob_key)
    # init() asks the server within init_timeout (0.5 s by default): room for a loaded machine
    monkeypatch.setenv("RUNYARD_INIT_TIMEOUT", "30")
    run = wandb.init(project="p")
    assert run.entity == "bob"
    assert run.url == run.get_url() == f"{auth_server.url}/#/r/bob/p/{run.id}"
    run.name = "bobs-run"
    run.tags = ["x"]
    wandb.log({"loss": 0.5})
    wandb.finish()
    stored = runyard.Api(store=auth_server.url).run(run.path)
    assert (stored.entity, stored.name, stored.tags) == ("bob", "bobs-run", ["x"])


def test_a_refused_key_fails_at_init_not_at_exit(
    auth_server: ServerProc, bob_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_BASE_URL", auth_server.url)
    monkeypatch.setenv("RUNYARD_API_KEY", "ry_not_a_key")
    with pytest.raises(wandb.errors.AuthenticationError, match="RUNYARD_API_KEY"):
        wandb.init(project="p")
    # A key that may not write there (403): delivery stops at once, the journal keeps it all.
    monkeypatch.setenv("RUNYARD_API_KEY", bob_key)
    run = wandb.init(project="p", entity="alice")
    wandb.log({"loss": 1.0})
    started = time.monotonic()
    run.finish()
    assert time.monotonic() - started < 10  # not the 30 s an outage gets
    assert run._shipper is not None and isinstance(run._shipper.refused, wandb.errors.CommError)
    assert run.journal_path is not None and run.journal_path.exists()


# -- item 2: names agree ----------------------------------------------------------------------


def test_a_resumed_run_keeps_its_stored_name(root: Path) -> None:
    first = wandb.init(project="p", id="keepname")
    original = first.name
    first.finish()
    again = wandb.init(project="p", id="keepname", resume="allow")
    assert again.name == original
    again.finish()
    assert api(root).run("root/p/keepname".replace("root", again.entity)).name == original
    renamed = wandb.init(project="p", id="keepname", resume="allow", name="new-name")
    renamed.finish()
    assert api(root).run(renamed.path).name == "new-name"


def test_a_sweep_run_keeps_the_name_its_agent_printed(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_SILENT", "false")
    seen: list[str] = []

    def train() -> None:
        run = wandb.init()
        seen.append(run.name)
        wandb.log({"loss": wandb.config.x})

    sweep_id = wandb.sweep(
        {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1, 2]}}},
        project="p",
    )
    wandb.agent(sweep_id, function=train, project="p")
    printed = capsys.readouterr()
    stored = {r.name for r in api(root).runs("p")}
    assert stored == set(seen) and len(seen) == 2
    for name in seen:
        assert f"({name})" in printed.out + printed.err


# -- items 6, 7, 8 ----------------------------------------------------------------------------


def test_define_metric_exact_definition_wins_over_a_glob(root: Path) -> None:
    run = wandb.init(project="p")
    wandb.define_metric("val/acc", summary="max")
    wandb.define_metric("val/*", step_metric="epoch")
    for epoch, acc in enumerate([0.5, 0.9, 0.7]):
        wandb.log({"val/acc": acc, "val/loss": 1 - acc, "epoch": epoch})
    wandb.finish()
    summary = api(root).run(run.path).summary
    assert summary["val/acc"] == {"max": 0.9}
    assert summary["val/loss"] == pytest.approx(0.3)  # the glob has no summary: last value


def test_init_dir_is_where_run_files_go_not_the_store(tmp_path: Path, root: Path) -> None:
    out = tmp_path / "outputs" / "job1"
    run = wandb.init(project="p", dir=out)
    assert run.store_dir == str(root)
    assert run.dir is not None and Path(run.dir).is_relative_to(out)
    (Path(run.dir) / "model.txt").write_text("weights")
    run.finish()
    assert not (out / ".runyard").exists() and (root / "runyard.db").exists()
    saved = root / "files" / run.entity / "p" / run.id / "model.txt"
    assert saved.read_text() == "weights"


def test_resume_must_without_an_id_errors() -> None:
    with pytest.raises(wandb.errors.UsageError, match="resume='must' needs the id"):
        wandb.init(project="p", resume="must")
    assert wandb.run is None


# -- W&B's exception names --------------------------------------------------------------------


def test_wandb_errors_catch_runyard_errors() -> None:
    from runyard.sdk.config import ConfigError
    from runyard.store.base import RunConflictError, StoreUnavailableError
    from runyard.store.http import StoreAuthError

    assert issubclass(StoreUnavailableError, wandb.errors.CommError)
    assert issubclass(RunConflictError, wandb.errors.Error)
    assert issubclass(StoreAuthError, wandb.errors.AuthenticationError)
    assert issubclass(ConfigError, wandb.errors.UsageError) and issubclass(ConfigError, ValueError)
    try:
        raise StoreUnavailableError("down")
    except wandb.errors.CommError as exc:
        assert str(exc) == "down"


# -- WANDB_* variables -------------------------------------------------------------------------


def test_wandb_variables_fill_in_where_runyard_ones_are_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var, value in {
        "WANDB_PROJECT": "wp",
        "WANDB_ENTITY": "we",
        "WANDB_NAME": "wn",
        "WANDB_TAGS": "a,b",
        "WANDB_RUN_GROUP": "wg",
        "WANDB_JOB_TYPE": "wj",
        "WANDB_RUN_ID": "wid",
        "WANDB_RESUME": "allow",
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "wrap_emu",
        "WANDB_DIR": "/some/dir",
        "RUNYARD_PROJECT": "rp",  # a RUNYARD_* variable wins
    }.items():
        monkeypatch.setenv(var, value)
    s = Settings().resolved()
    assert (s.project, s.entity, s.run_name, s.run_tags) == ("rp", "we", "wn", "a,b")
    assert (s.run_group, s.job_type, s.run_id, s.resume) == ("wg", "wj", "wid", "allow")
    assert (s.silent, s.console, s.files_dir) == (True, "wrap", "/some/dir")
    assert Settings(project="arg").resolved().project == "arg"  # an argument wins over both
    monkeypatch.setenv("WANDB_CONSOLE", "off")
    assert Settings().resolved().console == "off"
    monkeypatch.setenv("WANDB_DISABLED", "true")
    assert Settings().resolved().mode == "disabled"


def test_wandb_base_url_and_key_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "cloud-key")
    assert Settings().resolved().api_key is None  # never sent without WANDB_BASE_URL
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    s = Settings().resolved()
    assert s.base_url is None and s.api_key is None  # W&B's cloud is not a runyard server
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    s = Settings().resolved()
    assert (s.store, s.api_key) == ("http://127.0.0.1:9", "cloud-key")
    monkeypatch.setenv("RUNYARD_BASE_URL", "http://127.0.0.1:8")
    assert Settings().resolved().api_key is None


def test_wandb_mode_offline_in_a_subprocess_is_used(tmp_path: Path, root: Path) -> None:
    env = {"WANDB_MODE": "offline", "RUNYARD_DIR": str(root)}
    out = run_python("import runyard; print(runyard.init().mode)", tmp_path, env=env)
    assert out.stdout.strip() == "offline"
    assert os.listdir(root / "journal")


# -- save with globs, log_code ----------------------------------------------------------------


def test_save_globs_base_path_and_policies(tmp_path: Path, root: Path) -> None:
    (tmp_path / "ckpt" / "sub").mkdir(parents=True)
    for name in ("a.npy", "b.npy", "sub/c.npy"):
        (tmp_path / "ckpt" / name).write_text(name)
    (tmp_path / "late.txt").write_text("v1")
    run = wandb.init(project="p")
    saved = wandb.save("ckpt/*.npy")
    assert sorted(Path(p).name for p in saved) == ["a.npy", "b.npy"]
    run.save("ckpt/**/*.npy", base_path="ckpt", policy="now")
    run.save("late.txt", policy="end")
    run.save("*.log", policy="live")  # matches nothing yet
    (tmp_path / "late.txt").write_text("v2")
    (tmp_path / "train.log").write_text("log")
    with pytest.raises(ValueError, match="policy"):
        run.save("late.txt", policy="sometimes")
    run.finish()
    files = root / "files" / run.entity / "p" / run.id
    assert (files / "ckpt" / "a.npy").exists() and (files / "sub" / "c.npy").exists()
    assert (files / "late.txt").read_text() == "v2"  # "end": the content at finish
    assert (files / "train.log").read_text() == "log"  # "live": matched by finish


def test_log_code_saves_source_files_as_a_code_artifact(tmp_path: Path, root: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "pkg" / "model.py").write_text("x = 1\n")
    (tmp_path / "notes.md").write_text("not code")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "dep.py").write_text("")
    run = wandb.init(project="p")
    artifact = run.log_code(".", exclude_fn=lambda path, root: path.endswith("model.py"))
    assert artifact is not None and artifact.type == "code"
    run.finish()
    got = wandb.Api(dir=root).artifact(f"{run.entity}/p/{artifact.name.split(':')[0]}:latest")
    assert [e.path for e in got.files()] == ["train.py"]
    assert api(root).run(run.path).metadata["wandb"]["config"]["code_path"].startswith("source-p-")


# -- runyard.plot: keys as W&B makes them ------------------------------------------------------


def test_plot_keys_nested_split_and_visualize(root: Path) -> None:
    table = wandb.Table(columns=["x", "y"], data=[[1, 2], [2, 4]])
    run = wandb.init(project="p")
    wandb.log(
        {
            "eval": {"curve": wandb.plot.line(table, "x", "y"), "acc": 0.5},
            "split": wandb.plot.scatter(table, "x", "y", split_table=True),
            "legacy": wandb.visualize("wandb/line/v0", table),
        }
    )
    with pytest.raises(wandb.errors.Error, match=r"expected a runyard\.Table"):
        wandb.plot.bar([[1, 2]], "x", "y")
    with pytest.raises(ValueError, match="2 keys for 1 y-series"):
        wandb.plot.line_series([1, 2], [[1, 2]], keys=["a", "b"])
    wandb.finish()
    stored = api(root).run(run.path)
    assert {"eval/curve_table", "Custom Chart Tables/split_table", "legacy", "eval/acc"} <= set(
        stored.summary
    )
    block = stored.metadata["wandb"]["config"]
    assert set(block["visualize"]) == {"eval/curve", "split"}
    assert block["viz"]["legacy"] == {
        "id": "wandb/line/v0",
        "historyFieldSettings": {"x-axis": "_step", "key": "legacy"},
    }


# -- runyard.login() and `runyard login` -------------------------------------------------------


def test_login_function_and_wandb_style_cli(
    auth_server: ServerProc, bob_key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runyard import credentials

    with pytest.raises(wandb.errors.AuthenticationError):
        wandb.login(key="ry_wrong", host=auth_server.url)
    assert wandb.login(key=bob_key, host=auth_server.url) is True
    assert credentials.default_server() == auth_server.url
    assert credentials.user_for(auth_server.url, bob_key) == "bob"
    assert wandb.login() is True  # the saved key, checked again
    run = wandb.init(project="p")  # the saved server and key; entity: the key's user
    assert run.entity == "bob" and run._is_server_store()
    run.finish()

    env = {**os.environ, "RUNYARD_CONFIG_DIR": str(tmp_path / "cli-config")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "runyard", "login", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    first = cli(bob_key, "--host", auth_server.url)  # W&B's form: the key, then --host
    assert first.returncode == 0 and "as bob" in first.stdout, first.stderr
    again = cli("--host", auth_server.url)
    assert "already logged in" in again.stdout and "--relogin" in again.stdout
    wrong = cli("ry_wrong", "--host", auth_server.url, "--relogin")
    assert wrong.returncode == 1 and "refused" in wrong.stderr and "Traceback" not in wrong.stderr
