"""The dashboard's W&B custom charts (web/src/panels/customchart.ts) in Debian's chromium: each of
the eight ``runyard.plot`` kinds logged by the SDK into the embedded store, served by
``runyard ui``, and checked for what its data implies: the lines and their names, the points,
the bars and their lengths, the binned counts, the confusion counts, and the axis titles W&B
draws (the columns' names, or the curve's own titles).

One ``runyard ui`` process, one browser and one page (module-scoped fixtures) serve every test;
a screenshot of each chart goes to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.serverproc import ServerProc, runyard_ui
from tests.test_dashboard import ARTIFACTS, browser, checked_page, shot  # noqa: F401 - the shared chromium fixture

pytestmark = pytest.mark.slow

ENTITY, PROJECT, RUN = "lab", "plots", "p1"

# the data of each chart, kept for the expectations
MODELS = ["cnn", "mlp", "vit"]
EPOCHS = 8
LINE_ROWS = [
    [e, round(0.5 + 0.05 * e + 0.1 * i, 3), m] for i, m in enumerate(MODELS) for e in range(EPOCHS)
]
SCATTER_ROWS = [[10 ** (-4 + i / 8), round(2.0 - i * 0.06 + (i % 3) * 0.1, 3)] for i in range(25)]
BAR_ROWS = [["cat", 5], ["dog", 9], ["owl", 2], ["fox", 7]]
SCORES = [float(v) for v in np.random.default_rng(7).normal(0.0, 1.0, 90).round(4)]
SERIES_X = list(range(10))
SERIES = {
    "up": [x * 1.0 for x in SERIES_X],
    "down": [9.0 - x for x in SERIES_X],
    "flat": [4.5] * 10,
}
CLASSES = ["cat", "dog", "owl"]
TRUTH = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0, 2, 1, 0, 0]
PREDS = [0, 1, 1, 0, 1, 2, 0, 2, 2, 2, 0, 0, 2, 1, 1, 0]
PROBAS = [
    [0.7 if c == p else 0.15 for c in range(3)]
    if i % 2
    else [0.6 if c == p else 0.2 for c in range(3)]
    for i, p in enumerate(PREDS)
]


def _log(charts: dict[str, Any]) -> None:
    import runyard
    from runyard.media import Table

    plot = runyard.plot
    run = runyard.init(project=PROJECT, entity=ENTITY, id=RUN, name="plots-run")
    made = {
        "c_line": plot.line(
            Table(columns=["epoch", "acc", "model"], data=LINE_ROWS),
            "epoch",
            "acc",
            stroke="model",
            title="accuracy",
        ),
        "c_scatter": plot.scatter(
            Table(columns=["lr", "loss"], data=SCATTER_ROWS), "lr", "loss", title="lr sweep"
        ),
        "c_bar": plot.bar(
            Table(columns=["animal", "count"], data=BAR_ROWS), "animal", "count", title="animals"
        ),
        "c_hist": plot.histogram(
            Table(columns=["score"], data=[[v] for v in SCORES]), "score", title="scores"
        ),
        "c_series": plot.line_series(
            SERIES_X, list(SERIES.values()), keys=list(SERIES), title="three lines", xname="epoch"
        ),
        "c_cm": plot.confusion_matrix(
            y_true=TRUTH, preds=PREDS, class_names=CLASSES, title="confusion"
        ),
        "c_roc": plot.roc_curve(TRUTH, PROBAS, labels=CLASSES),
        "c_pr": plot.pr_curve(TRUTH, PROBAS, labels=CLASSES),
    }
    charts.update(made)
    run.log({"loss": 1.0}, step=0)
    run.log(dict(made), step=1)
    run.finish()


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, dict[str, Any]]]:
    """The charts logged into an embedded store, and ``runyard ui`` serving it."""
    folder = tmp_path_factory.mktemp("dashboard-plots")
    root = folder / ".runyard"
    charts: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        for name in [k for k in os.environ if k.startswith("RUNYARD_")]:
            mp.delenv(name)
        mp.chdir(folder)
        mp.setenv("RUNYARD_DIR", str(root))
        mp.setenv("RUNYARD_CONSOLE", "off")
        mp.setenv("RUNYARD_DISABLE_STATS", "true")
        _log(charts)
    ui = runyard_ui(root)
    try:
        ui.start()
        yield ui, charts
    finally:
        ui.close()


@pytest.fixture(scope="module")
def page(browser: Any, logged: tuple[ServerProc, dict[str, Any]]) -> Iterator[Any]:  # noqa: F811
    ui, _ = logged
    with checked_page(browser, ui.url, size=(1400, 1000)) as pg:
        pg.goto(f"/#/r/{ENTITY}/{PROJECT}/{RUN}")
        pg.wait_for_selector("#panel-charts[data-ready='true']")
        yield pg


def figure(key: str) -> str:
    return f"figure[data-metric='c_{key}_table']"


def drawn(page: Any, key: str) -> str:
    """The selector of chart ``key``'s panel once drawn (scrolled into view first)."""
    page.locator(figure(key)).scroll_into_view_if_needed()
    sel = f"{figure(key)} .cc-panel.drawn"
    page.wait_for_selector(sel)
    return sel


def picture(page: Any, key: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(figure(key)).screenshot(path=str(ARTIFACTS / f"plots-{key}.png"))


def attr(page: Any, sel: str, name: str) -> Any:
    return page.eval_on_selector(sel, f"e => e.dataset[{name!r}] ?? null")


def text(page: Any, sel: str) -> str:
    return str(page.eval_on_selector(sel, "e => e.textContent"))


def texts(page: Any, sel: str) -> list[str]:
    return list(page.eval_on_selector_all(sel, "es => es.map(e => e.textContent)"))


def legend(page: Any, sel: str) -> list[str]:
    return texts(page, f"{sel} .plot-legend .item")


def titles(page: Any, sel: str) -> tuple[str, str]:
    """The x- and y-axis titles drawn: the canvas chart's own x label (Plot's ``data-xlabel``,
    the scatter's accessible name) or the SVG's, and the y title's element."""
    y = text(page, f"{sel} .cc-ytitle")
    if page.query_selector(f"{sel} .cc-xtitle"):
        return text(page, f"{sel} .cc-xtitle"), y
    if page.query_selector(f"{sel} .plot"):
        return str(attr(page, f"{sel} .plot", "xlabel")), y
    label = str(page.eval_on_selector(f"{sel} canvas", "c => c.getAttribute('aria-label')"))
    return label, y


def test_every_kind_gets_its_chart(page: Any) -> None:
    kinds = {
        k: attr(page, drawn(page, k), "chart")
        for k in ("line", "scatter", "bar", "hist", "series", "cm", "roc", "pr")
    }
    assert kinds == {
        "line": "line",
        "scatter": "scatter",
        "bar": "bar",
        "hist": "histogram",
        "series": "lineseries",
        "cm": "confusion_matrix",
        "roc": "area-under-curve",
        "pr": "area-under-curve",
    }
    # the chart keys are not in history: only their tables (and the one plain metric)
    metrics = page.eval_on_selector_all(
        "#run-charts figure.chart-panel", "fs => fs.map(f => f.dataset.metric)"
    )
    assert sorted(metrics) == sorted(["loss", *(f"c_{k}_table" for k in kinds)])


def test_line_one_line_per_stroke_value(page: Any) -> None:
    sel = drawn(page, "line")
    assert legend(page, sel) == MODELS
    assert attr(page, sel, "series") == "3"
    assert attr(page, f"{sel} .plot", "points") == str(len(LINE_ROWS))
    assert titles(page, sel) == ("epoch", "acc")
    assert "accuracy" in text(page, f"{figure('line')} .cc-head")
    # the y ticks span the values logged (0.5 .. 0.85)
    yticks = [
        v for v, _ in page.eval_on_selector(f"{sel} .plot", "p => JSON.parse(p.dataset.yticks)")
    ]
    ys = [r[1] for r in LINE_ROWS]
    assert (
        min(yticks) >= min(ys) - 0.1
        and max(yticks) <= max(ys) + 0.1
        and max(yticks) - min(yticks) >= 0.2
    )
    picture(page, "line")


def test_scatter_every_row_a_point(page: Any) -> None:
    sel = drawn(page, "scatter")
    assert attr(page, sel, "points") == str(len(SCATTER_ROWS))
    xlabel, ylabel = titles(page, sel)
    assert ylabel == "loss"
    assert xlabel == f"Scatter of loss against lr, {len(SCATTER_ROWS)} runs"
    xticks = [
        v
        for v, _ in page.eval_on_selector(
            f"{sel} .cc-chart > div", "e => JSON.parse(e.dataset.xticks)"
        )
    ]
    lrs = [r[0] for r in SCATTER_ROWS]
    assert min(xticks) >= min(lrs) - 0.1 * (max(lrs) - min(lrs)) and max(xticks) <= max(lrs) * 1.1
    picture(page, "scatter")


def test_bar_lengths_follow_the_values(page: Any) -> None:
    sel = drawn(page, "bar")
    bars = page.eval_on_selector_all(
        f"{sel} rect.cc-bar",
        "rs => rs.map(r => [r.dataset.label, +r.dataset.value, r.getBBox().width])",
    )
    assert [(label, value) for label, value, _ in bars] == [(a, n) for a, n in BAR_ROWS]
    widths = {label: w for label, _, w in bars}
    for label, n in BAR_ROWS:  # lengths proportional to the values (zero-based axis)
        assert widths[label] / widths["dog"] == pytest.approx(n / 9, abs=0.02)
    # the labels down the y axis, the values along x (W&B's horizontal bars)
    assert [t for t in texts(page, f"{sel} text.cc-tick") if t in {a for a, _ in BAR_ROWS}] == [
        a for a, _ in BAR_ROWS
    ]
    assert titles(page, sel) == ("count", "animal")
    picture(page, "bar")


def test_histogram_bins_the_values(page: Any) -> None:
    sel = drawn(page, "hist")
    assert attr(page, sel, "values") == str(len(SCORES))
    bins = math.ceil(math.sqrt(len(SCORES)))  # the panel's rule: sqrt(n) equal bins, at most 30
    assert attr(page, sel, "bins") == str(bins)
    counts = page.eval_on_selector_all(f"{sel} rect.cc-bar", "rs => rs.map(r => +r.dataset.value)")
    expected, _ = np.histogram(SCORES, bins=bins, range=(min(SCORES), max(SCORES)))
    assert counts == expected.tolist()
    heights = page.eval_on_selector_all(
        f"{sel} rect.cc-bar", "rs => rs.map(r => r.getBBox().height)"
    )
    tallest = int(np.argmax(expected))
    assert max(heights) == heights[tallest] and min(heights) == heights[int(np.argmin(expected))]
    assert titles(page, sel) == ("score", "Count")
    # the x axis: round values of the scores' range, each under the bin it falls in
    lo, hi = min(SCORES), max(SCORES)
    ticks = page.eval_on_selector_all(
        f"{sel} text.cc-xtick", "ts => ts.map(t => [t.textContent, +t.getAttribute('x')])"
    )
    values = [float(label) for label, _ in ticks]
    assert len(ticks) >= 3 and values == sorted(values) and lo <= values[0] and values[-1] <= hi
    assert all(len(label.split(".")[-1]) <= 2 for label, _ in ticks if "." in label), ticks
    rects = page.eval_on_selector_all(
        f"{sel} rect.cc-bar", "rs => rs.map(r => [+r.getAttribute('x'), +r.getAttribute('width')])"
    )
    for value, (_, x) in zip(values, ticks, strict=True):
        x0, w = rects[min(bins - 1, int((value - lo) / (hi - lo) * bins))]
        assert x0 - 1 <= x <= x0 + w + 1, (value, x, x0, w)
    picture(page, "hist")


def test_line_series_one_line_per_key(page: Any) -> None:
    sel = drawn(page, "series")
    assert legend(page, sel) == list(SERIES)
    assert attr(page, f"{sel} .plot", "points") == str(len(SERIES) * len(SERIES_X))
    assert titles(page, sel) == ("epoch", "y")
    assert "three lines" in text(page, f"{figure('series')} .cc-head")
    picture(page, "series")


def test_confusion_matrix_counts(page: Any) -> None:
    sel = drawn(page, "cm")
    cells = page.eval_on_selector_all(
        f"{sel} rect.cc-cell",
        "rs => rs.map(r => [r.dataset.actual, r.dataset.predicted, +r.dataset.count])",
    )
    pairs = Counter((CLASSES[t], CLASSES[p]) for t, p in zip(TRUTH, PREDS, strict=True))
    assert {(a, p): n for a, p, n in cells} == {
        (a, p): pairs.get((a, p), 0) for a in CLASSES for p in CLASSES
    }
    assert attr(page, sel, "classes") == "3"
    # the count written in each cell, row by row, and the classes along both axes
    assert texts(page, f"{sel} text.cc-count") == [
        str(pairs.get((a, p), 0)) for a in CLASSES for p in CLASSES
    ]
    ticks = texts(page, f"{sel} text.cc-tick")
    assert ticks == [*CLASSES, *CLASSES]  # Actual down the side, Predicted along the bottom
    assert titles(page, sel) == ("Predicted", "Actual")
    picture(page, "cm")


def _curve_rows(chart: Any) -> dict[str, int]:
    """Rows per class of a logged curve chart's table."""
    return dict(Counter(str(row[0]) for row in chart.table.data))


def test_roc_curve_a_line_per_class(page: Any, logged: tuple[ServerProc, dict[str, Any]]) -> None:
    charts = logged[1]
    sel = drawn(page, "roc")
    rows = _curve_rows(charts["c_roc"])
    assert sorted(rows) == sorted(CLASSES)
    assert legend(page, sel) == list(rows)
    assert attr(page, f"{sel} .plot", "points") == str(sum(rows.values()))
    assert titles(page, sel) == ("False positive rate", "True positive rate")
    # every ROC curve runs from (0, 0) to (1, 1): the ticks span [0, 1]
    for axis in ("xticks", "yticks"):
        ticks = [
            v
            for v, _ in page.eval_on_selector(f"{sel} .plot", f"p => JSON.parse(p.dataset.{axis})")
        ]
        assert min(ticks) == pytest.approx(0) and max(ticks) == pytest.approx(1)
    picture(page, "roc")


def test_pr_curve_interpolated_points(page: Any, logged: tuple[ServerProc, dict[str, Any]]) -> None:
    sel = drawn(page, "pr")
    rows = _curve_rows(logged[1]["c_pr"])
    assert rows == {c: 21 for c in CLASSES}  # interp_size=21 recall points per class
    assert legend(page, sel) == CLASSES
    assert attr(page, f"{sel} .plot", "points") == str(21 * len(CLASSES))
    assert titles(page, sel) == ("Recall", "Precision")
    assert "Precision-Recall Curve" in text(page, f"{figure('pr')} .cc-head")
    picture(page, "pr")
    page.locator(figure("cm")).scroll_into_view_if_needed()
    shot(page, "plots-run-page")
