"""W&B's CLI habits for sweeps: ``wandb sweep``/``wandb agent`` flags in the same positions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from runyard.api import Api
from runyard.cli import main

SWEEP = """
program: train.py
method: grid
parameters:
  lr: {values: [0.1, 0.01]}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[CliRunner, Path]:
    for name in ("RUNYARD_BASE_URL", "RUNYARD_STORE", "RUNYARD_PROJECT", "RUNYARD_ENTITY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RUNYARD_DIR", str(tmp_path / ".runyard"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweep.yaml").write_text(SWEEP)
    return CliRunner(), tmp_path


def test_wandb_sweep_and_agent_flags_in_wandb_positions(cli: tuple[CliRunner, Path]) -> None:
    runner, root = cli
    out = runner.invoke(main, ["sweep", "--project", "P", "--entity", "E", "sweep.yaml"])
    assert out.exit_code == 0, out.output
    api = Api(dir=str(root / ".runyard"))
    (record,) = api.store.list_sweeps()
    assert (record.entity, record.project) == ("E", "P")
    assert "runyard agent E/P/" in out.output and "2 grid cells" in out.output
    # --controller is answered (no controller to run), --name and --program as in W&B
    out = runner.invoke(
        main,
        ["sweep", "-p", "P", "--controller", "--name", "n2", "--program", "other.py", "sweep.yaml"],
    )
    assert out.exit_code == 0 and "runyard has no separate controller" in out.output
    named = next(s for s in api.store.list_sweeps() if s.name == "n2")
    assert named.config["program"] == "other.py"
    # state flags before or after the sweep id
    assert runner.invoke(main, ["sweep", record.id, "--pause"]).exit_code == 0
    assert api.store.get_sweep(record.id).state == "paused"  # type: ignore[union-attr]
    assert runner.invoke(main, ["sweep", "--resume", record.path]).exit_code == 0
    assert api.store.get_sweep(record.id).state == "running"  # type: ignore[union-attr]
    # W&B features runyard has not: a clear answer, nothing created
    for args, words in (
        (["--queue", "q", "sweep.yaml"], "W&B Launch"),
        (["--update", record.id, "sweep.yaml"], "--run-cap"),
    ):
        out = runner.invoke(main, ["sweep", *args])
        assert out.exit_code != 0 and words in out.output, out.output
    assert len(api.store.list_sweeps()) == 2
    # `wandb agent -p P -e E --count N ID`: a project or entity that is not the sweep's is
    # named (a matching one is accepted)
    out = runner.invoke(main, ["agent", "-p", "Q", "-e", "E", "--count", "1", record.id])
    assert out.exit_code != 0 and f"run `runyard agent {record.path}`" in out.output
    # --help shows the creation options and W&B's agent flags
    help_text = runner.invoke(main, ["sweep", "--help"]).output
    for flag in ("--project", "--entity", "--name", "--controller", "--run-cap", "--stop ID"):
        assert flag in help_text
    agent_help = runner.invoke(main, ["agent", "--help"]).output
    for flag in ("--project", "--entity", "--count", "--forward-signals"):
        assert flag in agent_help
