"""NVIDIA GPU metrics through NVML (the ``pynvml`` module of nvidia-ml-py, NVIDIA's own
bindings: ctypes over the driver's ``libnvidia-ml``, which only a machine with the driver has).

Per GPU ``i``, under W&B's names (wandb's ``gpu_nvidia`` collector):

===============================  ==================================================
``gpu.{i}.gpu``                  utilisation % (kernels running)
``gpu.{i}.memory``               memory-controller utilisation % ("memory access")
``gpu.{i}.memoryAllocated``      memory used, % of the GPU's memory
``gpu.{i}.memoryAllocatedBytes`` memory used, bytes
``gpu.{i}.temp``                 temperature, °C
``gpu.{i}.powerWatts``           power draw, W
``gpu.{i}.enforcedPowerLimitWatts``  power limit, W
``gpu.{i}.powerPercent``         power draw, % of the limit
===============================  ==================================================

and the same under ``gpu.process.{i}.*`` for the GPUs that this process (or a child of it)
runs on, as W&B does. No driver, no library, no GPU: :meth:`NvidiaCollector.open` returns
``None`` and the run records no GPU metrics; nothing is printed. A query the GPU does not
support (power on some boards) is dropped for that GPU after its first failure, as in W&B.
"""

from __future__ import annotations

from typing import Any

from runyard.system.base import Collector

_GROUPS = ("utilization", "memory", "temperature", "power", "power_limit")


class NvidiaCollector(Collector):
    """NVML's view of the machine's NVIDIA GPUs. Create with :meth:`open`."""

    name = "nvidia"

    def __init__(self, nvml: Any, handles: list[Any], pid: int) -> None:
        self._nvml = nvml
        self._handles = handles
        self._pid = pid
        self._available = [dict.fromkeys(_GROUPS, True) for _ in handles]
        self._closed = False

    @classmethod
    def open(cls, pid: int, nvml: Any = None) -> NvidiaCollector | None:
        """A collector over every GPU NVML sees, or ``None`` where there is none (no
        nvidia-ml-py, no driver, no device). ``nvml`` defaults to the ``pynvml`` module."""
        if nvml is None:
            try:
                import pynvml
            except ImportError:
                return None
            nvml = pynvml
        try:
            nvml.nvmlInit()
        except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: no GPU metrics
            return None
        try:
            count = int(nvml.nvmlDeviceGetCount())
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except Exception:
            handles = []
        if not handles:
            _shutdown(nvml)
            return None
        return cls(nvml, handles, pid)

    def _our_pids(self) -> set[int]:
        pids = {self._pid}
        try:
            import psutil

            pids.update(p.pid for p in psutil.Process(self._pid).children(recursive=True))
        except Exception:
            pass
        return pids

    def _in_use(self, handle: Any, pids: set[int]) -> bool:
        nvml = self._nvml
        for query in (
            "nvmlDeviceGetComputeRunningProcesses",
            "nvmlDeviceGetGraphicsRunningProcesses",
        ):
            try:
                if any(int(p.pid) in pids for p in getattr(nvml, query)(handle)):
                    return True
            except Exception:
                continue
        return False

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        nvml = self._nvml
        pids = self._our_pids()
        for i, handle in enumerate(self._handles):
            ok = self._available[i]
            device: dict[str, float] = {}
            if ok["utilization"]:
                try:
                    rates = nvml.nvmlDeviceGetUtilizationRates(handle)
                    device["gpu"] = float(rates.gpu)
                    device["memory"] = float(rates.memory)
                except Exception:
                    ok["utilization"] = False
            if ok["memory"]:
                try:
                    info = nvml.nvmlDeviceGetMemoryInfo(handle)
                    if info.total:
                        device["memoryAllocated"] = info.used / info.total * 100.0
                    device["memoryAllocatedBytes"] = float(info.used)
                except Exception:
                    ok["memory"] = False
            if ok["temperature"]:
                try:
                    device["temp"] = float(
                        nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
                    )
                except Exception:
                    ok["temperature"] = False
            if ok["power"]:
                try:
                    device["powerWatts"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
                except Exception:
                    ok["power"] = False
            if ok["power_limit"] and "powerWatts" in device:
                try:
                    limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
                    device["enforcedPowerLimitWatts"] = limit
                    if limit > 0:
                        device["powerPercent"] = device["powerWatts"] / limit * 100.0
                except Exception:
                    ok["power_limit"] = False
            for name, value in device.items():
                out[f"gpu.{i}.{name}"] = value
            if device and self._in_use(handle, pids):
                for name, value in device.items():
                    out[f"gpu.process.{i}.{name}"] = value
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _shutdown(self._nvml)


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass
