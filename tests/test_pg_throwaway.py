"""tests/pg.py on a machine whose PostgreSQL does not answer: a throwaway cluster, shared by
processes, stopped by the last one."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import pg
from tests.conftest import REPO, run_python

USER = """
import json, sys
from tests import pg
from runyard.store import JournalBatch
from runyard.store.sql import SQLStore

def use_store(tag):
    with pg.fresh_schema() as url:
        store = SQLStore(url)
        header = {"entity": "e", "project": "p", "run_id": tag}
        rows = [(i + 2, "row", {"_step": i, "x": float(i)}) for i in range(100)]
        store.apply(JournalBatch("j", header, [(1, "run", header), *rows]))
        assert len(store.history(store.find_run("e", "p", tag).pk)) == 100
        store.close()

use_store(sys.argv[1])
state = json.loads((pg.state_dir() / "state.json").read_text())
print(json.dumps({"url": pg.BASE, "pid": state["pid"]}))
"""

OUTER = (
    USER
    + """
import subprocess
inner = subprocess.run([sys.executable, "user.py", "inner"], capture_output=True, text=True)
assert inner.returncode == 0, inner.stderr
assert json.loads(inner.stdout)["pid"] == state["pid"]  # the same server, still up after it
use_store("after-inner")
"""
)


pytestmark = pytest.mark.slow  # initdb and a server start: about 10 s


@pytest.fixture
def pg_state_dir() -> Iterator[Path]:
    # Not under tmp_path: the server runs as the postgres user, which cannot enter /tmp/pytest-of-*.
    path = Path(tempfile.mkdtemp(prefix="runyard-pgtest-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unreachable_server_gets_a_shared_throwaway_cluster(
    tmp_path: Path, pg_state_dir: Path
) -> None:
    if pg.server_bindir() is None:
        pytest.fail("no PostgreSQL server binaries: run `make test` (it installs them)")
    (tmp_path / "user.py").write_text(USER)
    env = {
        "PYTHONPATH": str(REPO),
        "RUNYARD_TEST_PG": f"postgresql://postgres@127.0.0.1:{pg._free_port()}/test",
        "RUNYARD_TEST_PG_NO_SYSTEM": "1",
        "RUNYARD_TEST_PG_DIR": str(pg_state_dir),
    }
    proc = run_python(OUTER, tmp_path, env=env, args=["outer"], timeout=180)
    first = json.loads(proc.stdout.splitlines()[0])
    assert first["url"] != env["RUNYARD_TEST_PG"] and "127.0.0.1" in first["url"]
    # The last user stopped the server and removed its folder.
    assert not pg._postmaster_alive(first["pid"], str(pg_state_dir))
    assert not (pg_state_dir / "state.json").exists()
    assert not list(pg_state_dir.glob("cluster-*"))
