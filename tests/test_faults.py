"""The fault-injection suite: real training processes, real stores, one fault each.

Every acknowledged record (``log()`` returned) is stored exactly once after recovery, and
training goes on (or fails with the documented error). Full disks and poisoned records are in
test_durability.py; a server that stops or dies during ``init()``/logging in
test_init_without_server.py. bench/faults.py prints the same scenarios with latencies.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from runyard.sdk.journal import read_journal
from tests import faultkit
from tests.serverproc import ServerProc


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_at_a_random_moment_loses_no_acknowledged_step(tmp_path: Path, seed: int) -> None:
    result = faultkit.kill9_at_random(tmp_path / f"k{seed}", seed)
    assert result.acknowledged > 0
    assert result.missing == 0 and result.duplicates == 0, result
    assert result.stored >= result.acknowledged  # what was journaled but not yet seen counts too
    assert result.state == "crashed"


@pytest.mark.slow
def test_postgresql_restarted_mid_ingest(tmp_path: Path) -> None:
    from tests import pg

    with pg.private_cluster() as cluster:
        for via_server in (False, True):
            result = faultkit.postgresql_restart(
                tmp_path / str(via_server), cluster, via_server=via_server, steps=8_000
            )
            assert result.state == "finished", result
            assert result.missing == 0 and result.duplicates == 0, result
            assert result.stored == result.acknowledged == 8_000


def test_a_journal_truncated_mid_record_recovers_every_whole_record(root: Path) -> None:
    """The process died in the middle of a write: the torn tail is ignored, the rest applied."""
    import runyard
    from runyard.sdk.recovery import recover_journals
    from runyard.store.sql import SQLStore

    run = runyard.init(project="p", id="torn0001", settings=runyard.Settings(mode="offline"))
    for i in range(100):
        run.log({"i": i})
    journal = run.journal_path
    assert journal is not None
    run._journal.close()  # as if the process were gone: no finish record  # type: ignore[union-attr]
    runyard.sdk.state.forget(run)
    data = journal.read_bytes()
    cut = data.rindex(b'[101,"row"') + 17  # inside the last record
    journal.write_bytes(data[:cut])
    assert [r[0] for r in read_journal(journal)][-1] == 100
    store = SQLStore(f"sqlite:///{root / 'runyard.db'}")
    results = recover_journals(root, store, include_offline=True)
    assert [r.state for r in results] == ["crashed"]
    stored = store.find_run(run.entity, "p", "torn0001")
    assert stored is not None
    assert [row["i"] for row in store.history(stored.pk)] == list(range(99))
    assert orjson.loads(data[data.rindex(b"[101,") : data.rindex(b"\n")])[2]["i"] == 99


def _check_server_fault(result: faultkit.ServerFaultResult) -> None:
    assert result.state == "finished", result
    assert result.missing == 0 and result.duplicates == 0, result
    assert result.stored == result.acknowledged, result
    # started without the server's answer, placed after the earlier session once it answered
    assert result.placed and result.decided_by == "store after start", result


@pytest.mark.slow
def test_server_stopped_during_init_and_logging(shared_server: ServerProc, tmp_path: Path) -> None:
    _check_server_fault(faultkit.server_stopped_at_init_and_while_logging(tmp_path, shared_server))


@pytest.mark.slow
def test_server_killed_during_init_and_restarted_on_postgresql(tmp_path: Path) -> None:
    from tests import pg
    from tests.serverproc import running_server

    with pg.fresh_schema() as url, running_server(url) as server:
        _check_server_fault(faultkit.server_killed_at_init_and_restarted(tmp_path, server))
