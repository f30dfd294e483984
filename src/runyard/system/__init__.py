"""System metrics: a sampler thread per run recording the machine's and the process's
resources as a series of its own (docs/system.md).

:class:`SystemMonitor` runs the :class:`Collector` objects (the host through psutil, NVIDIA GPUs
through NVML); the run journals each sample as a ``stats`` record, which the store keeps apart
from the history (``Store.system_metrics``, ``ApiRun.history(stream="system")``).
"""

from runyard.system.base import Collector
from runyard.system.monitor import SystemMonitor, default_collectors

__all__ = ["Collector", "SystemMonitor", "default_collectors"]
