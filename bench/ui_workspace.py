"""The project workspace in a real browser at scale, runyard against MLflow's UI on the same data.

Playwright drives Debian's chromium (headless) against ``runyard server`` (the dashboard) and
``mlflow server`` over the same project: ``--runs`` runs (default 500) with a nested config,
``--metrics`` metrics (default 6: ``train/loss``, ``train/acc``, ``val/loss``, ``val/acc``,
``lr``, ``grad_norm``) logged at each of ``--steps`` steps (default 10,000): 30M points. The
last ``--running`` runs (default 50) are running; while the live view is measured a writer
appends ``--live-rows`` rows (default 50) to each of them every 5 s.

Timed, in the page's clock (the probes of bench/ui_load.py: a condition evaluated on every
animation frame from just before the action), median of ``--repeats``, each in a fresh browser
context after ``--warmup`` repeats (not in the medians; the first of them, the load right after
the server started, is printed and kept in the JSON as ``cold``):

* ``first``: from the app's start page (loaded untimed) a route change to the project's
  workspace until every panel of the first screen has drawn every visible run (runyard: all
  500; MLflow's chart view: the runs it shows, its default 10);
* ``filter``: a filter typed and applied (Enter) until the first screen's panels have drawn
  the runs of the filter's answer (``config.model.kind = cnn``: 1 run in 4);
* ``live``: main-thread time per 5-second live cycle with 50 runs logging (Chrome's
  ``TaskDuration`` from the DevTools protocol over ``--live-cycles`` cycles, divided by the
  cycles) and the longest task (``longtask`` entries); MLflow: the same window on its chart
  view with auto-refresh as it comes;
* ``compare``: a route change to the comparison of ``--compare`` runs (default 202) until every
  chart has drawn every run (MLflow: its compare-runs page until its tables and plot are drawn).

Targets (issue 15): first < 1.5 s, filter < 0.5 s, live < 50 ms of main-thread time per update,
compare < 1.5 s.

Loading: runyard's store through ``SQLStore.apply`` (one journal batch per run, what the SDK
ships); MLflow's runs, params and tags through ``MlflowClient`` and its 30M metric rows by
``executemany`` into its own SQLite tables (``metrics``, ``latest_metrics``: MLflow's client
would need hours). Both are built once in ``--cache`` (default ``$TMPDIR/runyard-ui-workspace``)
and reused while the sizes match; each bench run works on a copy (the live writer changes it).

    .venv/bin/python bench/ui_workspace.py --json bench/results/ui_workspace.json
    .venv/bin/python bench/ui_workspace.py --runs 100 --steps 2000 --repeats 2   # quick check
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import free_port
from ui_load import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DONE_JS,
    INSTALL_JS,
    SEEN_JS,
    ExternalRequests,
    MlflowServer,
    ViewFailed,
    clean_env,
    flatten,
    kill_group,
)

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

VIEWPORT = {"width": 1440, "height": 900}
ENTITY, PROJECT = "bench", "workspace"
EXPERIMENT = "bench-workspace"
METRICS = ["train/loss", "train/acc", "val/loss", "val/acc", "lr", "grad_norm"]
VIEWS = ("first", "filter", "live", "compare")
TARGETS = {"first": 1.5, "filter": 0.5, "live": 0.050, "compare": 1.5}
RUNYARD_FILTER = "config.model.kind = cnn"
MLFLOW_FILTER = "params.`model.kind` = 'cnn'"
KINDS = ["cnn", "mlp", "vit", "rnn"]
DATA_VERSION = 1
TIMEOUT_MS = 120_000
ML_TIMEOUT_MS = 90_000  # MLflow: a view not drawn by then is reported as not measured
LIVE_PERIOD = 5.0


# -- the data -----------------------------------------------------------------------------------


@dataclass
class WsRun:
    index: int
    run_id: str
    name: str
    config: dict[str, Any]
    start_time: float
    running: bool


def ws_runs(runs: int, running: int, now: float) -> Iterator[WsRun]:
    for i in range(runs):
        lr = 10 ** (-4 + 3 * ((i * 0.618034) % 1.0))
        config = {
            "optimizer": {"lr": lr, "name": ["adam", "sgd"][i % 2]},
            "model": {"kind": KINDS[i % 4], "layers": [2, 4, 8][i % 3]},
            "seed": i,
        }
        yield WsRun(
            index=i,
            run_id=f"w{i:04d}",
            name=f"run-{i:04d}",
            config=config,
            start_time=now - 3600 + i,
            running=i >= runs - running,
        )


def values(run: WsRun, lo: int, hi: int) -> dict[str, Any]:
    """The metrics of ``run`` at steps lo..hi-1 (numpy arrays, one per metric)."""
    import numpy as np

    rng = np.random.default_rng(run.index)
    rng = np.random.default_rng([run.index, lo])
    steps = np.arange(lo, hi, dtype=np.float64)
    lr = run.config["optimizer"]["lr"]
    decay = np.exp(-steps * lr * 0.5 - steps / 20_000.0)
    noise = rng.normal(0.0, 0.02, size=(4, hi - lo))
    return {
        "train/loss": 2.0 * decay + 0.1 + noise[0],
        "train/acc": 1.0 - 0.9 * decay + noise[1] * 0.5,
        "val/loss": 2.1 * decay + 0.15 + noise[2],
        "val/acc": 0.95 - 0.85 * decay + noise[3] * 0.5,
        "lr": lr * np.cos(steps / 40_000.0 * math.pi / 2) ** 2,
        "grad_norm": 1.0 + np.abs(noise[0]) * 20 + decay,
    }


def rows_of(run: WsRun, lo: int, hi: int, t0: float) -> list[dict[str, Any]]:
    cols = {k: v.tolist() for k, v in values(run, lo, hi).items()}
    out = []
    for j, step in enumerate(range(lo, hi)):
        row: dict[str, Any] = {"_step": step, "_runtime": step * 0.1, "_timestamp": t0 + step * 0.1}
        for k in METRICS:
            row[k] = cols[k][j]
        out.append(row)
    return out


def head_of(run: WsRun) -> dict[str, Any]:
    return {
        "entity": ENTITY,
        "project": PROJECT,
        "run_id": run.run_id,
        "name": run.name,
        "config": run.config,
        "start_time": run.start_time,
        "journal_id": f"j-{run.run_id}",
    }


def build_runyard(folder: Path, runs: int, running: int, steps: int) -> Path:
    from runyard.store.base import JournalBatch
    from runyard.store.sql import SQLStore

    db = folder / "runyard.db"
    marker = folder / "runyard-loaded.json"
    wanted = {"runs": runs, "running": running, "steps": steps, "data": DATA_VERSION}
    if marker.exists() and db.exists() and json.loads(marker.read_text()) == wanted:
        print(f"runyard store: reusing {db}", flush=True)
        return db
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    store = SQLStore(f"sqlite:///{db}")
    now = time.time()
    for run in ws_runs(runs, running, now):
        head = head_of(run)
        rows = rows_of(run, 0, steps, run.start_time)
        records: list[tuple[int, str, Any]] = [(1, "run", head)]
        records += [(2 + i, "row", row) for i, row in enumerate(rows)]
        if not run.running:
            records.append(
                (
                    len(records) + 1,
                    "finish",
                    {"state": "finished", "exit_code": 0, "runtime": steps * 0.1},
                )
            )
        summary = {k: rows[-1][k] for k in METRICS}
        store.apply(
            JournalBatch(head["journal_id"], head, records, summary=summary, heartbeat_at=now)
        )
        if (run.index + 1) % 50 == 0:
            print(
                f"runyard load: {run.index + 1} runs, {time.perf_counter() - t:.0f} s", flush=True
            )
    store.close()
    marker.write_text(json.dumps(wanted))
    print(
        f"runyard store: {runs} x {len(METRICS)} x {steps} in {time.perf_counter() - t:.0f} s",
        flush=True,
    )
    return db


class LiveWriter:
    """Appends ``rows`` rows to each running run every LIVE_PERIOD seconds (runyard: journal
    batches through the store; MLflow: rows into its metrics tables), in a thread."""

    def __init__(
        self, tool: str, db: Path, runs: list[WsRun], steps: int, rows: int, info: dict[str, Any]
    ):
        self.tool, self.db, self.runs, self.rows, self.info = tool, db, runs, rows, info
        self.next_step = {r.run_id: steps for r in runs}
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.cycles = 0
        self.errors: list[str] = []

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread:
            self.thread.join(30)

    def loop(self) -> None:
        try:
            if self.tool == "runyard":
                self.loop_runyard()
            else:
                self.loop_mlflow()
        except Exception as exc:  # reported with the results
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def loop_runyard(self) -> None:
        from runyard.store.base import JournalBatch
        from runyard.store.sql import SQLStore

        store = SQLStore(f"sqlite:///{self.db}")
        try:
            while not self.stop_event.wait(LIVE_PERIOD if self.cycles else 0.5):
                now = time.time()
                for run in self.runs:
                    head = head_of(run)
                    seq = store.journal_progress(head["journal_id"])
                    lo = self.next_step[run.run_id]
                    rows = rows_of(run, lo, lo + self.rows, run.start_time)
                    records = [(seq + 1 + i, "row", row) for i, row in enumerate(rows)]
                    summary = {k: rows[-1][k] for k in METRICS}
                    store.apply(
                        JournalBatch(
                            head["journal_id"], head, records, summary=summary, heartbeat_at=now
                        )
                    )
                    self.next_step[run.run_id] = lo + self.rows
                self.cycles += 1
        finally:
            store.close()

    def loop_mlflow(self) -> None:
        con = sqlite3.connect(self.db, timeout=30)
        ids = self.info["run_ids"]
        try:
            while not self.stop_event.wait(LIVE_PERIOD if self.cycles else 0.5):
                for run in self.runs:
                    lo = self.next_step[run.run_id]
                    uuid = ids[run.run_id]
                    cols = values(run, lo, lo + self.rows)
                    ms = int(time.time() * 1000)
                    con.executemany(
                        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,0)",
                        [
                            (k, float(cols[k][j]), ms, uuid, lo + j)
                            for k in METRICS
                            for j in range(self.rows)
                        ],
                    )
                    con.executemany(
                        "UPDATE latest_metrics SET value = ?, step = ?, timestamp = ? WHERE run_uuid = ? AND key = ?",
                        [(float(cols[k][-1]), lo + self.rows - 1, ms, uuid, k) for k in METRICS],
                    )
                    self.next_step[run.run_id] = lo + self.rows
                con.commit()
                self.cycles += 1
        finally:
            con.close()


def mlflow_load(folder: Path, runs: int, running: int, steps: int) -> None:
    """Runs in ``--mlflow-python``: runs, params and tags through ``MlflowClient`` into
    ``folder/mlflow.db``, the metrics by ``executemany`` into MLflow's own tables (``metrics``
    with every point, ``latest_metrics`` with the last); writes ``folder/mlflow-loaded.json``."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    db = folder / "mlflow.db"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exp = client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    now = time.time()
    ids: dict[str, str] = {}
    for run in ws_runs(runs, running, now):
        created = client.create_run(exp, start_time=int(run.start_time * 1000), run_name=run.name)
        rid = created.info.run_id
        ids[run.run_id] = rid
        client.log_batch(rid, params=[Param(k, str(v)) for k, v in flatten(run.config).items()])
        if not run.running:
            client.set_terminated(
                rid, "FINISHED", end_time=int((run.start_time + steps * 0.1) * 1000)
            )
    print(f"mlflow load: {runs} runs created in {time.perf_counter() - t:.0f} s", flush=True)
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is not None:
        engine.dispose()
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA synchronous=OFF")
        for run in ws_runs(runs, running, now):
            cols = values(run, 0, steps)
            uuid = ids[run.run_id]
            ts = [int((run.start_time + s * 0.1) * 1000) for s in range(steps)]
            con.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,0)",
                ((k, v, ts[s], uuid, s) for k in METRICS for s, v in enumerate(cols[k].tolist())),
            )
            con.executemany(
                "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) VALUES (?,?,?,?,0,?)",
                [(k, float(cols[k][-1]), ts[-1], steps - 1, uuid) for k in METRICS],
            )
            if (run.index + 1) % 50 == 0:
                con.commit()
                print(
                    f"mlflow load: {run.index + 1} runs' metrics, {time.perf_counter() - t:.0f} s",
                    flush=True,
                )
        con.commit()
    finally:
        con.close()
    seconds = time.perf_counter() - t
    (folder / "mlflow-loaded.json").write_text(
        json.dumps(
            {
                "runs": runs,
                "running": running,
                "steps": steps,
                "data": DATA_VERSION,
                "experiment_id": exp,
                "run_ids": ids,
                "seconds": round(seconds, 1),
            }
        )
    )
    print(f"mlflow load: {runs} x {len(METRICS)} x {steps} in {seconds:.0f} s ({db})", flush=True)


def mlflow_reset(db: Path, steps: int, uuids: list[str]) -> None:
    """Remove what a live writer appended (steps from ``steps`` on) and put the running runs'
    latest metrics back at their last loaded step; WAL mode."""
    con = sqlite3.connect(db, timeout=60)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        for uuid in uuids:  # by the (run_uuid, key, step) index: no scan of the 30M rows
            for key in METRICS:
                con.execute(
                    "DELETE FROM metrics INDEXED BY index_metrics_run_uuid_key_step "
                    "WHERE run_uuid = ? AND key = ? AND step >= ?",
                    (uuid, key, steps),
                )
            for key in METRICS:  # back to the last loaded point, read by the same index
                row = con.execute(
                    "SELECT value, timestamp FROM metrics INDEXED BY "
                    "index_metrics_run_uuid_key_step WHERE run_uuid = ? AND key = ? AND step = ?",
                    (uuid, key, steps - 1),
                ).fetchone()
                if row is not None:
                    con.execute(
                        "UPDATE latest_metrics SET step = ?, value = ?, timestamp = ? "
                        "WHERE run_uuid = ? AND key = ?",
                        (steps - 1, row[0], row[1], uuid, key),
                    )
        con.commit()
    finally:
        con.close()


def running_uuids(info: dict[str, Any], running: list[WsRun]) -> list[str]:
    return [info["run_ids"][r.run_id] for r in running]


def mlflow_cached(folder: Path, runs: int, running: int, steps: int) -> dict[str, Any] | None:
    marker = folder / "mlflow-loaded.json"
    if not (marker.exists() and (folder / "mlflow.db").exists()):
        return None
    info = json.loads(marker.read_text())
    want = (runs, running, steps, DATA_VERSION)
    got = (info.get("runs"), info.get("running"), info.get("steps"), info.get("data"))
    return info if got == want else None


# -- the browser --------------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def timed(
    page: Any,
    label: str,
    probe: str,
    action: Callable[[], str],
    fail_dir: Path | None,
    timeout_ms: int = TIMEOUT_MS,
) -> Timed:
    try:
        t0 = page.evaluate(INSTALL_JS % probe)
        until = action()
        page.wait_for_function(SEEN_JS % until, timeout=timeout_ms)
        done = page.evaluate(DONE_JS % until)
        return Timed((done - t0) / 1000.0)
    except Exception as exc:
        if fail_dir is not None:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(fail_dir / f"fail-{label}.png"))
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ViewFailed(f"{label}: {type(exc).__name__}: {first}") from exc


LONGTASKS_JS = """() => {
  window.__longtasks = [];
  new PerformanceObserver(l => { for (const e of l.getEntries()) window.__longtasks.push(e.duration); })
    .observe({type: 'longtask', buffered: false});
}"""


def task_seconds(cdp: Any) -> float:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def measure_live(page: Any, cdp: Any, cycles: int, counter_js: str | None) -> Timed:
    """Main-thread time per LIVE_PERIOD over ``cycles`` periods; with ``counter_js`` (the app's
    count of live updates) the window is from one update to the ``cycles``-th after it."""
    page.evaluate(LONGTASKS_JS)
    if counter_js:
        start = page.evaluate(counter_js)
        page.wait_for_function(f"() => ({counter_js}) > {start}", timeout=30_000, polling=1000)
        start = page.evaluate(counter_js)
    t0, w0 = task_seconds(cdp), time.perf_counter()
    if counter_js:
        # polled once a second: Playwright's default polls on every animation frame, in the
        # page's main thread, which would be counted
        page.wait_for_function(
            f"() => ({counter_js}) >= {start + cycles}",
            timeout=int(cycles * LIVE_PERIOD * 3000),
            polling=1000,
        )
    else:
        page.wait_for_timeout(cycles * LIVE_PERIOD * 1000)
    busy, wall = task_seconds(cdp) - t0, time.perf_counter() - w0
    periods = wall / LIVE_PERIOD if not counter_js else cycles
    longest = page.evaluate("() => Math.max(0, ...window.__longtasks)")
    return Timed(
        busy / periods,
        {"wall_s": round(wall, 2), "busy_s": round(busy, 3), "longest_task_ms": longest},
    )


# runyard: every line panel on the first screen drawn with the visible runs
RY_FIRST = """(() => { const ps = [...document.querySelectorAll('.ws-panel .line-panel')]
  .filter(p => p.getBoundingClientRect().top < innerHeight);
  return ps.length > 0 && ps.every(p => p.classList.contains('drawn') && p.dataset.series === String(N_RUNS))
    ? ps.length : 0; })()"""
RY_LIVE = "window.runyardWorkspace?.perf.liveUpdates ?? 0"
RY_COMPARE = """(() => { const fs = [...document.querySelectorAll('#compare-charts figure.chart-panel')];
  return document.querySelector('#compare-charts[data-ready=true]') && fs.length > 0 &&
    fs.filter(f => f.getBoundingClientRect().top < innerHeight).every(f => f.dataset.series === String(N_RUNS))
    ? fs.length : 0; })()"""


def forget_saved_workspace(url: str) -> None:
    """The workspace saves every change for the user on the server (the filter of the last
    repeat too): each repeat starts from the automatic layout, as a new user."""
    import urllib.request

    req = urllib.request.Request(
        f"{url}/api/v1/projects/{ENTITY}/{PROJECT}/workspace", method="DELETE"
    )
    with contextlib.suppress(OSError), urllib.request.urlopen(req, timeout=10):
        pass


def runyard_repeat(ctx: BenchContext, out: dict[str, Timed], live: bool) -> None:
    forget_saved_workspace(ctx.url)
    context = ctx.browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", ctx.external)
        page.goto(f"{ctx.url}/#/")
        page.wait_for_selector("table[aria-label='Projects']")
        visible = min(ctx.runs, 500)

        def first() -> str:
            page.evaluate(f"location.hash = '#/p/{ENTITY}/{PROJECT}'")
            return "v > 0"

        out["first"] = timed(
            page, "runyard-first", RY_FIRST.replace("N_RUNS", str(visible)), first, ctx.fail_dir
        )
        ctx.shoot(page, "runyard-first")
        n = sum(1 for r in ws_runs(ctx.runs, ctx.running, 0) if r.config["model"]["kind"] == "cnn")
        page.fill("#ws-filter", RUNYARD_FILTER)

        def filt() -> str:
            page.press("#ws-filter", "Enter")
            return "v > 0"

        out["filter"] = timed(
            page, "runyard-filter", RY_FIRST.replace("N_RUNS", str(n)), filt, ctx.fail_dir
        )
        ctx.shoot(page, "runyard-filter")
        if live:
            page.fill("#ws-filter", "")
            page.press("#ws-filter", "Enter")
            page.wait_for_function(f"() => ({RY_FIRST.replace('N_RUNS', str(visible))}) > 0")
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            out["live"] = measure_live(page, cdp, ctx.live_cycles, RY_LIVE)
            ctx.shoot(page, "runyard-live")
        ids = ",".join(r.run_id for r in list(ws_runs(ctx.runs, ctx.running, 0))[: ctx.compare])

        def compare() -> str:
            page.evaluate(f"location.hash = '#/compare/{ENTITY}/{PROJECT}?runs={ids}'")
            return "v > 0"

        out["compare"] = timed(
            page,
            "runyard-compare",
            RY_COMPARE.replace("N_RUNS", str(ctx.compare)),
            compare,
            ctx.fail_dir,
        )
        ctx.shoot(page, "runyard-compare")
    finally:
        context.close()


# MLflow 3's chart view (the experiment page's "Chart" mode): one card per metric, Plotly
# traces of the runs it shows. Done when every card on screen has its lines with points.
ML_CARDS = "[data-testid='experiment-view-compare-runs-card']"
ML_FIRST = """(() => { const cs = [...document.querySelectorAll("CARDS")]
  .filter(c => c.getBoundingClientRect().top < innerHeight);
  const drawn = cs.filter(c => [...c.querySelectorAll('.js-plotly-plot path.js-line')]
    .filter(p => (p.getAttribute('d') || '').split('L').length > 5).length >= %d);
  return cs.length > 0 && drawn.length === cs.length ? cs.length : 0; })()""".replace(
    "CARDS", ML_CARDS
)


def mlflow_repeat(ctx: BenchContext, out: dict[str, Timed], live: bool) -> None:
    exp = ctx.info["experiment_id"]
    context = ctx.browser.new_context(viewport=VIEWPORT, storage_state=ctx.mlflow_state)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", ctx.external)
        page.goto(f"{ctx.url}/#/experiments")
        page.wait_for_selector(f"a[href$='/experiments/{exp}']")
        shown = min(10, ctx.runs)

        def first() -> str:
            page.evaluate(f"location.hash = '#/experiments/{exp}/runs?compareRunsMode=CHART'")
            return "v > 0"

        ctx.attempt(
            lambda: out.__setitem__(
                "first",
                timed(page, "mlflow-first", ML_FIRST % shown, first, ctx.fail_dir, ML_TIMEOUT_MS),
            )
        )
        ctx.shoot(page, "mlflow-first")
        box = page.locator("input[data-testid='search-box']")
        box.fill(MLFLOW_FILTER)
        wanted = [
            r.name for r in ws_runs(ctx.runs, ctx.running, 0) if r.config["model"]["kind"] == "cnn"
        ]
        # done: the first card's traces are runs of the filter's answer
        probe = (
            '(() => { const c = document.querySelector("%s .js-plotly-plot");'  # noqa: UP031 (JS with braces)
            " const names = (c && c.data || []).map(t => t.name);"
            " return names.length >= %d && names.every(n => window.__wanted.has(n)) &&"
            " (%s) > 0 ? 1 : 0; })()"
        ) % (ML_CARDS, shown, ML_FIRST % shown)
        page.evaluate("w => { window.__wanted = new Set(w); }", wanted)

        def filt() -> str:
            box.press("Enter")
            return "v > 0"

        ctx.attempt(
            lambda: out.__setitem__(
                "filter", timed(page, "mlflow-filter", probe, filt, ctx.fail_dir, ML_TIMEOUT_MS)
            )
        )
        ctx.shoot(page, "mlflow-filter")
        if live:
            box.fill("")
            box.press("Enter")
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            out["live"] = measure_live(page, cdp, ctx.live_cycles, None)
            ctx.shoot(page, "mlflow-live")
        uuids = [
            ctx.info["run_ids"][r.run_id]
            for r in list(ws_runs(ctx.runs, ctx.running, 0))[: ctx.compare]
        ]

        def compare() -> str:
            runs = json.dumps(uuids).replace(" ", "")
            page.evaluate(
                f"location.hash = {('#/compare-runs?runs=' + runs + '&experiments=' + json.dumps([exp]).replace(' ', ''))!r}"
            )
            return "v > 0"

        # its metrics table has a column per run; done when the last run's column and a plot
        # are drawn
        probe_cmp = (  # noqa: UP031 (JS with braces)
            "(() => { const t = document.body.innerText;"
            " return t.includes(%r) && document.querySelector('.js-plotly-plot path, .js-plotly-plot .point') ? 1 : 0; })()"
        ) % f"run-{ctx.compare - 1:04d}"
        ctx.attempt(
            lambda: out.__setitem__(
                "compare",
                timed(page, "mlflow-compare", probe_cmp, compare, ctx.fail_dir, ML_TIMEOUT_MS),
            )
        )
        ctx.shoot(page, "mlflow-compare")
    finally:
        context.close()


def mlflow_setup(ctx: BenchContext) -> Any:
    """Once, untimed: open the experiment, close the assistant panel (it opens on the first
    visit); the storage state seeds every repeat's context."""
    exp = ctx.info["experiment_id"]
    context = ctx.browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{ctx.url}/#/experiments/{exp}/runs?compareRunsMode=CHART")
        page.wait_for_selector(ML_CARDS)
        close = page.locator("[data-component-id='mlflow.assistant.chat_panel.close']")
        if close.count():
            close.first.click()
        ctx.shoot(page, "mlflow-setup")
        return context.storage_state()
    finally:
        context.close()


@dataclass
class BenchContext:
    browser: Any
    url: str
    runs: int
    running: int
    compare: int
    live_cycles: int
    external: ExternalRequests
    shots: Path | None
    fail_dir: Path | None
    info: dict[str, Any] = field(default_factory=dict)
    mlflow_state: Any = None

    errors: list[str] = field(default_factory=list)

    def attempt(self, view: Callable[[], None]) -> None:
        """A view that fails is reported; the next views are still measured."""
        try:
            view()
        except ViewFailed as exc:
            self.errors.append(str(exc))
            print(f"  {exc}", flush=True)

    def shoot(self, page: Any, name: str) -> None:
        if self.shots is not None:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(self.shots / f"{name}.png"))


# -- the run --------------------------------------------------------------------------------------


def start_runyard(db: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(cwd / "runyard-server.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runyard",
            "server",
            "--store",
            f"sqlite:///{db}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=cwd,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"runyard server exited: {(cwd / 'runyard-server.log').read_text()[-2000:]}"
            )
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/api/v1/health", timeout=2) as r,
        ):
            if r.status == 200:
                return proc, url
        time.sleep(0.3)
    raise RuntimeError("runyard server did not answer in 120 s")


def summarize(values: list[Timed]) -> dict[str, Any]:
    if not values:
        return {"median": None}
    xs = [v.seconds for v in values]
    return {
        "median": statistics.median(xs),
        "min": min(xs),
        "max": max(xs),
        "n": len(xs),
        "extra": [v.extra for v in values if v.extra],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--running", type=int, default=50)
    ap.add_argument("--compare", type=int, default=202)
    ap.add_argument("--live-rows", type=int, default=50)
    ap.add_argument("--live-cycles", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument(
        "--mlflow-repeats", type=int, default=1, help="MLflow's views take minutes at this size"
    )
    ap.add_argument("--tools", default="runyard,mlflow")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "runyard-ui-workspace"))
    ap.add_argument("--mlflow-python", default=str(REPO / ".venv-bench" / "bin" / "python"))
    ap.add_argument("--screenshots", default=str(REPO / "test-artifacts" / "ui_workspace"))
    ap.add_argument("--json", default="")
    ap.add_argument("--mlflow-load", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mlflow_load:
        mlflow_load(Path(args.mlflow_load), args.runs, args.running, args.steps)
        return 0
    tools = [t for t in args.tools.split(",") if t]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    args.compare = min(args.compare, args.runs)

    loader = None
    info: dict[str, Any] | None = None
    if "mlflow" in tools:
        info = mlflow_cached(cache, args.runs, args.running, args.steps)
        if info is None:
            loader = subprocess.Popen(
                [
                    args.mlflow_python,
                    __file__,
                    "--mlflow-load",
                    str(cache),
                    "--runs",
                    str(args.runs),
                    "--running",
                    str(args.running),
                    "--steps",
                    str(args.steps),
                ],
                env=clean_env(),
            )
        else:
            print(f"mlflow store: reusing {cache / 'mlflow.db'}", flush=True)
    if "runyard" in tools:
        build_runyard(cache, args.runs, args.running, args.steps)
    if loader is not None:
        if loader.wait(3600) != 0:
            raise SystemExit("the MLflow loader failed")
        info = mlflow_cached(cache, args.runs, args.running, args.steps)
    tmp = Path(tempfile.mkdtemp(prefix="ui-workspace-"))
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict[str, list[Timed]]] = {t: {v: [] for v in VIEWS} for t in tools}
    cold: dict[str, dict[str, float]] = {}
    errors: dict[str, list[str]] = {t: [] for t in tools}
    procs: list[Any] = []
    running_all = [r for r in ws_runs(args.runs, args.running, 0) if r.running]
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            sides: dict[str, tuple[BenchContext, Callable[..., None], LiveWriter]] = {}
            running = [r for r in ws_runs(args.runs, args.running, 0) if r.running]
            for tool in tools:
                work = tmp / tool
                work.mkdir()
                name = "runyard.db" if tool == "runyard" else "mlflow.db"
                if tool == "runyard":
                    shutil.copy2(cache / name, work / name)  # the live writer changes the copy
                else:
                    # 8 GB: used in place, the live writer's rows removed again (mlflow_reset);
                    # in WAL mode, so that its slow history reads do not lock out its writes
                    (work / name).symlink_to(cache / name)
                    assert info is not None
                    mlflow_reset(cache / name, args.steps, running_uuids(info, running))
                if tool == "runyard":
                    proc, url = start_runyard(work / name, work)
                    procs.append(proc)
                    ctx = BenchContext(
                        browser,
                        url,
                        args.runs,
                        args.running,
                        args.compare,
                        args.live_cycles,
                        ExternalRequests(url),
                        shots,
                        shots,
                    )
                    sides[tool] = (
                        ctx,
                        runyard_repeat,
                        LiveWriter(tool, work / name, running, args.steps, args.live_rows, {}),
                    )
                else:
                    assert info is not None
                    server = MlflowServer(
                        Path(args.mlflow_python).parent / "mlflow", work / name, work
                    )
                    server.start(300)
                    procs.append(server)
                    ctx = BenchContext(
                        browser,
                        server.url,
                        args.runs,
                        args.running,
                        args.compare,
                        args.live_cycles,
                        ExternalRequests(server.url),
                        shots,
                        shots,
                        info=info,
                    )
                    ctx.mlflow_state = mlflow_setup(ctx)
                    sides[tool] = (
                        ctx,
                        mlflow_repeat,
                        LiveWriter(tool, work / name, running, args.steps, args.live_rows, info),
                    )
            total = args.warmup + args.repeats
            for i in range(total):
                record = i >= args.warmup
                for tool in tools:
                    # MLflow: no warm-up, --mlflow-repeats repeats (its views take minutes here)
                    if (
                        tool == "mlflow"
                        and not args.warmup <= i < args.warmup + args.mlflow_repeats
                    ):
                        continue
                    ctx, repeat, writer = sides[tool]
                    out: dict[str, Timed] = {}
                    live = record and i == args.warmup  # one live window per tool
                    if live:
                        writer.start()
                    try:
                        repeat(ctx, out, live)
                    except Exception as exc:
                        msg = (
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                        )
                        errors[tool].append(msg)
                        if not isinstance(exc, ViewFailed):
                            traceback.print_exc()
                    finally:
                        if live:
                            writer.stop()
                            errors[tool] += writer.errors
                        errors[tool] += ctx.errors
                        ctx.errors.clear()
                    print(
                        f"{tool}{'' if record else ' (warm-up)'}: "
                        + ", ".join(
                            f"{k} {v.seconds * (1000 if k == 'live' else 1):.3f} {'ms' if k == 'live' else 's'}"
                            for k, v in out.items()
                        ),
                        flush=True,
                    )
                    if record:
                        for k, v in out.items():
                            results[tool][k].append(v)
                    elif i == 0:  # the first load after the server started: nothing warm yet
                        cold[tool] = {k: round(v.seconds, 3) for k, v in out.items()}
            browser.close()
            external = {t: sides[t][0].external.seen for t in tools}
    finally:
        for p in procs:
            if isinstance(p, MlflowServer):
                p.stop()
            else:
                kill_group(p)
        if "mlflow" in tools and info is not None and (cache / "mlflow.db").exists():
            mlflow_reset(cache / "mlflow.db", args.steps, running_uuids(info, running_all))
        shutil.rmtree(tmp, ignore_errors=True)

    report: dict[str, Any] = {
        "runs": args.runs,
        "metrics": len(METRICS),
        "steps": args.steps,
        "running": args.running,
        "compare": args.compare,
        "views": {},
        "errors": errors,
        "external_requests": external,
        "cold": cold,
    }
    print(
        f"\n{args.runs} runs x {len(METRICS)} metrics x {args.steps} steps ({args.running} running), "
        f"compare {args.compare}; median of {args.repeats} (live: one window of {args.live_cycles} cycles)"
    )
    print(f"{'view':8} {'runyard':>22} {'MLflow':>22} {'MLflow/runyard':>15} {'target':>9}")
    for view in VIEWS:
        row = {t: summarize(results[t][view]) for t in tools}
        report["views"][view] = row
        unit, scale = ("ms", 1000.0) if view == "live" else ("s", 1.0)

        def cell(s: dict[str, Any], scale: float = scale) -> str:
            if s["median"] is None:
                return "n/a"
            return f"{s['median'] * scale:.3f} ({s['min'] * scale:.3f}-{s['max'] * scale:.3f})"

        ry, ml = row.get("runyard", {"median": None}), row.get("mlflow", {"median": None})
        ratio = f"{ml['median'] / ry['median']:.1f}x" if ry["median"] and ml["median"] else "n/a"
        print(
            f"{view:8} {cell(ry):>22} {cell(ml):>22} {ratio:>15} {'< ' + str(TARGETS[view] * scale) + ' ' + unit:>9}"
        )
    for t, views in cold.items():
        shown = ", ".join(f"{k} {v:.3f} s" for k, v in views.items() if k != "live")
        print(f"{t}: the warm-up, the first load after the server started: {shown}")
    for t in tools:
        for e in errors[t]:
            print(f"{t}: FAILED {e}")
        if external[t]:
            print(f"{t}: requests outside the server: {external[t][:5]}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1, default=lambda o: o.__dict__))
    return 1 if any(errors.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
