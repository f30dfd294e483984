"""Time on the training thread of logging media: runyard vs wandb 0.31 offline, one process.

Run from a venv that has both (the dev venv has wandb 0.31):

    .venv/bin/python bench/media_log.py                 # as the machine schedules it
    sudo chrt -f 10 .venv/bin/python bench/media_log.py  # SCHED_FIFO: not preempted by others

Each case is the constructor + ``log()`` call, timed ``REPEATS`` times (default 30) per round
(back to back, or with ``GAP_MS`` of sleep between calls: the rest of a training step), ``ROUNDS`` rounds (default 3) alternating wandb and runyard so that both see the
same machine. The table has the median over all calls and the spread of the per-round medians
(min-max); the ratio is of the medians. runyard's side includes its background threads'
competition for the GIL (its encoder bins and encodes while the next calls are made), which is
the honest cost: wandb does everything on the calling thread.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_tables


def timed(fn: Callable[[], Any], n: int, gap: float) -> list[float]:
    fn()
    xs = []
    for _ in range(n):
        if gap:
            time.sleep(gap)  # the rest of a training step (not timed)
        start = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - start)
    return xs


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="bench-media-")
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", RUNYARD_DIR=tmp)
    os.environ["RUNYARD_CONSOLE"] = "off"
    os.environ["RUNYARD_SILENT"] = "true"
    import wandb

    import runyard
    from runyard.media import Histogram, Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    big = rng.normal(size=1_000_000)
    n = int(os.environ.get("REPEATS", "30"))
    rounds = int(os.environ.get("ROUNDS", "3"))
    gap = float(os.environ.get("GAP_MS", "0")) / 1e3
    wb = wandb.init(project="bench", dir=tmp)
    ry = runyard.init(project="bench", mode="offline")
    cases = [
        (
            "log({'img': Image(256x256x3 uint8)})",
            lambda: wb.log({"img": wandb.Image(img)}),
            lambda: ry.log({"img": Image(img)}),
        ),
        (
            "log({'h': Histogram(1M floats)})",
            lambda: wb.log({"h": wandb.Histogram(big)}),
            lambda: ry.log({"h": Histogram(big)}),
        ),
        (
            "log({'a': np.ndarray(1M)}) (auto-histogram)",
            lambda: wb.log({"a": big}),
            lambda: ry.log({"a": big}),
        ),
    ]
    times: dict[tuple[str, str], list[list[float]]] = {}
    for _ in range(rounds):
        for name, w, r in cases:
            times.setdefault((name, "wandb"), []).append(timed(w, n, gap))
            times.setdefault((name, "runyard"), []).append(timed(r, n, gap))

    def cell(name: str, side: str) -> tuple[float, str]:
        per_round = times[(name, side)]
        allx = sorted(x for xs in per_round for x in xs)
        med = statistics.median(allx) * 1e3
        rmeds = [statistics.median(xs) * 1e3 for xs in per_round]
        return med, f"{med:.2f} ({min(rmeds):.2f}-{max(rmeds):.2f})"

    rows = []
    for name, _w, _r in cases:
        wm, wtext = cell(name, "wandb")
        rm, rtext = cell(name, "runyard")
        rows.append([name, wtext, rtext, f"{rm / wm:.3f}"])
    t0 = time.perf_counter()
    ry.finish(quiet=True)
    drain = time.perf_counter() - t0
    wb.finish()
    shutil.rmtree(tmp, ignore_errors=True)  # both runs' files (~20 MB per run)
    fifo = os.sched_getscheduler(0) == os.SCHED_FIFO
    print_tables(
        [
            (
                "training-thread time per call, ms: median (spread of round medians)",
                ["case", "wandb 0.31 offline", "runyard", "runyard / wandb"],
                rows,
            )
        ],
        f"{rounds} rounds x {n} calls per case and side, "
        f"{f'{gap * 1e3:g} ms of other work (a sleep) between calls' if gap else 'back to back'}"
        f"; scheduling: "
        f"{'SCHED_FIFO' if fifo else 'normal (shared with the machine)'}; runyard's finish() "
        f"(encoding what was still spooled) took {drain:.2f} s",
    )


if __name__ == "__main__":
    main()
