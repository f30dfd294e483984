"""Dashboard load times in a real browser: Playwright driving Debian's chromium against
``runyard server`` (with the dashboard) over a store of ``--runs`` runs (default 10,000) and one
run with a ``--steps``-step metric (default 1,000,000).

Measured, median of ``--repeats`` (each in a fresh page):

* ``table``: navigation to the runs table until its first rows are drawn;
* ``sort``: a click on a summary column's header until the best run is the first row;
* ``filter``: a filter typed and applied until the table shows the matching count;
* ``chart``: navigation to the long run's page until its chart is drawn.

Targets (issue 6): table < 1 s, sort/filter < 0.5 s, chart < 1.5 s.

    .venv/bin/python bench/ui_load.py                 # builds the store in a temp folder
    .venv/bin/python bench/ui_load.py --runs 1000 --steps 100000 --repeats 3

The comparison with MLflow's UI over the same data is not implemented yet.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.test_dashboard import CHROMIUM, CHROMIUM_ARGS, start_server  # noqa: E402

from runyard.store.base import JournalBatch  # noqa: E402
from runyard.store.sql import SQLStore  # noqa: E402

ENTITY, PROJECT = "bench", "ui"


def fill(store: SQLStore, runs: int, steps: int) -> None:
    """``runs`` finished runs with a nested config, a summary and 20 history rows each, and
    a run ``long`` with ``steps`` steps of ``loss``."""
    rng = random.Random(0)
    now = time.time()
    for i in range(runs):
        run_id = f"run{i:05d}"
        lr = 10 ** rng.uniform(-5, -1)
        head = {
            "entity": ENTITY,
            "project": PROJECT,
            "run_id": run_id,
            "name": f"run-{i:05d}",
            "group": f"g{i % 20}",
            "tags": ["bench"] if i % 3 else ["bench", "odd"],
            "config": {
                "optimizer": {"lr": lr, "name": rng.choice(["adam", "sgd"])},
                "model": {"layers": rng.choice([2, 4, 8]), "width": rng.choice([64, 128])},
                "seed": i,
            },
            "start_time": now - runs + i,
            "journal_id": f"j-{run_id}",
        }
        records: list[tuple[int, str, Any]] = [(1, "run", head)]
        loss = 0.0
        for step in range(20):
            loss = math.exp(-step * lr * 100) + rng.random() * 0.1
            records.append(
                (
                    2 + step,
                    "row",
                    {"_step": step, "_runtime": step, "_timestamp": now + step, "loss": loss},
                )
            )
        records.append((22, "finish", {"state": "finished", "exit_code": 0, "runtime": 20.0}))
        store.apply(
            JournalBatch(head["journal_id"], head, records, summary={"loss": loss, "acc": 1 - loss})
        )
    head = {
        "entity": ENTITY,
        "project": PROJECT,
        "run_id": "long",
        "name": "long",
        "config": {"optimizer": {"lr": 0.01}},
        "start_time": now,
        "journal_id": "j-long",
    }
    seq = 1
    chunk = 50_000
    for lo in range(0, steps, chunk):
        recs: list[tuple[int, str, Any]] = []
        if lo == 0:
            recs.append((seq, "run", head))
            seq += 1
        for step in range(lo, min(steps, lo + chunk)):
            value = math.sin(step / 5000.0) + (3.0 if step % 99_991 == 0 else 0.0)
            recs.append(
                (
                    seq,
                    "row",
                    {
                        "_step": step,
                        "_runtime": step * 0.001,
                        "_timestamp": now + step * 0.001,
                        "loss": value,
                    },
                )
            )
            seq += 1
        store.apply(JournalBatch("j-long", head, recs, summary={"loss": 0.0}))


def measure(base_url: str, runs: int, repeats: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {"table": [], "sort": [], "filter": [], "chart": []}
    table = f"{base_url}/#/p/{ENTITY}/{PROJECT}?cols=config.optimizer.lr,summary.loss"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for _ in range(repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(60_000)
            page.goto(f"{base_url}/#/")  # the bundle is loaded and cached; the view is timed
            page.wait_for_selector("table[aria-label='Projects']")
            t = time.perf_counter()
            page.evaluate(f"location.hash = {table.split('#', 1)[1]!r}")
            page.wait_for_function(
                "document.querySelectorAll('#runs-grid [data-run]').length >= 15"
            )
            times["table"].append(time.perf_counter() - t)

            first = page.eval_on_selector("#runs-grid [data-run]", "r => r.dataset.run")
            t = time.perf_counter()
            page.click("[data-field='summary.loss'] button.sort")
            page.wait_for_function(
                f"(() => {{ const r = document.querySelector('#runs-grid [data-run]');"
                f" return r && r.dataset.run !== {first!r}; }})()"
            )
            times["sort"].append(time.perf_counter() - t)

            t = time.perf_counter()
            page.fill("#runs-filter", "config.optimizer.lr < 0.001 and config.model.layers = 8")
            page.press("#runs-filter", "Enter")
            page.wait_for_function(
                f"document.querySelector('#runs-count').textContent !== '{runs + 1} runs'"
            )
            page.wait_for_selector("#runs-grid [data-run]")
            times["filter"].append(time.perf_counter() - t)

            t = time.perf_counter()
            page.evaluate(f"location.hash = '#/r/{ENTITY}/{PROJECT}/long'")
            page.wait_for_selector("figure[data-metric='loss'].drawn canvas")
            times["chart"].append(time.perf_counter() - t)
            page.close()
        browser.close()
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--store", help="an existing store URL filled by an earlier --keep run")
    parser.add_argument("--keep", help="build the store in this folder and keep it")
    args = parser.parse_args()

    tmp = None
    if args.store:
        url = args.store
    else:
        folder = Path(args.keep) if args.keep else Path(tmp := tempfile.mkdtemp(prefix="ui-load-"))
        folder.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{folder / 'runyard.db'}"
        t = time.perf_counter()
        store = SQLStore(url)
        fill(store, args.runs, args.steps)
        store.close()
        print(
            f"store: {args.runs} runs + a {args.steps}-step run in {time.perf_counter() - t:.0f} s ({url})"
        )
    server = start_server(url)
    try:
        result = measure(server.url, args.runs, args.repeats)
    finally:
        server.close()
    targets = {"table": 1.0, "sort": 0.5, "filter": 0.5, "chart": 1.5}
    print("\n| view | runyard (s) | target (s) |\n| --- | --- | --- |")
    for key, value in result.items():
        print(f"| {key} | {value:.3f} | {targets[key]} |")
    print(json.dumps({"runs": args.runs, "steps": args.steps, "runyard": result}))
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
