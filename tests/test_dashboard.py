"""The dashboard (web/, served by runyard.server.dashboard) and the API routes it needs
(runyard.server.routes.analysis, runyard.analysis.importance).

The browser tests start a real server subprocess over a store filled by the SDK (runs with
config, summary and history; a sweep with trials and an agent) and drive Debian's chromium
through Playwright: the runs table, a run page, a comparison and a sweep page. A screenshot of
each page is saved under ``test-artifacts/dashboard/`` (gitignored; CI keeps it).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from runyard.analysis.importance import parameter_importance
from tests.serverproc import ServerProc, running_server, runyard_ui

REPO = Path(__file__).resolve().parent.parent
DIST = REPO / "src" / "runyard" / "server" / "dashboard_dist"
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
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

# -- demo data ------------------------------------------------------------------------------------

RUNS = [
    # run id, lr, optimizer, layers, group, tags, exit code
    ("r0", 0.1, "sgd", 2, "lr-scan", ["demo"], 0),
    ("r1", 0.01, "adam", 2, "lr-scan", ["demo", "best"], 0),
    ("r2", 0.001, "adam", 4, "lr-scan", ["demo"], 0),
    ("r3", 0.003, "sgd", 4, "baseline", [], 0),
    ("r4", 0.03, "adam", 8, "baseline", [], 0),
    ("r5", 0.005, "sgd", 8, "baseline", ["broken"], 1),
]
STEPS = 60
METRICS = ["epoch", "test/accuracy", "test/loss", "train/acc", "train/loss"]


def _curve(lr: float, layers: int, step: int) -> dict[str, float]:
    quality = 1.0 - abs(math.log10(lr) + 2.0) / 3.0 + layers / 40.0
    loss = 2.0 * math.exp(-step * lr * 5 - step / 40.0) + (1 - quality) * 0.2
    out = {
        "epoch": step // 10,
        "train/loss": round(loss, 6),
        "train/acc": round(min(1.0, quality * (1 - math.exp(-step / 15.0))), 6),
    }
    if step % 10 == 9:
        out["test/accuracy"] = round(quality * 0.9 * (1 - math.exp(-step / 20.0)), 6)
        out["test/loss"] = round(loss * 1.1, 6)
    return out


def last_values(run_id: str) -> dict[str, float]:
    """The last logged value of each metric of a demo run."""
    _, lr, _, layers, *_ = next(r for r in RUNS if r[0] == run_id)
    last: dict[str, float] = {}
    for step in range(STEPS):
        last.update(_curve(lr, layers, step))
    return last


EXACT_LR = 0.00123456789
EXACT_WD = 1.23456789e-7
LONG_STEPS = 2000
MANY_RUNS = 150


def long_values() -> list[float]:
    """A noisy decreasing loss whose last point is neither its bucket's minimum nor maximum."""
    rng = np.random.default_rng(11)
    values = [2.0 - i / LONG_STEPS + float(rng.uniform(-0.3, 0.3)) for i in range(LONG_STEPS)]
    values[-3], values[-2], values[-1] = 0.0, 2.0, 1.0
    return values


SPIKE_AT = 120

SWEEP_ID = "sw1"
SWEEP_CONFIG: dict[str, Any] = {
    "method": "random",
    "metric": {"name": "val/loss", "goal": "minimize"},
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "optimizer": {"values": ["adam", "sgd"]},
        "dropout": {"distribution": "uniform", "min": 0.0, "max": 0.5},
    },
    "run_cap": 20,
}
SWEEP_TRIALS = 16
MO_SWEEP_ID = "mosweep1"
MO_SWEEP_CONFIG = {
    "program": "train.py",
    "method": "bayes",
    "metrics": [{"name": "val/loss", "goal": "minimize"}, {"name": "val/acc", "goal": "maximize"}],
    "parameters": {"x": {"min": 0.0, "max": 1.0}},
}
#: (loss, acc) of each trial: mo0, mo1, mo3 are the front (mo2 is beaten by mo1, mo4 by mo3)
MO_VALUES = [(0.1, 0.5), (0.2, 0.7), (0.3, 0.6), (0.4, 0.9), (0.5, 0.8)]


def _trial(i: int) -> tuple[dict[str, Any], float]:
    rng = np.random.default_rng(i)
    params = {
        "lr": float(10 ** rng.uniform(-4, -1)),
        "optimizer": ["adam", "sgd"][i % 2],
        "dropout": float(rng.uniform(0, 0.5)),
    }
    value = (math.log10(params["lr"]) + 2.5) ** 2 + (0.0 if params["optimizer"] == "adam" else 0.8)
    return params, value + 0.01 * float(rng.normal())


def populate(root: str) -> None:
    """Fill the embedded store under ``root`` (run in a subprocess: the SDK's global state)."""
    os.environ["RUNYARD_DIR"] = root
    os.environ["RUNYARD_SILENT"] = "true"
    os.environ["RUNYARD_DISABLE_GIT"] = "true"
    import runyard
    from runyard.store import JournalBatch, open_store
    from runyard.store.locate import default_store_url

    for run_id, lr, opt, layers, group, tags, code in RUNS:
        run = runyard.init(
            entity="lab",
            project="demo",
            id=run_id,
            name=f"run-{run_id}",
            group=group,
            tags=tags,
            config={"optimizer": {"lr": lr, "name": opt}, "model": {"layers": layers}},
        )
        for step in range(STEPS):
            run.log(_curve(lr, layers, step))
        print(f"{run_id} says hello", flush=True)
        run.finish(exit_code=code)

    # project "steps": a run with define_metric(step_metric=...) (Lightning's pattern), exact
    # config values, a long noisy run (downsampled) and a short one (integer step axis)
    run = runyard.init(
        entity="lab",
        project="steps",
        id="sm",
        name="run-sm",
        config={"lr": EXACT_LR, "wd": EXACT_WD, "model": {"kind": "cnn"}},
    )
    run.define_metric("trainer/global_step")
    run.define_metric("*", step_metric="trainer/global_step")
    for step in range(30):
        run.log({"train/loss": 1.0 / (step + 1), "trainer/global_step": 8 * step, "lr": 0.5})
    run.finish()
    run = runyard.init(entity="lab", project="steps", id="short", config={"model": {"kind": "cnn"}})
    for step in range(11):
        run.log({"loss": 0.1 * step})
    run.finish()

    store = open_store(default_store_url(Path(root)))
    # the long run straight into the store (2,000 SDK log calls would cost a second here)
    head = {"entity": "lab", "project": "steps", "run_id": "long", "journal_id": "j-long"}
    head["config"] = {"model": {"kind": "mlp"}}
    rows = [
        (
            2 + i,
            "row",
            {"_step": i, "_runtime": i * 0.01, "_timestamp": 1.8e9 + i * 0.01, "loss": v},
        )
        for i, v in enumerate(long_values())
    ]
    finish = (len(rows) + 2, "finish", {"state": "finished", "exit_code": 0})
    store.apply(
        JournalBatch(
            "j-long", head, [(1, "run", head), *rows, finish], summary={"loss": long_values()[-1]}
        )
    )
    # project "spiky": one run with one outlier among 200 steps (outlier clipping)
    head = {"entity": "lab", "project": "spiky", "run_id": "spk", "journal_id": "j-spk"}
    spiky = [1000.0 if i == SPIKE_AT else 1.0 + 0.01 * math.sin(i / 7) for i in range(200)]
    rows = [(2 + i, "row", {"_step": i, "_runtime": i * 0.5, "y": v}) for i, v in enumerate(spiky)]
    finish = (len(rows) + 2, "finish", {"state": "finished", "exit_code": 0})
    store.apply(
        JournalBatch("j-spk", head, [(1, "run", head), *rows, finish], summary={"y": spiky[-1]})
    )
    # project "many": hundreds of runs (colours)
    for i in range(MANY_RUNS):
        head = {"entity": "lab", "project": "many", "run_id": f"m{i:03d}", "journal_id": f"jm{i}"}
        store.apply(
            JournalBatch(
                f"jm{i}",
                head,
                [(1, "run", head), (2, "finish", {"state": "finished", "exit_code": 0})],
                summary={"score": float(i)},
            )
        )
    store.create_sweep(
        sweep_id=SWEEP_ID,
        entity="lab",
        project="sweeps",
        name="lr-sweep",
        description=None,
        method="random",
        config=SWEEP_CONFIG,
        seed=0,
    )
    store.register_agent("agent-1", SWEEP_ID, "host-a", 4242)
    with store.sweep_transaction(SWEEP_ID) as tx:
        for i in range(SWEEP_TRIALS):
            params, value = _trial(i)
            tx.add_trial(f"t{i:02d}", f"trial-{i:02d}", params, params, "agent-1")
            tx.set_trial_result(f"t{i:02d}", "finished", {"val/loss": value})
        tx.update_sweep(run_count=SWEEP_TRIALS)
    store.agent_heartbeat("agent-1", None, SWEEP_TRIALS)
    # a multi-objective sweep: loss (minimise) against accuracy (maximise)
    store.create_sweep(
        sweep_id=MO_SWEEP_ID,
        entity="lab",
        project="sweeps",
        name="mo-sweep",
        description=None,
        method="bayes",
        config=MO_SWEEP_CONFIG,
        seed=0,
    )
    with store.sweep_transaction(MO_SWEEP_ID) as tx:
        for i, (loss, acc) in enumerate(MO_VALUES):
            tx.add_trial(f"mo{i}", f"mo-{i}", {"x": i / 10}, {"x": i / 10}, None)
            tx.set_trial_result(f"mo{i}", "finished", {"val/loss": loss, "val/acc": acc})
        tx.update_sweep(run_count=len(MO_VALUES))


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("dashboard") / ".runyard"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "WANDB_"))}
    subprocess.run(
        [
            sys.executable,
            "-c",
            f"from tests.test_dashboard import populate; populate({str(root)!r})",
        ],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
    )
    from runyard.store.locate import default_store_url

    return default_store_url(root)


@pytest.fixture(scope="module")
def server(demo_store: str) -> Iterator[ServerProc]:
    with running_server(demo_store) as proc:
        yield proc


# -- API routes -------------------------------------------------------------------------------------


def test_project_keys(server: ServerProc) -> None:
    keys = httpx.get(f"{server.api}/projects/lab/demo/keys").json()
    assert keys["config"] == ["model.layers", "optimizer.lr", "optimizer.name"]
    assert {"test/accuracy", "train/loss", "epoch"} <= set(keys["summary"])
    assert [k for k in keys["metrics"] if not k.startswith("_")] == sorted(METRICS)


def test_sweep_agents_and_importance(server: ServerProc) -> None:
    agents = httpx.get(f"{server.api}/sweeps/{SWEEP_ID}/agents").json()
    assert [(a["id"], a["host"], a["runs_done"]) for a in agents] == [("agent-1", "host-a", 16)]
    imp = httpx.get(f"{server.api}/sweeps/{SWEEP_ID}/importance").json()
    assert imp["metric"] == "val/loss" and imp["goal"] == "minimize" and imp["n"] == SWEEP_TRIALS
    names = [p["name"] for p in imp["params"]]
    assert sorted(names) == ["dropout", "lr", "optimizer"]
    by_name = {p["name"]: p for p in imp["params"]}
    assert by_name["lr"]["kind"] == "log" and by_name["optimizer"]["kind"] == "categorical"
    assert by_name["dropout"]["importance"] < max(
        by_name["lr"]["importance"], by_name["optimizer"]["importance"]
    )
    assert httpx.get(f"{server.api}/sweeps/nope/importance").status_code == 404


def test_xseries(server: ServerProc) -> None:
    base = f"{server.api}/runs/lab/demo/r0/xseries"
    by_step = httpx.get(base, params={"key": "train/loss"}).json()
    assert by_step["xs"] == list(range(STEPS)) and len(by_step["values"]) == STEPS
    runtime = httpx.get(base, params={"key": "train/loss", "x": "_runtime"}).json()
    assert len(runtime["xs"]) == STEPS and runtime["xs"] == sorted(runtime["xs"])
    wall = httpx.get(base, params={"key": "train/loss", "x": "_timestamp"}).json()
    assert wall["xs"][0] > 1.6e9
    epoch = httpx.get(base, params={"key": "test/accuracy", "x": "epoch"}).json()
    assert epoch["xs"] == [0, 1, 2, 3, 4, 5] and epoch["steps"] == [9, 19, 29, 39, 49, 59]


def test_dashboard_served(server: ServerProc) -> None:
    page = httpx.get(f"{server.url}/")
    if page.status_code == 503:
        pytest.fail("the dashboard bundle is not built: run `make web`")
    assert page.status_code == 200 and "<title>runyard</title>" in page.text
    assert page.headers["cache-control"] == "no-cache"
    # the entry script (lazily loaded chunks, such as plotly's, are not in index.html)
    asset = next(p.name for p in (DIST / "assets").glob("index-*.js"))
    assert f"/assets/{asset}" in page.text
    js = httpx.get(f"{server.url}/assets/{asset}")
    assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
    assert httpx.get(f"{server.url}/assets/..%2Findex.html").status_code == 404
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_not_built_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from runyard.server.dashboard import mount_dashboard

    monkeypatch.setenv("RUNYARD_DASHBOARD_DIR", str(tmp_path / "missing"))
    app = FastAPI()
    mount_dashboard(app)
    response = TestClient(app).get("/")
    assert response.status_code == 503 and "make web" in response.text


# -- importance -----------------------------------------------------------------------------------


def test_importance_finds_the_parameter_that_matters() -> None:
    rng = np.random.default_rng(3)
    params = [
        {
            "lr": float(10 ** rng.uniform(-4, -1)),
            "noise": float(rng.uniform()),
            "opt": str(rng.choice(["adam", "sgd"])),
        }
        for _ in range(80)
    ]
    # lr matters through a bowl (no linear correlation), opt a little, noise not at all
    values = [
        (math.log10(p["lr"]) + 2.5) ** 2 + (0.3 if p["opt"] == "sgd" else 0.0) for p in params
    ]
    result = {
        r.name: r for r in parameter_importance(params, values, ["lr", "noise", "opt"], {"lr"})
    }
    assert result["lr"].importance is not None and result["lr"].importance > 0.6
    assert result["noise"].importance is not None and result["noise"].importance < 0.05
    assert abs(result["lr"].correlation or 0) < 0.5  # a bowl: the forest sees what r misses
    assert result["opt"].kind == "categorical" and (result["opt"].correlation or 0) > 0
    assert sum(r.importance or 0 for r in result.values()) == pytest.approx(1.0)
    # too few runs: no numbers, no crash
    few = parameter_importance(params[:1], values[:1], ["lr"])
    assert few[0].importance is None and few[0].correlation is None


# -- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    if not (DIST / "index.html").is_file():
        pytest.fail("the dashboard bundle is not built: run `make web`")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def checked_page(
    browser: Any,
    base_url: str,
    *,
    size: tuple[int, int] = (1280, 800),
    timeout: int = 15_000,
    init_script: str | None = None,
) -> Iterator[Any]:
    """A page in a browser context of its own (``init_script`` runs before each document's
    scripts); when the block ends, the context is closed and the test fails if the page raised
    any JavaScript error. The browser tests' ``page`` fixtures are made of it."""
    context = browser.new_context(viewport={"width": size[0], "height": size[1]}, base_url=base_url)
    if init_script is not None:
        context.add_init_script(init_script)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.set_default_timeout(timeout)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(browser: Any, server: ServerProc) -> Iterator[Any]:
    with checked_page(browser, server.url) as pg:
        yield pg


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    print(f"screenshot: {path}")


def row_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#runs-grid .grid-body [data-run]", "rows => rows.map(r => r.dataset.run)"
    )


def wait_for_rows(page: Any, expected: list[str]) -> None:
    """Wait until the table shows exactly ``expected`` (in order); fail naming what it shows."""
    try:
        page.wait_for_function(
            "ids => JSON.stringify([...document.querySelectorAll("
            "'#runs-grid .grid-body [data-run]')].map(r => r.dataset.run)) === JSON.stringify(ids)",
            arg=expected,
        )
    except Exception:
        raise AssertionError(f"rows {row_ids(page)} never became {expected}") from None


def wait_for_row_set(page: Any, expected: list[str]) -> None:
    """Wait until the table shows exactly the runs ``expected``, in any order (the count above
    the table may change a frame before the rows do)."""
    try:
        page.wait_for_function(
            "ids => JSON.stringify([...document.querySelectorAll("
            "'#runs-grid .grid-body [data-run]')].map(r => r.dataset.run).sort()) "
            "=== JSON.stringify(ids)",
            arg=sorted(expected),
        )
    except Exception:
        raise AssertionError(f"rows {row_ids(page)} never became {sorted(expected)}") from None


@pytest.mark.slow
def test_runs_table(page: Any) -> None:
    page.goto("/#/p/lab/demo/runs?cols=config.optimizer.lr,summary.test/accuracy")
    page.wait_for_function("document.querySelectorAll('#runs-grid [data-run]').length === 6")
    assert sorted(row_ids(page)) == [r[0] for r in RUNS]
    assert page.inner_text("#runs-count") == "6 runs"
    assert page.get_by_label("Filter").is_visible()  # labelled controls
    shot(page, "runs-table")

    # server-side sort on a summary column, both directions
    best_first = sorted(RUNS, key=lambda r: -last_values(r[0])["test/accuracy"])
    page.click("[data-field='summary.test/accuracy'] button.sort")
    # Wait for the whole order: the first row alone may already be first in the default order.
    wait_for_rows(page, [r[0] for r in best_first])
    assert "sort=-summary.test%2Faccuracy" in page.url or "sort=-summary.test/accuracy" in page.url
    page.click("[data-field='summary.test/accuracy'] button.sort")
    wait_for_rows(page, [r[0] for r in reversed(best_first)])

    # the filter language, server-side
    page.fill("#runs-filter", "config.optimizer.lr < 0.01 and state = finished")
    page.press("#runs-filter", "Enter")
    page.wait_for_function("document.querySelector('#runs-count').textContent === '2 runs'")
    wait_for_row_set(page, ["r2", "r3"])  # r5 (lr 0.005) failed
    page.fill("#runs-filter", "tags in [best, broken] or config.model.layers >= 8")
    page.press("#runs-filter", "Enter")
    page.wait_for_function("document.querySelector('#runs-count').textContent === '3 runs'")
    wait_for_row_set(page, ["r1", "r4", "r5"])
    page.fill("#runs-filter", "config.optimizer.lr <")
    page.press("#runs-filter", "Enter")
    assert "expected a value" in page.inner_text("#filter-error")
    page.fill("#runs-filter", "")
    page.press("#runs-filter", "Enter")
    page.wait_for_function("document.querySelector('#runs-count').textContent === '6 runs'")

    # group by a column
    page.select_option("#group-by", "group")
    page.wait_for_function("document.querySelectorAll('#runs-grid [data-group]').length === 2")
    groups = page.eval_on_selector_all(
        "#runs-grid [data-group]", "g => g.map(x => x.dataset.group)"
    )
    assert sorted(groups) == ["baseline", "lr-scan"]
    shot(page, "runs-grouped")
    page.select_option("#group-by", "")
    page.wait_for_function("document.querySelectorAll('#runs-grid [data-group]').length === 0")
    page.wait_for_function("document.querySelectorAll('#runs-grid [data-run]').length === 6")

    # keyboard: arrows move, space selects, the compare link follows the selection
    page.focus("#runs-grid")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    assert page.inner_text("#compare-btn") == "Compare 2"
    href = page.get_attribute("#compare-btn", "href")
    assert href is not None and href.startswith("#/compare/lab/demo?runs=")

    # column picker lists nested config keys
    page.click("#cols-btn")
    page.wait_for_selector("#col-picker input[data-field='config.model.layers']")
    page.check("#col-picker input[data-field='config.model.layers']")
    page.keyboard.press("Escape")
    page.wait_for_selector("#runs-grid [role=columnheader][data-field='config.model.layers']")


@pytest.mark.slow
def test_run_page(page: Any) -> None:
    page.goto("/#/r/lab/demo/r1")
    page.wait_for_selector("#panel-charts[data-ready='true']")
    drawn = page.eval_on_selector_all(
        "figure.chart-panel.drawn",
        "els => els.map(e => [e.dataset.metric, Number(e.dataset.last), !!e.querySelector('canvas')])",
    )
    assert sorted(m for m, _, _ in drawn) == METRICS
    expected = last_values("r1")
    for metric, last, has_canvas in drawn:
        assert has_canvas, metric
        assert last == pytest.approx(expected[metric]), metric
    sections = page.eval_on_selector_all("[data-section]", "s => s.map(x => x.dataset.section)")
    assert sections == ["charts", "test", "train"]
    shot(page, "run-page")

    page.click("#tab-config")
    assert "optimizer" in page.inner_text("#panel-config") and "0.01" in page.inner_text(
        "#panel-config"
    )
    page.click("#tab-overview")
    overview = page.inner_text("#panel-overview")
    assert "lr-scan" in overview and "Host" in overview and "Program" in overview
    page.click("#tab-summary")
    assert "test/accuracy" in page.inner_text("#summary-table")
    page.click("#tab-console")
    page.wait_for_selector("pre.console")
    assert "r1 says hello" in page.inner_text("pre.console")
    # tabs work from the keyboard
    page.focus("#tab-console")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-files", "aria-selected") == "true"


@pytest.mark.slow
def test_compare(page: Any) -> None:
    page.goto("/#/compare/lab/demo?runs=r0,r1")
    page.wait_for_selector("#compare-charts[data-ready='true']")
    series = page.eval_on_selector_all(
        "figure.chart-panel", "els => els.map(e => [e.dataset.metric, e.dataset.series])"
    )
    assert sorted(m for m, _ in series) == METRICS
    assert all(n == "2" for _, n in series), series
    readout = page.inner_text("figure[data-metric='train/loss'] .readout")
    assert "run-r0" in readout and "run-r1" in readout
    shot(page, "compare")

    # smoothing, log scale and another x axis keep both runs on each chart
    page.fill("#smoothing", "0.8")
    page.check("#log-scale")
    page.select_option("#x-axis", "_runtime")
    page.wait_for_selector("#compare-charts[data-ready='true']")
    assert "log=1" in page.url and "x=_runtime" in page.url
    assert page.get_attribute("figure[data-metric='train/loss']", "data-series") == "2"
    shot(page, "compare-smoothed")

    # runs grouped by their group: mean with a min-max band
    page.goto("/#/compare/lab/demo?runs=r0,r1,r3,r4&group=group")
    page.wait_for_selector("#compare-charts[data-ready='true']")
    assert page.get_attribute("figure[data-metric='train/loss']", "data-series") == "2"
    readout = page.inner_text("figure[data-metric='train/loss'] .readout")
    assert "lr-scan (2)" in readout and "baseline (2)" in readout


@pytest.mark.slow
def test_multi_objective_sweep_front(page: Any, server: ServerProc) -> None:
    front = httpx.get(f"{server.api}/sweeps/{MO_SWEEP_ID}/front").json()
    assert [t["run_id"] for t in front["front"]] == ["mo0", "mo1", "mo3"]
    assert front["front"][1]["values"] == [0.2, 0.7]
    # reference (0.54, 0.46); boxes of the front in (loss, -acc): exact hypervolume
    assert front["reference"] == pytest.approx([0.54, 0.46])
    expected = 0.44 * 0.04 + 0.34 * 0.2 + 0.14 * 0.2  # mo0, mo1 above mo0, mo3 above mo1
    assert front["hypervolume"] == pytest.approx(expected)
    assert httpx.get(f"{server.api}/sweeps/nope/front").status_code == 404
    page.goto(f"/#/s/{MO_SWEEP_ID}")
    page.wait_for_selector(".view[data-ready='true']")
    page.wait_for_selector("#pareto[data-front='3'] canvas[data-points='5']")
    rows = page.eval_on_selector_all("#pareto-table [data-run]", "r => r.map(x => x.dataset.run)")
    assert rows == ["mo0", "mo1", "mo3"]
    assert "Hypervolume" in page.inner_text("#pareto-stats")
    # the other panels use the first objective
    assert "val/loss (minimize)" in page.inner_text(".statlist")
    page.select_option("#pareto-x", "1")
    page.wait_for_function(
        "() => JSON.parse(document.querySelector('#pareto .scatter').dataset.xticks).length > 0"
    )
    shot(page, "sweep-pareto")
    # a single-metric sweep shows no front panel
    page.goto(f"/#/s/{SWEEP_ID}")
    page.wait_for_selector(".view[data-ready='true']")
    assert page.is_hidden("#pareto")


def test_sweep_page(page: Any, server: ServerProc) -> None:
    page.goto(f"/#/s/{SWEEP_ID}")
    page.wait_for_selector(".view[data-ready='true']")
    page.wait_for_selector("#importance-table")
    canvas = page.query_selector("canvas.parcoords")
    assert canvas is not None
    assert canvas.get_attribute("data-axes") == "4"  # 3 parameters + the metric
    assert canvas.get_attribute("data-lines") == str(SWEEP_TRIALS)
    params = page.eval_on_selector_all(
        "#importance-table [data-param]", "r => r.map(x => x.dataset.param)"
    )
    assert sorted(params) == ["dropout", "lr", "optimizer"]
    assert page.inner_text("#runs-done") == f"{SWEEP_TRIALS} / 20"
    best = min(range(SWEEP_TRIALS), key=lambda i: _trial(i)[1])
    assert f"trial-{best:02d}" in page.inner_text("#best-run")
    assert "agent-1" in page.inner_text("#agents") and "host-a" in page.inner_text("#agents")
    assert page.query_selector("#best-curve canvas") is not None
    assert page.get_attribute("#scatter canvas", "data-points") == str(SWEEP_TRIALS)
    shot(page, "sweep")

    # brushing the metric axis keeps the better half of the runs in the table
    box = canvas.bounding_box()
    x = box["x"] + json.loads(canvas.get_attribute("data-axis-x") or "[]")[-1]  # the metric axis
    page.mouse.move(x, box["y"] + box["height"] - 25)
    page.mouse.down()
    page.mouse.move(x, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    kept = int(canvas.get_attribute("data-kept") or "0")
    assert 0 < kept < SWEEP_TRIALS
    assert page.inner_text("#trials-shown") == f"{kept} of {SWEEP_TRIALS} runs"
    visible = page.eval_on_selector_all(
        "#trials-table tbody tr", "r => r.filter(x => !x.hidden).length"
    )
    assert visible == kept
    shot(page, "sweep-brushed")

    # pause and resume through the API
    page.click("#sweep-pause")
    page.wait_for_selector("#sweep-resume:not([disabled])")
    assert httpx.get(f"{server.api}/sweeps/{SWEEP_ID}").json()["state"] == "paused"
    page.click("#sweep-resume")
    page.wait_for_selector("#sweep-pause:not([disabled])")
    assert httpx.get(f"{server.api}/sweeps/{SWEEP_ID}").json()["state"] == "running"


LIVE_CODE = """
import os, sys, time, runyard
stop = sys.argv[1]
run = runyard.init(entity='lab', project='live', id='live', name='run-live')
deadline = time.monotonic() + 90
step = 0
while not os.path.exists(stop) and time.monotonic() < deadline:
    run.log({'train/loss': 1.0 / (step + 1), 'train/acc': step / (step + 10.0)})
    step += 1
    time.sleep(0.05)
run.finish()
"""


def points_of(page: Any, selector: str) -> int:
    return int(page.get_attribute(selector, "data-points") or "0")


@pytest.mark.slow
def test_projects_and_live_updates(page: Any, server: ServerProc, tmp_path: Path) -> None:
    """A run that starts and logs while the views are open: the runs table shows it, the
    workspace's, the run page's and the comparison's charts grow in place (incremental fetches,
    no reload), the run page's runtime ticks."""
    page.goto("/")
    page.wait_for_selector("table[aria-label='Projects'] a")
    assert "demo" in page.inner_text("table[aria-label='Projects']")
    assert "lr-sweep" in page.inner_text("table[aria-label='Sweeps']")
    shot(page, "projects")
    page.click("text=demo")
    page.wait_for_function("document.querySelectorAll('.ws-run[data-run]').length === 6")
    assert page.url.endswith("#/p/lab/demo")  # the project opens on its workspace
    page.goto("/#/p/lab/live/runs")
    page.wait_for_selector("#runs-grid .empty")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    store_path = server.store_url.removeprefix("sqlite:///")
    env.update(
        RUNYARD_DIR=str(Path(store_path).parent), RUNYARD_SILENT="true", RUNYARD_DISABLE_GIT="true"
    )
    stop = tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", LIVE_CODE, str(stop)], cwd=REPO, env=env)
    try:
        # the runs table: the new run appears
        page.wait_for_selector("#runs-grid [data-run='live']", timeout=30_000)
        assert "running" in page.inner_text(".live")

        # the workspace: panels appear and grow by incremental fetches
        page.goto("/#/p/lab/live?refresh=1")
        panel = ".ws-panel[data-key='train/loss'] .line-panel.drawn"
        page.wait_for_selector(panel)
        first = points_of(page, panel)
        page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel)?.dataset.points) > n",
            arg=[panel, first + 5],
        )
        stats = page.evaluate("window.runyardWorkspace.stats")
        assert stats["live"] >= 1  # since-last-step requests, not a reload of the series
        shot(page, "workspace-live")

        # the run page: the chart grows, the runtime ticks
        page.goto("/#/r/lab/live/live?refresh=1")
        fig = "figure[data-metric='train/loss'].drawn"
        page.wait_for_selector(fig)
        before = points_of(page, fig)
        seconds = float(page.get_attribute("#run-runtime", "data-seconds") or "0")
        page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel)?.dataset.points) > n",
            arg=[fig, before + 5],
        )
        page.wait_for_function(
            "s => Number(document.querySelector('#run-runtime').dataset.seconds) > s + 1",
            arg=seconds,
        )
        last_step = int(page.get_attribute(fig, "data-last-step") or "0")
        assert last_step >= before

        # the comparison
        page.goto("/#/compare/lab/live?runs=live&refresh=1")
        page.wait_for_selector("#compare-charts[data-ready='true']")
        cmp = "figure[data-metric='train/acc'] .line-panel"
        start = points_of(page, cmp)
        page.wait_for_function(
            "([sel, n]) => Number(document.querySelector(sel)?.dataset.points) > n",
            arg=[cmp, start + 5],
        )
    finally:
        stop.touch()
        proc.wait(60)


def test_runyard_ui(tmp_path: Path) -> None:
    """`runyard ui`: the server on the embedded store, on 127.0.0.1 without keys, URL printed."""
    ui = runyard_ui(tmp_path / ".runyard", "--create")
    port = ui.port
    try:
        ui.start()
        assert f"runyard dashboard: http://127.0.0.1:{port}/" in ui.output()
        assert httpx.get(f"{ui.api}/health").json()["auth"] is False
        assert httpx.get(f"{ui.api}/projects").json() == []
        assert (tmp_path / ".runyard").is_dir()
    finally:
        ui.close()


# -- the workspace and the charts' truth -----------------------------------------------------------

DRAWN_LINES = ".ws-panel .line-panel.drawn"


def drawn_series(page: Any) -> dict[str, str]:
    """Metric -> number of lines of each drawn line panel."""
    return dict(
        page.eval_on_selector_all(
            DRAWN_LINES,
            "els => els.map(e => [e.closest('.ws-panel').dataset.key, e.dataset.series])",
        )
    )


def wait_all_series(page: Any, n: int) -> None:
    page.wait_for_function(
        "([sel, n]) => { const els = [...document.querySelectorAll(sel)];"
        " return els.length >= 3 && els.every(e => e.dataset.series === String(n)); }",
        arg=[DRAWN_LINES, n],
    )


@pytest.mark.slow
def test_workspace_panels_toggles_and_groups(page: Any) -> None:
    page.goto("/#/p/lab/demo")
    page.wait_for_selector(".view[data-ready='true']")
    wait_all_series(page, 6)  # every visible run on every panel
    panels = page.eval_on_selector_all(
        ".ws-panel",
        "ps => ps.map(p => [p.dataset.key, p.closest('[data-section]').dataset.section])",
    )
    assert dict(panels) == {m: (m.split("/")[0] if "/" in m else "charts") for m in METRICS}
    readout = page.inner_text(".ws-panel[data-key='train/loss'] .readout")
    assert all(f"run-{r[0]}" in readout for r in RUNS)
    colors = page.eval_on_selector_all(".ws-run[data-run]", "rs => rs.map(r => r.dataset.color)")
    assert len(set(colors)) == 6
    shot(page, "workspace")

    # the eye hides a run on every panel, and shows it again
    page.click(".ws-run[data-run='r0'] button.eye")
    wait_all_series(page, 5)
    assert "run-r0" not in page.inner_text(".ws-panel[data-key='train/loss'] .readout")
    assert page.get_attribute(".ws-run[data-run='r0']", "data-visible") == "false"
    assert page.inner_text("#ws-count").startswith("5 of 6")
    page.click(".ws-run[data-run='r0'] button.eye")
    wait_all_series(page, 6)

    # grouped by a nested config key: one line (mean, band) per group, colours per group
    page.select_option("#ws-group", "config.optimizer.name")
    wait_all_series(page, 2)
    readout = page.inner_text(".ws-panel[data-key='train/loss'] .readout")
    assert "adam (3)" in readout and "sgd (3)" in readout
    assert "group=config.optimizer.name" in page.url
    groups = dict(
        page.eval_on_selector_all(
            ".ws-group",
            "gs => gs.map(g => [g.dataset.group, g.querySelector('.swatch').style.background])",
        )
    )
    swatches = dict(
        page.eval_on_selector_all(
            ".ws-panel[data-key='train/loss'] .readout .item",
            "is => is.map(i => [i.textContent.split(' (')[0], i.querySelector('.swatch').style.background])",
        )
    )
    assert groups == swatches  # the legend's colours are the lines' (the groups')
    shot(page, "workspace-grouped")
    page.select_option("#ws-group", "")
    wait_all_series(page, 6)


def group_band(kind: str, metric: str = "train/loss") -> tuple[float, float]:
    """The lowest and highest point of the bands of the demo runs grouped by optimizer: each
    group's min-max or mean +- (population) std at each step."""
    lo, hi = math.inf, -math.inf
    for name in ("adam", "sgd"):
        runs = [r for r in RUNS if r[2] == name]
        for step in range(STEPS):
            ys = np.array([_curve(r[1], r[3], step)[metric] for r in runs])
            if kind == "std":
                lo, hi = min(lo, ys.mean() - ys.std()), max(hi, ys.mean() + ys.std())
            else:
                lo, hi = min(lo, ys.min()), max(hi, ys.max())
    return lo, hi


def panel_setting(page: Any, panel: str, **values: Any) -> None:
    """Open a panel's settings, set fields (a bool checks a box, else a select), close."""
    page.click(f"{panel} .ws-settings")
    for name, value in values.items():
        if isinstance(value, bool):
            page.set_checked(f"#ws-set-{name}", value)
        else:
            page.select_option(f"#ws-set-{name}", value)
    page.click("#ws-settings-done")


ORDER_JS = (
    "JSON.stringify([...document.querySelectorAll('.ws-run[data-run]')].map(r => r.dataset.run))"
)


@pytest.mark.slow
def test_workspace_sidebar_and_panel_settings(page: Any) -> None:
    """The sidebar's search, filter and sort (in the URL, kept on reload); a group's std band;
    the x axis as relative time or another metric; the legend's places; outlier clipping;
    parallel coordinates over runs that are no sweep."""
    page.goto("/#/p/lab/demo")
    wait_all_series(page, 6)
    page.fill("#ws-search", "run-r1")
    wait_all_series(page, 1)
    assert "search=run-r1" in page.url
    page.fill("#ws-search", "")
    wait_all_series(page, 6)
    page.fill("#ws-filter", "config.optimizer.name = adam")
    page.press("#ws-filter", "Enter")
    wait_all_series(page, 3)
    page.select_option("#ws-sort", "-summary.test/accuracy")
    adam = [r[0] for r in RUNS if r[2] == "adam"]
    best = sorted(adam, key=lambda r: -last_values(r)["test/accuracy"])
    page.wait_for_function(f"ids => {ORDER_JS} === JSON.stringify(ids)", arg=best)
    url = urllib.parse.unquote(page.url).replace("+", " ")
    assert "filter=config.optimizer.name = adam" in url and "sort=-summary.test/accuracy" in url
    page.reload()
    wait_all_series(page, 3)
    page.wait_for_function(f"ids => {ORDER_JS} === JSON.stringify(ids)", arg=best)

    # grouped: the min-max band, then mean +- std, then none
    page.goto("/#/p/lab/demo?group=config.optimizer.name")
    panel = ".ws-panel[data-key='train/loss']"
    wait_all_series(page, 2)
    band = json.loads(page.get_attribute(f"{panel} .plot", "data-band") or "null")
    assert band == pytest.approx(group_band("minmax"), rel=1e-6)
    panel_setting(page, panel, band="std")
    expected = group_band("std")
    page.wait_for_function(
        "([sel, hi]) => Math.abs(JSON.parse(document.querySelector(sel).dataset.band ?? '[0,0]')[1] - hi) < 1e-6",
        arg=[f"{panel} .plot", expected[1]],
    )
    band = json.loads(page.get_attribute(f"{panel} .plot", "data-band") or "null")
    assert band == pytest.approx(expected, rel=1e-6)
    panel_setting(page, panel, band="none")
    page.wait_for_function("sel => !document.querySelector(sel).dataset.band", arg=f"{panel} .plot")

    # x axes and the legend
    page.goto("/#/p/lab/demo")
    wait_all_series(page, 6)
    panel_setting(page, panel, x="_runtime", legend="right")
    page.wait_for_selector(f"{panel} .plot[data-xkind='duration'][data-legend='right']")
    assert page.is_visible(f"{panel} .plot-legend")
    panel_setting(page, panel, x="epoch", legend="off")
    page.wait_for_selector(f"{panel} .plot[data-xlabel='epoch'][data-legend='off']")
    assert not page.is_visible(f"{panel} .plot-legend")
    xticks = json.loads(page.get_attribute(f"{panel} .plot", "data-xticks") or "[]")
    assert max(v for v, _ in xticks) <= (STEPS - 1) // 10  # epochs, not steps

    # parallel coordinates of any runs (no sweep): config and summary axes, a line per run
    page.click("#ws-add")
    page.select_option("#ws-add-kind", "parcoords")
    page.click("#ws-add-confirm")
    pc = ".ws-panel[data-kind='parcoords'] canvas.parcoords"
    page.wait_for_selector(f"{pc}[data-lines='6']")
    assert int(page.get_attribute(pc, "data-axes") or 0) >= 3
    shot(page, "workspace-parcoords")

    # outliers: the spike sets the y range, unless clipped
    page.goto("/#/p/lab/spiky")
    spiky = ".ws-panel[data-key='y']"
    page.wait_for_selector(f"{spiky} .line-panel.drawn")

    def top_tick() -> float:
        ticks = json.loads(page.get_attribute(f"{spiky} .plot", "data-yticks") or "[]")
        return float(max(v for v, _ in ticks))

    assert top_tick() >= 900
    panel_setting(page, spiky, clip=True)
    page.wait_for_function(
        "sel => Math.max(...JSON.parse(document.querySelector(sel).dataset.yticks).map(t => t[0])) < 2",
        arg=f"{spiky} .plot",
    )
    assert top_tick() > 1.0  # the other points stay in range
    shot(page, "workspace-clipped")


@pytest.mark.slow
def test_workspace_layout_is_saved(page: Any, server: ServerProc) -> None:
    """Panels removed, resized, configured, added and reordered; saved on the server for the
    user and back after a reload; the project default; the step metric as the x axis; the
    hover readout at each run's nearest point."""
    page.goto("/#/p/lab/steps")
    page.wait_for_selector(".view[data-ready='true']")
    for key in ("train/loss", "loss", "lr"):  # drawn: their size is final
        page.wait_for_selector(f".ws-panel[data-key='{key}'] .line-panel.drawn")
    page.click(".ws-panel[data-key='lr'] .ws-remove")
    assert page.query_selector(".ws-panel[data-key='lr']") is None
    # resize the loss panel by dragging its corner: two columns, taller
    loss = ".ws-panel[data-key='loss']"
    box = page.locator(f"{loss} .ws-resize").bounding_box()
    width = page.locator(loss).bounding_box()["width"]
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + width + 30, box["y"] + 100, steps=4)
    page.mouse.up()
    assert "span 2" in (page.get_attribute(loss, "style") or "")
    # its chart at each run's nearest point: the short run's 11 steps and the long run's
    # downsampled ones never line up, and the readout shows both
    chart = page.locator(f"{loss} .plot-overlay").bounding_box()
    page.mouse.move(chart["x"] + chart["width"] * 0.3, chart["y"] + chart["height"] / 2)
    page.wait_for_selector(f"{loss} .plot[data-hover='true']")
    items = page.eval_on_selector_all(
        f"{loss} .readout .item b", "bs => bs.map(b => b.textContent)"
    )
    assert len(items) == 2 and "\u2013" not in items  # no dash (no value)
    # settings: x axis = each run's step metric, log y, legend at the bottom
    panel = ".ws-panel[data-key='train/loss']"
    page.click(f"{panel} .ws-settings")
    page.select_option("#ws-set-x", "step_metric")
    page.check("#ws-set-logY")
    page.select_option("#ws-set-legend", "bottom")
    page.click("#ws-settings-done")
    page.wait_for_selector(f"{panel} .plot[data-xlabel='trainer/global_step'][data-ylog='true']")
    xticks = json.loads(page.get_attribute(f"{panel} .plot", "data-xticks") or "[]")
    assert max(v for v, _ in xticks) > 29  # global steps (8 per step), not steps
    # a new panel: a scatter of a summary value against a config value
    page.click("#ws-add")
    page.select_option("#ws-add-kind", "scatter")
    page.click("#ws-add-confirm")
    page.wait_for_selector(".ws-panel[data-kind='scatter'] .scatter-panel.drawn")
    # reorder: the scatter panel before the first panel of its section (drag its title)
    scatter = page.locator(".ws-panel[data-kind='scatter']")
    section = scatter.evaluate("p => p.closest('[data-section]').dataset.section")
    first = page.locator(f"[data-section='{section}'] .ws-panel").first
    scatter.locator(".ws-head").drag_to(first, target_position={"x": 10, "y": 40})
    page.wait_for_function(
        "s => document.querySelector(`[data-section='${s}'] .ws-panel`).dataset.kind === 'scatter'",
        arg=section,
    )
    page.wait_for_function("document.querySelector('#ws-saved').textContent === 'saved'")

    def layout() -> list[Any]:
        return page.eval_on_selector_all(
            ".ws-panel",
            "ps => ps.map(p => [p.closest('[data-section]').dataset.section, p.dataset.kind, "
            "p.dataset.key || null, p.style.gridColumn])",
        )

    before = layout()
    saved = httpx.get(f"{server.api}/projects/lab/steps/workspace").json()
    assert saved["scope"] == "user" and saved["user"] == "local"
    assert "lr" in saved["doc"]["removed"]
    page.reload()
    page.wait_for_selector(".ws-panel[data-kind='scatter']")
    assert layout() == before
    page.wait_for_selector(f"{panel} .plot[data-xlabel='trainer/global_step'][data-ylog='true']")
    assert page.get_attribute(f"{panel} .plot", "data-legend") == "bottom"
    shot(page, "workspace-layout")
    # the project's default, then back to it
    page.click("#ws-save-project")
    page.wait_for_function("document.querySelector('#ws-saved').textContent.includes('project')")
    project_doc = httpx.get(
        f"{server.api}/projects/lab/steps/workspace", params={"scope": "project"}
    ).json()
    assert project_doc["scope"] == "project" and "lr" in project_doc["doc"]["removed"]
    page.click("#ws-reset")
    page.wait_for_function("document.querySelector('#ws-saved').textContent.includes('default')")
    assert layout() == before
    httpx.delete(f"{server.api}/projects/lab/steps/workspace", params={"scope": "project"})


@pytest.mark.slow
def test_workspace_many_runs_and_responsive_layout(page: Any) -> None:
    """Hundreds of runs: a bar panel of a summary value draws them all, each in its own colour;
    panels fill the width, 1 to 4 per row."""
    page.goto("/#/p/lab/many")
    page.wait_for_selector(".view[data-ready='true']")
    page.click("#ws-add")
    page.select_option("#ws-add-kind", "bar")
    page.select_option("#ws-add-first", "score")
    page.click("#ws-add-confirm")
    page.wait_for_selector(".ws-panel[data-kind='bar'] .bar-panel.drawn")
    colors = page.eval_on_selector_all(
        ".ws-panel[data-kind='bar'] .bar-row .swatch", "s => s.map(x => x.style.background)"
    )
    assert len(colors) == MANY_RUNS and len(set(colors)) == MANY_RUNS
    page.goto("/#/p/lab/demo")
    page.wait_for_selector(".ws-panel .line-panel.drawn")
    for width, per_row in ((520, 1), (1280, 3), (1900, 4)):
        page.set_viewport_size({"width": width, "height": 800})
        page.wait_for_function("n => getComputedStyle(document.querySelector('.ws-sections'))"
                               ".getPropertyValue('--cols').trim() === String(n)", arg=per_row)  # fmt: skip
        tops = page.eval_on_selector_all(
            "[data-section='train'] .ws-panel, [data-section='test'] .ws-panel",
            "ps => ps.map(p => Math.round(p.getBoundingClientRect().top))",
        )
        assert max(tops.count(t) for t in tops) == min(per_row, 2), (width, tops)


def tick_problems(page: Any) -> list[str]:
    """Every drawn axis: each label must read as its value, at its precision; step axes at
    integers only."""
    return page.evaluate(
        """() => {
      const bad = [];
      for (const el of document.querySelectorAll('[data-xticks], [data-yticks]')) {
        for (const axis of ['xticks', 'yticks']) {
          if (!el.dataset[axis]) continue;
          if (axis === 'yticks' && el.dataset.ylabelsLeft !== undefined && Number(el.dataset.ylabelsLeft) < 0)
            bad.push(`y labels cut: they start at ${el.dataset.ylabelsLeft} px`);
          const ticks = JSON.parse(el.dataset[axis]);
          const labels = ticks.map(t => t[1]);
          if (new Set(labels).size !== labels.length) bad.push(`repeated labels ${labels}`);
          for (const [v, label] of ticks) {
            const time = el.dataset.xkind === 'time' && axis === 'xticks';
            if (time) continue;
            const read = Number(label);
            if (!Number.isFinite(read) || Math.abs(read - v) > 1e-9 * Math.max(1, Math.abs(v)))
              bad.push(`${axis} label ${label} for ${v}`);
            if (axis === 'xticks' && el.dataset.xkind === 'step' && !Number.isInteger(v))
              bad.push(`step tick ${v}`);
          }
        }
      }
      return bad;
    }"""
    )


@pytest.mark.slow
def test_chart_ticks_are_their_values(page: Any) -> None:
    """Tick labels equal their values (0.25 reads 0.25, never 0.3), step axes tick at integers,
    log labels are whole, the sweep's best-so-far axis counts whole runs, parallel coordinates
    label every category."""
    checked = 0
    for width in (900, 1280, 1700):
        page.set_viewport_size({"width": width, "height": 900})
        for url, ready in (
            ("/#/p/lab/steps", ".ws-panel[data-key='loss'] .line-panel.drawn"),
            ("/#/r/lab/steps/short", "#panel-charts[data-ready='true']"),
            ("/#/compare/lab/demo?runs=r0,r1,r2&log=1", "#compare-charts[data-ready='true']"),
        ):
            page.goto(url)
            page.wait_for_selector(ready)
            assert tick_problems(page) == [], (url, width)
            checked += page.eval_on_selector_all("[data-yticks]", "e => e.length")
    assert checked >= 15
    # log scale: labels such as 0.001 or 1e-5, never cut ("000e-4")
    logs = page.eval_on_selector_all(
        ".plot[data-ylog='true']",
        "ps => ps.flatMap(p => JSON.parse(p.dataset.yticks).map(t => t[1]))",
    )
    assert logs and all(
        not label.startswith("0") or label.startswith("0.") or label == "0" for label in logs
    )
    shot(page, "compare-log")
    page.goto(f"/#/s/{SWEEP_ID}")
    page.wait_for_selector(".view[data-ready='true']")
    best = json.loads(page.get_attribute("#best-curve .plot", "data-xticks") or "[]")
    assert best and all(float(v).is_integer() and label == str(int(v)) for v, label in best)
    labels = {
        a["name"]: a["labels"]
        for a in json.loads(page.get_attribute("canvas.parcoords", "data-labels") or "[]")
    }
    assert sorted(labels["optimizer"]) == ["adam", "sgd"]
    assert len(labels["dropout"]) >= 3  # ticks along a numeric axis, not only its ends
    assert tick_problems(page) == []


@pytest.mark.slow
def test_runs_table_and_run_page_details(page: Any) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/#/p/lab/steps/runs?cols=config.lr,summary.lr,summary.loss,summary._timestamp")
    page.wait_for_function("document.querySelectorAll('#runs-grid [data-run]').length === 3")
    head = dict(
        page.eval_on_selector_all(
            "[role=columnheader][data-field]", "hs => hs.map(h => [h.dataset.field, h.innerText])"
        )
    )
    assert head["config.lr"] != head["summary.lr"]
    assert "CONFIG" in head["config.lr"].upper() and "SUMMARY" in head["summary.lr"].upper()
    cut = page.eval_on_selector_all(
        ".grid-body [data-field='created_at']",
        "cs => cs.filter(c => c.scrollWidth > c.clientWidth).length",
    )
    assert cut == 0  # Created is never cut
    runtimes = page.eval_on_selector_all(
        ".grid-body [data-field='runtime']", "cs => cs.map(c => c.innerText)"
    )
    assert all(t.endswith(" ms") or t.endswith(" s") for t in runtimes), runtimes
    stamp = page.inner_text("#runs-grid [data-run='sm'] [data-field='summary._timestamp']")
    assert len(stamp) == 19 and stamp[4] == "-" and stamp[13] == ":"  # a date, not 1.797e+9
    # the first click on a loss column sorts ascending (best first)
    page.click("[data-field='summary.loss'] button.sort")
    page.wait_for_function(
        "document.querySelector(\"[data-field='summary.loss']\").getAttribute('aria-sort') === 'ascending'"
    )
    assert "sort=summary.loss" in page.url
    # the Name column stays in view when the table scrolls sideways
    page.set_viewport_size({"width": 700, "height": 800})
    name = "#runs-grid .grid-body [data-run] [data-field='name']"
    left_of = (
        "sel => { const c = document.querySelector(sel); const r = c && c.getBoundingClientRect();"
        " return r && r.width > 0 ? r.left : null; }"
    )
    left = page.wait_for_function(left_of, arg=name).json_value()
    page.eval_on_selector("#runs-grid", "g => { g.scrollLeft = 400; }")
    page.wait_for_function("document.querySelector('#runs-grid').scrollLeft > 0")
    page.wait_for_function(f"sel => Math.abs(({left_of})(sel) - {left}) < 1", arg=name)
    later = page.eval_on_selector("[data-field='group']", "c => c.getBoundingClientRect().left")
    assert later < left  # the other columns did scroll
    page.set_viewport_size({"width": 1280, "height": 800})

    # the run page: exact config values, a copy button, _timestamp as a date
    page.goto("/#/r/lab/steps/sm")
    page.wait_for_selector("#panel-charts[data-ready='true']")
    fig = "figure[data-metric='train/loss']"
    assert page.get_attribute(fig, "data-x") == "trainer/global_step"  # define_metric's x
    page.click("#tab-config")
    text = page.inner_text("#panel-config")
    assert repr(EXACT_LR) in text and "1.23456789e-7" in text
    page.click("#panel-config li[data-key='lr'] button.copy")
    assert page.evaluate("navigator.clipboard.readText()") == repr(EXACT_LR)
    page.click("#tab-summary")
    stamp = page.inner_text("#summary-table tr[data-key='_timestamp'] td")
    assert len(stamp) == 19 and stamp[4] == "-"
    # the chart of a downsampled series ends at the last logged point
    page.goto("/#/r/lab/steps/long")
    page.wait_for_selector("figure[data-metric='loss'].drawn")
    assert page.get_attribute("figure[data-metric='loss']", "data-last-step") == str(LONG_STEPS - 1)
    assert (
        float(page.get_attribute("figure[data-metric='loss']", "data-last") or "nan")
        == long_values()[-1]
    )
    assert "downsampled" in page.inner_text("figure[data-metric='loss'] .last")
    # a run that does not exist: a page for people
    page.goto("/#/r/lab/demo/nope")
    page.wait_for_selector(".notfound")
    assert "Run not found" in page.inner_text(".notfound h1")
    assert "api" not in page.inner_text(".notfound").lower()
    shot(page, "run-not-found")
