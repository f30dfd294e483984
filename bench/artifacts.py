"""Artifacts: runyard server vs MLflow's tracking server, side by side, same disk, one run.

Run from the bench venv (it has MLflow, blake3 and xxhash):

    .venv-bench/bin/python bench/artifacts.py [--mb 1000] [--files 1000] [--repeats 3]

Per repeat, both servers start fresh on free ports with their stores and artifact folders in one
temporary folder (so the same disk), and one process logs a directory of ``--files`` random files
(``--mb`` in all):

* runyard: ``run.log_artifact`` (cold hash cache: hashing included) to ``runyard server``
  (local blobs); then the same directory again (unchanged: must take < 1 s and make no new
  version), then with one file changed (must upload one file); then a download into an empty
  folder with an empty cache (verified).
* MLflow: ``mlflow.log_artifacts`` into a run of ``mlflow server --serve-artifacts`` (proxied
  artifact storage, the default of MLflow 3), the same directory again (MLflow uploads it again),
  and ``mlflow.artifacts.download_artifacts``.

Then hashing: single-core throughput of sha256 (OpenSSL, SHA-NI where the CPU has it), blake3,
xxh3-128 and MD5 on 256 MiB in memory, against runyard's hashing of the directory's files
(``runyard.artifacts.hashing.hash_files``, thread pool, files in the page cache).
Tables: median and (min-max) over the repeats, and ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, print_tables


def make_tree(root: Path, total_mb: int, files: int) -> None:
    size = total_mb * 2**20 // files
    root.mkdir(parents=True)
    for i in range(files):
        sub = root / f"shard{i % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"part-{i:05}.bin").write_bytes(os.urandom(size))


@contextmanager
def process(args: list[str], url: str, env: dict[str, str] | None = None) -> Iterator[None]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(
                    f"{args[0]} exited:\n{log.read().decode(errors='replace')[-3000:]}"
                )
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args} did not start")
            time.sleep(0.2)
        yield
    finally:
        with_signal(proc, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            with_signal(proc, signal.SIGKILL)
            proc.wait(20)
        log.close()


def with_signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def runyard_round(work: Path, data: Path) -> dict[str, Any]:
    import runyard
    from runyard.artifacts import Artifact

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    os.environ["RUNYARD_CACHE_DIR"] = str(work / "ry-cache")
    args = [
        sys.executable,
        "-m",
        "runyard",
        "server",
        "--store",
        f"sqlite:///{work / 'ry' / 'store.db'}",
        "--port",
        str(port),
        "--artifacts",
        str(work / "ry" / "blobs"),
    ]
    out: dict[str, Any] = {}
    with process(args, f"{url}/api/v1/health"):
        settings = runyard.Settings(store=url, silent=True, console="off", disable_git=True)
        run = runyard.init(project="bench", settings=settings)

        def log() -> Any:
            art = Artifact("data", "dataset")
            art.add_dir(data)
            return run.log_artifact(art)

        out["first"], first = timed(log)
        out["relog"], again = timed(log)
        out["relog_new_version"] = not again._record.reused
        victim = next(iter(sorted(data.rglob("*.bin"))))
        victim.write_bytes(os.urandom(victim.stat().st_size))
        out["one_changed"], third = timed(log)
        out["one_changed_uploaded"] = third.log_stats.uploaded
        out["versions"] = [first.name, again.name, third.name]
        shutil.rmtree(work / "ry-cache" / "artifacts", ignore_errors=True)
        out["download"], _ = timed(lambda: third.download(work / "ry-download"))
        run.finish()
    return out


def mlflow_round(work: Path, data: Path) -> dict[str, Any]:
    import mlflow

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{work / 'ml' / 'mlflow.db'}",
        "--artifacts-destination",
        str(work / "ml" / "artifacts"),
        "--serve-artifacts",
        "--workers",
        "1",
    ]
    (work / "ml").mkdir()
    out: dict[str, Any] = {}
    with process(args, f"{url}/health"):
        mlflow.set_tracking_uri(url)
        mlflow.set_experiment("bench")
        with mlflow.start_run() as run:
            out["first"], _ = timed(lambda: mlflow.log_artifacts(str(data), artifact_path="data"))
            out["relog"], _ = timed(lambda: mlflow.log_artifacts(str(data), artifact_path="data"))
            run_id = run.info.run_id
        out["download"], _ = timed(
            lambda: mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path="data", dst_path=str(work / "ml-download")
            )
        )
    return out


def hash_rates(data: Path) -> list[list[str]]:
    import blake3
    import xxhash

    from runyard.artifacts.hashing import hash_files

    buf = os.urandom(256 * 2**20)

    def rate(fn: Callable[[], Any], nbytes: int, n: int = 3) -> float:
        best = min(timed(fn)[0] for _ in range(n))
        return nbytes / best / 1e9

    rows = [
        [
            "sha256 (hashlib/OpenSSL), 1 core, in memory",
            f"{rate(lambda: hashlib.sha256(buf).digest(), len(buf)):.2f}",
        ],
        [
            "blake3 (1 thread), in memory",
            f"{rate(lambda: blake3.blake3(buf).digest(), len(buf)):.2f}",
        ],
        [
            "xxh3-128 (not cryptographic), in memory",
            f"{rate(lambda: xxhash.xxh3_128(buf).digest(), len(buf)):.2f}",
        ],
        ["md5, 1 core, in memory", f"{rate(lambda: hashlib.md5(buf).digest(), len(buf)):.2f}"],
    ]
    paths = [str(p) for p in sorted(data.rglob("*.bin"))]
    total = sum(os.path.getsize(p) for p in paths)
    for p in paths:  # in the page cache
        with open(p, "rb") as fh:
            while fh.read(1 << 24):
                pass
    ry = rate(lambda: hash_files(paths, None), total)
    rows.append(
        [f"runyard hash_files: sha256 of {len(paths)} files (thread pool, page cache)", f"{ry:.2f}"]
    )
    sha = float(rows[0][1])
    rows.append(["runyard hashing / sha256 single core", f"{ry / sha:.2f}"])
    return rows


def fmt(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=int, default=1000)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hash-only", action="store_true", help="Only the hashing table.")
    opts = parser.parse_args()
    if opts.hash_only:
        folder = Path(tempfile.mkdtemp(prefix="bench-artifacts-hash-"))
        try:
            make_tree(folder / "data", opts.mb, opts.files)
            rows = hash_rates(folder / "data")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print_tables(
            [("hashing throughput, GB/s (best of 3)", ["", "GB/s"], rows)],
            header=f"load average {os.getloadavg()[0]:.1f}",
        )
        return
    base = Path(tempfile.mkdtemp(prefix="bench-artifacts-"))
    ry_runs, ml_runs = [], []
    try:
        for i in range(opts.repeats):
            for name, fn, sink in (
                ("runyard", runyard_round, ry_runs),
                ("mlflow", mlflow_round, ml_runs),
            ):
                work = base / f"{name}-{i}"
                work.mkdir()
                data = work / "data"
                make_tree(data, opts.mb, opts.files)
                sink.append(fn(work, data))
                print(f"repeat {i + 1}/{opts.repeats} {name}: {sink[-1]}", flush=True)
                if name == "runyard":
                    hashes = hash_rates(data) if i == opts.repeats - 1 else None
                shutil.rmtree(work)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def col(runs: list[dict[str, Any]], key: str) -> list[float]:
        return [r[key] for r in runs]

    rows = []
    for label, key in (
        ("log the directory (first time)", "first"),
        ("log it again, unchanged", "relog"),
        ("download it", "download"),
    ):
        ry, ml = col(ry_runs, key), col(ml_runs, key)
        rows.append(
            [label, fmt(ml), fmt(ry), f"{statistics.median(ml) / statistics.median(ry):.1f}x"]
        )
    rows.append(["log with one file changed", "-", fmt(col(ry_runs, "one_changed")), "-"])
    checks = [
        ["re-log unchanged < 1 s (median)", str(statistics.median(col(ry_runs, "relog")) < 1.0)],
        ["re-log unchanged made a new version", str(any(r["relog_new_version"] for r in ry_runs))],
        [
            "files uploaded with one file changed",
            ", ".join(str(r["one_changed_uploaded"]) for r in ry_runs),
        ],
        ["versions logged (last repeat)", ", ".join(ry_runs[-1]["versions"])],
    ]
    import mlflow

    import runyard

    print_tables(
        [
            (
                f"seconds, median (min-max) of {opts.repeats}: {opts.files} files, {opts.mb} MB",
                [
                    "",
                    f"MLflow {mlflow.__version__} server",
                    f"runyard {runyard.__version__} server",
                    "MLflow / runyard",
                ],
                rows,
            ),
            ("runyard checks", ["", "value"], checks),
            ("hashing throughput, GB/s (best of 3)", ["", "GB/s"], hashes or []),
        ],
        header=f"bench/artifacts.py on {os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}",
    )


if __name__ == "__main__":
    main()
