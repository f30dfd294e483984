"""The seed page's snippets, run as written in real Hydra apps (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import api

DEFAULTS = """
wandb:
  entity: lab
  project: seed
model:
  configs:
    units: 16
    depth: 2
  name: mlp-${model.configs.units}
lr: 0.01
"""

SNIPPET_ASSIGN = """
import hydra
import omegaconf
import runyard as wandb


class Model:
    def __init__(self, units, depth):
        self.units, self.depth = units, depth


@hydra.main(config_path="configs/", config_name="defaults")
def run_experiment(cfg):
    wandb.config = omegaconf.OmegaConf.to_container(
        cfg, resolve=True, throw_on_missing=True
    )
    wandb.init(entity=cfg.wandb.entity, project=cfg.wandb.project)
    loss = 1.0 / cfg.model.configs.units
    wandb.log({"loss": loss})
    model = Model(**wandb.config.model.configs)
    wandb.log({"units": model.units})


if __name__ == "__main__":
    run_experiment()
"""

SNIPPET_DICTCONFIG = """
import hydra
import runyard as wandb


@hydra.main(config_path="configs/", config_name="defaults", version_base=None)
def run_experiment(cfg):
    run = wandb.init(entity=cfg.wandb.entity, project=cfg.wandb.project, config=cfg)
    run.log({"loss": cfg.lr})
    wandb.init(settings=wandb.Settings(start_method="thread"))
    wandb.log({"second": 1})


if __name__ == "__main__":
    run_experiment()
"""


def _app(tmp_path: Path, code: str, defaults: str = DEFAULTS) -> Path:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "defaults.yaml").write_text(textwrap.dedent(defaults))
    (tmp_path / "main.py").write_text(textwrap.dedent(code))
    return tmp_path / "main.py"


def _run(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "RUNYARD_DISABLE_GIT": "true", "HYDRA_FULL_ERROR": "1"},
        check=False,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_config_assigned_before_init_under_hydra_chdir(tmp_path: Path, root: Path) -> None:
    _app(tmp_path, SNIPPET_ASSIGN)
    _run(tmp_path)
    # Hydra (version_base unset) changed into outputs/...; the store stays at the project root.
    assert (root / "runyard.db").exists()
    assert not list((tmp_path / "outputs").rglob(".runyard"))
    (run,) = api(root).runs("lab/seed")
    assert run.state == "finished"
    assert run.config == {
        "wandb": {"entity": "lab", "project": "seed"},
        "model": {"configs": {"units": 16, "depth": 2}, "name": "mlp-16"},
        "lr": 0.01,
    }
    assert run.summary["loss"] == 1 / 16 and run.summary["units"] == 16


def test_multirun_jobs_in_one_process_are_separate_runs(tmp_path: Path, root: Path) -> None:
    _app(tmp_path, SNIPPET_ASSIGN)
    _run(tmp_path, "-m", "model.configs.units=4,8,32")
    runs = api(root).runs("lab/seed")
    assert len({r.id for r in runs}) == 3
    by_units = {r.config["model"]["configs"]["units"]: r for r in runs}
    assert sorted(by_units) == [4, 8, 32]
    for units, run in by_units.items():
        assert run.state == "finished"
        assert run.summary["loss"] == 1 / units and run.summary["units"] == units
        assert [row["_step"] for row in run.scan_history()] == [0, 1]


def test_dictconfig_passed_directly_and_thread_start_method(tmp_path: Path, root: Path) -> None:
    _app(tmp_path, SNIPPET_DICTCONFIG)
    _run(tmp_path, "lr=0.5")
    runs = sorted(api(root).runs("lab/seed"), key=lambda r: r.created_at)
    first = runs[0]
    assert first.config["lr"] == 0.5 and first.config["model"]["name"] == "mlp-16"
    assert first.summary["loss"] == 0.5 and first.state == "finished"
    (second,) = api(root).runs("uncategorized")
    assert second.summary["second"] == 1 and second.state == "finished"


@pytest.mark.parametrize("snippet", [SNIPPET_ASSIGN, SNIPPET_DICTCONFIG])
def test_missing_value_is_reported_by_name(tmp_path: Path, snippet: str) -> None:
    _app(tmp_path, snippet, DEFAULTS.replace("lr: 0.01", "lr: ???"))
    proc = _run(tmp_path, check=False)
    assert proc.returncode != 0
    assert "lr" in proc.stderr and (
        "???" in proc.stderr or "Missing mandatory value" in proc.stderr
    )


def test_a_failing_hydra_task_marks_its_run_failed(tmp_path: Path, root: Path) -> None:
    """Hydra catches the task's exception and calls sys.exit(1); the run must still fail."""
    _app(
        tmp_path,
        SNIPPET_ASSIGN.replace(
            '    wandb.log({"units": model.units})',
            '    wandb.log({"units": model.units})\n    raise RuntimeError("diverged")',
        ),
    )
    proc = subprocess.run(
        [sys.executable, "main.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "RUNYARD_DISABLE_GIT": "true"},
        check=False,
    )
    assert proc.returncode == 1 and "diverged" in proc.stderr
    (run,) = api(root).runs("lab/seed")
    assert run.state == "failed" and run.exit_code == 1
    assert "RuntimeError: diverged" in run.failure
    assert run.summary["units"] == 16


def test_sys_exit_codes(tmp_path: Path, root: Path) -> None:
    from tests.conftest import run_python

    for rid, code in (
        ("ok0", "sys.exit(0)"),
        ("bad2", "sys.exit(2)"),
        ("msg", "sys.exit('no data')"),
    ):
        run_python(
            f"import sys, runyard\nrunyard.init(project='exit', id='{rid}')\n{code}\n",
            tmp_path,
            check=False,
        )
    runs = {r.id: r for r in api(root).runs("exit")}
    assert runs["ok0"].state == "finished"
    assert (runs["bad2"].state, runs["bad2"].exit_code) == ("failed", 2)
    assert runs["msg"].state == "failed" and "no data" in runs["msg"].failure
