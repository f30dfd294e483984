"""``AlertDispatcher``: drains the store's alert outbox into a :class:`Notifier` on a thread.

The store decided, when it applied each alert, whether it is notified (``pending``) or
suppressed by its title's ``wait_duration``; the dispatcher only delivers. It claims pending
alerts (``SQLStore.claim_alerts``: atomic, so several server workers, replicas or an SDK never
send one twice), sends each, and records the outcome; a failed send is retried with backoff up
to ``max_attempts`` times. It wakes on :meth:`wake` (an applied batch held an alert) and polls
every ``poll_interval`` seconds for alerts that another process stored.

Nothing here runs on a request's or the training loop's thread: :meth:`wake` sets an event.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from runyard.alerts.webhook import DeliveryError, Notifier
from runyard.store.sql_system import OutboxAlert


class AlertOutbox(Protocol):
    """What the dispatcher needs of a store (``SQLStore`` has it)."""

    def claim_alerts(
        self, now: float, *, limit: int = ..., max_age: float = ..., claim_timeout: float = ...
    ) -> list[OutboxAlert]: ...

    def finish_alert(
        self,
        alert_id: int,
        now: float,
        *,
        sent: bool,
        error: str | None = ...,
        retry_at: float | None = ...,
    ) -> None: ...


class AlertDispatcher:
    """Delivers pending alerts of ``store`` (a store, or a callable opening it on the thread)
    through ``notifier``."""

    def __init__(
        self,
        store: AlertOutbox | Callable[[], Any],
        notifier: Notifier,
        *,
        poll_interval: float = 2.0,
        max_attempts: int = 5,
        max_age: float = 3600.0,
        retry_base: float = 2.0,
    ) -> None:
        self._store_or_factory = store
        self._store: AlertOutbox | None = None
        self._notifier = notifier
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.max_age = max_age
        #: seconds before the first retry; doubled for each further one (at most 5 minutes)
        self.retry_base = retry_base
        self._wake = threading.Event()
        self._stopping = False
        self._idle = threading.Event()
        self._deadline = float("inf")
        self.sent = 0
        self.last_error: str | None = None
        self._warned = False
        self._thread = threading.Thread(target=self._loop, name="runyard-alerts", daemon=True)
        self._thread.start()

    def wake(self, soon: bool = False) -> None:
        """Look at the outbox now (an alert was just stored or is about to be)."""
        self._idle.clear()
        self._wake.set()

    def _outbox(self) -> AlertOutbox:
        if self._store is None:
            candidate: Any = self._store_or_factory
            store: Any = candidate if hasattr(candidate, "claim_alerts") else candidate()
            if not hasattr(store, "claim_alerts"):
                raise TypeError(f"{type(store).__name__} keeps no alert outbox")
            self._store = store
        assert self._store is not None
        return self._store

    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                stopping = self._stopping
                try:
                    busy = self._drain(stopping)
                except Exception as exc:  # the store is down: try again at the next poll
                    busy = False
                    self._report(f"cannot read the alert outbox: {exc}")
                if not busy:
                    self._idle.set()
                if stopping and (not busy or time.monotonic() >= self._deadline):
                    return
                if busy:
                    self._wake.set()  # more to send, or retries due soon while stopping
        finally:
            self._notifier.close()

    def _drain(self, stopping: bool) -> bool:
        """Send what is due; True while there may be more (so the loop comes straight back)."""
        store = self._outbox()
        items = store.claim_alerts(time.time(), max_age=self.max_age)
        for item in items:
            now = time.time()
            try:
                self._notifier.send(item)
            except DeliveryError as exc:
                attempts = item.alert.attempts + 1
                retry = exc.retry and attempts < self.max_attempts and not stopping
                store.finish_alert(
                    item.alert.id,
                    time.time(),
                    sent=False,
                    error=str(exc),
                    retry_at=now + min(self.retry_base * 2.0 ** (attempts - 1), 300.0)
                    if retry
                    else None,
                )
                self._report(f"alert {item.alert.title!r} not delivered: {exc}")
                continue
            store.finish_alert(item.alert.id, time.time(), sent=True)
            self.sent += 1
        return bool(items)

    def _report(self, message: str) -> None:
        self.last_error = message
        if not self._warned:
            self._warned = True
            print(f"runyard: {message}", file=sys.__stderr__ or sys.stderr)

    def wait_idle(self, timeout: float) -> bool:
        """Until the outbox had nothing due (True) or ``timeout`` passed (False)."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is due (for at most ``timeout`` seconds), then end the thread."""
        self._deadline = time.monotonic() + timeout
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout + 1.0)
