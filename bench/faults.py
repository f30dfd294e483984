"""Faults injected into real training processes: acknowledged vs stored, worst latencies.

Runs the scenarios of tests/faultkit.py (the same ones tests/test_faults.py asserts on) and
prints one row per fault: records acknowledged by ``log()``, stored after recovery, duplicates,
missing, the run's final state, and the worst ``log()``, ``init()`` and ``finish()`` times the
training process saw during the fault (``init()`` included when the fault is on before it
starts). Full-disk and poison-record scenarios are in tests/test_durability.py.

Usage::

    .venv/bin/python bench/faults.py [--seeds 5] [--only server]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import print_tables
from tests import faultkit, pg
from tests.serverproc import running_server


@contextlib.contextmanager
def _server_store(folder: Path, kind: str) -> Iterator[str]:
    if kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{folder / 'server.db'}"
    else:
        with pg.fresh_schema() as url:
            yield url


def _plain(result: faultkit.ServerFaultResult) -> dict[str, object]:
    """The common columns (the server faults also check placement, see tests/test_faults.py)."""
    row = result.row()
    placed = row.pop("placed")
    row.pop("decided_by")
    row["state"] = f"{row['state']}{'' if placed else ' (misplaced)'}"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="kill -9 moments to try")
    parser.add_argument("--steps", type=int, default=30_000, help="steps of the PostgreSQL runs")
    parser.add_argument(
        "--server-steps", type=int, default=30_000, help="steps of the server-fault runs"
    )
    parser.add_argument(
        "--only", choices=("all", "server"), default="all", help="server: only the server faults"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        work = Path(tmp)
        for seed in range(1, args.seeds + 1 if args.only == "all" else 1):
            rows.append(faultkit.kill9_at_random(work / f"kill{seed}", seed, steps=20_000).row())
        for kind in ("sqlite", "postgresql"):
            with _server_store(work / f"server-{kind}", kind) as url, running_server(url) as srv:
                stopped = faultkit.server_stopped_at_init_and_while_logging(
                    work / f"stop-{kind}", srv, steps=args.server_steps
                )
                stopped.fault += f" ({kind})"
                rows.append(_plain(stopped))
                killed = faultkit.server_killed_at_init_and_restarted(
                    work / f"kill-{kind}", srv, steps=args.server_steps, again=True
                )
                killed.fault += f" ({kind})"
                rows.append(_plain(killed))
        with pg.private_cluster() if args.only == "all" else contextlib.nullcontext() as cluster:
            for via_server in (False, True) if args.only == "all" else ():
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
