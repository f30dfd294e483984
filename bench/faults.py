"""Faults injected into real training processes: acknowledged vs stored, worst latencies.

Runs the scenarios of tests/faultkit.py (the same ones tests/test_faults.py asserts on) and
prints one row per fault: records acknowledged by ``log()``, stored after recovery, duplicates,
missing, the run's final state, and the worst ``log()``, ``init()`` and ``finish()`` times the
training process saw during the fault. Full-disk and poison-record scenarios are in
tests/test_durability.py; server faults during ``init()`` in tests/test_init_without_server.py.

Usage::

    .venv/bin/python bench/faults.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_tables
from tests import faultkit, pg


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="kill -9 moments to try")
    parser.add_argument("--steps", type=int, default=30_000, help="steps of the PostgreSQL runs")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        work = Path(tmp)
        for seed in range(1, args.seeds + 1):
            rows.append(faultkit.kill9_at_random(work / f"kill{seed}", seed, steps=20_000).row())
        with pg.private_cluster() as cluster:
            for via_server in (False, True):
                result = faultkit.postgresql_restart(
                    work / f"pg{via_server}", cluster, via_server=via_server, steps=args.steps
                )
                rows.append(result.row())
    columns = list(rows[0])
    print_tables(
        [("faults", columns, [[str(r[c]) for c in columns] for r in rows])],
        "fault injection: acknowledged vs stored (None: the process was killed)",
    )
    return 0 if all(r["missing"] == 0 and r["duplicates"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
