"""Timestamps as dates for people, whatever a store holds.

Writers refuse timestamps outside 0..:data:`runyard.limits.MAX_TIMESTAMP`, but a store may hold
older data (or a hand-edited row): a reader must never die formatting it (``fromtimestamp``
raises ``OverflowError``, ``OSError`` or ``ValueError`` past the platform's range).
"""

from __future__ import annotations

import datetime as dt
import math

from runyard.limits import MAX_TIMESTAMP


def as_datetime(ts: float, tz: dt.tzinfo | None = None) -> dt.datetime | None:
    """``ts`` (seconds since the epoch) as a datetime, or None when no date can show it."""
    try:
        value = float(ts)
    except (TypeError, ValueError, OverflowError):
        return None
    if not math.isfinite(value) or not -MAX_TIMESTAMP <= value <= MAX_TIMESTAMP:
        return None
    try:
        return dt.datetime.fromtimestamp(value, tz)
    except (OverflowError, OSError, ValueError):
        return None


def format_time(
    ts: float | None, fmt: str = "%Y-%m-%d %H:%M:%S", tz: dt.tzinfo | None = None
) -> str:
    """``ts`` formatted (local time unless ``tz``); "" for None/0, the raw number if no date can
    show it."""
    if not ts:
        return ""
    when = as_datetime(ts, tz)
    return when.strftime(fmt) if when is not None else f"{ts!r} (not a date)"
