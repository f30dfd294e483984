"""The ``runyard`` Hydra sweeper keeps the habits of Hydra's own sweepers (issue 13).

Each test writes a small Hydra app recreated from Hydra's examples (``examples/tutorials/basic/
running_your_hydra_app/5_basic_sweep``, ``examples/advanced/package_overrides``,
``examples/patterns/multi-select``) and sweeps it *in this process* with Hydra's own sweep runner
(the ``hydra_sweep_runner`` fixture of Hydra's pytest plugin), so no interpreter start per test;
the store is a real embedded store in the test's folder.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from omegaconf import DictConfig, OmegaConf

from runyard.api import Api
from runyard.integrations.hydra.sweeper import RunyardSweeperError
from runyard.sweeps.config import load_sweep_config

# Hydra's tutorial sweep (5_basic_sweep): a mandatory config group swept together with a key
# inside the selected option.
TUTORIAL = {
    "conf/config.yaml": """
        defaults:
          - db: ???
          - _self_

        hydra:
          sweeper:
            params:
              db: glob(*)
              db.timeout: 5,10
        """,
    "conf/db/mysql.yaml": "driver: mysql\nuser: omry\npassword: secret\ntimeout: 5\n",
    "conf/db/postgresql.yaml": "driver: postgresql\nuser: postgres_user\ntimeout: 10\n",
}

# A plain app: keys, no groups.
PLAIN = {"conf/config.yaml": "lr: 0.01\nname: a\nmodel:\n  depth: 2\n"}

# package_overrides (two_packages.yaml) and multi-select (server/apache with a site list).
PACKAGES = {
    "conf/config.yaml": """
        defaults:
          - db@source: mysql
          - server/apache
          - _self_
        """,
    "conf/db/mysql.yaml": "driver: mysql\n",
    "conf/db/sqlite.yaml": "driver: sqlite\n",
    "conf/server/apache.yaml": "defaults:\n  - site:\n      - fb\n      - google\n\nhost: localhost\n",
    "conf/server/site/fb.yaml": "fb:\n  domain: facebook.com\n",
    "conf/server/site/google.yaml": "google:\n  domain: google.com\n",
    "conf/server/site/amazon.yaml": "amazon:\n  domain: amazon.com\n",
}


class Jobs:
    """The task function: records what each job saw (its config, resolved, and the
    ``RUNYARD_*`` assignment Hydra set around it) and returns ``result(cfg)``."""

    def __init__(self, result: Callable[[DictConfig], Any] = lambda cfg: None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.result = result

    def __call__(self, cfg: DictConfig) -> Any:
        self.seen.append(
            {
                "cfg": OmegaConf.to_container(cfg, resolve=True),
                "run_id": os.environ.get("RUNYARD_RUN_ID"),
                "params": json.loads(os.environ.get("RUNYARD_SWEEP_PARAMS") or "null"),
            }
        )
        return self.result(cfg)


@pytest.fixture
def app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hydra_restore_singletons: None
) -> Iterator[Callable[[dict[str, str]], Path]]:
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("RUNYARD_SILENT", "true")
    monkeypatch.setenv("RUNYARD_DISABLE_GIT", "true")

    def write(files: dict[str, str]) -> Path:
        root = tmp_path / "app"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        return root

    yield write


def sweep(
    runner: Any, root: Path, *overrides: str, task: Jobs | None = None, folder: str = "multirun"
) -> dict[str, Any]:
    """Run the sweep; returns its ``optimization_results.yaml`` (read before Hydra's runner
    removes the sweep folder)."""
    with runner(
        calling_file=str(root / "my_app.py"),
        calling_module=None,
        task_function=task or Jobs(),
        config_path="conf",
        config_name="config",
        # Hydra's logging setup would take the log records away from pytest's caplog
        overrides=[
            "hydra/sweeper=runyard",
            "hydra/job_logging=none",
            "hydra/hydra_logging=none",
            *overrides,
        ],
        temp_dir=root / folder,
    ) as run:
        path = Path(str(run.temp_dir)) / "optimization_results.yaml"
        return yaml.safe_load(path.read_text()) if path.exists() else {}


def the_sweep(root: Path) -> tuple[Any, list[Any]]:
    api = Api(dir=str(root.parent / "store"))
    (record,) = api.store.list_sweeps()
    return record, api.store.sweep_trials(record.id)


def test_hydras_tutorial_sweep_groups_and_keys_inside_default_grid_composed_once(
    app: Callable[[dict[str, str]], Path],
    hydra_sweep_runner: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Items 1, 7, 9 and 10 on Hydra's own tutorial app: ``db`` (a mandatory group) swept with
    ``db.timeout`` (a key of the chosen option); no method given and a finite space, so a grid
    of its 4 cells, said in the log; each trial's config composed once (the launcher reuses
    the sweeper's composition); job lines without runyard's variables."""
    root = app(TUTORIAL)
    composed: dict[str, int] = {}
    real = ConfigLoaderImpl.load_sweep_config

    def counting(self: ConfigLoaderImpl, master: DictConfig, overrides: list[str]) -> Any:
        for text in overrides:
            if text.startswith("hydra.job.env_set.RUNYARD_RUN_ID="):
                composed[text] = composed.get(text, 0) + 1
        return real(self, master, overrides)

    monkeypatch.setattr(ConfigLoaderImpl, "load_sweep_config", counting)
    caplog.set_level(logging.INFO)
    jobs = Jobs()
    results = sweep(hydra_sweep_runner, root, task=jobs)

    record, trials = the_sweep(root)
    assert record.method == "grid" and "run_cap" not in record.config
    assert "no method given and every parameter is a finite set of values: a grid sweep of 4" in (
        caplog.text
    )
    assert [t.params for t in trials] == [
        {"db": "mysql", "db.timeout": 5},
        {"db": "mysql", "db.timeout": 10},
        {"db": "postgresql", "db.timeout": 5},
        {"db": "postgresql", "db.timeout": 10},
    ]
    assert {t.state for t in trials} == {"finished"}
    # each job got the chosen option's content with the swept key inside it
    by_run = {job["run_id"]: job for job in jobs.seen}
    for trial in trials:
        job = by_run[trial.run_id]
        assert job["cfg"]["db"]["driver"] == trial.params["db"]
        assert job["cfg"]["db"]["timeout"] == trial.params["db.timeout"]
        # the run's config holds the keys; the group's value is an option name, not content
        assert job["params"] == {"db": {"timeout": trial.params["db.timeout"]}}
    # composed once per trial (before: once to check the overrides, once in the launcher)
    assert sorted(composed.values()) == [1, 1, 1, 1]
    # job lines carry the trial's overrides only
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("\t#")]
    assert lines == [
        "\t#0 : db=mysql db.timeout=5",
        "\t#1 : db=mysql db.timeout=10",
        "\t#2 : db=postgresql db.timeout=5",
        "\t#3 : db=postgresql db.timeout=10",
    ]
    # the stored sweep is a valid sweep.yaml: a group and a key inside it, for ${args_hydra}
    stored = load_sweep_config(record.config)
    assert stored.parameters.names == ["db", "db.timeout"]
    run = Api(dir=str(root.parent / "store")).store.find_run(
        record.entity, record.project, trials[0].run_id
    )
    assert run is not None and run.config["db"]["driver"] == "mysql"
    assert results["method"] == "grid" and results["states"] == {"finished": 4}


def test_a_typo_in_a_swept_key_fails_before_any_job_and_plus_adds_on_purpose(
    app: Callable[[dict[str, str]], Path],
    hydra_sweep_runner: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Item 2 (a misspelt key fails before any job, naming the closest key; ``+key`` adds a
    key without a warning) and item 3 (``'${lr}'`` is resolved in the job, as Hydra does)."""
    root = app(PLAIN)
    jobs = Jobs()
    with pytest.raises(RunyardSweeperError) as error:
        sweep(hydra_sweep_runner, root, "model.dpeth=3,4", task=jobs)
    assert "model.dpeth: not a key of the app's config (did you mean model.depth?)" in str(
        error.value
    )
    assert "+model.dpeth" in str(error.value)  # the fix, for a key added on purpose
    assert jobs.seen == [] and not Api(dir=str(root.parent / "store")).store.list_sweeps()

    caplog.set_level(logging.WARNING)
    jobs = Jobs(lambda cfg: cfg.lr)
    sweep(hydra_sweep_runner, root, "+model.width=3,4", "name='${lr}',plain", task=jobs)
    assert "not in the app's composed config" not in caplog.text
    _, trials = the_sweep(root)
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    by_run = {job["run_id"]: job for job in jobs.seen}
    for trial in trials:
        job = by_run[trial.run_id]
        assert job["cfg"]["model"] == {"depth": 2, "width": trial.params["model.width"]}
        if trial.params["name"] == "${lr}":
            # the job sees the interpolation resolved, and so does the run's config
            assert job["cfg"]["name"] == 0.01
            assert job["params"]["name"] == 0.01
        else:
            assert job["cfg"]["name"] == job["params"]["name"] == "plain"


def test_groups_with_a_package_and_multi_select_groups(
    app: Callable[[dict[str, str]], Path], hydra_sweep_runner: Any
) -> None:
    """Item 4: ``db@source`` (in the defaults list), ``db@backup`` (not in it) and the
    multi-select ``server/site`` (selected inside ``server/apache``) are swept."""
    root = app(PACKAGES)
    jobs = Jobs()
    sweep(
        hydra_sweep_runner,
        root,
        "db@source=mysql,sqlite",
        "db@backup=choice(sqlite)",
        "server/site=[amazon],[fb,google]",
        task=jobs,
    )
    record, trials = the_sweep(root)
    assert set(record.config["parameters"]) == {"db@source", "db@backup", "server/site"}
    assert len(trials) == 4 and {t.state for t in trials} == {"finished"}
    by_run = {job["run_id"]: job for job in jobs.seen}
    seen = set()
    for trial in trials:
        cfg = by_run[trial.run_id]["cfg"]
        assert cfg["source"] == {"driver": trial.params["db@source"]}
        assert cfg["backup"] == {"driver": "sqlite"}
        assert sorted(cfg["server"]["site"]) == sorted(trial.params["server/site"])
        seen.add((trial.params["db@source"], tuple(trial.params["server/site"])))
    assert len(seen) == 4


def test_sweeper_params_given_on_the_command_line(
    app: Callable[[dict[str, str]], Path], hydra_sweep_runner: Any
) -> None:
    """Item 5: ``hydra.sweeper.params={...}`` on the command line, no params in the config."""
    root = app(PLAIN)
    jobs = Jobs(lambda cfg: cfg.lr)
    sweep(hydra_sweep_runner, root, "hydra.sweeper.params={lr:'0.1,0.2'}", task=jobs)
    record, trials = the_sweep(root)
    assert record.method == "grid" and sorted(t.params["lr"] for t in trials) == [0.1, 0.2]
    assert sorted(job["cfg"]["lr"] for job in jobs.seen) == [0.1, 0.2]


def test_a_fresh_store_prints_no_alembic_lines(tmp_path: Path) -> None:
    """Item 10: a first job on a fresh store, with Hydra's root logger at INFO, used to print
    seven Alembic INFO lines (its plugins log as they are imported)."""
    code = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from runyard.store.sql import SQLStore\n"
        "SQLStore(sys.argv[1]).close()\n"
    )
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    proc = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "fresh.db").exists() and "alembic" not in proc.stderr.lower()
