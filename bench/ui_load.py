"""Dashboard load times in a real browser, runyard against MLflow's UI over the same data.

Playwright drives Debian's chromium (headless, no network features) against

* ``runyard server`` (with the dashboard) over a runyard store of ``--runs`` runs (default
  10,000) and one run ``long`` with a ``--steps``-step metric (default 1,000,000);
* ``mlflow server --backend-store-uri sqlite:///<tmp>/mlflow.db`` over the same runs, loaded
  by MLflow's client (``MlflowClient.log_batch``) into one experiment: the config as params
  (``optimizer.lr``, ``model.layers``, ...), the 20-step ``loss`` history and ``acc`` as
  metrics, the ``long`` run's ``loss`` in ``log_batch`` chunks of 1,000 metrics.

MLflow runs from ``--mlflow-python`` (default ``.venv-bench/bin/python``, which has MLflow 3):
the loader is this script in that interpreter, the server its ``mlflow`` script. Both servers
run during the measurements; the repeats alternate between the tools.

Measured in the page's clock, median of ``--repeats`` (each in a fresh browser context: cold
HTTP cache, fresh local storage), after ``--warmup`` untimed repeats:

* ``table``: from the app's start page (loaded untimed) to the runs table, a route change,
  until its first 15 rows are drawn;
* ``sort``: a click on the ``loss`` column's header until row 0 is the run the server's answer
  puts first;
* ``filter``: ``model.layers = 8 and loss < 0.5`` applied (Enter) until row 0 is the first run
  of the server's answer;
* ``chart``: a route change to the long run's page until its ``loss`` chart is drawn.

Targets (issue 6): table < 1 s, sort/filter < 0.5 s, chart < 1.5 s, and faster than MLflow.

    .venv/bin/python bench/ui_load.py                      # 10,000 runs + 1M steps, both tools
    .venv/bin/python bench/ui_load.py --runs 1000 --steps 100000 --repeats 3
    .venv/bin/python bench/ui_load.py --keep /tmp/uil-ry --mlflow-keep /tmp/uil-ml  # reusable

See bench/README.md (``ui_load.py``) for what each number includes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from _common import free_port

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
ENTITY, PROJECT = "bench", "ui"
EXPERIMENT = "bench-ui"
VIEWS = ("table", "sort", "filter", "chart")
TARGETS = {"table": 1.0, "sort": 0.5, "filter": 0.5, "chart": 1.5}
TOOLS = ("runyard", "mlflow")
# The same runs in both filter languages (MLflow params are strings: only = != LIKE on them).
RUNYARD_FILTER = "config.model.layers = 8 and summary.loss < 0.5"
MLFLOW_FILTER = "params.`model.layers` = '8' and metrics.loss < 0.5"
MIN_ROWS = 15
# Waits in the browser: a view slower than this is reported as not measured.
RUNYARD_TIMEOUT_MS = 60_000
MLFLOW_TIMEOUT_MS = 180_000  # its sort by a metric over 10,000 runs takes tens of seconds here
BATCH = 1000  # MLflow's log_batch limit for metrics
DATA_VERSION = 2  # what --keep / --mlflow-keep folders must have been built with to be reused
# The request whose answer each view draws, for the breakdown (a regular expression on the URL).
KEY_REQUEST = {
    "runyard": {
        "table": r"/api/v1/runs\?",
        "sort": r"/api/v1/runs\?",
        "filter": r"/api/v1/runs\?",
        "chart": r"/series(\?|$)",
    },
    "mlflow": {
        "table": r"/runs/search$",
        "sort": r"/runs/search$",
        "filter": r"/runs/search$",
        "chart": r"/get-history-bulk-interval\?",
    },
}


# -- the data -----------------------------------------------------------------------------------


@dataclass
class BenchRun:
    index: int
    run_id: str
    name: str
    group: str
    tags: list[str]
    config: dict[str, Any]
    start_time: float
    losses: list[float]


def bench_runs(runs: int, now: float) -> Iterator[BenchRun]:
    """The ``runs`` short runs, the same for both tools (seeded): a nested config and 20 steps
    of ``loss``; ``acc`` is ``1 - loss`` at the end."""
    rng = random.Random(0)
    for i in range(runs):
        lr = 10 ** rng.uniform(-5, -1)
        config = {
            "optimizer": {"lr": lr, "name": rng.choice(["adam", "sgd"])},
            "model": {"layers": rng.choice([2, 4, 8]), "width": rng.choice([64, 128])},
            "seed": i,
        }
        losses = [math.exp(-step * lr * 100) + rng.random() * 0.1 for step in range(20)]
        yield BenchRun(
            index=i,
            run_id=f"run{i:05d}",
            name=f"run-{i:05d}",
            group=f"g{i % 20}",
            tags=["bench"] if i % 3 else ["bench", "odd"],
            config=config,
            start_time=now - runs + i,
            losses=losses,
        )


def long_value(step: int) -> float:
    """The long run's ``loss``: a slow sine with a spike every 99,991 steps."""
    return math.sin(step / 5000.0) + (3.0 if step % 99_991 == 0 else 0.0)


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def fill(store: Any, runs: int, steps: int) -> None:
    """``runs`` finished runs with a nested config, a summary and 20 history rows each, and
    a run ``long`` with ``steps`` steps of ``loss`` (runyard's store, written directly)."""
    from runyard.store.base import JournalBatch

    now = time.time()
    for run in bench_runs(runs, now):
        journal = f"j-{run.run_id}"
        head: dict[str, Any] = {
            "entity": ENTITY,
            "project": PROJECT,
            "run_id": run.run_id,
            "name": run.name,
            "group": run.group,
            "tags": run.tags,
            "config": run.config,
            "start_time": run.start_time,
            "journal_id": journal,
        }
        records: list[tuple[int, str, Any]] = [(1, "run", head)]
        for step, loss in enumerate(run.losses):
            records.append(
                (
                    2 + step,
                    "row",
                    {"_step": step, "_runtime": step, "_timestamp": now + step, "loss": loss},
                )
            )
        records.append((22, "finish", {"state": "finished", "exit_code": 0, "runtime": 20.0}))
        loss = run.losses[-1]
        store.apply(JournalBatch(journal, head, records, summary={"loss": loss, "acc": 1 - loss}))
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
            recs.append(
                (
                    seq,
                    "row",
                    {
                        "_step": step,
                        "_runtime": step * 0.001,
                        "_timestamp": now + step * 0.001,
                        "loss": long_value(step),
                    },
                )
            )
            seq += 1
        if lo + chunk >= steps:
            recs.append(
                (seq, "finish", {"state": "finished", "exit_code": 0, "runtime": steps * 0.001})
            )
        store.apply(JournalBatch("j-long", head, recs, summary={"loss": long_value(steps - 1)}))


def build_runyard(folder: Path, runs: int, steps: int) -> str:
    """The runyard store in ``folder`` (reused when an earlier build there has the same size)."""
    from runyard.store.sql import SQLStore

    url = f"sqlite:///{folder / 'runyard.db'}"
    marker = folder / "runyard-loaded.json"
    wanted = {"runs": runs, "steps": steps, "data": DATA_VERSION}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        print(f"runyard store: reusing {url}", flush=True)
        return url
    (folder / "runyard.db").unlink(missing_ok=True)
    t = time.perf_counter()
    store = SQLStore(url)
    fill(store, runs, steps)
    store.close()
    marker.write_text(json.dumps(wanted))
    print(
        f"runyard store: {runs} runs + a {steps}-step run in {time.perf_counter() - t:.0f} s ({url})",
        flush=True,
    )
    return url


def mlflow_load(folder: Path, runs: int, steps: int) -> None:
    """Runs in ``--mlflow-python``: the same data through ``MlflowClient`` into
    ``folder/mlflow.db``; writes ``folder/mlflow-loaded.json`` when done.

    Fast path: SQLite ``synchronous=OFF`` and WAL on the loader's connections (each client call
    is a few transactions; without this every commit waits for an fsync). The journal mode is
    put back to MLflow's default (``delete``) at the end, so the server sees an ordinary file.
    """
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)

    db = folder / "mlflow.db"
    db.unlink(missing_ok=True)
    t = time.perf_counter()
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    store = getattr(getattr(client, "_tracking_client", None), "store", None)
    engine = getattr(store, "engine", None)
    if engine is not None:
        from sqlalchemy import event

        def fast(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=OFF")
            cur.close()

        event.listen(engine, "connect", fast)
        engine.dispose()  # connections opened before the listener are dropped
    else:
        print("mlflow load: no SQLAlchemy engine found, loading without the fast path")
    exp = client.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    now = time.time()
    for run in bench_runs(runs, now):
        start_ms = int(run.start_time * 1000)
        created = client.create_run(
            exp, start_time=start_ms, run_name=run.name, tags={"group": run.group}
        )
        rid = created.info.run_id
        metrics = [
            Metric("loss", loss, int((now + step) * 1000), step)
            for step, loss in enumerate(run.losses)
        ]
        metrics.append(Metric("acc", 1 - run.losses[-1], int((now + 19) * 1000), 19))
        params = [Param(k, str(v)) for k, v in flatten(run.config).items()]
        client.log_batch(rid, metrics=metrics, params=params)
        client.set_terminated(rid, "FINISHED", end_time=start_ms + 20_000)
        if (run.index + 1) % 2000 == 0:
            print(f"mlflow load: {run.index + 1} runs, {time.perf_counter() - t:.0f} s", flush=True)
    now_ms = int(now * 1000)
    long_run = client.create_run(exp, start_time=now_ms, run_name="long").info.run_id
    client.log_batch(long_run, params=[Param("optimizer.lr", "0.01")])
    for lo in range(0, steps, BATCH):
        client.log_batch(
            long_run,
            metrics=[
                Metric("loss", long_value(s), now_ms + s, s)
                for s in range(lo, min(steps, lo + BATCH))
            ],
        )
    client.set_terminated(long_run, "FINISHED", end_time=now_ms + steps)
    if engine is not None:
        engine.dispose()
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        con.close()
    seconds = time.perf_counter() - t
    (folder / "mlflow-loaded.json").write_text(
        json.dumps(
            {
                "runs": runs,
                "steps": steps,
                "data": DATA_VERSION,
                "experiment_id": exp,
                "long_run_id": long_run,
                "seconds": round(seconds, 1),
            }
        )
    )
    print(f"mlflow load: {runs} runs + a {steps}-step run in {seconds:.0f} s ({db})", flush=True)


def mlflow_cached(folder: Path, runs: int, steps: int) -> dict[str, Any] | None:
    marker = folder / "mlflow-loaded.json"
    if not (marker.exists() and (folder / "mlflow.db").exists()):
        return None
    info = json.loads(marker.read_text())
    wanted = (runs, steps, DATA_VERSION)
    return info if (info.get("runs"), info.get("steps"), info.get("data")) == wanted else None


# -- processes ----------------------------------------------------------------------------------


def kill_group(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group this script started (``start_new_session``: the group's id
    is the child's PID), SIGKILL after ``timeout`` s and whatever is left in the group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # workers left behind in the group
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def clean_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLFLOW_", "RUNYARD_")) or k.startswith("RUNYARD_TEST_")
    }
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


@dataclass
class MlflowServer:
    """``mlflow server`` over a SQLite file: a subprocess in its own session (uvicorn's workers
    and MLflow's job runner are in its group), stopped by its PID's group."""

    mlflow: Path
    db: Path
    cwd: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float) -> None:
        self.port = free_port()
        self.log = open(self.cwd / "mlflow-server.log", "wb")  # noqa: SIM115 - closed in stop()
        cmd = [str(self.mlflow), "server", "--backend-store-uri", f"sqlite:///{self.db}"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.cwd,  # ./mlartifacts, if MLflow makes one, lands in the temp folder
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2.0) as r:
                    if r.status == 200:
                        return
                    last = f"HTTP {r.status}"
            except (OSError, urllib.error.URLError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout:.0f} s ({last})")

    def tail(self, n: int = 3000) -> str:
        path = self.cwd / "mlflow-server.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            kill_group(self.proc)
        if self.log is not None:
            self.log.close()
            self.log = None


# -- the browser --------------------------------------------------------------------------------
#
# Every view is timed in the page's own clock, the same way for both tools: just before the
# user's action, a probe (a JS expression on the DOM) is installed and evaluated on every
# animation frame; its value is logged with performance.now() each time it changes. The view is
# done at the first logged value that satisfies the view's condition (e.g. "row 0 is the run the
# server put first"), so neither Playwright's round trips nor reading a response body in this
# script add to the number. The page's resource timings after the same instant give the
# breakdown (when the data was in, what JavaScript was fetched).

INSTALL_JS = """() => {
  performance.setResourceTimingBufferSize(100000);
  performance.clearResourceTimings();
  const probe = () => { try { return (%s); } catch (e) { return null; } };
  const w = {t0: performance.now(), log: [], stop: false};
  let last;
  const check = () => {
    const v = probe();
    if (v !== last) { last = v; w.log.push([performance.now(), v]); }
  };
  check();
  const frame = () => { if (!w.stop) { check(); requestAnimationFrame(frame); } };
  requestAnimationFrame(frame);
  window.__uiLoad = w;
  return w.t0;
}"""
# The value logged at install time (before the action) never counts.
SEEN_JS = "() => window.__uiLoad.log.slice(1).some(([t, v]) => (%s))"
DONE_JS = """() => {
  const w = window.__uiLoad;
  w.stop = true;
  return w.log.slice(1).find(([t, v]) => (%s))[0];
}"""
ENTRIES_JS = """(t0) => performance.getEntriesByType('resource')
  .filter(e => e.startTime >= t0)
  .map(e => ({url: e.name, type: e.initiatorType, start: e.startTime - t0,
              ttfb: e.responseStart - e.requestStart, end: e.responseEnd - t0,
              bytes: e.encodedBodySize || 0}))"""


@dataclass
class Step:
    """One timed view: seconds from the action to the view on screen, and the page's resource
    timings (ms from the action)."""

    seconds: float
    entries: list[dict[str, Any]]

    def breakdown(self, key: str) -> dict[str, Any]:
        """The key request's server time (request sent to first byte: the server's work plus
        loopback), when its answer was in, what was left for the browser after it, and the
        JavaScript fetched during the step (code-split chunks)."""
        api = [e for e in self.entries if e["type"] in ("fetch", "xmlhttprequest")]
        keyed = [e for e in api if re.search(key, e["url"].split("#")[0])]
        last = max(keyed, key=lambda e: e["end"]) if keyed else None
        scripts = [e for e in self.entries if e["type"] == "script" or e["url"].endswith(".js")]
        return {
            "key_requests": len(keyed),
            "key_server_ms": round(last["ttfb"], 1) if last else None,
            "key_done_ms": round(last["end"], 1) if last else None,
            "after_key_ms": round(self.seconds * 1000 - last["end"], 1) if last else None,
            "api_requests": len(api),
            "api_done_ms": round(max((e["end"] for e in api), default=0.0), 1),
            "js_kb": round(sum(e["bytes"] for e in scripts) / 1024, 1),
        }


class ViewFailed(RuntimeError):
    pass


def timed(
    page: Any,
    label: str,
    probe: str,
    action: Callable[[], str],
    fail_dir: Path | None,
) -> Step:
    """Install ``probe``, run ``action`` (the user's action; it returns the JS condition on the
    probe's value ``v`` that means the view is drawn), wait for it, and read the time it first
    held. On a failure: a screenshot ``fail-{label}.png`` in ``fail_dir`` and ViewFailed."""
    try:
        t0 = page.evaluate(INSTALL_JS % probe)
        until = action()
        page.wait_for_function(SEEN_JS % until)
        done = page.evaluate(DONE_JS % until)
        return Step((done - t0) / 1000.0, page.evaluate(ENTRIES_JS, t0))
    except Exception as exc:
        if fail_dir is not None:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(fail_dir / f"fail-{label}.png"))
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ViewFailed(f"{label}: {type(exc).__name__}: {first}") from exc


def first_run_of(
    page: Any, matches: Callable[[Any], bool], act: Callable[[], Any], key: str
) -> str:
    """Do ``act`` and return the id of the first run in the answer of the first response that
    ``matches`` (``key`` picks the id out of a run of that answer)."""
    with page.expect_response(matches) as answer:
        act()
    runs = answer.value.json().get("runs") or []
    if not runs:
        raise RuntimeError(f"{answer.value.url} answered no runs")
    value: Any = runs[0]
    for part in key.split("."):
        value = value[part]
    return str(value)


class ExternalRequests:
    """Requests of the page to anything but the server under test (the app must need none)."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.seen: list[str] = []

    def __call__(self, request: Any) -> None:
        url = request.url
        if not url.startswith((self.base, "data:", "blob:", "about:")):
            self.seen.append(url)


def shoot(page: Any, shots: Path | None, name: str) -> None:
    if shots is not None:
        page.screenshot(path=str(shots / f"{name}.png"))


RY_ROWS = "document.querySelectorAll('#runs-grid [data-run]').length"
RY_FIRST = "document.querySelector('#runs-grid [data-run]')?.dataset.run ?? null"
RY_CHART = "!!document.querySelector(\"figure[data-metric='loss'].drawn canvas\")"


def runyard_repeat(
    browser: Any,
    base_url: str,
    external: ExternalRequests,
    shots: Path | None,
    fail_dir: Path | None,
    out: dict[str, Step],
) -> None:
    table = f"#/p/{ENTITY}/{PROJECT}/runs?cols=config.optimizer.lr,config.model.layers,summary.loss"
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(RUNYARD_TIMEOUT_MS)
        page.on("request", external)
        page.goto(f"{base_url}/#/")  # the app's start page, untimed (the bundle is loaded)
        page.wait_for_selector("table[aria-label='Projects']")

        def open_table() -> str:
            page.evaluate(f"location.hash = {table!r}")
            return f"v >= {MIN_ROWS}"

        out["table"] = timed(page, "runyard-table", RY_ROWS, open_table, fail_dir)
        shoot(page, shots, "runyard-table")

        def runs_answer(needle: str) -> Callable[[Any], bool]:
            return lambda r: "/api/v1/runs?" in r.url and "offset=0" in r.url and needle in r.url

        def sort() -> str:
            click = lambda: page.click("[data-field='summary.loss'] button.sort")  # noqa: E731
            first = first_run_of(page, runs_answer("sort="), click, "run_id")
            return f"v === {first!r}"

        out["sort"] = timed(page, "runyard-sort", RY_FIRST, sort, fail_dir)
        shoot(page, shots, "runyard-sort")

        page.fill("#runs-filter", RUNYARD_FILTER)

        def filter_() -> str:
            enter = lambda: page.press("#runs-filter", "Enter")  # noqa: E731
            first = first_run_of(page, runs_answer("filter="), enter, "run_id")
            return f"v === {first!r}"

        out["filter"] = timed(page, "runyard-filter", RY_FIRST, filter_, fail_dir)
        shoot(page, shots, "runyard-filter")

        def open_chart() -> str:
            page.evaluate(f"location.hash = '#/r/{ENTITY}/{PROJECT}/long'")
            return "v"

        out["chart"] = timed(page, "runyard-chart", RY_CHART, open_chart, fail_dir)
        shoot(page, shots, "runyard-chart")
    finally:
        context.close()


# MLflow 3's UI (React, AG Grid for the runs table, Plotly for charts), as inspected in
# headless chromium: selectors by data-testid / data-component-id / AG Grid's row attributes.
ML_ROWS = "document.querySelectorAll(\".ag-row a[href*='/runs/']\").length"
ML_FIRST = "document.querySelector(\".ag-row[row-index='0']\")?.getAttribute('row-id') ?? null"
# Plotly simplifies the line: a drawn sine has tens of segments, a placeholder none.
ML_CHART = (
    "(document.querySelector(\"[data-testid='experiment-view-compare-runs-card'] "
    ".js-plotly-plot path.js-line\")?.getAttribute('d') ?? '').split('L').length > 10"
)


def mlflow_setup(browser: Any, base_url: str, info: dict[str, Any], shots: Path | None) -> Any:
    """Once, untimed: what a user does before working with the runs table. Open it, close the
    assistant panel (it opens on first visit), and show the ``loss``, ``optimizer.lr`` and
    ``model.layers`` columns (hidden by default; ``Dataset`` and ``Models``, empty here, are
    hidden to make room at 1280 px). MLflow keeps this in local storage; every repeat's fresh
    context starts from that storage state."""
    exp = info["experiment_id"]
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(MLFLOW_TIMEOUT_MS)
        page.goto(f"{base_url}/#/experiments/{exp}/runs")
        page.wait_for_function(f"{ML_ROWS} >= {MIN_ROWS}")
        close = page.locator("[data-component-id='mlflow.assistant.chat_panel.close']")
        if close.count():
            close.first.click()
        page.click("[data-testid='column-selection-dropdown']:has-text('Columns')")
        popup = page.locator("[data-radix-popper-content-wrapper]").last
        for name in ("loss", "optimizer.lr", "model.layers", "Dataset", "Models"):
            popup.get_by_text(name, exact=True).click()
        page.keyboard.press("Escape")
        page.wait_for_selector("[data-testid='sort-header-loss']")
        headers = page.eval_on_selector_all(
            "[data-testid^='sort-header-']", "hs => hs.map(h => h.dataset.testid.slice(12))"
        )
        print(f"mlflow: runs table columns {headers}", flush=True)
        shoot(page, shots, "mlflow-setup")
        return context.storage_state()
    finally:
        context.close()


def mlflow_repeat(
    browser: Any,
    base_url: str,
    info: dict[str, Any],
    state: Any,
    external: ExternalRequests,
    shots: Path | None,
    fail_dir: Path | None,
    out: dict[str, Step],
) -> None:
    exp, long_run = info["experiment_id"], info["long_run_id"]
    context = browser.new_context(viewport=VIEWPORT, storage_state=state)
    try:
        page = context.new_page()
        page.set_default_timeout(MLFLOW_TIMEOUT_MS)
        page.on("request", external)
        page.goto(f"{base_url}/#/experiments")  # the app's start page, untimed
        page.wait_for_selector(f"a[href$='/experiments/{exp}']")

        def open_table() -> str:
            page.evaluate(f"location.hash = '#/experiments/{exp}/runs'")
            return f"v >= {MIN_ROWS}"

        out["table"] = timed(page, "mlflow-table", ML_ROWS, open_table, fail_dir)
        shoot(page, shots, "mlflow-table")

        def search_answer(needle: str) -> Callable[[Any], bool]:
            """The UI sorts and filters on the server: runs/search with the new order_by or
            filter in its body."""
            return lambda r: (
                r.url.endswith("/runs/search") and needle in (r.request.post_data or "")
            )

        header = page.locator("[data-testid='sort-header-loss']")
        header.scroll_into_view_if_needed()

        def sort() -> str:
            first = first_run_of(page, search_answer("metrics.`loss`"), header.click, "info.run_id")
            return f"v === {first!r}"

        out["sort"] = timed(page, "mlflow-sort", ML_FIRST, sort, fail_dir)
        shoot(page, shots, "mlflow-sort")

        box = page.locator("input[data-testid='search-box']")
        box.fill(MLFLOW_FILTER)

        def filter_() -> str:
            enter = lambda: box.press("Enter")  # noqa: E731
            first = first_run_of(page, search_answer("model.layers"), enter, "info.run_id")
            return f"v === {first!r}"

        out["filter"] = timed(page, "mlflow-filter", ML_FIRST, filter_, fail_dir)
        shoot(page, shots, "mlflow-filter")

        def open_chart() -> str:
            page.evaluate(f"location.hash = '#/experiments/{exp}/runs/{long_run}/model-metrics'")
            return "v"

        out["chart"] = timed(page, "mlflow-chart", ML_CHART, open_chart, fail_dir)
        shoot(page, shots, "mlflow-chart")
    finally:
        context.close()


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Side:
    """One tool's measurements: the steps of each repeat, and why views could not be measured."""

    name: str
    repeat: Callable[[Any, Path | None, dict[str, Step]], None]
    steps: dict[str, list[Step]] = field(default_factory=lambda: {v: [] for v in VIEWS})
    errors: list[str] = field(default_factory=list)

    repeats: int = 0

    def run(self, browser: Any, shots: Path | None, record: bool) -> None:
        """One repeat; the views measured before a failure count, the failure is reported
        (a timeout or a changed UI is never turned into a number)."""
        result: dict[str, Step] = {}
        failed = ""
        try:
            self.repeat(browser, shots, result)
        except Exception as exc:
            failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if record:
                self.errors.append(failed)
        if record:
            self.repeats += 1
            for view, step in result.items():
                self.steps[view].append(step)
        print(
            f"{self.name}{'' if record else ' (warm-up)'}: "
            + ", ".join(f"{v} {s.seconds:.3f} s" for v, s in result.items())
            + (f"; FAILED {failed}" if failed else ""),
            flush=True,
        )

    def summary(self, view: str) -> dict[str, Any]:
        steps = self.steps[view]
        if not steps:
            return {"median_s": None, "error": "; ".join(self.errors) or "not measured"}
        values = [s.seconds for s in steps]
        parts = [s.breakdown(KEY_REQUEST[self.name][view]) for s in steps]
        med = {
            k: statistics.median(p[k] for p in parts)
            for k in parts[0]
            if all(p[k] is not None for p in parts)
        }
        return {
            "median_s": statistics.median(values),
            "min_s": min(values),
            "max_s": max(values),
            "n": len(values),
            "repeats": self.repeats,
            "breakdown_median": med,
        }


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def report(sides: dict[str, Side], runs: int, steps: int) -> dict[str, Any]:
    ry, ml = sides.get("runyard"), sides.get("mlflow")
    print(
        f"\n{runs} runs + a {steps}-step run; median of the repeats (min-max)\n"
        "\n| view | runyard (s) | MLflow (s) | ratio (MLflow / runyard) | target (runyard) | |"
        "\n| --- | --- | --- | --- | --- | --- |"
    )
    rows: dict[str, Any] = {}
    for view in VIEWS:
        r = ry.summary(view) if ry else None
        m = ml.summary(view) if ml else None
        rv = r["median_s"] if r else None
        mv = m["median_s"] if m else None

        def cell(s: dict[str, Any] | None) -> str:
            if s is None:
                return "not run"
            if s["median_s"] is None:
                return "n/a (not measured, see below)"
            partial = f" [{s['n']} of {s['repeats']}]" if s["n"] < s["repeats"] else ""
            return f"{s['median_s']:.3f} ({s['min_s']:.3f}-{s['max_s']:.3f}){partial}"

        ratio = f"{mv / rv:.1f}x" if rv and mv else "n/a"
        verdict = []
        if rv is not None:
            verdict.append("met" if rv < TARGETS[view] else "MISSED")
            if mv is not None:
                verdict.append("faster than MLflow" if rv < mv else "NOT faster than MLflow")
            else:
                verdict.append("MLflow n/a")
        print(
            f"| {view} | {cell(r)} | {cell(m)} | {ratio} | < {TARGETS[view]} s | "
            f"{', '.join(verdict) or 'n/a'} |"
        )
        rows[view] = {"runyard": r, "mlflow": m, "target_s": TARGETS[view], "verdict": verdict}

    print(
        "\nWhere the time goes (medians, ms from the action): the request the view draws "
        "(runyard /api/v1/runs or /series; MLflow runs/search or get-history-bulk-interval): "
        "its server time (sent -> first byte) and when its answer was in; after it: the browser "
        "(JavaScript, layout) until the frame that shows the result; JS = scripts fetched "
        "during the view (code-split chunks)."
        "\n\n| view | tool | total | key server | key answer in | after it | API requests | JS (KB) |"
        "\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    for view in VIEWS:
        for name, side in sides.items():
            s = side.summary(view)
            if s["median_s"] is None:
                print(f"| {view} | {name} | n/a | | | | | |")
                continue
            b = s["breakdown_median"]
            print(
                f"| {view} | {name} | {s['median_s'] * 1000:.0f} | {fmt(b.get('key_server_ms'), 0)}"
                f" | {fmt(b.get('key_done_ms'), 0)} | {fmt(b.get('after_key_ms'), 0)}"
                f" | {fmt(b.get('api_requests'), 0)} | {fmt(b.get('js_kb'), 0)} |"
            )
    for name, side in sides.items():
        for err in side.errors:
            print(f"{name}: not measured: {err}")
    return rows


@dataclass
class Prepared:
    """The data both tools serve, or why a tool has none."""

    runyard_url: str | None = None
    mlflow_folder: Path | None = None
    mlflow_info: dict[str, Any] | None = None
    problems: dict[str, str] = field(default_factory=dict)


def prepare(args: argparse.Namespace, tools: list[str], tmp: Path) -> Prepared:
    """Build runyard's store and load MLflow's (in its own process, at the same time), or reuse
    the ones kept by an earlier run."""
    out = Prepared()
    loader: subprocess.Popen[bytes] | None = None
    ml_python = Path(args.mlflow_python)
    try:
        if "mlflow" in tools:
            folder = Path(args.mlflow_keep) if args.mlflow_keep else tmp / "mlflow"
            folder.mkdir(parents=True, exist_ok=True)
            out.mlflow_folder = folder
            out.mlflow_info = mlflow_cached(folder, args.runs, args.steps)
            if out.mlflow_info is not None:
                print(f"mlflow db: reusing {folder / 'mlflow.db'}", flush=True)
            elif not ml_python.exists():
                out.problems["mlflow"] = f"{ml_python} is missing (make .venv-bench/.installed)"
            else:
                (folder / "mlflow-loaded.json").unlink(missing_ok=True)
                loader = subprocess.Popen(
                    [str(ml_python), __file__, "--load-mlflow-into", str(folder)]
                    + ["--runs", str(args.runs), "--steps", str(args.steps)],
                    cwd=tmp,
                    env=clean_env(),
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
        if "runyard" in tools:
            if args.store:
                out.runyard_url = args.store
            else:
                folder = Path(args.keep) if args.keep else tmp / "runyard"
                folder.mkdir(parents=True, exist_ok=True)
                out.runyard_url = build_runyard(folder, args.runs, args.steps)
        if loader is not None:
            assert out.mlflow_folder is not None
            try:
                rc: int | None = loader.wait(args.load_timeout)
            except subprocess.TimeoutExpired:
                rc = None
            out.mlflow_info = mlflow_cached(out.mlflow_folder, args.runs, args.steps)
            if out.mlflow_info is None:
                out.problems["mlflow"] = (
                    f"loading took over {args.load_timeout:.0f} s (--load-timeout)"
                    if rc is None
                    else f"the MLflow loader failed (exit code {rc})"
                )
    finally:
        if loader is not None:
            kill_group(loader)
    return out


def measure(
    args: argparse.Namespace,
    tools: list[str],
    data: Prepared,
    tmp: Path,
    shots: Path | None,
) -> tuple[dict[str, Side], dict[str, ExternalRequests]]:
    """Start the servers, set MLflow's table up, then the warm-up and timed repeats, the tools
    alternating (repeat-major), so that a change of the machine's load hits both alike."""
    from playwright.sync_api import sync_playwright
    from tests.serverproc import running_server

    sides: dict[str, Side] = {}
    external: dict[str, ExternalRequests] = {}
    ml_server: MlflowServer | None = None
    with sync_playwright() as pw, contextlib.ExitStack() as stack:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        if data.runyard_url is not None:
            ry_url = stack.enter_context(running_server(data.runyard_url)).url
            external["runyard"] = ExternalRequests(ry_url)
            sides["runyard"] = Side(
                "runyard",
                lambda b, s, out: runyard_repeat(b, ry_url, external["runyard"], s, shots, out),
            )
        if "mlflow" in tools:
            side = sides["mlflow"] = Side("mlflow", lambda b, s, out: None)
            info, folder = data.mlflow_info, data.mlflow_folder
            if info is None or folder is None:
                side.errors.append(data.problems.get("mlflow", "no MLflow data"))
            else:
                ml_server = MlflowServer(
                    Path(args.mlflow_python).parent / "mlflow", folder / "mlflow.db", tmp
                )
                stack.callback(ml_server.stop)
                try:
                    t = time.perf_counter()
                    ml_server.start(args.server_timeout)
                    print(
                        f"mlflow server ready in {time.perf_counter() - t:.0f} s at {ml_server.url}",
                        flush=True,
                    )
                    state = mlflow_setup(browser, ml_server.url, info, shots)
                except Exception as exc:
                    traceback.print_exc()
                    side.errors.append(f"MLflow setup failed: {type(exc).__name__}: {exc}")
                else:
                    ml_url = ml_server.url
                    external["mlflow"] = ExternalRequests(ml_url)
                    side.repeat = lambda b, s, out: mlflow_repeat(
                        b, ml_url, info, state, external["mlflow"], s, shots, out
                    )
        measured = [s for s in sides.values() if not s.errors]
        for _ in range(args.warmup):
            for side in measured:
                side.run(browser, None, record=False)
        for i in range(args.repeats):
            for side in measured:
                side.run(browser, shots if i == args.repeats - 1 else None, record=True)
    return sides, external


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats per tool first")
    parser.add_argument("--tools", default=",".join(TOOLS), help="runyard,mlflow")
    parser.add_argument("--store", help="an existing runyard store URL filled by --keep")
    parser.add_argument(
        "--keep", help="build the runyard store in this folder and keep it (reused next time)"
    )
    parser.add_argument(
        "--mlflow-keep",
        help="load MLflow's db in this folder and keep it (reused when --runs/--steps match)",
    )
    parser.add_argument(
        "--mlflow-python",
        default=str(REPO / ".venv-bench" / "bin" / "python"),
        help="an interpreter with MLflow 3 (its bin/ has the mlflow script)",
    )
    parser.add_argument("--load-timeout", type=float, default=3600.0, help="MLflow load, s")
    parser.add_argument("--server-timeout", type=float, default=300.0, help="server start, s")
    parser.add_argument(
        "--screenshots",
        default=str(REPO / "test-artifacts" / "ui_load"),
        help="folder for one screenshot per view and tool (last repeat); '' for none",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--load-mlflow-into", help=argparse.SUPPRESS)  # the loader child
    args = parser.parse_args()

    if args.load_mlflow_into:
        mlflow_load(Path(args.load_mlflow_into), args.runs, args.steps)
        return 0

    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"ui_load: {args.runs} runs, {args.steps} steps, {args.repeats} repeats, tools {tools}; "
        f"{os.cpu_count()} CPUs, load average before {load_before}",
        flush=True,
    )
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ui-load-"))
    try:
        data = prepare(args, tools, tmp)
        sides, external = measure(args, tools, data, tmp, shots)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = report(sides, args.runs, args.steps)
    for name, ext in external.items():
        print(f"{name}: requests to anything but its server: {sorted(set(ext.seen)) or 'none'}")
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before {load_before}, after {load_after} ({os.cpu_count()} CPUs)")
    if shots:
        print(f"screenshots: {shots}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "runs": args.runs,
                    "steps": args.steps,
                    "repeats": args.repeats,
                    "cpus": os.cpu_count(),
                    "load_before": load_before,
                    "load_after": load_after,
                    "views": rows,
                    "errors": {k: s.errors for k, s in sides.items()},
                    "external_requests": {k: v.seen for k, v in external.items()},
                    "mlflow_load": data.mlflow_info,
                },
                indent=1,
            )
        )
    complete = all(s.steps[v] and not s.errors for s in sides.values() for v in VIEWS)
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
