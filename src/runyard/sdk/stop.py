"""Cooperative stopping of runs: ``run.should_stop``.

A run is stopped from outside by ``runyard runs stop ID``, the dashboard's Stop button or
``POST /api/v1/runs/.../state`` (the store's ``mark_run_state(..., "stopped")``), or by its
sweep. Every online run polls for both (below); a run outside a sweep only reads its own
state.

A sweep's controller decides that a run should stop (early termination, a canceled sweep).
``runyard agent`` acts on that by sending SIGTERM to the run's process, but the in-process Hydra
sweeper cannot stop a running job (Hydra's launcher API has no such call), and a process may
prefer to stop cleanly anyway (save a checkpoint, return its objective). So a run that belongs
to a sweep learns the decision itself:

* a :class:`StopPoller` thread (started by :class:`~runyard.sdk.run.Run` for an online sweep
  run) asks ``store.controller(sweep_id).stop_decisions(run_id)`` every
  ``Settings.stop_poll_interval`` seconds (``RUNYARD_STOP_POLL_INTERVAL``, default 5). It goes
  through the :class:`~runyard.store.base.Store` contract only, so a run talking to a remote
  server store asks the server. It never raises into the training code: errors are logged at
  debug level and the poll backs off. It stops once a decision is known or the run ends.
* ``run.should_stop`` (a bool property) and ``run.stop_reason`` expose the decision; the task
  breaks out of its loop (``if run.should_stop: break``). The first decision prints one line
  to stderr that says why and how to act on it.
* With ``Settings(stop_raise=True)`` (``RUNYARD_STOP_RAISE``) the next ``log()`` raises
  :class:`StopRun` instead (after recording that call's values), for loops that are hard to
  edit. The trade-off: an ``except Exception`` in the loop swallows it, and a framework that
  catches exceptions around the task (Hydra does) reports the job as failed; runyard itself
  still ends the run ``stopped``.
* A run that acted on the decision (read ``should_stop`` as True, or raised ``StopRun``) ends
  ``stopped`` with ``failure = "stopped early: <reason>"``, the controller's finish semantics,
  whether it then finishes normally or by the ``StopRun`` exception. A run that never looked
  ran to its end and keeps its own outcome.

The store keeps a ``stopped`` verdict when a later finish record of the run arrives, so the
agent's SIGTERM path and this cooperative path agree.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runyard.sdk.run import Run

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_POLL_INTERVAL", "StopPoller", "StopRun", "start_stop_poller"]

#: seconds between two questions to the controller (``RUNYARD_STOP_POLL_INTERVAL``)
DEFAULT_POLL_INTERVAL = 5.0
#: the longest wait between polls after repeated errors
MAX_BACKOFF = 60.0


class StopRun(Exception):
    """The sweep stopped this run early; raised by ``log()`` with ``Settings(stop_raise=True)``.

    An ``Exception`` (not a ``BaseException``) so that Hydra's job wrapper records it as the
    job's result instead of ending the whole multirun.
    """

    def __init__(self, run_id: str, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"run {run_id} was stopped early by its sweep: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable (joblib/submitit return it)
        return (StopRun, (self.run_id, self.reason))


class StopPoller:
    """Asks the sweep controller whether a run should stop, in a daemon thread."""

    def __init__(
        self,
        run_id: str,
        sweep_id: str | None,
        open_store: Callable[[], Any],
        interval: float = DEFAULT_POLL_INTERVAL,
        on_stop: Callable[[str], None] | None = None,
        where: tuple[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.sweep_id = sweep_id
        #: (entity, project) of the run: its own state is read too (a stop from outside)
        self.where = where
        self.interval = max(0.01, float(interval))
        #: why the sweep stopped the run (None while it may go on)
        self.reason: str | None = None
        #: the run acted on the decision: ``should_stop`` answered True, or StopRun was raised
        self.observed = False
        self.raised = False
        self.errors = 0
        self._open_store = open_store
        self._on_stop = on_stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runyard-stop", daemon=True)
        self._thread.start()

    # -- the thread --------------------------------------------------------------------------

    def _loop(self) -> None:
        controller: Any = None
        delay = self.interval
        while not self._done.wait(delay):
            try:
                reason = self._stopped_from_outside()
                if reason is None and self.sweep_id is not None:
                    if controller is None:
                        controller = self._open_store().controller(self.sweep_id)
                    reason = controller.stop_decisions(self.run_id)
            except Exception as exc:  # never into the training loop
                self.errors += 1
                delay = min(self.interval * 2 ** min(self.errors, 10), MAX_BACKOFF)
                log.debug("runyard: stop poll of run %s failed: %s", self.run_id, exc)
                continue
            delay = self.interval
            if reason is not None and not self._done.is_set():
                self.reason = str(reason)
                if self._on_stop is not None:
                    try:
                        self._on_stop(self.reason)
                    except Exception as exc:
                        log.debug("runyard: stop callback failed: %s", exc)
                return

    def _stopped_from_outside(self) -> str | None:
        """Why the run's stored state is ``stopped`` (``runyard runs stop``), or None."""
        if self.where is None:
            return None
        found = self._open_store().find_run(*self.where, self.run_id)
        if found is None or found.state != "stopped":
            return None
        return str(found.failure or "stopped from runyard")

    def close(self) -> None:
        """Stop polling (the run ended). Does not wait for a query in flight."""
        self._done.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # -- what the run asks ---------------------------------------------------------------------

    def should_stop(self) -> bool:
        if self.reason is None:
            return False
        self.observed = True
        return True

    def stop_run(self) -> StopRun:
        """The exception ``log()`` raises (once) in ``stop_raise`` mode."""
        self.observed = self.raised = True
        return StopRun(self.run_id, self.reason or "")

    def final_state(self, state: str, failure: str | None) -> tuple[str, str | None]:
        """The run's final state: ``stopped`` when it acted on a stop decision and ended on its
        own (finished) or by ``StopRun`` (failed); otherwise what it says."""
        self.close()
        if self.reason is None or not self.observed:
            return state, failure
        if state == "finished" or (state == "failed" and self.raised):
            return "stopped", f"stopped early: {self.reason}"
        return state, failure


def _announce(run: Run, raising: bool) -> Callable[[str], None]:
    def on_stop(reason: str) -> None:
        who = "the sweep stops" if run.sweep_id else "runyard stops"
        if raising:
            run._stop_pending = True
            how = "the next runyard.log() raises runyard.StopRun"
        else:
            how = (
                "check `run.should_stop` in the training loop (`if run.should_stop: break`) to "
                "end it now; it ends `stopped` once it did"
            )
        out = sys.__stderr__ or sys.stderr
        try:
            print(f"runyard: {who} run {run.id}: {reason}; {how}", file=out, flush=True)
        except (OSError, ValueError):
            pass

    return on_stop


def start_stop_poller(run: Run, settings: Any) -> StopPoller | None:
    """The poller of an online run (None for other runs): its sweep's decisions, and a stop
    from outside (``runyard runs stop``)."""
    if run.mode != "online":
        return None
    interval = getattr(settings, "stop_poll_interval", None) or DEFAULT_POLL_INTERVAL
    raising = bool(getattr(settings, "stop_raise", False))
    return StopPoller(
        run.id,
        run.sweep_id,
        run._open_store,
        interval=interval,
        on_stop=_announce(run, raising),
        where=(run.entity, run.project),
    )
