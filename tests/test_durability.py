"""Nothing acknowledged is lost: full disks, values the store cannot hold, poisoned journals.

A record whose ``log()`` returned must end up in the store exactly once, whatever the disk or
the store does; a value ``log()`` refuses never reaches the journal; a record the store can
never apply is set aside (quarantined) while every other record of the run is applied.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

import runyard
from runyard.sdk.journal import read_journal
from runyard.store.base import JournalBatch
from runyard.store.sql import SQLStore
from tests.conftest import REPO, run_python
from tests.serverproc import ServerProc, running_server


def stored_values(store_or_api: Any, entity: str, project: str, run_id: str, key: str) -> list[Any]:
    store = getattr(store_or_api, "store", store_or_api)
    run = store.find_run(entity, project, run_id)
    assert run is not None, f"run {run_id} is not in the store"
    return [row[key] for row in store.history(run.pk) if key in row]


def open_root_store(root: Path) -> SQLStore:
    return SQLStore(f"sqlite:///{root / 'runyard.db'}")


# -- values log() refuses never reach the journal -------------------------------------------------


BAD_VALUES: list[tuple[str, dict[str, Any], str]] = [
    ("empty name", {"": 2.0}, "empty metric name"),
    ("empty nested name", {"a": {"": 2.0}}, "ends empty"),
    ("long name", {"k" * 600: 1.0}, "600 characters"),
    ("deep", {}, "nested more than"),  # filled below: 300 levels
    ("too many keys", {f"k{i}": i for i in range(10_001)}, "10,001 values"),
    ("huge string", {"text": "x" * (2 << 20)}, "text"),
    ("NUL", {"s": "a\x00b"}, "NUL"),
    ("duration", {"took": datetime.timedelta(seconds=3)}, "total_seconds()"),
    ("complex", {"z": 1 + 2j}, "z/real"),
    ("too big int", {"n": 10**400}, "too large even for a float"),
]
_deep: dict[str, Any] = {"leaf": 1.0}
for _ in range(300):
    _deep = {"d": _deep}
BAD_VALUES[3] = ("deep", _deep, "nested more than")


def test_values_log_refuses_name_the_key_and_never_reach_the_journal(root: Path) -> None:
    run = runyard.init(project="p", id="refused1", settings=runyard.Settings(mode="offline"))
    run.log({"x": 0})
    for name, data, expected in BAD_VALUES:
        with pytest.raises((ValueError, TypeError)) as info:
            run.log(data)
        assert expected in str(info.value), (name, str(info.value))
        assert "Recursion" not in str(info.value)
    # A commit=False row that would pass the keys-per-row limit once merged is refused too.
    run.log({f"a{i}": i for i in range(6_000)}, commit=False)
    with pytest.raises(ValueError, match="10,000"):
        run.log({f"b{i}": i for i in range(6_000)})
    run.log({"x": 1})  # the run goes on
    journal = run.journal_path
    assert journal is not None
    run.finish()
    records = list(read_journal(journal))
    rows = [p for _, kind, p in records if kind == "row"]
    assert [r.get("x") for r in rows if "x" in r] == [0, 1]
    assert not any("b0" in r or "" in r or "text" in r for r in rows)
    assert "a5999" in rows[-1]  # what commit=False accepted stays, merged into the next row

    from runyard.sdk.recovery import recover_journals

    store = open_root_store(root)
    assert [r.state for r in recover_journals(root, store, include_offline=True)] == ["finished"]
    assert stored_values(store, run.entity, "p", "refused1", "x") == [0, 1]


def test_ints_beyond_64_bits_and_the_run_around_them_are_stored(root: Path) -> None:
    """The reported case: a big int kept a whole run (0 runs, 0 metrics) out of the store."""
    run = runyard.init(project="p", id="bigint01")
    run.log({"x": 1})
    run.log({"b": 10**30})
    run.log({"x": 2})
    started = time.monotonic()
    run.finish()
    assert time.monotonic() - started < 10  # finish() did not wait out its 30 s timeout
    store = open_root_store(root)
    assert stored_values(store, run.entity, "p", "bigint01", "x") == [1, 2]
    assert stored_values(store, run.entity, "p", "bigint01", "b") == [1e30]
    stored = store.find_run(run.entity, "p", "bigint01")
    assert stored is not None and stored.state == "finished"
    assert stored.summary["b"] == 1e30


# -- records the store cannot apply are quarantined, the rest is applied ---------------------------


def _poison(run: runyard.Run) -> None:
    """A row no store can apply (its step is not a number): what a bug or an edit would write.
    Written straight to the journal, past log()'s checks."""
    run._append("row", {"_step": "not-a-step", "_runtime": 0.0, "_timestamp": time.time(), "y": 1})


@pytest.fixture(scope="module")
def small_body_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    """A server taking bodies of at most 1 MiB (so that big batches meet its 413)."""
    folder = tmp_path_factory.mktemp("server-small-body")
    with running_server(
        f"sqlite:///{folder / 'store.db'}",
        extra_args=["--files-root", str(folder / "files"), "--max-body-mb", "1"],
    ) as proc:
        yield proc


@pytest.mark.parametrize("backend", ["embedded", "server"])
def test_a_record_the_store_cannot_apply_is_set_aside_and_the_run_is_stored(
    backend: str,
    root: Path,
    small_body_server: ServerProc,
    capfd: pytest.CaptureFixture[str],
) -> None:
    run_id = f"poison{uuid.uuid4().hex[:6]}"
    settings = runyard.Settings(store=small_body_server.url) if backend == "server" else None
    run = runyard.init(project="p", id=run_id, settings=settings)
    for i in range(50):
        run.log({"x": i})
    _poison(run)
    for i in range(50, 100):
        run.log({"x": i})
    journal = run.journal_path
    assert journal is not None
    started = time.monotonic()
    run.finish()
    assert time.monotonic() - started < 15  # set aside, not retried until the timeout
    err = capfd.readouterr().err
    assert "cannot be stored" in err and "every other record of the run is stored" in err

    store = runyard.Api(dir=root, store=settings.store if settings else None).store
    assert stored_values(store, run.entity, "p", run_id, "x") == list(range(100))
    stored = store.find_run(run.entity, "p", run_id)
    assert stored is not None and stored.state == "finished"
    assert stored.meta["quarantined_count"] == 1
    assert stored.meta["quarantined"][0]["kind"] == "row"
    kept = (journal.parent / "quarantine" / journal.name).read_bytes().splitlines()
    assert len(kept) == 1 and orjson.loads(kept[0])["record"][2]["_step"] == "not-a-step"
    assert not journal.exists()  # everything else is in the store: the journal was retired


def test_batches_the_server_refuses_as_too_large_are_split(
    root: Path, small_body_server: ServerProc
) -> None:
    """Rows of 0.6 MB strings: a batch of several meets the server's 1 MiB limit (413)."""
    run = runyard.init(
        project="p",
        id=f"big{uuid.uuid4().hex[:6]}",
        settings=runyard.Settings(store=small_body_server.url),
    )
    for i in range(6):
        run.log({"i": i, "text": chr(65 + i) * 600_000})
    run.finish()
    store = runyard.Api(store=small_body_server.url).store
    assert stored_values(store, run.entity, "p", run.id, "i") == list(range(6))
    texts = stored_values(store, run.entity, "p", run.id, "text")
    assert [t[0] for t in texts] == list("ABCDEF") and {len(t) for t in texts} == {600_000}


def _journal_lines(header: dict[str, Any], records: list[Any]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in [[1, "run", header], *records])


def _sync(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runyard", "sync", "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        check=False,
    )


def test_sync_applies_a_damaged_journal_and_reports_what_it_set_aside(root: Path) -> None:
    """A journal edited by hand: a damaged line in the middle, a record no store can apply."""
    folder = root / "journal"
    folder.mkdir(parents=True)
    header = {
        "entity": "e",
        "project": "p",
        "run_id": "edited01",
        "journal_id": "j-edited01",
        "name": "edited",
        "start_time": 1000.0,
        "mode": "offline",
    }

    def row(seq: int, step: int) -> list[Any]:
        return [
            seq,
            "row",
            {"_step": step, "_runtime": 1.0, "_timestamp": 1000.0 + step, "x": step},
        ]

    records = [
        row(2, 0),
        row(3, 1),
        [4, "row", {"_step": "bad", "x": 99}],
        row(5, 2),
        row(6, 3),
        row(7, 4),
        [8, "finish", {"state": "finished", "exit_code": 0, "time": 1010.0, "runtime": 10.0}],
    ]
    data = _journal_lines(header, records)
    cut = data.index(b'[5,"row"')
    data = data[:cut] + b'[77,"row",{"_st\n' + data[cut:]  # a torn fragment, closed
    (folder / "edited01-j-edited01.journal").write_bytes(data)

    proc = _sync(root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 record(s) set aside" in proc.stdout
    store = open_root_store(root)
    assert stored_values(store, "e", "p", "edited01", "x") == [0, 1, 2, 3, 4]
    run = store.find_run("e", "p", "edited01")
    assert run is not None and run.state == "finished"


def test_sync_fails_with_a_non_zero_exit_for_a_journal_the_store_refuses(root: Path) -> None:
    folder = root / "journal"
    folder.mkdir(parents=True)
    store = open_root_store(root)
    store.ensure_schema()
    header = {"entity": "e", "project": "p", "run_id": "taken001", "start_time": 1.0}
    store.apply(JournalBatch("first", {**header, "journal_id": "first"}, [(1, "run", {})]))
    # A second journal for the same id that does not resume it: the store refuses the run.
    (folder / "taken001-second.journal").write_bytes(
        _journal_lines(
            {**header, "journal_id": "second", "mode": "offline"},
            [[2, "row", {"_step": 0, "x": 1}]],
        )
    )
    proc = _sync(root)
    assert proc.returncode != 0
    assert "could not be applied" in proc.stderr and "already exists" in proc.stderr
    assert "still running" not in proc.stdout
    assert (folder / "taken001-second.journal").exists()


def test_many_new_metric_names_in_one_batch(store: SQLStore) -> None:
    """More names than PostgreSQL's 65,535 parameters per statement, in one batch."""
    header = {"entity": "e", "project": "p", "run_id": "wide0001", "start_time": 1.0}
    records = [
        (seq + 2, "row", {"_step": seq, **{f"m{seq}/{i}": float(i) for i in range(33_000)}})
        for seq in range(2)
    ]
    store.apply(JournalBatch("wide", header, [(1, "run", {}), *records]))
    run = store.find_run("e", "p", "wide0001")
    assert run is not None
    assert len(store.metric_names(run.pk)) == 66_000


# -- a journal whose disk refuses writes ----------------------------------------------------------


def test_short_writes_and_a_full_file_lose_no_acknowledged_record(tmp_path: Path) -> None:
    """The kernel's own file-size limit (RLIMIT_FSIZE): writes come back short, then fail
    with EFBIG, exactly as on a full disk. Records wait in memory and reach the file whole
    once it takes writes again; the journal's framing stays intact."""
    code = """
        import resource, signal, os, sys
        import runyard
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = runyard.init(project="p", id="fsize001", mode="offline")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(run.journal_path) + 20_003, hard))
        for i in range(3000):
            run.log({"i": i, "pad": "x" * 40})
        assert run._journal.blocked is not None, "the limit was never reached"
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        for i in range(3000, 4000):
            run.log({"i": i, "pad": "x" * 40})
        run.finish()
    """
    proc = run_python(code, tmp_path, env={"RUNYARD_CONSOLE": "off"})
    assert "cannot write the journal" in proc.stderr and "File too large" in proc.stderr
    assert "writable again" in proc.stderr and "nothing was lost" in proc.stderr
    journal = next((tmp_path / ".runyard" / "journal").glob("*.journal"))
    damaged: list[bytes] = []
    rows = [p["i"] for _, k, p in read_journal(journal, damaged) if k == "row"]
    assert rows == list(range(4000))
    assert len(damaged) <= 1  # the fragment of the write that came back short, closed

    proc = _sync(tmp_path / ".runyard")
    assert proc.returncode == 0, proc.stderr
    store = open_root_store(tmp_path / ".runyard")
    run = store.find_run(_user(), "p", "fsize001")
    assert run is not None and run.state == "finished"
    assert [r["i"] for r in store.history(run.pk)] == list(range(4000))


def _user() -> str:
    import getpass

    return getpass.getuser()


# -- a real small disk (tmpfs) ----------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` mounted at ``path`` (the test machine runs as root)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


TRAIN_ON_SMALL_DISK = """
    import os, sys, time
    import runyard
    steps, free_at = int(sys.argv[1]), int(sys.argv[2])
    ballast = os.path.join(os.environ["SMALL_DISK"], "ballast")
    run = runyard.init(project="p", id="fulldisk")
    blocked_at = None
    for i in range(steps):
        run.log({"i": i, "loss": 1.0 / (i + 1), "tag": "step-%d" % i})
        if blocked_at is None and run._journal.blocked is not None:
            blocked_at = i
        if i == free_at and os.path.exists(ballast):
            os.remove(ballast)
    run.finish()
    print("blocked at", blocked_at)
"""


@pytest.mark.slow
def test_a_disk_that_fills_during_logging_then_frees_loses_nothing(tmp_path: Path) -> None:
    """Journal and store on one small tmpfs; it fills during logging, training goes on, space
    comes back: every step that log() acknowledged is stored, once."""
    with small_disk(tmp_path / "disk", 16384) as disk:
        stat = os.statvfs(disk)
        free = stat.f_bavail * stat.f_frsize
        (disk / "ballast").write_bytes(b"\0" * (free - 700_000))
        proc = run_python(
            TRAIN_ON_SMALL_DISK,
            tmp_path,
            args=["12000", "9000"],
            env={
                "RUNYARD_DIR": str(disk / ".runyard"),
                "SMALL_DISK": str(disk),
                "RUNYARD_CONSOLE": "off",
            },
            timeout=240,
        )
        assert "blocked at None" not in proc.stdout, "the disk never filled"
        assert "No space left on device" in proc.stderr and "writable again" in proc.stderr
        store = open_root_store(disk / ".runyard")
        run = store.find_run(_user(), "p", "fulldisk")
        assert run is not None and run.state == "finished", proc.stderr
        assert [r["i"] for r in store.history(run.pk)] == list(range(12000))
        assert not list((disk / ".runyard" / "journal").glob("*.journal"))
        store.close()


@pytest.mark.slow
def test_a_full_journal_disk_with_the_store_elsewhere_loses_nothing(tmp_path: Path) -> None:
    """The journal's disk is full for good, the store is on another disk: the shipper ships
    from memory, the run ends finished with every step, nothing is left running."""
    store_url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with small_disk(tmp_path / "disk", 1024) as disk:
        stat = os.statvfs(disk)
        (disk / "ballast").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 150_000))
        proc = run_python(
            TRAIN_ON_SMALL_DISK,
            tmp_path,
            args=["9000", "-1"],
            env={
                "RUNYARD_DIR": str(disk / ".runyard"),
                "RUNYARD_STORE": store_url,
                "SMALL_DISK": str(disk),
                "RUNYARD_CONSOLE": "off",
            },
            timeout=240,
        )
        assert "blocked at None" not in proc.stdout, "the disk never filled"
        assert "shipped to the store from memory" in proc.stderr
        assert "are lost" not in proc.stderr
        store = SQLStore(store_url)
        run = store.find_run(_user(), "p", "fulldisk")
        assert run is not None and run.state == "finished"
        assert [r["i"] for r in store.history(run.pk)] == list(range(9000))
        store.close()


def test_the_server_refuses_an_empty_metric_name_with_422(small_body_server: ServerProc) -> None:
    body = {
        "header": {"entity": "e", "project": "p", "run_id": "empty001"},
        "records": [[1, "run", {}], [2, "row", {"_step": 0, "": 2.0}]],
    }
    with httpx.Client(base_url=small_body_server.api, timeout=30) as client:
        response = client.post("/journals/j-empty001/batches", content=orjson.dumps(body))
        assert response.status_code == 422
        assert "empty name" in response.json()["error"]["message"]
        assert client.get("/health").status_code == 200  # the connection and server live on


@pytest.mark.slow
def test_media_on_a_full_disk_are_left_out_and_training_goes_on(tmp_path: Path) -> None:
    """Images logged while the disk is full: log() does not raise, the rows' scalars are kept,
    one warning says what is left out; once there is room, images are kept again."""
    code = """
        import os, sys
        import numpy as np
        import runyard
        ballast = os.path.join(os.environ["SMALL_DISK"], "ballast")
        run = runyard.init(project="p", id="fullimg1")  # an id: init asks the store (full)
        print(run.id)
        pixels = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
        for i in range(300):
            if i == 200:
                os.remove(ballast)
            run.log({"i": i, "img": runyard.Image(pixels + (i % 7))})
        run.finish()
    """
    with small_disk(tmp_path / "disk", 8192) as disk:
        stat = os.statvfs(disk)
        (disk / "ballast").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 200_000))
        proc = run_python(
            code,
            tmp_path,
            env={
                "RUNYARD_DIR": str(disk / ".runyard"),
                "SMALL_DISK": str(disk),
                "RUNYARD_CONSOLE": "off",
            },
            timeout=240,
        )
        assert "cannot write the media logged as 'img'" in proc.stderr, proc.stderr
        assert "media are written again" in proc.stderr
        store = open_root_store(disk / ".runyard")
        run = store.find_run(_user(), "p", proc.stdout.split()[0])
        assert run is not None and run.state == "finished", proc.stderr
        rows = store.history(run.pk)
        assert [r["i"] for r in rows] == list(range(300))
        with_image = [r["i"] for r in rows if "img" in r]
        assert 0 < len(with_image) < 300 and with_image[-1] == 299
        store.close()
