"""Memory of ``run.save()`` of a large file through a runyard server, and of ``runyard sync``.

A real ``runyard server`` (SQLite store, one worker) on a free port of 127.0.0.1; a client
process that starts an online run, ``run.save()``s a file of ``--mib`` MiB (default 1024) and
finishes (which waits for the upload); then an offline run saving the same file, uploaded by
``runyard sync --store <server>``. Printed: the client's peak RSS (VmHWM) and its RSS before
the save, the server's RSS before and its peak after, and the transfer time. Streaming means
the growth stays a few MiB whatever the file's size.

    .venv/bin/python bench/save_rss.py [--mib 1024]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, print_tables

CLIENT = """
import os, sys, time
import runyard

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
run = runyard.init(project="rss", mode=sys.argv[2])
before = status("VmRSS")
t0 = time.perf_counter()
run.save(sys.argv[1])
run.finish()
print(before, status("VmHWM"), round(time.perf_counter() - t0, 2))
"""


def server_rss(pid: int, field: str) -> int:
    """``field`` (VmRSS, VmHWM) of the server process and its children, MiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1]) // 1024
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=1024)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-save-rss-"))
    big = tmp / "weights.bin"
    with open(big, "wb") as fh:  # real bytes (not a sparse file): 1 MiB of random, repeated
        block = os.urandom(1 << 20)
        for _ in range(args.mib):
            fh.write(block)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_")}
    server = subprocess.Popen(
        [sys.executable, "-m", "runyard", "server", "--store", f"sqlite:///{tmp}/s.db"]
        + ["--port", str(port), "--workers", "1", "--max-file-mb", str(args.mib * 2)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        rows = []
        script = tmp / "client.py"
        script.write_text(textwrap.dedent(CLIENT))
        for mode in ("online", "offline"):
            cenv = dict(env, RUNYARD_DIR=str(tmp / mode), RUNYARD_CONSOLE="off")
            cenv.update(RUNYARD_SILENT="true", RUNYARD_DISABLE_STATS="true")
            if mode == "online":
                cenv["RUNYARD_STORE"] = url
            s_before = server_rss(server.pid, "VmRSS")
            out = subprocess.run(
                [sys.executable, str(script), str(big), mode],
                env=cenv,
                capture_output=True,
                text=True,
                check=True,
                timeout=1800,
            )
            c_before, c_peak, seconds = out.stdout.split()
            what = "run.save() online"
            if mode == "offline":
                t0 = time.perf_counter()
                sync = subprocess.run(
                    [sys.executable, "-m", "runyard", "sync", "--dir", str(tmp / mode)]
                    + ["--store", url],
                    env=dict(env, RUNYARD_SILENT="true"),
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=1800,
                )
                assert "file(s) uploaded" in sync.stdout, sync.stdout
                seconds = f"{time.perf_counter() - t0:.2f} (sync)"
                what = "offline run.save() + runyard sync"
            s_peak = server_rss(server.pid, "VmHWM")
            rows.append(
                [
                    what,
                    c_before,
                    c_peak,
                    str(s_before),
                    str(s_peak),
                    str(s_peak - s_before),
                    seconds,
                ]
            )
        print_tables(
            [
                (
                    f"a {args.mib} MiB file saved through runyard server (MiB)",
                    [
                        "path",
                        "client RSS before",
                        "client peak",
                        "server RSS before",
                        "server peak",
                        "server growth",
                        "seconds",
                    ],
                    rows,
                )
            ],
            "client peak = VmHWM of the process that calls run.save() (the online client "
            "uploads in its own thread; the offline one only copies); server peak = VmHWM "
            "after the transfer",
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
