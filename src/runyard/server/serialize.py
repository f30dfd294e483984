"""Records → JSON-ready dicts (the encoder puts markers for non-finite floats)."""

from __future__ import annotations

import dataclasses
from typing import Any

from runyard.store.base import RunRecord


def record(obj: Any) -> dict[str, Any]:
    """A store dataclass (RunRecord, SweepRecord, TrialRecord, ...) as a dict."""
    out: dict[str, Any] = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return out


def run_doc(run: RunRecord) -> dict[str, Any]:
    return record(run)


def nested(obj: Any) -> Any:
    """A dataclass with dataclass fields (EntityRecord) as nested dicts."""
    return dataclasses.asdict(obj)
