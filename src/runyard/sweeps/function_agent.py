"""An agent that runs a Python function per trial, in this process: ``runyard.agent(sweep_id,
function=train, count=20)``, W&B's notebook path.

Each trial is a run of the sweep: the agent takes it from :meth:`SweepControl.next_run` (atomic,
so agents in other processes or on other machines work on the same sweep), puts the assignment
in this process's environment (``RUNYARD_SWEEP_ID``, ``RUNYARD_RUN_ID``,
``RUNYARD_SWEEP_PARAMS``, ...: what ``runyard agent`` gives its child) while the function runs,
so that the function's ``runyard.init()`` joins the trial's run with its parameters locked in
``runyard.config``, and restores it afterwards. A job context (``sdk.state.JobContext``, as the
Hydra callback uses) collects the runs the function starts, so the agent ends any the function
left open: ``finished``, or ``failed`` with the traceback when the function raised (the agent
then goes on with the next trial). Ctrl-C (``KeyboardInterrupt``: in a script, or the
notebook's interrupt button) ends the current run ``killed`` and the agent returns, without a
traceback. Heartbeats go to the store from a thread while the function runs.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from runyard._json import sanitize
from runyard.sdk.metadata import hostname
from runyard.sdk.stop import StopRun
from runyard.store.base import Store, StoreError, SweepRecord
from runyard.store.locate import default_store_url
from runyard.sweeps.controller import Decision
from runyard.sweeps.space import run_config

__all__ = ["FunctionAgent"]

#: seconds between heartbeats while a function runs
HEARTBEAT_INTERVAL = 5.0
#: seconds between polls while the sweep is paused
POLL_INTERVAL = 2.0


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Heartbeat:
    """The agent's heartbeats while a function runs (the controller marks silent agents dead
    and their runs crashed)."""

    def __init__(self, store: Store, agent_id: str) -> None:
        self.store = store
        self.agent_id = agent_id
        self.run_id: str | None = None
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runyard-agent", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                self.store.agent_heartbeat(self.agent_id, self.run_id, self.done)
            except Exception:  # a missed heartbeat is not fatal
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_INTERVAL + 5)


class FunctionAgent:
    """One agent of ``sweep`` that calls ``function()`` for each trial (see the module doc)."""

    def __init__(
        self,
        store: Store,
        sweep: SweepRecord,
        root: Path,
        function: Callable[[], Any],
        *,
        count: int | None = None,
        store_url: str | None = None,
        out: TextIO | None = None,
    ) -> None:
        if not callable(function):
            raise TypeError(f"runyard.agent: function must be callable, got {function!r}")
        if count is not None and (isinstance(count, bool) or count < 1):
            raise ValueError(f"runyard.agent: count must be a whole number >= 1, got {count!r}")
        self.store = store
        self.sweep = sweep
        self.root = root
        self.function = function
        self.count = count
        self.store_url = store_url
        self.out = out or sys.stderr
        self.controller = store.controller(sweep.id)
        self.id = f"{hostname()}-{os.getpid()}-py-{uuid.uuid4().hex[:6]}"
        self.done = 0

    def run(self) -> int:
        """Run trials until the sweep ends, ``count`` trials are done or Ctrl-C; returns the
        number of trials this agent ran."""
        self.store.register_agent(self.id, self.sweep.id, hostname(), os.getpid())
        self._say(f"agent {self.id} on sweep {self.sweep.path}")
        heartbeat = _Heartbeat(self.store, self.id)
        state = "finished"
        try:
            while self.count is None or self.done < self.count:
                decision = self.controller.next_run(self.id, reclaim=True)
                if decision.kind == "done":
                    self._say(f"sweep over: {decision.reason}")
                    break
                if decision.kind == "wait":
                    heartbeat.run_id = None
                    self.store.agent_heartbeat(self.id, None, self.done)
                    time.sleep(POLL_INTERVAL)
                    continue
                heartbeat.run_id = decision.run_id
                self._trial(decision)
                self.done += 1
                heartbeat.done = self.done
        except KeyboardInterrupt:
            state = "killed"
            self._say("interrupted (Ctrl-C): the agent stops; its run ends killed")
        finally:
            heartbeat.stop()
            try:
                self.controller.abandon(self.id, "the agent stopped before the trial ran")
                self.store.agent_heartbeat(self.id, None, self.done, state=state)
            except StoreError as exc:
                self._say(f"could not record the agent's end: {exc}")
        self._say(f"agent done: {self.done} trial(s)")
        return self.done

    # -- one trial --------------------------------------------------------------------------------

    def _env(self, decision: Decision) -> dict[str, str]:
        env = {
            "RUNYARD_SWEEP_ID": self.sweep.id,
            "RUNYARD_RUN_ID": decision.run_id or "",
            "RUNYARD_SWEEP_RUN_NAME": decision.run_name or "",
            "RUNYARD_SWEEP_PARAMS": json.dumps(sanitize(run_config(decision.params))),
            "RUNYARD_PROJECT": self.sweep.project,
            "RUNYARD_ENTITY": self.sweep.entity,
            "RUNYARD_DIR": str(self.root),
        }
        if self.store_url and self.store_url != default_store_url(self.root):
            env["RUNYARD_STORE"] = self.store_url
            if self.store_url.lower().startswith(("http://", "https://")):
                env["RUNYARD_BASE_URL"] = self.store_url
        return env

    def _trial(self, decision: Decision) -> None:
        from runyard.sdk import state

        assert decision.run_id is not None
        shown = ", ".join(f"{k}={v!r}" for k, v in decision.params.items())
        self._say(f"run {decision.run_id} ({decision.run_name}): {shown}")
        context = state.JobContext()
        previous = state.job_context()
        exit_code = 0
        stop_reason: str | None = None
        error: BaseException | None = None
        state.set_job_context(context)
        try:
            with _environment(self._env(decision)):
                self.function()
        except StopRun as exc:  # RUNYARD_STOP_RAISE: early termination, not a failure
            stop_reason = getattr(exc, "reason", None) or "stopped by its sweep"
        except KeyboardInterrupt as exc:
            self._end_runs(context, exc)
            raise
        except Exception as exc:
            exit_code, error = 1, exc
            self.out.write(
                f"runyard agent: run {decision.run_id} failed: the function raised\n"
                + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            )
        finally:
            state.set_job_context(previous)
        self._end_runs(context, error)
        if error is not None and not context.runs:
            # It raised before runyard.init(): the trial's failure is the exception.
            reason = f"the function raised {type(error).__name__}: {error}"[:2000]
            self.controller.fail_trial(decision.run_id, reason)
            self._say(f"run {decision.run_id} failed")
            return
        record = self.controller.finish_trial(decision.run_id, exit_code, stop_reason)
        if record is not None:
            self._say(f"run {decision.run_id} {record.state}")

    @staticmethod
    def _end_runs(context: Any, error: BaseException | None) -> None:
        """Finish the runs the function started and left open (this process's only)."""
        for run in context.runs:
            if run._finished or run._owner_pid != os.getpid():
                continue
            try:
                if error is not None:
                    run.mark_failed(error)
                else:
                    run.finish()
            except Exception:
                pass

    def _say(self, text: str) -> None:
        if os.environ.get("RUNYARD_SILENT", "").lower() in ("1", "true", "yes"):
            return
        self.out.write(f"runyard agent: {text}\n")
        self.out.flush()
