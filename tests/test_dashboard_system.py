"""The run page's "System" section and its alerts list (web/src/views/system.ts), in Debian's
chromium against a real server (the browser and screenshots as in tests/test_dashboard.py).

The store is filled through ``Store.apply`` with the journal records the SDK writes (``stats``
samples with two CPU cores and two GPUs, ``alert`` records): no GPU is needed to draw GPU
charts, and no run has to last a sampling interval.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runyard.store.base import JournalBatch
from runyard.store.sql import SQLStore
from tests.serverproc import ServerProc, running_server
from tests.test_dashboard import browser, checked_page, shot  # noqa: F401 - the shared chromium fixture

pytestmark = pytest.mark.slow

SAMPLES = 40


def _sample(i: int, t0: float) -> dict[str, Any]:
    return {
        "_timestamp": t0 + 15.0 * i,
        "_runtime": 15.0 * i,
        "system.cpu": 50.0 + i % 5,
        "system.cpu.0.cpu_percent": 90.0,
        "system.cpu.1.cpu_percent": 10.0 + i,
        "system.memory_percent": 40.0,
        "system.proc.memory.rssMB": 1000.0 + i,
        "system.disk./.usagePercent": 25.0,
        "system.network.sent": 1000.0 * i,
        "system.gpu.0.gpu": 95.0,
        "system.gpu.1.gpu": 5.0,
        "system.gpu.0.temp": 70.0,
        "system.gpu.1.temp": 40.0 + i / 10,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProc]:
    folder: Path = tmp_path_factory.mktemp("dashboard-system")
    url = f"sqlite:///{folder / 'store.db'}"
    store = SQLStore(url)
    t0 = time.time() - 3600
    header = {"entity": "lab", "project": "sys", "run_id": "gpu1", "name": "gpu-run"}
    records: list[tuple[int, str, Any]] = [(1, "run", header)]
    records += [(i + 2, "stats", _sample(i, t0)) for i in range(SAMPLES)]
    seq = len(records) + 1
    records.append((seq, "row", {"_step": 0, "_runtime": 1.0, "_timestamp": t0, "loss": 1.0}))
    for j, (title, text, level, t) in enumerate(
        [
            ("loss diverged", "loss > 10 at step 1200", "WARN", t0 + 100),
            ("loss diverged", "loss > 20", "WARN", t0 + 110),  # within 60 s: suppressed
            ("out of memory", "CUDA OOM on GPU 1", "ERROR", t0 + 200),
        ]
    ):
        body = {"title": title, "text": text, "level": level, "wait_duration": 60.0}
        records.append((seq + 1 + j, "alert", {**body, "_timestamp": t, "_runtime": t - t0}))
    store.apply(JournalBatch("j1", header, records))
    quiet = {"entity": "lab", "project": "sys", "run_id": "quiet", "name": "quiet"}
    store.apply(JournalBatch("j2", quiet, [(1, "run", quiet), (2, "row", {"_step": 0, "x": 1})]))
    store.close()
    with running_server(url) as proc:
        yield proc


@pytest.fixture
def page(browser: Any, server: ServerProc) -> Iterator[Any]:  # noqa: F811
    with checked_page(browser, server.url, size=(1280, 900)) as pg:
        yield pg


def test_system_section_and_alerts(page: Any) -> None:
    page.goto("/#/r/lab/sys/gpu1")
    page.wait_for_selector("[data-system='ready']")
    charts = page.eval_on_selector_all(
        "figure.system-chart",
        "els => els.map(e => [e.dataset.systemMetric, Number(e.dataset.series),"
        " e.dataset.drawn === 'true' && !!e.querySelector('canvas'),"
        " e.querySelector('.title').textContent])",
    )
    by_group = {g: (n, drawn, title) for g, n, drawn, title in charts}
    assert set(by_group) == {
        "cpu",
        "cpu.*.cpu_percent",
        "memory_percent",
        "proc.memory.rssMB",
        "disk./.usagePercent",
        "network.sent",
        "gpu.*.gpu",
        "gpu.*.temp",
    }
    assert all(drawn for _, drawn, _ in by_group.values())
    assert by_group["gpu.*.temp"][:1] == (2,) and by_group["cpu.*.cpu_percent"][:1] == (2,)
    assert by_group["gpu.*.temp"][2] == "GPU Temp (°C)"
    assert by_group["cpu"][2] == "Process CPU Utilization (%)"
    section = page.query_selector(".system-section")
    assert section is not None and section.get_attribute("data-samples") == str(SAMPLES)
    # the logged metrics keep their own sections, above "System"
    assert page.eval_on_selector_all("[data-section]", "s => s.map(x => x.dataset.section)") == [
        "charts"
    ]
    section.scroll_into_view_if_needed()
    shot(page, "run-system")

    page.click("#tab-overview")
    page.wait_for_selector("#alerts-table")
    rows = page.eval_on_selector_all(
        "#alerts-table tbody tr",
        "rs => rs.map(r => [r.dataset.alert, r.dataset.level, r.dataset.delivery,"
        " r.querySelector('.alert-text').textContent])",
    )
    assert rows == [  # newest first
        ["out of memory", "ERROR", "pending", "CUDA OOM on GPU 1"],
        ["loss diverged", "WARN", "suppressed", "loss > 20"],
        ["loss diverged", "WARN", "pending", "loss > 10 at step 1200"],
    ]
    assert "same title within wait_duration" in page.inner_text("#alerts-table")
    shot(page, "run-alerts")


def test_a_run_without_system_metrics_says_so(page: Any) -> None:
    page.goto("/#/r/lab/sys/quiet")
    page.wait_for_selector("[data-system='empty']")
    assert "No system metrics" in page.inner_text(".system-section")
    page.click("#tab-overview")
    page.wait_for_selector("[data-alerts='0']")
    assert "No alerts" in page.inner_text(".alerts")
