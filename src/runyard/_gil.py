"""Keeping background threads from stalling the training thread on the GIL."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

#: The switch interval while a background thread does a long stretch of Python (imports).
QUICK_SWITCH_INTERVAL = 0.0002


@contextlib.contextmanager
def quick_switching() -> Iterator[None]:
    """Hand the GIL over every 0.2 ms instead of 5 ms while a background thread imports.

    Opening a store imports SQLAlchemy and may create the schema, the system monitor imports
    psutil and NVML: hundreds of ms of Python that, at the interpreter's default switch
    interval, make a log() on the training thread wait up to 5 ms at a time. The interval is
    process-wide, so it is changed only for that stretch, and put back only if nobody else
    changed it meanwhile.
    """
    before = sys.getswitchinterval()
    quick = min(before, QUICK_SWITCH_INTERVAL)
    sys.setswitchinterval(quick)
    try:
        yield
    finally:
        if sys.getswitchinterval() == quick:
            sys.setswitchinterval(before)
