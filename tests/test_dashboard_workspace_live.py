"""The workspace's live updates in chromium: a running run's new points are drawn onto its
charts (not a reload), the cached series stays bounded (thinned in the browser as the server
downsamples), and the chart ends at the run's last logged point.

The store is written directly (``SQLStore.apply``, the journal batches the SDK ships) so that
the test decides when the run logs; the dashboard refreshes every second (``?refresh=1``).
Screenshots go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from runyard.store.base import JournalBatch
from runyard.store.sql import SQLStore
from tests.serverproc import running_server
from tests.test_dashboard import CHROMIUM, CHROMIUM_ARGS, DIST, shot

HEAD = {
    "entity": "lab",
    "project": "grow",
    "run_id": "lv",
    "name": "run-live",
    "config": {"lr": 0.1},
    "start_time": 1_800_000_000.0,
    "journal_id": "j-lv",
}
FIRST_ROWS = 1500  # more than a chart of 1 run asks for (1,000 points): downsampled
BURST = 100
BURSTS = 14  # 1,500 + 1,400 rows: the cache passes twice the resolution and is thinned
PANEL = ".ws-panel[data-key='loss'] .line-panel.drawn"


def loss(step: int) -> float:
    # decreasing with a wiggle, inside the first screen's y range
    return round(1.0 - step / 10_000 + 0.01 * ((step * 7919) % 13) / 13, 6)


def rows(lo: int, hi: int) -> list[dict[str, Any]]:
    return [
        {
            "_step": s,
            "_runtime": s * 0.1,
            "_timestamp": HEAD["start_time"] + s * 0.1,
            "loss": loss(s),
        }  # type: ignore[operator]
        for s in range(lo, hi)
    ]


def append(store: SQLStore, seq: int, lo: int, hi: int) -> int:
    batch = rows(lo, hi)
    records = [(seq + i, "row", r) for i, r in enumerate(batch)]
    store.apply(JournalBatch("j-lv", HEAD, records, summary={"loss": batch[-1]["loss"]}))
    return seq + len(records)


def finished_run(
    store: SQLStore, run_id: str, name: str, steps: int, config: dict[str, Any] | None = None
) -> None:
    """A finished run beside the live one: ``steps`` rows of ``loss``."""
    head = {**HEAD, "run_id": run_id, "name": name, "journal_id": f"j-{run_id}"}
    if config is not None:
        head["config"] = config
    records: list[tuple[int, str, Any]] = [(1, "run", head)]
    records += [(2 + s, "row", {"_step": s, "loss": loss(s)}) for s in range(steps)]
    records.append((len(records) + 1, "finish", {"state": "finished", "exit_code": 0}))
    store.apply(JournalBatch(head["journal_id"], head, records))


@pytest.fixture()
def live_store(tmp_path: Path) -> Iterator[tuple[SQLStore, str]]:
    url = f"sqlite:///{tmp_path / 'runyard.db'}"
    store = SQLStore(url)
    try:
        yield store, url
    finally:
        store.close()


@contextmanager
def dashboard_page(store_url: str, width: int, height: int) -> Iterator[tuple[Any, str]]:
    """A `runyard server` on the store and a chromium page of the given viewport: (page,
    server URL). JavaScript errors of the page fail the test at the end."""
    if not os.path.exists(CHROMIUM) or not (DIST / "index.html").is_file():
        pytest.fail("chromium and the dashboard bundle (`make web`) are needed")
    from playwright.sync_api import sync_playwright

    with running_server(store_url) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_default_timeout(30_000)
        yield page, server.url
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"


@pytest.mark.slow
def test_live_points_are_appended_and_the_last_point_kept(
    live_store: tuple[SQLStore, str],
) -> None:
    store, url = live_store
    store.apply(JournalBatch("j-lv", HEAD, [(1, "run", HEAD)]))
    seq = append(store, 2, 0, FIRST_ROWS)
    with dashboard_page(url, 1280, 800) as (page, base):
        page.goto(f"{base}/#/p/lab/grow?refresh=1")
        page.wait_for_selector(PANEL)
        assert page.get_attribute(PANEL, "data-last-step") == str(FIRST_ROWS - 1)
        first_points = int(page.get_attribute(PANEL, "data-points") or "0")
        assert first_points <= 1000  # downsampled by the server
        end = FIRST_ROWS
        for _ in range(BURSTS):
            seq = append(store, seq, end, end + BURST)
            end += BURST
            page.wait_for_function(
                "([sel, s]) => document.querySelector(sel)?.dataset.lastStep === String(s)",
                arg=[PANEL, end - 1],
            )
        plot = f"{PANEL} .plot"
        # new points were drawn onto the chart as segments (not only by redrawing it)
        assert int(page.get_attribute(plot, "data-extended") or "0") >= 1
        # 2,900 points logged, 1,400 of them live: the cache was thinned, not grown without end
        points = int(page.get_attribute(PANEL, "data-points") or "0")
        assert points < first_points + BURSTS * BURST
        assert points <= 2 * 1000 + BURST
        # the readout (not hovering) shows the last logged value: the last point is kept
        assert (
            page.inner_text(f"{PANEL} .readout")
            .strip()
            .endswith(str(float(f"{loss(end - 1):.5g}")))
        )
        series = store.series_many(list(store.run_pks("lab", "grow", ["lv"]).values()), "loss")
        assert next(iter(series.values())).steps[-1] == end - 1
        shot(page, "workspace-live-appended")


LIVE_COUNT = "Number(document.querySelector('.ws-toolbar .live')?.dataset.updated ?? 0)"


@pytest.mark.slow
def test_live_updates_leave_the_sidebar_rows_alone(live_store: tuple[SQLStore, str]) -> None:
    """Live updates that change nothing in a sidebar row leave its element as it is: the eye
    a keyboard user focused keeps the focus through updates (and still toggles the run), and
    a row whose run changed (it finished) shows the change."""
    store, url = live_store
    store.apply(JournalBatch("j-lv", HEAD, [(1, "run", HEAD)]))
    seq = append(store, 2, 0, 200)
    for i in range(3):
        finished_run(store, f"done{i}", f"done-{i}", 50)
    eye = ".ws-run[data-run='lv'] button.eye"
    with dashboard_page(url, 1280, 800) as (page, base):
        page.goto(f"{base}/#/p/lab/grow?refresh=1")
        page.wait_for_selector(PANEL)
        page.focus(eye)
        page.evaluate("window.__eye = document.activeElement")
        ticks = page.evaluate(LIVE_COUNT)
        seq = append(store, seq, 200, 300)
        page.wait_for_function(
            "([sel, s]) => document.querySelector(sel)?.dataset.lastStep === String(s)",
            arg=[PANEL, 299],
        )
        # two more updates after the one that drew the new points (each redraws the sidebar)
        page.wait_for_function(f"n => {LIVE_COUNT} >= n", arg=ticks + 3)
        assert page.evaluate("document.activeElement === window.__eye && window.__eye.isConnected")
        page.keyboard.press("Enter")  # the focused eye hides the run
        page.wait_for_function(
            "document.querySelector(\".ws-run[data-run='lv']\")?.dataset.visible === 'false'"
        )
        store.apply(
            JournalBatch("j-lv", HEAD, [(seq, "finish", {"state": "finished", "exit_code": 0})])
        )
        page.wait_for_selector(".ws-run[data-run='lv'] .state-dot.state-finished")
        assert page.get_attribute(".ws-run[data-run='lv']", "data-visible") == "false"
        shot(page, "workspace-live-sidebar")


OTHERS = 70  # with the running run, 71 runs: 845 points per run (samplesFor), 1,000 for one


@pytest.mark.slow
def test_a_running_run_drawn_live_at_two_resolutions(live_store: tuple[SQLStore, str]) -> None:
    """A running run drawn at the resolution of one run (a filter), then of 71 (the filter
    cleared), logging all along: each view's chart ends at the run's last logged step, with
    every run drawn (the series cached at the resolution that was left are not grown while no
    panel reads them, and are read again when they are)."""
    store, url = live_store
    store.apply(JournalBatch("j-lv", HEAD, [(1, "run", HEAD)]))
    seq = append(store, 2, 0, 300)
    for i in range(OTHERS):
        finished_run(store, f"o{i:02d}", f"o-{i:02d}", 40, config={"lr": 0.2})
    ends_at = "([sel, s, n]) => { const p = document.querySelector(sel); return p?.dataset.lastStep === String(s) && p.dataset.series === String(n); }"
    with dashboard_page(url, 1280, 800) as (page, base):
        page.goto(f"{base}/#/p/lab/grow?refresh=1")
        page.wait_for_function(ends_at, arg=[PANEL, 299, OTHERS + 1])
        page.fill("#ws-filter", "config.lr = 0.1")
        page.press("#ws-filter", "Enter")
        page.wait_for_function(ends_at, arg=[PANEL, 299, 1])
        end = 300
        for _ in range(2):  # live at one run's resolution
            seq = append(store, seq, end, end + BURST)
            end += BURST
            page.wait_for_function(ends_at, arg=[PANEL, end - 1, 1])
        page.fill("#ws-filter", "")
        page.press("#ws-filter", "Enter")
        page.wait_for_function(ends_at, arg=[PANEL, end - 1, OTHERS + 1])
        seq = append(store, seq, end, end + BURST)  # and live at 71 runs' resolution
        end += BURST
        page.wait_for_function(ends_at, arg=[PANEL, end - 1, OTHERS + 1])
        series = store.series_many(list(store.run_pks("lab", "grow", ["lv"]).values()), "loss")
        assert next(iter(series.values())).steps[-1] == end - 1
        shot(page, "workspace-live-resolutions")


FILTER_RUNS = 120  # 500 points each at this many runs (samplesFor): downsampled
FILTER_STEPS = 600
FILTER_KEYS = ["train/loss", "train/acc", "val/loss", "val/acc", "lr", "grad_norm"]


@pytest.mark.slow
def test_filter_change_draws_the_filtered_runs_then_refines(
    live_store: tuple[SQLStore, str],
) -> None:
    """A filter applied right after the workspace opens (some panels still fetching): every
    panel on screen draws exactly the filter's runs, then each at the resolution of fewer
    runs (every point of a 600-step run)."""
    store, url = live_store
    for i in range(FILTER_RUNS):
        head = {**HEAD, "project": "filt", "run_id": f"f{i:03d}", "name": f"f-{i:03d}"}
        head.update(config={"kind": ["cnn", "mlp", "vit", "rnn"][i % 4]}, journal_id=f"j-f{i}")
        records: list[tuple[int, str, Any]] = [(1, "run", head)]
        records += [
            (
                2 + s,
                "row",
                {"_step": s, **{k: (i + 1) / (s + 1) + j for j, k in enumerate(FILTER_KEYS)}},
            )
            for s in range(FILTER_STEPS)
        ]
        records.append((len(records) + 1, "finish", {"state": "finished", "exit_code": 0}))
        store.apply(JournalBatch(head["journal_id"], head, records))
    wanted = FILTER_RUNS // 4
    with dashboard_page(url, 1440, 900) as (page, base):
        page.goto(f"{base}/#/p/lab/filt")
        page.wait_for_selector(".ws-panel .line-panel.drawn")
        page.fill("#ws-filter", "config.kind = cnn")
        page.press("#ws-filter", "Enter")
        on_screen = """n => { const ps = [...document.querySelectorAll('.ws-panel .line-panel')]
          .filter(p => p.getBoundingClientRect().top < innerHeight);
          return ps.length >= 3 && ps.every(p => p.classList.contains('drawn') && p.dataset.series === String(n)); }"""
        page.wait_for_function(on_screen, arg=wanted)
        assert page.get_attribute("#ws-count", "data-visible") == str(wanted)
        # refined: the filter's runs at the resolution of 30 runs, every point of each
        page.wait_for_function(
            """n => [...document.querySelectorAll('.ws-panel .line-panel')]
              .filter(p => p.getBoundingClientRect().top < innerHeight)
              .every(p => p.dataset.points === String(n))""",
            arg=wanted * FILTER_STEPS,
        )
        shot(page, "workspace-filter-refined")
