"""Where the main-thread time of the workspace's live cycle goes: bench/ui_workspace.py's
``live`` view (500 runs, 50 of them running, 50 rows each per 5 s) split the way DevTools'
Performance panel splits it.

For each of two windows of ``--cycles`` live cycles on the workspace of 500 visible runs:

* ``idle``: no writer (the floor: what the page costs while its running runs log nothing:
  the live poll, its empty answers, timers, the sidebar);
* ``live``: bench/ui_workspace.py's writer appending to the 50 running runs every 5 s,

it prints per cycle Chrome's own counters (``Performance.getMetrics``: TaskDuration,
ScriptDuration, LayoutDuration, RecalcStyleDuration) and, from a trace of the same window
(``devtools.timeline`` categories), the renderer main thread's self time by category:
scripting, style, layout, paint (paint, canvas flushes, layerize/commit), GC, other. Side by
side with the targets (< 50 ms per cycle, issue 15).

The store is bench/ui_workspace.py's cache (``$TMPDIR/runyard-ui-workspace``), which this
script only reads (a copy is served): build it with ``bench/ui_workspace.py --tools runyard``.

    .venv/bin/python bench/ui_workspace_trace.py --cycles 3 --trace /tmp/live-trace.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import ui_workspace
from _common import print_tables
from ui_load import CHROMIUM, CHROMIUM_ARGS, kill_group
from ui_workspace import (
    DATA_VERSION,
    ENTITY,
    LIVE_PERIOD,
    PROJECT,
    RY_FIRST,
    RY_LIVE,
    VIEWPORT,
    LiveWriter,
    forget_saved_workspace,
    ws_runs,
)

CATEGORIES = (
    os.environ.get("TRACE_CATEGORIES", "").split(",")
    if os.environ.get("TRACE_CATEGORIES")
    else [
        "devtools.timeline",
        "disabled-by-default-devtools.timeline",
        "v8.execute",
        "toplevel",
        "blink_gc",
        "disabled-by-default-v8.gc",
    ]
)
COUNTERS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
SPLIT = ("scripting", "style", "layout", "paint", "gc", "other")

SCRIPTING = {
    "FunctionCall",
    "EvaluateScript",
    "TimerFire",
    "TimerInstall",
    "TimerRemove",
    "EventDispatch",
    "FireAnimationFrame",
    "RequestAnimationFrame",
    "RunMicrotasks",
    "XHRLoad",
    "XHRReadyStateChange",
    "FireIdleCallback",
    "v8.compile",
    "v8.compileModule",
    "v8.evaluateModule",
    "v8.run",
    "v8.callFunction",
    "V8.Execute",
    "ResourceReceivedData",
    "ResourceReceiveResponse",
    "ResourceFinish",
    "ResourceSendRequest",
    "ResizeObserverController::DeliverObservations",
    "IntersectionObserverController::computeIntersections",
    "ParseHTML",
}
STYLE = {
    "UpdateLayoutTree",
    "RecalculateStyles",
    "ParseAuthorStyleSheet",
    "ScheduleStyleRecalculation",
}
LAYOUT = {"Layout", "InvalidateLayout", "UpdateLayer", "UpdateLayerTree", "HitTest", "PrePaint"}
PAINT = {"Paint", "PaintSetup", "PaintImage", "CompositeLayers", "Layerize", "Commit", "Rasterize"}


def category(name: str) -> str:
    """DevTools' category of a trace event (with the finer blink/v8 names of a trace taken
    with more categories, ``TRACE_CATEGORIES``)."""
    if name in SCRIPTING or name.startswith(("v8.", "V8.Execute", "V8.Compile")):
        return "scripting"
    if name in STYLE or name.startswith(
        ("Document::recalcStyle", "Document::UpdateStyle", "StyleEngine")
    ):
        return "style"
    if name in LAYOUT or name.startswith(
        ("LocalFrameView::performLayout", "Layout", "InlineNode::", "NG")
    ):
        return "layout"
    if name in PAINT or name.startswith(("Canvas", "Paint", "cc::", "LayerTreeHost")):
        return "paint"
    if name in ("MinorGC", "MajorGC") or name.startswith(
        (
            "V8.GC",
            "BlinkGC",
            "CppGC",
            "GCEvent",
            "Major concurrent marking",
            "FullEvacuator",
            "Scavenge",
            "Heap",
        )
    ):
        return "gc"
    return "other"


def main_thread_split(trace: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """Self time (ms) per category and per event name on the busiest renderer main thread."""
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "thread_name"
        and e.get("args", {}).get("name") == "CrRendererMain"
    }
    per_thread: dict[tuple[int, int], list[tuple[float, float, str]]] = defaultdict(list)
    open_: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        key = (e.get("pid"), e.get("tid"))
        if key not in mains:
            continue
        ph = e.get("ph")
        if ph == "X" and "dur" in e:
            per_thread[key].append((float(e["ts"]), float(e["dur"]), e["name"]))
        elif ph == "B":
            open_[key].append(e)
        elif ph == "E" and open_[key]:
            b = open_[key].pop()
            per_thread[key].append((float(b["ts"]), float(e["ts"]) - float(b["ts"]), b["name"]))
    if not per_thread:
        return {c: 0.0 for c in SPLIT}, {}
    busiest = max(per_thread, key=lambda k: sum(d for _, d, _ in per_thread[k]))
    spans = sorted(per_thread[busiest], key=lambda s: (s[0], -s[1]))
    self_by_name: dict[str, float] = defaultdict(float)
    stack: list[list[Any]] = []  # [end, name, self]

    def close(until: float) -> None:
        while stack and stack[-1][0] <= until:
            _, name, self_t = stack.pop()
            self_by_name[name] += self_t

    for ts, dur, name in spans:
        close(ts)
        if stack:
            stack[-1][2] -= dur
        stack.append([ts + dur, name, dur])
    close(float("inf"))
    split = dict.fromkeys(SPLIT, 0.0)
    for name, us in self_by_name.items():
        split[category(name)] += us / 1000.0
    return split, {n: us / 1000.0 for n, us in self_by_name.items()}


def counters(cdp: Any) -> dict[str, float]:
    metrics = cdp.send("Performance.getMetrics")["metrics"]
    return {m["name"]: float(m["value"]) for m in metrics if m["name"] in COUNTERS}


def window(
    page: Any, browser: Any, cdp: Any, cycles: int, trace: bool, trace_path: Path | None
) -> dict[str, Any]:
    """``cycles`` live cycles from the next one: Chrome's counters, or (``trace``) the trace's
    split (tracing costs main-thread time itself: the counters come from a window without)."""
    start = page.evaluate(RY_LIVE)
    page.wait_for_function(f"() => ({RY_LIVE}) > {start}", timeout=30_000, polling=1000)
    start = page.evaluate(RY_LIVE)
    if trace:
        browser.start_tracing(page=page, categories=CATEGORIES)
    c0, w0 = counters(cdp), time.perf_counter()
    page.wait_for_function(
        f"() => ({RY_LIVE}) >= {start + cycles}",
        timeout=int(cycles * LIVE_PERIOD * 3000),
        polling=1000,
    )
    c1, wall = counters(cdp), time.perf_counter() - w0
    if not trace:
        return {
            "wall_s": round(wall, 2),
            "counters_ms": {k: (c1[k] - c0[k]) * 1000.0 / cycles for k in COUNTERS},
        }
    raw = browser.stop_tracing()
    if trace_path is not None:
        trace_path.write_bytes(raw)
    split, names = main_thread_split(json.loads(raw))
    top = sorted(names.items(), key=lambda kv: -kv[1])[:16]
    return {
        "wall_s": round(wall, 2),
        "split_ms": {k: v / cycles for k, v in split.items()},
        "top_ms": {n: round(v / cycles, 2) for n, v in top},
    }


def profile_window(page: Any, cdp: Any, cycles: int) -> list[tuple[str, float]]:
    """The JavaScript self time (ms per cycle) by function over ``cycles`` live cycles (the
    DevTools CPU profiler, sampling every 100 us)."""
    start = page.evaluate(RY_LIVE)
    page.wait_for_function(f"() => ({RY_LIVE}) > {start}", timeout=30_000, polling=1000)
    start = page.evaluate(RY_LIVE)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 100})
    cdp.send("Profiler.start")
    page.wait_for_function(
        f"() => ({RY_LIVE}) >= {start + cycles}",
        timeout=int(cycles * LIVE_PERIOD * 3000),
        polling=1000,
    )
    prof = cdp.send("Profiler.stop")["profile"]
    nodes = {n["id"]: n for n in prof["nodes"]}
    deltas = prof.get("timeDeltas", [])
    self_us: dict[str, float] = defaultdict(float)
    for sample, dt in zip(prof.get("samples", []), deltas, strict=False):
        frame = nodes[sample]["callFrame"]
        url = frame.get("url", "").rsplit("/", 1)[-1]
        name = f"{frame.get('functionName') or '(anonymous)'} {url}:{frame.get('lineNumber', 0) + 1}:{frame.get('columnNumber', 0) + 1}"
        self_us[name] += dt
    top = sorted(self_us.items(), key=lambda kv: -kv[1])
    return [(n, us / 1000.0 / cycles) for n, us in top if not n.startswith("(idle)")][:25]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--cycles", type=int, default=3)
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--running", type=int, default=50)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--live-rows", type=int, default=50)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "runyard-ui-workspace"))
    ap.add_argument("--trace", default="", help="write the live window's trace here (JSON)")
    ap.add_argument("--json", default="")
    ap.add_argument(
        "--profile", action="store_true", help="also a JavaScript CPU profile of a live window"
    )
    ap.add_argument(
        "--dist",
        default="",
        help="serve this built dashboard (RUNYARD_DASHBOARD_DIR) instead of the package's: an A/B",
    )
    args = ap.parse_args()
    cache = Path(args.cache)
    marker = cache / "runyard-loaded.json"
    wanted = {"runs": args.runs, "running": args.running, "steps": args.steps, "data": DATA_VERSION}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        raise SystemExit(
            f"no runyard store of {wanted} in {cache}: build it with "
            f"`bench/ui_workspace.py --tools runyard --runs {args.runs} --steps {args.steps}` "
            "(this script only reads the cache)"
        )
    tmp = Path(tempfile.mkdtemp(prefix="ui-workspace-trace-"))
    db = tmp / "runyard.db"
    shutil.copy2(cache / "runyard.db", db)
    running = [r for r in ws_runs(args.runs, args.running, 0) if r.running]
    if args.dist:
        clean = ui_workspace.clean_env
        ui_workspace.clean_env = lambda: {**clean(), "RUNYARD_DASHBOARD_DIR": args.dist}
    proc, url = ui_workspace.start_runyard(db, tmp)
    results: dict[str, Any] = {}
    writer: LiveWriter | None = None
    try:
        from playwright.sync_api import sync_playwright

        forget_saved_workspace(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/#/p/{ENTITY}/{PROJECT}")
            visible = min(args.runs, 500)
            page.wait_for_function(
                f"() => ({RY_FIRST.replace('N_RUNS', str(visible))}) > 0", polling=500
            )
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            results["idle"] = window(page, browser, cdp, args.cycles, False, None)
            results["idle"] |= window(page, browser, cdp, args.cycles, True, None)
            writer = LiveWriter("runyard", db, running, args.steps, args.live_rows, {})
            writer.start()
            # the first cycle that fetches the writer's rows, then the window
            time.sleep(1.0)
            results["live"] = window(page, browser, cdp, args.cycles, False, None)
            trace = Path(args.trace) if args.trace else None
            results["live"] |= window(page, browser, cdp, args.cycles, True, trace)
            if args.profile:
                results["profile"] = profile_window(page, cdp, args.cycles)
            results["extended"] = page.evaluate(
                "[...document.querySelectorAll('.ws-panel .plot')].map(p => Number(p.dataset.extended ?? 0))"
            )
            browser.close()
    finally:
        if writer is not None:
            writer.stop()
        kill_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for name in COUNTERS:
        rows.append([name, *(f"{results[m]['counters_ms'][name]:.1f}" for m in ("idle", "live"))])
    for name in SPLIT:
        rows.append(
            [f"trace: {name}", *(f"{results[m]['split_ms'][name]:.1f}" for m in ("idle", "live"))]
        )
    tops = [[n, f"{v:.2f}"] for n, v in results["live"]["top_ms"].items()]
    idle_tops = [[n, f"{v:.2f}"] for n, v in results["idle"]["top_ms"].items()]
    print_tables(
        [
            (
                "main-thread ms per 5-s cycle (target: live TaskDuration < 50 ms)",
                ["", "idle (no writer)", "live (50 runs x 50 rows)"],
                rows,
            ),
            ("live: the largest self times (ms per cycle)", ["event", "ms"], tops),
            ("idle: the largest self times (ms per cycle)", ["event", "ms"], idle_tops),
        ],
        f"workspace of {args.runs} runs ({args.running} running), {args.cycles} cycles per window; "
        f"panels extended: {results['extended']}",
    )
    if "profile" in results:
        print_tables(
            [
                (
                    "live: JavaScript self time (ms per cycle)",
                    ["function", "ms"],
                    [[n, f"{v:.2f}"] for n, v in results["profile"]],
                )
            ],
            "CPU profile of the live window",
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
