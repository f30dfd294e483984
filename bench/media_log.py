"""Time on the training thread of logging media: runyard vs wandb 0.31 offline, one process.

Run from the bench venv (it has both): .venv-bench/bin/python bench/media_log.py
Each case: the constructor + log() call, median (and p90) over repeats; ratio runyard/wandb.
"""

from __future__ import annotations

import os
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


def timed(fn: Callable[[], Any], n: int) -> tuple[float, float]:
    fn()
    xs = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - start)
    xs.sort()
    return statistics.median(xs) * 1e3, xs[int(len(xs) * 0.9)] * 1e3


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="bench-media-")
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", RUNYARD_DIR=tmp)
    os.environ["RUNYARD_CONSOLE"] = "off"
    import wandb

    import runyard
    from runyard.media import Histogram, Image

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    big = rng.normal(size=1_000_000)
    n = int(os.environ.get("REPEATS", "30"))
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
    rows = []
    for name, w, r in cases:
        wm, wp = timed(w, n)
        rm, rp = timed(r, n)
        rows.append([name, f"{wm:.2f} ({wp:.2f})", f"{rm:.2f} ({rp:.2f})", f"{rm / wm:.3f}"])
    t0 = time.perf_counter()
    ry.finish()
    drain = time.perf_counter() - t0
    wb.finish()
    print_tables(
        [
            (
                "training-thread time per call, ms: median (p90)",
                ["case", "wandb 0.31 offline", "runyard", "runyard / wandb"],
                rows,
            )
        ],
        f"{n} repeats each; runyard's finish() (encoding what was spooled) took {drain:.2f} s",
    )


if __name__ == "__main__":
    main()
