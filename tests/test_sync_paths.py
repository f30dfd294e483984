"""``runyard sync PATH...`` as W&B users type ``wandb sync DIR``: journal files, store folders,
journal folders, several at once; a path that is none of them is refused, saying what it
expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import runyard
from runyard.cli import main
from tests.conftest import api


def _offline_runs(folder: Path, ids: list[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    folder.mkdir()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("RUNYARD_DIR", str(folder / ".runyard"))
    for run_id in ids:
        with runyard.init(project="p", id=run_id, mode="offline") as run:
            run.log({"v": 1})
    return folder / ".runyard"


def test_sync_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _offline_runs(tmp_path / "a", ["a1", "a2"], monkeypatch)
    b = _offline_runs(tmp_path / "b", ["b1"], monkeypatch)
    target = tmp_path / "target"
    _offline_runs(target, [], monkeypatch)  # cwd: the target's folder
    (target / ".runyard").mkdir()
    monkeypatch.delenv("RUNYARD_DIR")
    journal = sorted((a / "journal").glob("*.journal"))[0]
    runner = CliRunner()
    out = runner.invoke(main, ["sync", str(journal), str(b), "--dir", str(target / ".runyard")])
    assert out.exit_code == 0, out.output
    assert "2 run(s) synced" in out.output, out.output
    out = runner.invoke(main, ["sync", str(a / "journal"), "--dir", str(target / ".runyard")])
    assert out.exit_code == 0 and "1 run(s) synced" in out.output, out.output
    stored = {r.id: r.state for r in api(target / ".runyard").runs("p")}
    assert stored == {"a1": "finished", "a2": "finished", "b1": "finished"}

    stray = tmp_path / "notes.txt"
    stray.write_text("x")
    for path, said in [
        (stray, "is not a runyard journal: expected a file ending in .journal"),
        (tmp_path / "missing", "no such file or folder"),
        (a, "holds no runyard journals to sync: expected a store folder"),
    ]:
        out = runner.invoke(main, ["sync", str(path), "--dir", str(target / ".runyard")])
        # the message wraps at the terminal's width, wherever the (long) path ends
        assert out.exit_code != 0 and said in " ".join(out.output.split()), out.output
        assert "Traceback" not in out.output
