"""``run.alert()``: W&B's ``AlertLevel`` and the validation of an alert before it is journaled.

An alert is a journal record (``alert``) like a history row: ``alert()`` returns once it is in
the journal, and the store keeps it as a run event. Sending it to a webhook is the server's job
(or, for the embedded store, the SDK's when ``RUNYARD_ALERT_WEBHOOK`` is set): never the
training thread's (docs/system.md).
"""

from __future__ import annotations

import enum
import math
from datetime import timedelta
from typing import Any

from runyard.limits import ALERT_LEVELS, MAX_ALERT_TEXT_LENGTH, MAX_ALERT_TITLE_LENGTH

#: W&B's default ``wait_duration``: one minute.
DEFAULT_WAIT = 60.0


class AlertLevel(enum.Enum):
    """W&B's alert levels (``wandb.AlertLevel``)."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def alert_payload(
    title: Any, text: Any, level: Any, wait_duration: Any, now: float, runtime: float
) -> dict[str, Any]:
    """The journal payload of an alert, or ``TypeError``/``ValueError`` naming the problem."""
    if not isinstance(title, str) or not title:
        raise TypeError(f"runyard.alert: title must be a non-empty string, got {title!r}")
    if not isinstance(text, str):
        raise TypeError(f"runyard.alert: text must be a string, got {type(text).__name__}")
    if len(title) > MAX_ALERT_TITLE_LENGTH:
        raise ValueError(
            f"runyard.alert: the title is {len(title)} characters long; at most "
            f"{MAX_ALERT_TITLE_LENGTH} (W&B advises fewer than 64): put the details in text"
        )
    if len(text) > MAX_ALERT_TEXT_LENGTH:
        raise ValueError(
            f"runyard.alert: the text is {len(text)} characters long; at most "
            f"{MAX_ALERT_TEXT_LENGTH}: save long reports as a file (run.save)"
        )
    if "\x00" in title or "\x00" in text:
        raise ValueError("runyard.alert: title and text must not contain NUL characters")
    level_name = level.value if isinstance(level, AlertLevel) else (level or "INFO")
    if level_name not in ALERT_LEVELS:
        raise ValueError(
            f"runyard.alert: level must be one of 'INFO', 'WARN', or 'ERROR', got {level!r}"
        )
    if wait_duration is None or wait_duration == 0:
        wait = DEFAULT_WAIT  # W&B: `wait_duration or timedelta(minutes=1)`
    elif isinstance(wait_duration, timedelta):
        wait = wait_duration.total_seconds()
    elif isinstance(wait_duration, int | float) and not isinstance(wait_duration, bool):
        wait = float(wait_duration)
    else:
        raise TypeError(
            f"runyard.alert: wait_duration must be an int, float, or datetime.timedelta, "
            f"got {type(wait_duration).__name__}"
        )
    if not math.isfinite(wait) or wait < 0:
        raise ValueError(
            f"runyard.alert: wait_duration must be a finite number of seconds >= 0, got {wait!r}"
        )
    return {
        "title": title,
        "text": text,
        "level": level_name,
        "wait_duration": wait,
        "_timestamp": now,
        "_runtime": runtime,
    }
