"""The Hydra job callback (``hydra/callbacks=runyard``): real Hydra apps, run as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from runyard.integrations.hydra._context import return_value_summary
from tests.conftest import api

CONFIG = """
defaults:
  - model: small
  - _self_
lr: 0.1
name: exp-${model.units}
"""

APP_WITHOUT_INIT = """
import hydra


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg):
    if cfg.lr == 0.5:
        raise ValueError(f"diverged at lr={cfg.lr}")
    return cfg.lr * 10


if __name__ == "__main__":
    main()
"""

APP_WITH_INIT = """
import os
import hydra
import runyard as wandb


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg):
    wandb.init(project="p", config={"extra": {"seed": 7}})
    wandb.log({"loss": cfg.lr, "pid": os.getpid()})
    if cfg.lr == 0.5:
        raise ValueError(f"diverged at lr={cfg.lr}")
    return {"best": {"loss": cfg.lr / 2}, "epochs": 3}


if __name__ == "__main__":
    main()
"""


def _app(tmp_path: Path, code: str, config: str = CONFIG) -> None:
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "config.yaml").write_text(textwrap.dedent(config))
    (tmp_path / "conf" / "model" / "small.yaml").write_text("units: 4\n")
    (tmp_path / "conf" / "model" / "big.yaml").write_text("units: 64\n")
    (tmp_path / "main.py").write_text(textwrap.dedent(code))


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, rc: int = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "main.py", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            "PATH": "/usr/bin:/bin",
            "RUNYARD_SILENT": "true",
            "RUNYARD_DISABLE_GIT": "true",
            "HYDRA_FULL_ERROR": "1",
            **(env or {}),
        },
        check=False,
    )
    assert proc.returncode == rc, proc.stderr
    return proc


def _runs(root: Path) -> list[Any]:
    return api(root).runs(order="created_at")


def _by_lr(runs: list[Any]) -> dict[float, Any]:
    return {r.config["lr"]: r for r in runs}


# -- return values -------------------------------------------------------------------------------


def test_return_value_summary_rules() -> None:
    np = pytest.importorskip("numpy")
    from omegaconf import OmegaConf

    assert return_value_summary(0.5) == {"return_value": 0.5}
    assert return_value_summary(np.float32(2.0)) == {"return_value": 2.0}
    assert return_value_summary(True) == {"return_value": True}
    assert return_value_summary((0.1, 3)) == {"return_value": [0.1, 3]}
    assert return_value_summary({"val": {"acc": 0.9}, "loss": 1}) == {"val/acc": 0.9, "loss": 1}
    assert return_value_summary(OmegaConf.create({"a": {"b": 2}})) == {"a/b": 2}
    assert return_value_summary(None) == {}
    assert return_value_summary(object()) == {}
    assert return_value_summary([object()]) == {}


# -- single jobs ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_single_job_without_init_is_one_finished_run(tmp_path: Path, root: Path) -> None:
    _app(tmp_path, APP_WITHOUT_INIT)
    _run(tmp_path, "hydra/callbacks=runyard", "model=big", "lr=0.2")
    (run,) = _runs(root)
    assert run.state == "finished"
    assert run.config == {"model": {"units": 64}, "lr": 0.2, "name": "exp-64"}
    assert run.summary["return_value"] == 2.0
    assert run.group is None
    hydra = run.metadata["hydra"]
    assert hydra["overrides"] == ["model=big", "lr=0.2"]
    assert hydra["choices"]["model"] == "big"
    assert hydra["choices"]["hydra/callbacks"] == "runyard"
    assert hydra["job_name"] == "main" and hydra["mode"] == "RUN"
    output_dir = Path(hydra["output_dir"])
    assert output_dir.is_dir() and output_dir.is_relative_to(tmp_path / "outputs")
    assert hydra["cwd"] == str(tmp_path)
    files = root / "files" / run.entity / run.project / run.id / ".hydra"
    assert sorted(p.name for p in files.iterdir()) == [
        "config.yaml",
        "hydra.yaml",
        "overrides.yaml",
    ]
    assert "lr=0.2" in (files / "overrides.yaml").read_text()
    # Dated from the job's start, not from when the callback created it.
    assert run.runtime >= 0 and run.created_at <= run.record.finished_at


@pytest.mark.slow
def test_app_calling_init_gets_exactly_one_run(tmp_path: Path, root: Path) -> None:
    _app(tmp_path, APP_WITH_INIT)
    _run(tmp_path, "hydra/callbacks=runyard", "hydra.callbacks.runyard.tags=[cb]", "lr=0.3")
    (run,) = _runs(root)
    assert run.project == "p" and run.state == "finished"
    # The Hydra config under the app's own config.
    assert run.config == {
        "model": {"units": 4},
        "lr": 0.3,
        "name": "exp-4",
        "extra": {"seed": 7},
    }
    assert run.summary["loss"] == 0.3
    assert run.summary["best/loss"] == 0.15 and run.summary["epochs"] == 3
    assert run.metadata["hydra"]["overrides"] == ["lr=0.3"]
    assert run.tags == ["cb"]


@pytest.mark.slow
def test_failing_single_job_is_failed_with_traceback(tmp_path: Path, root: Path) -> None:
    _app(tmp_path, APP_WITHOUT_INIT)
    _run(tmp_path, "hydra/callbacks=runyard", "lr=0.5", rc=1)
    (run,) = _runs(root)
    assert run.state == "failed"
    assert "Traceback" in run.failure and "ValueError: diverged at lr=0.5" in run.failure
    assert "return_value" not in run.summary


@pytest.mark.slow
def test_app_finishing_its_run_keeps_it_and_skips_the_return_value(
    tmp_path: Path, root: Path
) -> None:
    code = APP_WITH_INIT.replace(
        "    if cfg.lr == 0.5:", "    wandb.finish()\n    if cfg.lr == 0.5:"
    )
    _app(tmp_path, code)
    _run(tmp_path, "hydra/callbacks=runyard")
    (run,) = _runs(root)
    assert run.state == "finished"
    assert run.summary["loss"] == 0.1 and "epochs" not in run.summary


# -- multirun ------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("code", [APP_WITH_INIT, APP_WITHOUT_INIT], ids=["init", "no-init"])
def test_basic_multirun_records_each_job_with_its_status(
    tmp_path: Path, root: Path, code: str
) -> None:
    _app(tmp_path, code)
    # The basic launcher runs all jobs in this process; Hydra raises the failure at the end.
    _run(tmp_path, "-m", "hydra/callbacks=runyard", "lr=0.1,0.5,0.3", rc=1)
    runs = _runs(root)
    assert len({r.id for r in runs}) == 3
    by_lr = _by_lr(runs)
    assert {lr: r.state for lr, r in by_lr.items()} == {
        0.1: "finished",
        0.5: "failed",
        0.3: "finished",
    }
    assert "ValueError: diverged at lr=0.5" in by_lr[0.5].failure
    assert by_lr[0.1].failure is None and by_lr[0.3].failure is None
    groups = {r.group for r in runs}
    assert len(groups) == 1
    (group,) = groups
    assert group.startswith("multirun/") and (tmp_path / group).is_dir()
    assert sorted(r.metadata["hydra"]["job_num"] for r in runs) == [0, 1, 2]
    assert by_lr[0.3].metadata["hydra"]["overrides"] == ["lr=0.3"]
    if code is APP_WITH_INIT:
        assert by_lr[0.3].summary["epochs"] == 3 and by_lr[0.3].summary["loss"] == 0.3
        assert all(r.config["extra"] == {"seed": 7} for r in runs)
    else:
        assert by_lr[0.3].summary["return_value"] == 3.0


@pytest.mark.slow
def test_joblib_multirun_in_two_workers_with_chdir(tmp_path: Path, root: Path) -> None:
    code = APP_WITHOUT_INIT.replace(
        'if __name__ == "__main__":\n',
        'if __name__ == "__main__":\n    open("main.pid", "w").write(str(__import__("os").getpid()))\n',
    )
    _app(tmp_path, code)
    _run(
        tmp_path,
        "-m",
        "hydra/callbacks=runyard",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.job.chdir=True",
        "lr=0.1,0.2,0.3,0.4",
        "model=small,big",
    )
    runs = _runs(root)
    assert len(runs) == 8 and len({r.id for r in runs}) == 8
    seen = {(r.config["lr"], r.config["model"]["units"]) for r in runs}
    assert seen == {(lr, u) for lr in (0.1, 0.2, 0.3, 0.4) for u in (4, 64)}
    for run in runs:
        assert run.state == "finished"
        assert run.summary["return_value"] == pytest.approx(run.config["lr"] * 10)
        assert run.metadata["hydra"]["choices"]["hydra/launcher"] == "joblib"
    assert len({r.group for r in runs}) == 1
    # The callback ran in the loky workers, not in the launching process.
    main_pid = int((tmp_path / "main.pid").read_text())
    assert main_pid not in {r.record.pid for r in runs}
    # chdir moved each job into its output folder; the store stayed at the project root.
    assert [p for p in tmp_path.rglob(".runyard") if p != root] == []


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.slow
def test_enabled_from_the_defaults_list_with_parameters(tmp_path: Path, root: Path) -> None:
    config = CONFIG.replace(
        "  - _self_\n", "  - _self_\n  - override hydra/callbacks: runyard\n"
    ) + textwrap.dedent(
        """
        hydra:
          job:
            chdir: true
          callbacks:
            runyard:
              project: from-config
              tags: [hydra, cb]
              save_hydra_files: false
        """
    )
    _app(tmp_path, APP_WITHOUT_INIT, config=config)
    _run(tmp_path, "lr=0.4")
    (run,) = _runs(root)
    assert run.project == "from-config" and run.tags == ["hydra", "cb"]
    assert run.state == "finished" and run.summary["return_value"] == 4.0
    assert not (root / "files").exists()
    assert [p for p in tmp_path.rglob(".runyard") if p != root] == []


@pytest.mark.slow
@pytest.mark.parametrize("code", [APP_WITH_INIT, APP_WITHOUT_INIT], ids=["init", "no-init"])
def test_a_broken_callback_setting_never_breaks_the_job(
    tmp_path: Path, root: Path, code: str
) -> None:
    _app(tmp_path, code)
    proc = _run(tmp_path, "hydra/callbacks=runyard", "hydra.callbacks.runyard.mode=bogus")
    assert "runyard (Hydra callback)" in proc.stderr and "mode='bogus'" in proc.stderr
    if code is APP_WITH_INIT:
        # The program's own run is untouched by the callback's bad parameter.
        (run,) = _runs(root)
        assert run.state == "finished" and run.summary["loss"] == 0.1
    else:
        assert not (root / "runyard.db").exists()


@pytest.mark.slow
def test_disabled_mode_records_nothing(tmp_path: Path) -> None:
    _app(tmp_path, APP_WITHOUT_INIT)
    _run(tmp_path, "hydra/callbacks=runyard", env={"RUNYARD_MODE": "disabled"})
    assert not (tmp_path / ".runyard").exists()


# -- sweeps --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("code", [APP_WITH_INIT, APP_WITHOUT_INIT], ids=["init", "no-init"])
def test_job_joins_the_sweep_run_assigned_through_env_set(
    tmp_path: Path, root: Path, code: str
) -> None:
    from runyard.store import open_store
    from runyard.store.locate import default_store_url, resolve_root

    store = open_store(default_store_url(resolve_root(root)))
    store.create_sweep(
        sweep_id="sw1",
        entity="e",
        project="p",
        name=None,
        description=None,
        method="grid",
        config={"program": "main.py", "method": "grid", "parameters": {"lr": {"values": [0.2]}}},
        seed=1,
    )
    with store.sweep_transaction("sw1") as tx:
        tx.add_trial("trial001", "trial001", {"lr": 0.2}, {"lr": 0.2}, None)
    # What a sweeper does: the assignment is in the job's env_set only, which Hydra has left
    # again when on_job_end runs.
    env_set = {
        "RUNYARD_SWEEP_ID": "sw1",
        "RUNYARD_RUN_ID": "trial001",
        "RUNYARD_SWEEP_PARAMS": json.dumps({"lr": 0.2}),
        "RUNYARD_ENTITY": "e",
        "RUNYARD_PROJECT": "p",
    }
    config = (
        CONFIG
        + "hydra:\n  job:\n    env_set:\n"
        + "".join(f"      {k}: '{v}'\n" for k, v in env_set.items())
    )
    _app(tmp_path, code, config=config)
    _run(tmp_path, "hydra/callbacks=runyard", "lr=0.2")
    (run,) = _runs(root)
    assert run.id == "trial001" and run.sweep_id == "sw1" and run.path == "e/p/trial001"
    assert run.state == "finished" and run.config["lr"] == 0.2
    if code is APP_WITHOUT_INIT:
        assert run.summary["return_value"] == 2.0
    else:
        assert run.summary["epochs"] == 3


APP_WITH_OUTPUT_DIR = """
import os
import hydra
from hydra.core.hydra_config import HydraConfig
import runyard as wandb


@hydra.main(config_path="conf", config_name="config", version_base=None)
def main(cfg):
    out = HydraConfig.get().runtime.output_dir
    run = wandb.init(project="p", dir=out, config={"lr": cfg.lr})
    with open(os.path.join(run.dir, "note.txt"), "w") as f:
        f.write(f"lr={cfg.lr}")
    wandb.log({"loss": cfg.lr})
    open(os.path.join(out, "run_dir.txt"), "w").write(run.dir)
    wandb.finish()


if __name__ == "__main__":
    main()
"""


def test_init_dir_output_dir_keeps_one_store(tmp_path: Path, root: Path) -> None:
    """The Hydra habit ``init(dir=HydraConfig.get().runtime.output_dir)``: each job's run files
    go under its output folder, while every job's run lands in the one store of the project."""
    _app(tmp_path, APP_WITH_OUTPUT_DIR)
    _run(tmp_path, "-m", "hydra.job.chdir=True", "lr=0.1,0.2")
    runs = _runs(root)
    assert sorted(r.config["lr"] for r in runs) == [0.1, 0.2]
    assert all(r.state == "finished" for r in runs)
    assert [p for p in tmp_path.rglob(".runyard") if p != root] == []  # no store per job
    written = sorted(tmp_path.glob("multirun/*/*/*/run_dir.txt"))
    assert len(written) == 2
    for marker in written:
        run_dir = Path(marker.read_text())
        assert run_dir.is_relative_to(marker.parent), (run_dir, marker.parent)
        assert (run_dir / "note.txt").read_text().startswith("lr=")
    for run in runs:
        names = [f.name for f in run.files()]
        assert "note.txt" in names, names
        assert run.file("note.txt").download(root=str(tmp_path / "dl" / run.id)) is not None
        assert (tmp_path / "dl" / run.id / "note.txt").read_text() == f"lr={run.config['lr']}"
