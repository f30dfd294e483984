"""Host metrics with psutil: the process's CPU, memory and threads, the machine's per-core CPU,
memory, disk use and I/O, network. Names are W&B's (wandb-core's system monitor; per-core CPU
as W&B's earlier Python monitor named it, which its charts still recognise):

=================================  ===========================================================
``cpu``                            the process's CPU %, normalised by the physical cores (W&B)
``cpu.{i}.cpu_percent``            the machine's CPU % of logical core ``i``
``proc.cpu.threads``               the process's threads
``proc.memory.rssMB``              the process's resident memory (MiB)
``proc.memory.percent``            the process's resident memory, % of the machine's memory
``proc.memory.availableMB``        the machine's available memory (MiB)
``memory_percent``                 the machine's used memory %
``disk.{path}.usagePercent``       used % of the file system at ``path`` (``/``)
``disk.{path}.usageGB``            used GiB of that file system
``disk.in`` / ``disk.out``         MiB read from / written to the disks since the run started
``network.sent`` / ``network.recv``  bytes sent / received since the run started
=================================  ===========================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from runyard.system.base import Collector

MIB = 1024.0 * 1024.0
GIB = MIB * 1024.0


class HostCollector(Collector):
    """psutil's view of this process and machine. Raises ``ImportError`` without psutil."""

    name = "host"

    def __init__(self, pid: int, disk_paths: Sequence[str] = ("/",)) -> None:
        import psutil

        self._psutil: Any = psutil
        self._proc = psutil.Process(pid)
        self._disk_paths = tuple(disk_paths)
        # cpu_percent(None) compares with the previous call: prime both counters now.
        self._proc.cpu_percent(None)
        psutil.cpu_percent(None, percpu=True)
        self._cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
        self._net0 = self._net()
        self._disk0 = self._disk_io()

    def _net(self) -> tuple[int, int] | None:
        try:
            counters = self._psutil.net_io_counters()
        except Exception:
            return None
        return None if counters is None else (counters.bytes_sent, counters.bytes_recv)

    def _disk_io(self) -> tuple[int, int] | None:
        try:
            counters = self._psutil.disk_io_counters()
        except Exception:
            return None
        return None if counters is None else (counters.read_bytes, counters.write_bytes)

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for part in (self._process, self._cpus, self._memory, self._disks, self._network):
            _gather(out, part)
        return {k: v for k, v in out.items() if math.isfinite(v)}

    def _process(self, out: dict[str, float]) -> None:
        proc = self._proc
        with proc.oneshot():
            out["cpu"] = proc.cpu_percent(None) / self._cores
            out["proc.memory.rssMB"] = proc.memory_info().rss / MIB
            out["proc.cpu.threads"] = float(proc.num_threads())

    def _cpus(self, out: dict[str, float]) -> None:
        for i, percent in enumerate(self._psutil.cpu_percent(None, percpu=True)):
            out[f"cpu.{i}.cpu_percent"] = float(percent)

    def _memory(self, out: dict[str, float]) -> None:
        memory = self._psutil.virtual_memory()
        out["memory_percent"] = float(memory.percent)
        out["proc.memory.availableMB"] = memory.available / MIB
        rss = out.get("proc.memory.rssMB")
        if rss is not None and memory.total:
            out["proc.memory.percent"] = rss * MIB / memory.total * 100.0

    def _disks(self, out: dict[str, float]) -> None:
        for path in self._disk_paths:
            try:
                usage = self._psutil.disk_usage(path)
            except OSError:
                continue
            out[f"disk.{path}.usagePercent"] = float(usage.percent)
            out[f"disk.{path}.usageGB"] = usage.used / GIB
        now = self._disk_io()
        if now is not None and self._disk0 is not None:
            out["disk.in"] = max(now[0] - self._disk0[0], 0) / MIB
            out["disk.out"] = max(now[1] - self._disk0[1], 0) / MIB

    def _network(self, out: dict[str, float]) -> None:
        now = self._net()
        if now is not None and self._net0 is not None:
            out["network.sent"] = float(max(now[0] - self._net0[0], 0))
            out["network.recv"] = float(max(now[1] - self._net0[1], 0))


def _gather(out: dict[str, float], part: Callable[[dict[str, float]], None]) -> None:
    """Run one part of a sample; a part that fails (a vanished device, a permission) is left
    out of this sample rather than losing the others."""
    try:
        part(out)
    except Exception:
        pass
