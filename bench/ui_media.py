"""The dashboard's media panels in a real browser: an image panel with its step slider and a
histogram over time (issue 10), runyard against MLflow's UI where MLflow has the view.

The data, built once with each tool's own SDK and kept in ``--cache`` (default
``$TMPDIR/runyard-ui-media``) while the sizes match:

* runyard (``runyard.Image`` / ``runyard.Histogram`` through ``runyard.init`` on the embedded
  store): a run ``images`` that logs ``--images`` pictures (default 16, ``--size`` px square
  RGB, default 64) under one key at each of ``--steps`` steps (default 1,000: 16,000 PNGs),
  and a run ``hists`` that logs a ``Histogram`` of ``--bins`` bins (default 64) at each step;
  served by ``runyard ui`` on a free port.
* MLflow 3 (``mlflow.log_image(image, key=..., step=...)``, the same pictures): its UI shows
  one image card per key with a step slider, so the 16 pictures of a step are 16 keys
  (``examples_0`` ... ``examples_15``). MLflow has no histograms.

Timed in the page's clock (a probe evaluated on every animation frame from just before the
action, as bench/ui_load.py does), median of ``--repeats`` after ``--warmup`` untimed repeats,
each repeat in a fresh browser context (cold HTTP cache):

* ``open``: from the app's start page (loaded untimed) a route change to the run's page until
  the image panel shows the last step's 16 pictures, each decoded (``img.complete``, its
  ``naturalWidth``, the panel's own ``loaded`` mark) and in the document;
* ``slider``: the slider moved one step back (an ``input`` event, as a drag or an arrow key
  makes) until the 16 pictures of that step are decoded and in the document; ``--moves``
  moves per repeat (default 10), each one timed;
* ``jump``: the slider moved to the middle step (no read-ahead has fetched it): the values and
  16 pictures fetched (no target; for what a far jump costs);
* ``histogram``: a route change to the ``hists`` run's page until its heat map of every step
  is drawn (runyard only).

Targets (issue 10): open < 1 s, slider < 100 ms per step, histogram < 0.5 s.

    .venv/bin/python bench/ui_media.py                   # 1,000 steps x 16 images, both tools
    .venv/bin/python bench/ui_media.py --quick           # 60 steps, 3 repeats, runyard only
    .venv/bin/python bench/ui_media.py --prepare-only    # only build the cached data
    .venv/bin/python bench/ui_media.py --tools runyard --json bench/results/ui_media.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import free_port, print_tables
from ui_load import CHROMIUM, CHROMIUM_ARGS, ExternalRequests, MlflowServer, clean_env, kill_group

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ENTITY, PROJECT = "bench", "media"
IMAGES_RUN, HISTS_RUN = "images", "hists"
KEY, HKEY = "examples", "weights"
EXPERIMENT = "bench-media"
VIEWPORT = {"width": 1440, "height": 900}
VIEWS = ("open", "slider", "jump", "histogram")
TARGETS: dict[str, float | None] = {"open": 1.0, "slider": 0.100, "jump": None, "histogram": 0.5}
TOOLS = ("runyard", "mlflow")
DATA_VERSION = 1
TIMEOUT_MS = 60_000


# -- the data -------------------------------------------------------------------------------------


def picture(step: int, index: int, size: int) -> Any:
    """A size x size RGB picture, different at each (step, index): a gradient whose phase
    moves with the step, a block at the index's place, mild noise (PNGs of a few KB, like
    small natural images rather than flat colour)."""
    import numpy as np

    rng = np.random.default_rng([step, index])
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    r = 127 + 100 * np.sin(6.28 * (x + step / 97.0))
    g = 127 + 100 * np.cos(6.28 * (y + index / 16.0))
    b = 255 * x * y
    a = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (size, size, 3))
    q = size // 8
    bx, by = (index % 4) * 2 * q, (index // 4) * 2 * q
    a[by : by + q, bx : bx + q] = (step * 37) % 256
    return np.clip(a, 0, 255).astype(np.uint8)


def wanted_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "steps": args.steps,
        "images": args.images,
        "size": args.size,
        "bins": args.bins,
        "data": DATA_VERSION,
    }


def build_runyard(folder: Path, args: argparse.Namespace) -> Path:
    """The runs logged by runyard's SDK into the embedded store ``folder/.runyard``."""
    import numpy as np

    root = folder / ".runyard"
    marker = folder / "runyard-loaded.json"
    wanted = wanted_of(args)
    if marker.exists() and root.is_dir() and json.loads(marker.read_text()) == wanted:
        print(f"runyard store: reusing {root}", flush=True)
        return root
    shutil.rmtree(root, ignore_errors=True)
    marker.unlink(missing_ok=True)
    saved = dict(os.environ)
    try:
        for k in [k for k in os.environ if k.startswith("RUNYARD_")]:
            del os.environ[k]
        os.environ.update(
            RUNYARD_DIR=str(root), RUNYARD_CONSOLE="off", RUNYARD_DISABLE_STATS="true"
        )
        import runyard

        t = time.perf_counter()
        run = runyard.init(project=PROJECT, entity=ENTITY, id=IMAGES_RUN, name="images")
        for step in range(args.steps):
            pics = [
                runyard.Image(picture(step, i, args.size), caption=f"s{step}-{i}")
                for i in range(args.images)
            ]
            run.log({KEY: pics, "loss": 1.0 / (step + 1)}, step=step)
            if (step + 1) % 100 == 0:
                print(
                    f"runyard load: {step + 1} steps, {time.perf_counter() - t:.0f} s", flush=True
                )
        run.finish()
        rng = np.random.default_rng(0)
        run = runyard.init(project=PROJECT, entity=ENTITY, id=HISTS_RUN, name="hists")
        for step in range(args.steps):
            values = rng.normal(step / args.steps * 3, 1.0 + step / args.steps, 4096)
            run.log({HKEY: runyard.Histogram(values, num_bins=args.bins)}, step=step)
        run.finish()
        print(f"runyard load: done in {time.perf_counter() - t:.0f} s", flush=True)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    marker.write_text(json.dumps(wanted))
    return root


def mlflow_cached(folder: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    marker = folder / "mlflow-loaded.json"
    if not marker.exists():
        return None
    info: dict[str, Any] = json.loads(marker.read_text())
    return info if info.get("wanted") == wanted_of(args) else None


def mlflow_load(folder: Path, args: argparse.Namespace) -> None:
    """Runs in ``--mlflow-python``: the same pictures through ``mlflow.log_image(image,
    key=..., step=...)`` (16 keys, one card each in MLflow's UI), into ``folder/mlflow.db`` and
    ``folder/artifacts``; writes ``folder/mlflow-loaded.json``."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    import mlflow

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    db = folder / "mlflow.db"
    db.unlink(missing_ok=True)
    shutil.rmtree(folder / "artifacts", ignore_errors=True)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    exp = mlflow.create_experiment(EXPERIMENT, artifact_location=(folder / "artifacts").as_uri())
    t = time.perf_counter()
    with mlflow.start_run(experiment_id=exp, run_name="images") as run:
        for step in range(args.steps):
            for i in range(args.images):
                mlflow.log_image(picture(step, i, args.size), key=f"{KEY}_{i}", step=step)
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
            if (step + 1) % 50 == 0:
                print(f"mlflow load: {step + 1} steps, {time.perf_counter() - t:.0f} s", flush=True)
        run_id = run.info.run_id
    info = {"wanted": wanted_of(args), "experiment_id": exp, "run_id": run_id}
    (folder / "mlflow-loaded.json").write_text(json.dumps(info))
    print(f"mlflow load: done in {time.perf_counter() - t:.0f} s", flush=True)


# -- timing in the page ---------------------------------------------------------------------------
#
# As bench/ui_load.py: a probe (a JS expression on the DOM) is evaluated on every animation frame
# from just before the action and its value logged with performance.now() when it changes; the
# view is done at the first logged value that meets the view's condition. Here the action runs in
# the same evaluate() call right after the probe is installed (no Playwright round trip between
# the clock's start and the action).

TIMED_JS = """([probe, action]) => {
  const read = new Function("try { return (" + probe + "); } catch (e) { return null; }");
  const w = {log: [], stop: false};
  let last;
  const check = () => {
    const v = read();
    if (v !== last) { last = v; w.log.push([performance.now(), v]); }
  };
  check();
  const frame = () => { if (!w.stop) { check(); requestAnimationFrame(frame); } };
  window.__uiMedia = w;
  w.t0 = performance.now();
  new Function(action)();
  requestAnimationFrame(frame);
  return w.t0;
}"""
# ``until``: the source of a JS function (v, first) => bool of a logged value and the value
# before the action
SEEN_JS = """(until) => {
  const w = window.__uiMedia, ok = eval(until);
  return w.log.slice(1).some(([t, v]) => ok(v, w.log[0][1]));
}"""
DONE_JS = """(until) => {
  const w = window.__uiMedia, ok = eval(until);
  w.stop = true;
  return w.log.slice(1).find(([t, v]) => ok(v, w.log[0][1]))[0] - w.t0;
}"""


def equals(value: str) -> str:
    """The ``until`` of a probe that must read exactly ``value``."""
    return f"(v) => v === {json.dumps(value)}"


class ViewFailed(RuntimeError):
    pass


def timed(
    page: Any, label: str, probe: str, action: str, until: str, fail_dir: Path | None
) -> float:
    """Seconds from ``action`` (JS run in the page) to the first frame where ``until`` holds of
    ``probe``'s value; a screenshot ``fail-{label}.png`` and ViewFailed when it never does."""
    try:
        page.evaluate(TIMED_JS, [probe, action])
        page.wait_for_function(SEEN_JS, arg=until, timeout=TIMEOUT_MS)
        return float(page.evaluate(DONE_JS, until)) / 1000.0
    except Exception as exc:
        if fail_dir is not None:
            with contextlib.suppress(Exception):
                page.screenshot(path=str(fail_dir / f"fail-{label}.png"))
        last = ""
        with contextlib.suppress(Exception):
            last = f" (last value {page.evaluate('() => window.__uiMedia.log.at(-1)')})"
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ViewFailed(f"{label}: {type(exc).__name__}: {first}{last}") from exc


# runyard: "<step>:<decoded pictures>/<pictures>" of the image panel's run row
RY_IMAGES = """(() => {
  const p = document.querySelector("figure[data-metric='examples'] .media-panel");
  const row = p && p.querySelector(".media-run");
  if (!row) return null;
  const figs = row.querySelectorAll("figure.media-item");
  let ok = 0;
  for (const f of figs) {
    const i = f.querySelector("img");
    if (f.dataset.loaded === "true" && i && i.complete && i.naturalWidth > 0 && i.isConnected) ok++;
  }
  return row.dataset.step + ":" + ok + "/" + figs.length;
})()"""
RY_SLIDER = "figure[data-metric='examples'] input.media-slider"
# runyard: the heat map's number of steps drawn
RY_HEATMAP = (
    "document.querySelector(\"figure[data-metric='weights'] canvas.hist-heatmap\")"
    "?.dataset.count ?? null"
)


def slide_js(selector: str, index: int) -> str:
    return (
        f"const s = document.querySelector({json.dumps(selector)}); s.value = '{index}';"
        " s.dispatchEvent(new Event('input', {bubbles: true}));"
    )


def route_js(hash_: str) -> str:
    return f"location.hash = {json.dumps(hash_)};"


def shoot(page: Any, shots: Path | None, name: str) -> None:
    if shots is not None:
        page.screenshot(path=str(shots / f"{name}.png"))


def runyard_repeat(
    browser: Any,
    base: str,
    args: argparse.Namespace,
    external: ExternalRequests,
    shots: Path | None,
    fail_dir: Path | None,
    out: dict[str, list[float]],
) -> None:
    n, last = args.images, args.steps - 1
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", external)
        page.goto(f"{base}/#/")  # the app's start page, untimed (the bundle is loaded)
        page.wait_for_selector("table[aria-label='Projects']")
        route = route_js(f"#/r/{ENTITY}/{PROJECT}/{IMAGES_RUN}")
        out["open"].append(
            timed(page, "runyard-open", RY_IMAGES, route, equals(f"{last}:{n}/{n}"), fail_dir)
        )
        shoot(page, shots, "runyard-open")
        for k in range(1, args.moves + 1):
            step = last - k
            move = slide_js(RY_SLIDER, step)
            out["slider"].append(
                timed(
                    page,
                    f"runyard-slider-{step}",
                    RY_IMAGES,
                    move,
                    equals(f"{step}:{n}/{n}"),
                    fail_dir,
                )
            )
        shoot(page, shots, "runyard-slider")
        mid = args.steps // 2
        jump = slide_js(RY_SLIDER, mid)
        out["jump"].append(
            timed(page, "runyard-jump", RY_IMAGES, jump, equals(f"{mid}:{n}/{n}"), fail_dir)
        )
        route = route_js(f"#/r/{ENTITY}/{PROJECT}/{HISTS_RUN}")
        out["histogram"].append(
            timed(page, "runyard-histogram", RY_HEATMAP, route, equals(str(args.steps)), fail_dir)
        )
        shoot(page, shots, "runyard-histogram")
    finally:
        context.close()


# -- MLflow ---------------------------------------------------------------------------------------
#
# MLflow 3's run page, "Model metrics" tab (as inspected in headless chromium): a card per image
# key (``examples_0`` ...: ``[data-testid='experiment-view-compare-runs-card']``) showing one
# picture (``img.rc-image-img``, a blob: URL of the key's compressed webp) at the step of its
# own slider (a Radix slider, ``[role=slider]`` with ``aria-valuenow``); it opens at the first
# step. The grid is virtualised: only the cards near the viewport are in the document (6 at
# 1440 x 900, 3 a row), the others load when scrolled to.

ML_CARD = "[data-testid='experiment-view-compare-runs-card']"
# "<decoded pictures>/<image cards in the document>"
ML_IMAGES = """(() => {
  const cards = [...document.querySelectorAll("@CARD@")]
    .filter(c => (c.innerText || "").startsWith("examples_"));
  let ok = 0;
  for (const c of cards) {
    const i = c.querySelector("img.rc-image-img");
    if (i && i.complete && i.naturalWidth > 0 && (i.getAttribute("src") || "").startsWith("blob:")) ok++;
  }
  return ok + "/" + cards.length;
})()""".replace("@CARD@", ML_CARD)
# the first card: "<slider step>|<decoded>|<picture's URL>"
ML_FIRST = """(() => {
  const c = [...document.querySelectorAll("@CARD@")].find(c => (c.innerText || "").startsWith("examples_0\\n"));
  if (!c) return null;
  const i = c.querySelector("img.rc-image-img");
  const s = c.querySelector("[role=slider]");
  return (s ? s.getAttribute("aria-valuenow") : "") + "|" + (i && i.complete && i.naturalWidth > 0 ? 1 : 0) + "|" + (i ? i.getAttribute("src") : "");
})()""".replace("@CARD@", ML_CARD)
ML_STEP = """const c = [...document.querySelectorAll("@CARD@")].find(c => (c.innerText || "").startsWith("examples_0\\n"));
const t = c.querySelector("[role=slider]"); t.focus();
t.dispatchEvent(new KeyboardEvent("keydown", {key: "ArrowRight", bubbles: true}));""".replace(
    "@CARD@", ML_CARD
)


def ml_moved(step: int) -> str:
    """The first card at ``step`` with a new picture decoded."""
    return (
        f"(v, first) => !!v && v.startsWith('{step}|1|') && "
        "v.split('|')[2] !== (first || '||').split('|')[2]"
    )


def mlflow_setup(
    browser: Any, base: str, info: dict[str, Any], shots: Path | None
) -> tuple[Any, int]:
    """Once, untimed: open the run's page, close the assistant panel (it opens on a first
    visit; MLflow keeps that in local storage) and count the image cards of the first screen
    once all have drawn. Each repeat's fresh context starts from that storage."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(
            f"{base}/#/experiments/{info['experiment_id']}/runs/{info['run_id']}/model-metrics"
        )
        page.wait_for_selector(ML_CARD)
        close = page.locator("[data-component-id='mlflow.assistant.chat_panel.close']")
        if close.count():
            close.first.click()
        page.wait_for_function(
            f"() => {{ const [a, b] = ({ML_IMAGES}).split('/').map(Number); return b > 0 && a === b; }}",
            timeout=TIMEOUT_MS * 3,
        )
        page.wait_for_timeout(1000)  # more cards laid out after the assistant closed?
        page.wait_for_function(
            f"() => {{ const [a, b] = ({ML_IMAGES}).split('/').map(Number); return b > 0 && a === b; }}",
            timeout=TIMEOUT_MS * 3,
        )
        cards = int(str(page.evaluate(f"() => {ML_IMAGES}")).split("/")[1])
        print(f"mlflow: {cards} image cards on the first screen", flush=True)
        shoot(page, shots, "mlflow-setup")
        return context.storage_state(), cards
    finally:
        context.close()


def mlflow_repeat(
    browser: Any,
    base: str,
    info: dict[str, Any],
    state: Any,
    cards: int,
    args: argparse.Namespace,
    external: ExternalRequests,
    shots: Path | None,
    fail_dir: Path | None,
    out: dict[str, list[float]],
) -> None:
    exp, run_id = info["experiment_id"], info["run_id"]
    context = browser.new_context(viewport=VIEWPORT, storage_state=state)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("request", external)
        page.goto(f"{base}/#/experiments")  # the app's start page, untimed
        page.wait_for_selector(f"a[href$='/experiments/{exp}']")
        route = route_js(f"#/experiments/{exp}/runs/{run_id}/model-metrics")
        out["open"].append(
            timed(page, "mlflow-open", ML_IMAGES, route, equals(f"{cards}/{cards}"), fail_dir)
        )
        shoot(page, shots, "mlflow-open")
        for step in range(1, args.moves + 1):
            out["slider"].append(
                timed(page, f"mlflow-slider-{step}", ML_FIRST, ML_STEP, ml_moved(step), fail_dir)
            )
        shoot(page, shots, "mlflow-slider")
    finally:
        context.close()


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Side:
    name: str
    repeat: Callable[[Any, Path | None, dict[str, list[float]]], None]
    values: dict[str, list[float]] = field(default_factory=lambda: {v: [] for v in VIEWS})
    errors: list[str] = field(default_factory=list)

    def run(self, browser: Any, shots: Path | None, record: bool) -> None:
        got: dict[str, list[float]] = {v: [] for v in VIEWS}
        failed = ""
        try:
            self.repeat(browser, shots, got)
        except Exception as exc:
            failed = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if record:
                self.errors.append(failed)
        if record:
            for v in VIEWS:
                self.values[v].extend(got[v])
        print(
            f"{self.name}{'' if record else ' (warm-up)'}: "
            + ", ".join(
                f"{v} {statistics.median(xs) * 1000:.0f} ms"
                + (f" (x{len(xs)})" if len(xs) > 1 else "")
                for v, xs in got.items()
                if xs
            )
            + (f"; FAILED {failed}" if failed else ""),
            flush=True,
        )

    def summary(self, view: str) -> dict[str, Any] | None:
        xs = self.values[view]
        if not xs:
            return None
        return {
            "median_s": statistics.median(xs),
            "min_s": min(xs),
            "max_s": max(xs),
            "n": len(xs),
            "values_s": [round(x, 4) for x in xs],
        }


def cell(s: dict[str, Any] | None, why: str) -> str:
    if s is None:
        return why
    return f"{s['median_s'] * 1000:.0f} ({s['min_s'] * 1000:.0f}-{s['max_s'] * 1000:.0f})"


MLFLOW_NA = {
    "histogram": "n/a (MLflow has no histograms)",
    "jump": "n/a (not measured: no jump action in its slider)",
}


def report(sides: dict[str, Side], args: argparse.Namespace) -> dict[str, Any]:
    ry, ml = sides.get("runyard"), sides.get("mlflow")
    rows: list[list[str]] = []
    out: dict[str, Any] = {}
    for view in VIEWS:
        r = ry.summary(view) if ry else None
        m = ml.summary(view) if ml else None
        target = TARGETS[view]
        verdict = ""
        if r is not None and target is not None:
            verdict = "met" if r["median_s"] < target else "MISSED"
        ratio = f"{m['median_s'] / r['median_s']:.1f}x" if r and m else "n/a"
        ml_why = MLFLOW_NA.get(view, "n/a (not measured)") if ml else "not run"
        rows.append(
            [
                view,
                cell(r, "n/a (not measured)" if ry else "not run"),
                cell(m, ml_why),
                ratio,
                f"< {target * 1000:.0f}" if target else "-",
                verdict,
            ]
        )
        out[view] = {"runyard": r, "mlflow": m, "target_s": target, "verdict": verdict}
    title = (
        f"{args.steps} steps x {args.images} images ({args.size} px), a histogram of "
        f"{args.bins} bins per step; ms, median (min-max) of {args.repeats} repeats"
        f" (slider: {args.moves} moves each)"
    )
    columns = ["view", "runyard (ms)", "MLflow (ms)", "MLflow / runyard", "target (ms)", ""]
    print_tables([(title, columns, rows)], "\nui_media")
    if ml is not None:
        print(
            "MLflow's views differ: its grid is virtualised, so 'open' waits for the image cards "
            "of its first screen (not all 16; runyard's first screen has all 16), and each card "
            "has its own slider, so 'slider' moves one card's picture (runyard: all 16); it "
            "opens at the first step, runyard at the last."
        )
    for name, side in sides.items():
        for err in side.errors:
            print(f"{name}: not measured: {err}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, help="steps (default 1,000; --quick: 60)")
    parser.add_argument("--images", type=int, default=16, help="pictures per step")
    parser.add_argument("--size", type=int, default=64, help="picture side, px")
    parser.add_argument("--bins", type=int, default=64, help="histogram bins")
    parser.add_argument("--repeats", type=int, help="timed repeats (default 5; --quick: 3)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed repeats per tool first")
    parser.add_argument("--moves", type=int, default=10, help="slider moves per repeat")
    parser.add_argument("--tools", default=",".join(TOOLS), help="runyard,mlflow")
    parser.add_argument(
        "--quick", action="store_true", help="60 steps, 3 repeats, runyard only (for iterating)"
    )
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "runyard-ui-media"))
    parser.add_argument(
        "--mlflow-python",
        default=str(REPO / ".venv-bench" / "bin" / "python"),
        help="an interpreter with MLflow 3 (its bin/ has the mlflow script)",
    )
    parser.add_argument("--load-timeout", type=float, default=3600.0, help="MLflow load, s")
    parser.add_argument("--server-timeout", type=float, default=300.0, help="server start, s")
    parser.add_argument(
        "--screenshots",
        default=str(REPO / "test-artifacts" / "ui_media"),
        help="folder for screenshots of the last repeat; '' for none",
    )
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the data in --cache and stop (outside the bench lock: nothing is timed)",
    )
    parser.add_argument("--load-mlflow-into", help=argparse.SUPPRESS)  # the loader child
    args = parser.parse_args()
    args.steps = args.steps or (60 if args.quick else 1000)
    args.repeats = args.repeats or (3 if args.quick else 5)
    if args.quick and not any(a.startswith("--tools") for a in sys.argv):
        args.tools = "runyard"
    for name in ("steps", "images", "size", "bins", "repeats", "moves"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1 (got {getattr(args, name)})")
    if args.moves >= args.steps:
        parser.error(f"--moves ({args.moves}) must be below --steps ({args.steps})")
    if args.load_mlflow_into:
        mlflow_load(Path(args.load_mlflow_into), args)
        return 0
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)} (known: {','.join(TOOLS)})")

    cache = Path(args.cache) / f"{args.steps}x{args.images}x{args.size}-{args.bins}"
    cache.mkdir(parents=True, exist_ok=True)
    shots = Path(args.screenshots) if args.screenshots else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)

    # the data: MLflow's loader in its own interpreter while runyard's runs are logged
    loader: subprocess.Popen[bytes] | None = None
    ml_info: dict[str, Any] | None = None
    ml_problem = ""
    ml_python = Path(args.mlflow_python)
    if "mlflow" in tools:
        ml_info = mlflow_cached(cache, args)
        if ml_info is not None:
            print(f"mlflow store: reusing {cache / 'mlflow.db'}", flush=True)
        elif not ml_python.exists():
            ml_problem = f"{ml_python} is missing (make .venv-bench/.installed)"
        else:
            loader = subprocess.Popen(
                [str(ml_python), __file__, "--load-mlflow-into", str(cache)]
                + [f"--{k}={v}" for k, v in wanted_of(args).items() if k != "data"],
                cwd=cache,
                env=clean_env(),
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
    try:
        root = build_runyard(cache, args) if "runyard" in tools else None
        if loader is not None:
            try:
                rc: int | None = loader.wait(args.load_timeout)
            except subprocess.TimeoutExpired:
                rc = None
            ml_info = mlflow_cached(cache, args)
            if ml_info is None:
                ml_problem = (
                    f"loading took over {args.load_timeout:.0f} s (--load-timeout)"
                    if rc is None
                    else f"the MLflow loader failed (exit code {rc})"
                )
    finally:
        if loader is not None:
            kill_group(loader)

    if args.prepare_only:
        print(f"data ready in {cache}" + (f"; MLflow: {ml_problem}" if ml_problem else ""))
        return 0 if not ml_problem else 1
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"ui_media: {args.steps} steps x {args.images} images, {args.bins} bins, "
        f"{args.repeats} repeats, tools {tools}; {os.cpu_count()} CPUs, "
        f"load average before {load_before}",
        flush=True,
    )
    from playwright.sync_api import sync_playwright
    from tests.serverproc import ServerProc

    sides: dict[str, Side] = {}
    external: dict[str, ExternalRequests] = {}
    tmp = Path(tempfile.mkdtemp(prefix="ui-media-"))
    with sync_playwright() as pw, contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, True)
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        if root is not None:
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
            ui = ServerProc(
                store_url="",
                port=port,
                args=[sys.executable, "-m", "runyard", "ui", "--port", str(port)]
                + ["--no-browser", "--dir", str(root)],
                env=env,
            )
            ui.start()
            stack.callback(ui.close)
            external["runyard"] = ExternalRequests(ui.url)
            sides["runyard"] = Side(
                "runyard",
                lambda b, s, out: runyard_repeat(b, ui.url, args, external["runyard"], s, tmp, out),
            )
        if "mlflow" in tools:
            side = sides["mlflow"] = Side("mlflow", lambda b, s, out: None)
            if ml_info is None:
                side.errors.append(ml_problem or "no MLflow data")
            else:
                ml_server = MlflowServer(ml_python.parent / "mlflow", cache / "mlflow.db", tmp)
                stack.callback(ml_server.stop)
                try:
                    ml_server.start(args.server_timeout)
                except Exception as exc:
                    traceback.print_exc()
                    side.errors.append(f"mlflow server: {type(exc).__name__}: {exc}")
                else:
                    info = ml_info
                    try:
                        state, cards = mlflow_setup(browser, ml_server.url, info, shots)
                    except Exception as exc:
                        traceback.print_exc()
                        side.errors.append(f"MLflow setup: {type(exc).__name__}: {exc}")
                    else:
                        external["mlflow"] = ExternalRequests(ml_server.url)
                        side.repeat = lambda b, s, out: mlflow_repeat(
                            b,
                            ml_server.url,
                            info,
                            state,
                            cards,
                            args,
                            external["mlflow"],
                            s,
                            tmp,
                            out,
                        )
        measured = [s for s in sides.values() if not s.errors]
        for _ in range(args.warmup):
            for side in measured:
                side.run(browser, None, record=False)
        for i in range(args.repeats):
            for side in measured:
                side.run(browser, shots if i == args.repeats - 1 else None, record=True)
        failed_shots = sorted(p.name for p in tmp.glob("fail-*.png"))
        if failed_shots and shots:
            for name in failed_shots:
                shutil.copy(tmp / name, shots / name)

    rows = report(sides, args)
    for name, ext in external.items():
        print(f"{name}: requests to anything but its server: {sorted(set(ext.seen)) or 'none'}")
    load_after = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before {load_before}, after {load_after} ({os.cpu_count()} CPUs)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps(
                {
                    "params": wanted_of(args) | {"repeats": args.repeats, "moves": args.moves},
                    "cpus": os.cpu_count(),
                    "load_before": load_before,
                    "load_after": load_after,
                    "views": rows,
                    "errors": {k: s.errors for k, s in sides.items()},
                },
                indent=1,
            )
        )
    complete = all(not s.errors for s in sides.values())
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
