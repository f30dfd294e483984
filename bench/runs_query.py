"""The runs table's query: ``Store.query_runs`` in SQL against the Python path it replaced
(``list_runs`` + ``compile_filter`` + ``sort_runs`` + slicing), on SQLite and PostgreSQL, over
``--runs`` runs (default 10,000) of one project with realistic documents (a nested config of ~30
keys, a summary of ~20 keys with ``/`` in names and min/max aggregates).

For each query: the median of ``--repeats`` calls, in milliseconds, for the store's two paths,
and (``--http``) for ``GET /api/v1/runs`` on a ``runyard server`` over the same store (the SQL
path plus serialization and HTTP).

    .venv/bin/python bench/runs_query.py
    .venv/bin/python bench/runs_query.py --runs 2000 --backends sqlite --repeats 5 --no-http

PostgreSQL comes from tests/pg.py (the machine's server, or a throwaway cluster).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402

from runyard._json import dumps_doc  # noqa: E402
from runyard.query import parse_expression  # noqa: E402
from runyard.store import schema as S  # noqa: E402
from runyard.store.base import Store  # noqa: E402
from runyard.store.sql import SQLStore  # noqa: E402

ENTITY, PROJECT = "bench", "runs"
PAGE = 50

#: name → (filter text for parse_expression, sort key, offset)
QUERIES: dict[str, tuple[str, str | None, int]] = {
    "first page": ("", None, 0),
    "sort summary": ("", "-summary.val/acc", 0),
    "sort config": ("", "config.optimizer.lr", 0),
    "filter config + sort": (
        "config.optimizer.lr < 0.01 and state = finished",
        "-summary.val/acc",
        0,
    ),
    "filter summary aggregate": ("summary.train/loss.min < 0.05", "-created_at", 0),
    "filter regex + tags": ("name ~ '^run-0[0-4]' and tags in [odd]", None, 0),
    "deep page": ("", "summary.val/acc", 5000),
}


def docs(i: int, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    lr = 10 ** rng.uniform(-5, -1)
    config = {
        "optimizer": {
            "lr": lr,
            "name": rng.choice(["adam", "sgd", "adamw"]),
            "betas": [0.9, 0.999],
            "weight_decay": rng.choice([0.0, 1e-4, 1e-2]),
            "schedule": {"kind": "cosine", "warmup": rng.randint(0, 1000), "min_lr": lr / 100},
        },
        "model": {
            "layers": rng.choice([2, 4, 8, 12]),
            "width": rng.choice([64, 128, 256]),
            "dropout": rng.choice([0.0, 0.1, 0.2]),
            "activation": rng.choice(["relu", "gelu"]),
            "norm": {"kind": "layer", "eps": 1e-5},
        },
        "data": {
            "name": "cifar10",
            "batch_size": rng.choice([32, 64, 128]),
            "augment": {"flip": True, "crop": 32, "mixup": rng.random() < 0.5},
            "path": f"/data/shards/{i % 100:03d}",
        },
        "seed": i,
        "epochs": 100,
        "precision": "bf16",
        "notes": "baseline sweep of the optimizer and the model size",
    }
    loss = rng.random() * 0.5
    summary: dict[str, Any] = {
        "train/loss": {"min": loss / 2, "max": 2.3, "last": loss},
        "val/loss": {"min": loss, "last": loss * 1.1},
        "val/acc": 1 - loss,
        "test/acc": 1 - loss * 1.05,
        "epoch": 100,
        "_step": 10_000,
        "_runtime": 3600.0 + i,
        "lr": lr / 100,
        "grad_norm": rng.random(),
    }
    for k in range(10):
        summary[f"layer{k}/weight_norm"] = rng.random()
    return config, summary


def fill(store: SQLStore, runs: int) -> None:
    """``runs`` runs straight into the tables (documents encoded as the write path does)."""
    rng = random.Random(0)
    now = time.time()
    with store.engine.begin() as conn:
        project_id = conn.execute(
            S.projects.insert().values(entity=ENTITY, name=PROJECT, created_at=now)
        ).inserted_primary_key[0]
        rows = []
        for i in range(runs):
            config, summary = docs(i, rng)
            rows.append(
                {
                    "project_id": project_id,
                    "run_id": f"run{i:05d}",
                    "name": f"run-{i:05d}",
                    "group_name": f"g{i % 20}",
                    "tags": dumps_doc(["bench"] if i % 3 else ["bench", "odd"]),
                    "state": "finished" if i % 10 else "failed",
                    "config": dumps_doc(config),
                    "summary": dumps_doc(summary),
                    "meta": dumps_doc({"host": "node-1", "python": "3.11.9", "argv": ["x"] * 5}),
                    "host": "node-1",
                    "created_at": now - runs + i,
                    "updated_at": now,
                    "heartbeat_at": now,
                    "runtime": 3600.0,
                    "last_step": 10_000,
                }
            )
            if len(rows) == 2000:
                conn.execute(S.runs.insert(), rows)
                rows = []
        if rows:
            conn.execute(S.runs.insert(), rows)


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm: connections, caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


@contextmanager
def backend(name: str, folder: Path) -> Iterator[str]:
    if name == "sqlite":
        yield f"sqlite:///{folder / 'store.db'}"
    else:
        from tests import pg

        with pg.fresh_schema() as url:
            yield url


def measure(
    store: SQLStore, client: Any, text: str, sort: str | None, offset: int, repeats: int
) -> tuple[float, float, float]:
    """Median milliseconds of the Python path, the SQL path and (client given) GET /runs."""
    spec = parse_expression(text)
    py_path = partial(Store.query_runs, store, ENTITY, PROJECT, spec, sort, PAGE, offset)
    sql_path = partial(store.query_runs, ENTITY, PROJECT, spec, sort, PAGE, offset)
    a, b = py_path(), sql_path()
    assert [r.run_id for r in a[0]] == [r.run_id for r in b[0]] and a[1] == b[1]
    py_ms = median_ms(py_path, repeats)
    sql_ms = median_ms(sql_path, repeats)
    http_ms = float("nan")
    if client is not None:
        params: dict[str, Any] = {"entity": ENTITY, "project": PROJECT, "limit": PAGE}
        params.update({"offset": offset} if offset else {})
        params.update({"filter": text} if text else {})
        params.update({"sort": sort} if sort else {})
        http_ms = median_ms(lambda: client.get("/runs", params=params).raise_for_status(), repeats)
    return py_ms, sql_ms, http_ms


def run_backend(name: str, runs: int, repeats: int, http: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp, backend(name, Path(tmp)) as url:
        store = SQLStore(url, files_root=Path(tmp) / "files")
        t0 = time.perf_counter()
        fill(store, runs)
        if not store.is_sqlite:
            with store.engine.begin() as conn:
                conn.execute(sa.text("ANALYZE runs"))
        print(f"{name}: filled in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        with ExitStack() as stack:
            client = None
            if http:
                import httpx
                from tests.serverproc import running_server

                server = stack.enter_context(
                    running_server(url, extra_args=["--files-root", f"{tmp}/files"])
                )
                client = stack.enter_context(httpx.Client(base_url=server.api, timeout=60))
            for label, (text, sort, offset) in QUERIES.items():
                py_ms, sql_ms, http_ms = measure(store, client, text, sort, offset, repeats)
                print(
                    f"{name:<11} {label:<26} {py_ms:9.1f} {sql_ms:8.1f} {http_ms:8.1f} "
                    f"{py_ms / sql_ms:8.1f}x",
                    flush=True,
                )
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--no-http", dest="http", action="store_false")
    args = parser.parse_args()
    print(f"{args.runs} runs, page of {PAGE}, median of {args.repeats} (ms)")
    print(f"{'backend':<11} {'query':<26} {'python':>9} {'sql':>8} {'http':>8} {'speed-up':>9}")
    for name in args.backends.split(","):
        run_backend(name, args.runs, args.repeats, args.http)


if __name__ == "__main__":
    main()
