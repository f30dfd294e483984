"""The collector interface: one source of system metrics (the host via psutil, NVIDIA GPUs via
NVML). Narrow on purpose, like Optuna's samplers: a new source (AMD, Apple, TPU) is one class.

Contract
--------
* A collector is created, sampled and closed **on the sampler thread only** (never on the
  training thread): whatever it imports or initialises costs the training loop nothing but its
  share of the GIL.
* :meth:`Collector.sample` returns ``{name: number}`` under W&B's metric names *without* the
  ``system.`` prefix (``"cpu"``, ``"gpu.0.temp"``); the monitor adds it. A metric that cannot
  be read this time is left out; a source that is absent (no driver, no device) is not created
  at all (its ``open`` returns ``None``). ``sample`` may raise: the monitor counts the failure
  and drops the collector after a few in a row, so a broken source never breaks a run.
* Values are finite floats or ints: cumulative counters (network, disk I/O) count from the
  collector's creation, as W&B's do.
"""

from __future__ import annotations

import abc


class Collector(abc.ABC):
    """A source of system metrics. See the module docstring for the contract."""

    #: A short name for messages ("host", "nvidia").
    name: str = "collector"

    @abc.abstractmethod
    def sample(self) -> dict[str, float]:
        """The current values, ``{W&B name without "system.": number}``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the collector holds (NVML's handle)."""
