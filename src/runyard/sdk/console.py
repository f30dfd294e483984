"""Console capture: a tee over ``sys.stdout``/``sys.stderr`` that records whole lines.

It captures what Python code writes (``print``, logging to a stream handler, tqdm), not output
written by C extensions straight to file descriptor 1 or 2. Captured lines go to the active
run's journal. The tee passes everything through unchanged, and in a forked child (another PID)
it only passes through.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

LineSink = Callable[[list[tuple[str, float, str]]], None]
MAX_LINE = 16_384


class _Tee:
    def __init__(self, stream: TextIO, name: str, sink: LineSink) -> None:
        self._stream = stream
        self._name = name
        self._sink: LineSink | None = sink
        self._pid = os.getpid()
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        written = self._stream.write(text)
        sink = self._sink
        if sink is not None and text and os.getpid() == self._pid:
            with self._lock:
                data = self._partial + text
                lines = data.split("\n")
                self._partial = lines.pop()
                if len(self._partial) > MAX_LINE:
                    lines.append(self._partial)
                    self._partial = ""
            if lines:
                now = time.time()
                try:
                    sink([(self._name, now, line.rstrip("\r")[:MAX_LINE]) for line in lines])
                except Exception:
                    pass
        return written

    def flush_partial(self) -> None:
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest and self._sink is not None:
            self._sink([(self._name, time.time(), rest)])

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class ConsoleCapture:
    """Installs the tees for one run and removes them at the end."""

    def __init__(self, sink: LineSink) -> None:
        self._out = _Tee(sys.stdout, "stdout", sink)
        self._err = _Tee(sys.stderr, "stderr", sink)
        sys.stdout = self._out
        sys.stderr = self._err

    def stop(self) -> None:
        for tee, attr in ((self._out, "stdout"), (self._err, "stderr")):
            tee.flush_partial()
            tee._sink = None
            if getattr(sys, attr) is tee:
                setattr(sys, attr, tee._stream)
