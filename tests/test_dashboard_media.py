"""The dashboard's media panels (web/src/panels/media.ts, histogram.ts, table.ts) in Debian's
chromium against a real ``runyard server --auth``, over runs logged by the real SDK through it:
images with masks and boxes, a histogram per step, a table with image cells logged twice,
audio, a GIF video, a plotly figure and user HTML that probes its sandbox.

One server, one browser and one page (a module-scoped fixture) serve every test; screenshots
go to ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.serverproc import ServerProc, create_key, running_server
from tests.test_dashboard import browser, checked_page, shot  # noqa: F401 - the shared chromium fixture

pytestmark = pytest.mark.slow

STEPS = 5
H, W = 24, 32
COLORS = [(200, 30, 30), (30, 160, 60), (40, 60, 210), (220, 180, 20), (120, 40, 160)]

PROBE = """<!doctype html><p id="probe">sandbox probe</p><script>
const out = {};
function t(name, f) { try { out[name] = String(f()); } catch (e) { out[name] = "blocked:" + e.name; } }
t("parentDoc", () => parent.document.title);
t("parentKey", () => parent.localStorage.getItem("runyard.apiKey"));
t("topCookie", () => top.document.cookie);
t("cookie", () => document.cookie);
t("storage", () => localStorage.getItem("runyard.apiKey"));
t("origin", () => location.origin);
fetch("/api/v1/runs?entity=lab&project=media", {credentials: "include"})
  .then(r => "status:" + r.status, e => "blocked:" + e.name)
  .then(s => { out.fetch = s; parent.postMessage({probe: out}, "*"); });
</script>"""


def _picture(step: int) -> np.ndarray:
    a = np.zeros((H, W, 3), np.uint8)
    a[:, :] = COLORS[step % len(COLORS)]
    return a


def _log(url: str, key: str) -> None:
    import plotly.graph_objects as go

    import runyard
    from runyard.media import Audio, Histogram, Html, Image, Table, Video

    rng = np.random.default_rng(3)
    run = runyard.init(project="media", entity="lab", id="m1", name="media-run")
    mask = np.zeros((H, W), np.uint8)
    mask[:, : W // 2] = 1  # class 1 ("cat") on the left half, 0 ("bg") on the right
    boxes = {
        "box_data": [
            {
                "position": {"minX": 0.5, "maxX": 0.9, "minY": 0.1, "maxY": 0.6},
                "class_id": 2,
                "box_caption": "dog",
            },
            {
                "position": {"middle": [8, 12], "width": 8, "height": 8},
                "domain": "pixel",
                "class_id": 1,
            },
        ],
        "class_labels": {1: "cat", 2: "dog"},
    }
    table = Table(columns=["id", "image", "score", "label"])
    for i in range(30):
        table.add_data(i, Image(_picture(i)), float((i * 7) % 30), f"l{i % 3}")
    for step in range(STEPS):
        row: dict[str, Any] = {
            "loss": 1.0 / (step + 1),
            "examples": [
                Image(
                    _picture(step),
                    caption=f"s{step}-0",
                    masks={"pred": {"mask_data": mask, "class_labels": {0: "bg", 1: "cat"}}},
                    boxes={"gt": boxes},
                ),
                Image(_picture(step + 1), caption=f"s{step}-1"),
                Image(_picture(step + 2), caption=f"s{step}-2"),
            ],
            "weights": Histogram(rng.normal(step, 1.0, 2000), num_bins=32),
        }
        if step == 0:
            fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="trace a"))
            wave = np.sin(np.linspace(0, 200, 4000)).astype(np.float32)
            row |= {
                "preds": table,
                "speech": Audio(wave, sample_rate=8000, caption="a tone"),
                "rollout": Video(rng.integers(0, 255, (4, 3, 16, 16), dtype=np.uint8), fps=4),
                "fig": fig,
                "report": Html(PROBE),
            }
        if step == STEPS - 1:
            for i in range(30, 40):
                table.add_data(i, Image(_picture(i)), 100.0 + i, "late")
            row["preds"] = table  # logged again: the panel shows this version
        run.log(row, step=step)
    _log_charts(run)
    run.finish()
    other = runyard.init(project="media", entity="lab", id="m2", name="other-run")
    for step in (0, 2, 4):
        other.log({"examples": [Image(_picture(step + 3), caption=f"o{step}")]}, step=step)
    other.finish()


def _log_charts(run: Any) -> None:
    """One chart of each ``runyard.plot`` kind (stored as W&B stores them)."""
    import runyard
    from runyard.media import Table

    plot = runyard.plot
    points = Table(columns=["x", "y", "c"], data=[[i, (i * 3) % 7, "ab"[i % 2]] for i in range(10)])
    bars = Table(columns=["name", "n"], data=[["cat", 5], ["dog", 9], ["owl", 2]])
    values = Table(columns=["v"], data=[[float(i % 10)] for i in range(100)])
    truth = [0, 1, 2, 0, 1, 2, 0, 1, 2, 2]
    preds = [0, 1, 1, 0, 1, 2, 0, 2, 2, 2]
    probas = [[0.8 if c == p else 0.1 for c in range(3)] for p in preds]
    run.log(
        {
            "c_line": plot.line(points, "x", "y", stroke="c", title="line"),
            "c_scatter": plot.scatter(points, "x", "y", title="scatter"),
            "c_bar": plot.bar(bars, "name", "n", title="bar"),
            "c_hist": plot.histogram(values, "v", title="hist"),
            "c_series": plot.line_series(
                [[0, 1, 2], [0, 1, 2]], [[1, 2, 3], [3, 2, 1]], keys=["up", "down"]
            ),
            "c_cm": plot.confusion_matrix(y_true=truth, preds=preds, class_names=["a", "b", "c"]),
            "c_roc": plot.roc_curve(truth, probas, labels=["a", "b", "c"]),
            "c_pr": plot.pr_curve(truth, probas, labels=["a", "b", "c"]),
        },
        step=STEPS - 1,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProc, str]]:
    folder = tmp_path_factory.mktemp("dashboard-media")
    url = f"sqlite:///{folder / 'store.db'}"
    key = create_key(url, "lab")
    with running_server(url, auth=True) as proc, pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("RUNYARD_BASE_URL", proc.url)
        mp.setenv("RUNYARD_API_KEY", key)
        mp.setenv("RUNYARD_CONSOLE", "off")
        mp.setenv("RUNYARD_DISABLE_STATS", "true")
        _log(proc.url, key)
        mp.undo()
        yield proc, key


@pytest.fixture(scope="module")
def page(browser: Any, server: tuple[ServerProc, str]) -> Iterator[Any]:  # noqa: F811
    proc, key = server
    # the dashboard's key where it keeps it, a cookie of its origin, and a listener for the
    # HTML probe's report
    init = (
        f"if (window === window.top) {{ localStorage.setItem('runyard.apiKey', {key!r}); document.cookie = 'secret=dashboard';"
        "window.addEventListener('message', e => { if (e.data && e.data.probe)"
        " window.__probe = e.data.probe; }); }"
    )
    with checked_page(browser, proc.url, size=(1400, 1000), init_script=init) as pg:
        yield pg


def _open_run(page: Any) -> None:
    if "#/r/lab/media/m1" not in page.url:
        page.goto("/#/r/lab/media/m1")
    page.wait_for_selector("#panel-charts[data-ready='true']")


def _pixel(page: Any, selector: str, fx: float, fy: float) -> list[int]:
    """The RGBA of an image/canvas element's own pixel at (fx, fy) of its size."""
    rgba: list[int] = page.eval_on_selector(
        selector,
        """(el, [fx, fy]) => {
          const w = el.naturalWidth || el.width, h = el.naturalHeight || el.height;
          const c = document.createElement('canvas'); c.width = w; c.height = h;
          const g = c.getContext('2d'); g.drawImage(el, 0, 0);
          return Array.from(g.getImageData(Math.floor(fx * w), Math.floor(fy * h), 1, 1).data);
        }""",
        [fx, fy],
    )
    return rgba


def test_run_page_media_sections_and_image_slider(page: Any) -> None:
    _open_run(page)
    kinds = dict(
        page.eval_on_selector_all(
            "#run-charts figure.chart-panel",
            "fs => fs.map(f => [f.dataset.metric, f.dataset.kind || 'line'])",
        )
    )
    assert kinds == {
        "loss": "line",
        "examples": "images",
        "weights": "histogram",
        "preds": "table",
        "speech": "audio",
        "rollout": "video",
        "fig": "plotly",
        "report": "html",
        **{f"c_{c}_table": "custom-chart" for c in ("line", "scatter", "bar", "hist")},
        **{f"c_{c}_table": "custom-chart" for c in ("series", "cm", "roc", "pr")},
    }
    panel = "figure[data-metric='examples'] .media-panel"
    page.wait_for_selector(f"{panel}[data-step='{STEPS - 1}']")
    items = f"{panel} .media-run[data-run='m1'] .media-item"
    sizes = page.eval_on_selector_all(
        f"{items} img.media-img", "is => is.map(i => [i.naturalWidth, i.naturalHeight])"
    )
    assert sizes == [[W, H]] * 3
    caps = page.eval_on_selector_all(f"{items} .media-caption", "cs => cs.map(c => c.textContent)")
    assert caps == [f"s{STEPS - 1}-0", f"s{STEPS - 1}-1", f"s{STEPS - 1}-2"]
    assert _pixel(page, f"{items} img.media-img >> nth=0", 0.5, 0.5)[:3] == list(
        COLORS[(STEPS - 1) % 5]
    )
    # the slider moves to step 1: the pictures and captions of step 1
    slider = page.locator(f"{panel} input.media-slider")
    slider.focus()
    for _ in range(STEPS - 2):
        page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"{panel}[data-step='1']")
    assert page.eval_on_selector(f"{items} .media-caption", "c => c.textContent") == "s1-0"
    assert _pixel(page, f"{items} img.media-img >> nth=0", 0.5, 0.5)[:3] == list(COLORS[1])
    page.locator("figure[data-metric='examples']").scroll_into_view_if_needed()
    shot(page, "media-run-images")


def test_mask_and_boxes_overlays_with_class_toggles(page: Any) -> None:
    _open_run(page)
    panel = "figure[data-metric='examples'] .media-panel"
    first = f"{panel} .media-run[data-run='m1'] .media-item[data-index='0']"
    page.wait_for_selector(f"{first} canvas.media-mask[data-layer='pred']")
    page.wait_for_selector(f"{first} canvas.media-boxes[data-drawn='2']")
    mask = f"{first} canvas.media-mask"
    assert page.eval_on_selector(mask, "c => [c.width, c.height]") == [W, H]
    left, right = _pixel(page, mask, 0.25, 0.5), _pixel(page, mask, 0.75, 0.5)
    assert left[3] > 0 and right[3] > 0 and left[:3] != right[:3]  # cat and bg differ
    # the legend: both layers with their classes
    legend = page.eval_on_selector_all(
        f"{panel} .media-layer",
        "ls => ls.map(l => [l.dataset.layer, l.dataset.kind,"
        " Array.from(l.querySelectorAll('.media-class')).map(c => c.textContent)])",
    )
    assert legend == [["gt", "boxes", ["cat", "dog"]], ["pred", "mask", ["bg", "cat"]]]
    # "cat" off in the mask: the left half is clear, the right half still painted
    page.locator(
        f"{panel} .media-layer[data-layer='pred'] .media-class[data-class='1'] input"
    ).uncheck()
    page.wait_for_function(
        "sel => { const c = document.querySelector(sel); const g = c.getContext('2d');"
        " return g.getImageData(2, 2, 1, 1).data[3] === 0; }",
        arg=mask,
    )
    assert _pixel(page, mask, 0.75, 0.5)[3] > 0
    # "dog" off in the boxes: one box left; the layer off: hidden
    page.locator(
        f"{panel} .media-layer[data-layer='gt'] .media-class[data-class='2'] input"
    ).uncheck()
    page.wait_for_selector(f"{first} canvas.media-boxes[data-drawn='1']")
    page.locator(f"{panel} .media-layer[data-layer='gt'] .media-layer-name input").uncheck()
    assert page.eval_on_selector(f"{first} canvas.media-boxes", "c => c.hidden") is True
    page.locator(f"{panel} .media-layer[data-layer='gt'] .media-layer-name input").check()
    page.locator(
        f"{panel} .media-layer[data-layer='gt'] .media-class[data-class='2'] input"
    ).check()
    page.wait_for_selector(f"{first} canvas.media-boxes[data-drawn='2']")
    shot(page, "media-overlays")


def test_histogram_heatmap_and_one_step(page: Any) -> None:
    _open_run(page)
    panel = "figure[data-metric='weights'] .hist-panel"
    page.wait_for_selector(f"{panel}.drawn canvas.hist-heatmap")
    heat = f"{panel} canvas.hist-heatmap"
    assert page.eval_on_selector(heat, "c => Number(c.dataset.count)") == STEPS
    lo, hi = page.eval_on_selector(heat, "c => JSON.parse(c.dataset.range)")
    assert lo < -1 and hi > STEPS - 1 + 1  # normal(step, 1) over steps 0..4
    # the mass climbs with the step: at the first step it sits low, at the last high
    px = page.eval_on_selector(
        heat,
        """c => { const [x, y, w, h] = JSON.parse(c.dataset.plot); const d = devicePixelRatio;
          const g = c.getContext('2d'); const col = fx => { let best = 1e9, at = 0;
            for (let r = 1; r < h - 1; r++) { const p = g.getImageData(Math.floor((x + fx * w) * d),
              Math.floor((y + r) * d), 1, 1).data; const v = p[0] + p[1] + p[2];
              if (v < best) { best = v; at = r; } }
            return at / h; };
          return [col(0.02), col(0.98)]; }""",
    )
    assert px[0] > px[1]  # the darkest (densest) row of the last step is higher up
    page.locator(f"{panel} .hist-modes button[data-mode='step']").click()
    page.wait_for_selector(f"{panel}[data-mode='step'] canvas.hist-step")
    assert page.eval_on_selector(f"{panel}", "p => p.dataset.step") == str(STEPS - 1)
    page.locator(f"{panel} input.media-slider").focus()
    page.keyboard.press("Home")
    page.wait_for_selector(f"{panel}[data-step='0'] canvas.hist-step[data-step='0']")
    lo0, hi0 = page.eval_on_selector(
        f"{panel} canvas.hist-step", "c => JSON.parse(c.dataset.range)"
    )
    assert lo0 < 0 < hi0 < hi
    page.locator("figure[data-metric='weights']").scroll_into_view_if_needed()
    shot(page, "media-histogram")
    page.locator(f"{panel} .hist-modes button[data-mode='heatmap']").click()
    page.wait_for_selector(f"{panel}[data-mode='heatmap'] canvas.hist-heatmap")


def test_table_latest_version_sort_and_image_cells(page: Any) -> None:
    _open_run(page)
    panel = "figure[data-metric='preds'] .table-panel"
    page.wait_for_selector(f"{panel}.drawn[data-rows='40']")  # the version logged last
    heads = page.eval_on_selector_all(f"{panel} .vt-th", "bs => bs.map(b => b.dataset.col)")
    assert heads == ["id", "image", "score", "label"]
    rendered = int(page.eval_on_selector(panel, "p => p.dataset.rendered"))
    assert 0 < rendered < 40  # virtualised: only the rows in view (and a few more)
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.naturalWidth > 0; }",
        arg=f"{panel} .vt-row[data-index='0'] img.vt-thumb",
    )
    thumb = f"{panel} .vt-row[data-index='0'] img.vt-thumb"
    assert page.eval_on_selector(thumb, "i => [i.naturalWidth, i.naturalHeight]") == [W, H]
    assert _pixel(page, thumb, 0.5, 0.5)[:3] == list(COLORS[0])

    def column(name: str) -> list[str]:
        idx = heads.index(name)
        texts: list[str] = page.eval_on_selector_all(
            f"{panel} .vt-row",
            f"rs => rs.sort((a, b) => a.dataset.index - b.dataset.index)"
            f".map(r => r.children[{idx}].textContent)",
        )
        return texts

    page.click(f"{panel} .vt-th[data-col='score']")
    scores = [float(s) for s in column("score")]
    assert scores == sorted(scores) and scores[0] == 0.0
    page.click(f"{panel} .vt-th[data-col='score']")
    scores = [float(s) for s in column("score")]
    assert scores[0] == 139.0 and scores == sorted(scores, reverse=True)
    assert page.get_attribute(f"{panel} .vt-th[data-col='score']", "aria-sort") == "descending"
    page.fill(f"{panel} input.table-filter", "late")
    page.wait_for_selector(f"{panel}[data-rows='10']")
    page.locator("figure[data-metric='preds']").scroll_into_view_if_needed()
    shot(page, "media-table")
    page.fill(f"{panel} input.table-filter", "")


def test_audio_video_plotly(page: Any) -> None:
    _open_run(page)
    audio = "figure[data-metric='speech'] .media-item[data-loaded='true'] audio"
    page.wait_for_selector(audio, state="attached")
    duration = page.eval_on_selector(
        audio,
        "a => a.readyState >= 1 ? a.duration : new Promise(r => a.addEventListener("
        "'loadedmetadata', () => r(a.duration), {once: true}))",
    )
    assert duration == pytest.approx(0.5, abs=0.01)
    assert page.inner_text("figure[data-metric='speech'] .media-caption") == "a tone"
    gif = "figure[data-metric='rollout'] .media-item[data-format='gif'][data-loaded='true'] img"
    page.wait_for_selector(gif)
    assert page.eval_on_selector(gif, "i => [i.naturalWidth, i.naturalHeight]") == [16, 16]
    plot = "figure[data-metric='fig'] .media-item[data-loaded='true']"
    page.wait_for_selector(plot, timeout=30_000)
    assert page.eval_on_selector(plot, "f => f.dataset.traces") == "1"
    assert page.locator(f"{plot} .main-svg .scatterlayer .trace").count() == 1
    assert page.locator(f"{plot} .scatterlayer .trace .point").count() == 3
    page.locator("figure[data-metric='fig']").scroll_into_view_if_needed()
    shot(page, "media-plotly")


def test_html_runs_in_a_sandbox_that_cannot_reach_the_dashboard(page: Any) -> None:
    _open_run(page)
    frame = "figure[data-metric='report'] iframe.media-html"
    page.wait_for_selector(frame)
    assert page.get_attribute(frame, "sandbox") == "allow-scripts"
    page.wait_for_function("() => !!window.__probe")
    probe = page.evaluate("window.__probe")
    assert probe["parentDoc"].startswith("blocked:")
    assert probe["parentKey"].startswith("blocked:")
    assert probe["topCookie"].startswith("blocked:")
    assert probe["cookie"].startswith("blocked:")
    assert probe["storage"].startswith("blocked:")
    assert probe["origin"] == "null"
    assert probe["fetch"] in ("blocked:TypeError", "status:401")  # no key goes with it
    # the dashboard itself does have the key and the cookie
    assert page.evaluate("localStorage.getItem('runyard.apiKey')").startswith("ry_")
    assert "secret=dashboard" in page.evaluate("document.cookie")
    page.locator("figure[data-metric='report']").scroll_into_view_if_needed()
    shot(page, "media-html")


def test_workspace_media_panels_across_runs(page: Any) -> None:
    page.goto("/#/p/lab/media")
    page.wait_for_selector("[data-ready='true'] .ws-panel[data-kind='images']")
    kinds = dict(
        page.eval_on_selector_all(".ws-panel", "ps => ps.map(p => [p.dataset.key, p.dataset.kind])")
    )
    assert kinds["examples"] == "images" and kinds["weights"] == "histogram"
    assert kinds["preds"] == "table" and kinds["report"] == "html" and kinds["loss"] == "line"
    panel = ".ws-panel[data-key='examples'] .media-panel"
    page.wait_for_selector(f"{panel}[data-step='4']")
    runs = page.eval_on_selector_all(
        f"{panel} .media-run", "rs => rs.map(r => [r.dataset.run, r.dataset.step])"
    )
    assert sorted(runs) == [["m1", "4"], ["m2", "4"]]
    page.locator(f"{panel} input.media-slider").focus()
    page.keyboard.press("ArrowLeft")  # step 3: m2 logged none there, it shows its step 2
    page.wait_for_selector(f"{panel}[data-step='3']")
    runs = dict(
        page.eval_on_selector_all(
            f"{panel} .media-run", "rs => rs.map(r => [r.dataset.run, r.dataset.step])"
        )
    )
    assert runs == {"m1": "3", "m2": "2"}
    assert (
        page.eval_on_selector(
            f"{panel} .media-run[data-run='m2'] .media-caption", "c => c.textContent"
        )
        == "o2"
    )
    shot(page, "media-workspace")


def test_plot_custom_charts(page: Any) -> None:
    _open_run(page)

    def chart(key: str) -> str:
        sel = f"figure[data-metric='c_{key}_table'] .cc-panel.drawn"
        page.wait_for_selector(sel)
        return sel

    got = {
        k: page.eval_on_selector(chart(k), "p => p.dataset.chart")
        for k in ("line", "scatter", "bar", "hist", "series", "cm", "roc", "pr")
    }
    assert got == {
        "line": "line",
        "scatter": "scatter",
        "bar": "bar",
        "hist": "histogram",
        "series": "lineseries",
        "cm": "confusion_matrix",
        "roc": "area-under-curve",
        "pr": "area-under-curve",
    }
    assert page.eval_on_selector(chart("line"), "p => p.dataset.series") == "2"  # stroke a, b
    assert page.eval_on_selector(chart("series"), "p => p.dataset.series") == "2"  # up, down
    assert page.eval_on_selector(chart("roc"), "p => p.dataset.series") == "3"  # a class each
    assert page.eval_on_selector(chart("scatter"), "p => p.dataset.points") == "10"
    bars = page.eval_on_selector_all(
        f"{chart('bar')} rect.cc-bar", "rs => rs.map(r => [r.dataset.label, +r.dataset.value])"
    )
    assert bars == [["cat", 5], ["dog", 9], ["owl", 2]]
    heights = page.eval_on_selector_all(
        f"{chart('bar')} rect.cc-bar", "rs => rs.map(r => r.getBBox().width)"
    )
    assert heights[1] > heights[0] > heights[2]
    assert page.eval_on_selector(chart("hist"), "p => p.dataset.values") == "100"
    hist = page.eval_on_selector_all(
        f"{chart('hist')} rect.cc-bar", "rs => rs.map(r => +r.dataset.value)"
    )
    assert sum(hist) == 100
    cells = page.eval_on_selector_all(
        f"{chart('cm')} rect.cc-cell",
        "rs => rs.map(r => [r.dataset.actual, r.dataset.predicted, +r.dataset.count])",
    )
    by = {(a, p): n for a, p, n in cells}
    assert len(cells) == 9 and by[("a", "a")] == 3 and by[("b", "c")] == 1 and by[("c", "b")] == 1
    page.locator("figure[data-metric='c_cm_table']").scroll_into_view_if_needed()
    shot(page, "media-custom-charts")
