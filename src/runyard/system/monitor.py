"""``SystemMonitor``: the thread that samples system metrics for a run.

Every ``interval`` seconds (15 by default, as W&B) it asks each collector for its values and
hands one row, ``{"_timestamp", "_runtime", "system.<name>": value, ...}``, to ``emit`` (the run
appends it to its journal as a ``stats`` record: a series of its own, never a history step).

What it costs the training loop: nothing on its thread. The collectors are imported and
created on the monitor's thread (psutil and NVML load there, not in ``init()``), and one sample
is a few hundred microseconds of psutil calls every 15 s (bench/system_overhead.py measures
it). The thread sleeps on an ``Event``, so ``stop()`` ends it at once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from runyard._gil import quick_switching
from runyard.system.base import Collector

#: Seconds (at most half the interval) before the collectors are created.
COLLECTOR_START_DELAY = 5.0
#: A collector that fails this many samples in a row is dropped for the rest of the run.
MAX_FAILURES = 3

Emit = Callable[[dict[str, Any]], None]


def default_collectors(pid: int) -> list[Collector]:
    """The host (psutil) and, where NVML finds GPUs, the NVIDIA collector."""
    out: list[Collector] = []
    try:
        from runyard.system.host import HostCollector

        out.append(HostCollector(pid))
    except Exception:  # psutil missing or refusing: no host metrics, the run goes on
        pass
    from runyard.system.nvidia import NvidiaCollector

    gpu = NvidiaCollector.open(pid)
    if gpu is not None:
        out.append(gpu)
    return out


class SystemMonitor:
    """Samples ``collectors()`` every ``interval`` seconds on a daemon thread into ``emit``.

    ``start_time``/``runtime_offset`` give ``_runtime`` the run's clock (a resumed run goes
    on from its previous runtime). ``collectors`` is called on the monitor's thread.
    """

    def __init__(
        self,
        emit: Emit,
        *,
        interval: float,
        start_time: float,
        runtime_offset: float = 0.0,
        pid: int | None = None,
        collectors: Callable[[int], Sequence[Collector]] = default_collectors,
    ) -> None:
        self._emit = emit
        self.interval = interval
        self._start_time = start_time
        self._runtime_offset = runtime_offset
        self._pid = os.getpid() if pid is None else pid
        self._factory = collectors
        self._stop = threading.Event()
        self._cond = threading.Condition()
        #: samples emitted so far (tests and benchmarks wait on it with wait_for_samples)
        self.samples = 0
        #: names of the collectors in use, once the thread has created them
        self.collector_names: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="runyard-system", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # Not at once: init() is usually followed by the training loop's first, busiest
        # seconds. The collectors take their baseline here; the first sample follows after
        # the rest of the interval.
        if self._stop.wait(min(self.interval / 2, COLLECTOR_START_DELAY)):
            with self._cond:
                self._cond.notify_all()
            return
        try:
            with quick_switching():  # psutil and NVML load here, not on the training thread
                collectors = list(self._factory(self._pid))
        except Exception:
            collectors = []
        self.collector_names = [c.name for c in collectors]
        failures = dict.fromkeys(range(len(collectors)), 0)
        first_wait = self.interval - min(self.interval / 2, COLLECTOR_START_DELAY)
        try:
            while collectors and not self._stop.wait(first_wait):
                first_wait = self.interval
                self._sample(collectors, failures)
        finally:
            for collector in collectors:
                try:
                    collector.close()
                except Exception:
                    pass
            with self._cond:
                self._cond.notify_all()

    def _sample(self, collectors: list[Collector], failures: dict[int, int]) -> None:
        now = time.time()
        row: dict[str, Any] = {
            "_timestamp": now,
            "_runtime": now - self._start_time + self._runtime_offset,
        }
        for i, collector in enumerate(collectors):
            if failures[i] >= MAX_FAILURES:
                continue
            try:
                values = collector.sample()
            except Exception:
                failures[i] += 1
                continue
            failures[i] = 0
            for name, value in values.items():
                row["system." + name] = value
        if len(row) > 2 and not self._stop.is_set():
            self._emit(row)
        with self._cond:
            self.samples += 1
            self._cond.notify_all()

    def wait_for_samples(self, count: int, timeout: float) -> bool:
        """Block until ``count`` samples were taken (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.samples < count:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return self.samples >= count
                self._cond.wait(left)
        return True

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 2.0) -> None:
        """End the thread (a sample in progress finishes; nothing is emitted after it)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
