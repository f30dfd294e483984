"""Uploads of ``run.save()`` files to a server store, off the training thread.

``run.save(path)`` copies the file into the run's local files folder at once (that copy is what
gets uploaded, so the program may change or delete its file afterwards) and queues the upload
here. One daemon thread per run uploads in order and retries while the server is unavailable;
``finish()`` waits for the queue until its deadline and reports what did not make it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


class FileUploads:
    """Queue of ``(name, local copy)`` uploads to ``store.put_file`` for one run."""

    def __init__(
        self,
        open_store: Callable[[], Any],
        entity: str,
        project: str,
        run_id: str,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        self._open_store = open_store
        self._ready = ready  # the run exists in the store (its first journal batch is in)
        self._where = (entity, project, run_id)
        self._queue: list[tuple[str, Path]] = []
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = float("inf")
        self._busy = False
        self.uploaded: list[str] = []
        self.failed: list[str] = []
        self.last_error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, name: str, path: Path) -> None:
        with self._cond:
            self._queue = [q for q in self._queue if q[0] != name]  # the newest copy wins
            self._queue.append((name, path))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="runyard-uploads", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def _loop(self) -> None:
        from runyard.store.base import StoreUnavailableError

        backoff = 0.5
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                name, path = self._queue[0]
                self._busy = True
            if not self._ready():
                with self._cond:
                    self._busy = False
                    if time.monotonic() >= self._deadline:
                        return
                    self._cond.wait(0.1)
                continue
            try:
                self._open_store().put_file(*self._where, name, path)  # streamed from the file
            except Exception as exc:
                self.last_error = exc
                with self._cond:
                    self._busy = False
                    if not isinstance(exc, StoreUnavailableError):
                        # Refused (a bad name, no permission) or the local copy is gone:
                        # retrying cannot help.
                        self._queue.pop(0)
                        self.failed.append(name)
                        continue
                    left = self._deadline - time.monotonic()
                    if left <= 0:
                        return
                    self._cond.wait(min(backoff, left))
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            with self._cond:
                self._busy = False
                if self._queue and self._queue[0] == (name, path):
                    self._queue.pop(0)
                self.uploaded.append(name)

    def close(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` seconds for the queue; the names not uploaded (if any)."""
        with self._cond:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        with self._cond:
            return self.failed + [name for name, _ in self._queue]
