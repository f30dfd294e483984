"""The sweeper's two errors: one that stops the sweep, one that fails a single trial."""

from __future__ import annotations

from hydra.errors import CompactHydraException


class RunyardSweeperError(CompactHydraException):
    """The sweep cannot start or go on; the message says why and what to change (Hydra
    prints it without a traceback)."""


class TrialError(Exception):
    """One trial cannot be launched (its overrides do not compose)."""
