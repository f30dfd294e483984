"""A store folder that cannot be written and a damaged ``runyard.db``: one runyard message that
says what is wrong and what to do, never the OS's or SQLAlchemy's words alone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import runyard
from runyard.sdk.state import RunFolderError
from runyard.store.sql import SQLStore


@contextmanager
def read_only_folder(path: Path) -> Iterator[Path]:
    """A read-only file system at ``path`` holding an empty ``.runyard`` folder (the test
    machine runs as root, where permission bits would not stop a write)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        (path / ".runyard").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path / ".runyard"
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_store_folder_is_one_message_naming_it_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with read_only_folder(tmp_path / "ro") as folder:
        for where, explicit_id in ((folder, None), (folder.parent / "new" / ".runyard", "ro1")):
            monkeypatch.setenv("RUNYARD_DIR", str(where))
            with pytest.raises(RunFolderError) as caught:
                runyard.init(project="p", id=explicit_id)
            message = str(caught.value)
            assert "Read-only file system" in message and str(folder.parent) in message
            assert "RUNYARD_DIR=" in message
            assert isinstance(caught.value, OSError)  # `except OSError` still catches it
            assert runyard.run is None


def _damage(db: Path) -> None:
    """Overwrite the schema page: SQLite reports 'database disk image is malformed'."""
    with open(db, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\xab" * 3996)


def _cli(*args: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from runyard.cli import main

    result = CliRunner().invoke(main, list(args))
    return result.exit_code, " ".join(result.output.split())  # the terminal width wraps it


def test_a_damaged_database_is_one_message_and_the_journal_keeps_the_run(
    root: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from runyard import store as store_module

    with runyard.init(project="p") as first:
        first.log({"x": 0})
    db = root / "runyard.db"
    for key in [k for k in store_module._OPEN if k[0].endswith(str(db))]:
        store_module._OPEN.pop(key).close()  # the last connection checkpoints the WAL
    _damage(db)

    code, said = _cli("runs", "ls", "--dir", str(root))
    assert code != 0 and "Traceback" not in said
    assert "is damaged (SQLite: database disk image is malformed)" in said
    assert f"runyard sync --dir {root}` then applies the journals" in said

    # Training goes on; nothing is quarantined; finish() does not wait out its timeout.
    run = runyard.init(project="p", id="after1", settings=runyard.Settings(finish_timeout=60))
    for i in range(5):
        run.log({"x": i})
    run.finish()
    err = " ".join(capfd.readouterr().err.split())
    assert "is damaged" in err and "did not reach the store" in err
    assert "quarantine" not in err and "Traceback" not in err
    assert len(list((root / "journal").glob("after1-*.journal"))) == 1

    db.rename(root / "runyard.db.damaged")  # "move it aside to start an empty store"
    code, said = _cli("sync", "--dir", str(root))
    assert code == 0 and "1 run(s) synced" in said, said
    store = SQLStore(f"sqlite:///{db}")
    try:
        stored = store.find_run(first.entity, "p", "after1")
        assert stored is not None and stored.state == "finished"
        assert [row["x"] for row in store.history(stored.pk)] == list(range(5))
    finally:
        store.close()
