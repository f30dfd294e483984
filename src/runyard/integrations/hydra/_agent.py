"""The sweeper as one agent of its sweep: its heartbeats while a batch runs, the ``RUNYARD_*``
variables that let each job's ``runyard.init()`` join its trial, and which earlier agents of
the sweep are dead (for a resume)."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from runyard.sdk.metadata import hostname
from runyard.store.base import AgentRecord, Store, SweepRecord
from runyard.store.locate import default_store_url
from runyard.sweeps.controller import SweepControl, agent_timeout

log = logging.getLogger("runyard.integrations.hydra.sweeper")

__all__ = ["HEARTBEAT_INTERVAL", "Heartbeat", "agent_dead", "job_env"]

#: seconds between the sweeper's agent heartbeats while a batch runs
HEARTBEAT_INTERVAL = 5.0


class Heartbeat:
    """Keeps the sweeper's agent alive in the store while Hydra runs a batch (the controller
    marks agents without heartbeats dead and their runs crashed), and reports early-termination
    decisions for the runs in flight."""

    def __init__(self, store: Store, controller: SweepControl, agent_id: str, early: bool) -> None:
        self.store = store
        self.controller = controller
        self.agent_id = agent_id
        self.early = early
        self.running: list[str] = []
        self.done = 0
        self._reported: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runyard-sweeper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            try:
                running = list(self.running)
                self.store.agent_heartbeat(
                    self.agent_id, running[0] if running else None, self.done
                )
                if self.early:
                    for run_id in running:
                        if run_id in self._reported:
                            continue
                        reason = self.controller.stop_decisions(run_id)
                        if reason is not None:
                            self._reported.add(run_id)
                            log.info(
                                "runyard sweeper: early termination stops run %s (%s); its "
                                "job ends early if the task checks run.should_stop",
                                run_id,
                                reason,
                            )
            except Exception as exc:  # a heartbeat must never kill the sweep
                log.debug("runyard sweeper heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_INTERVAL + 5)


def job_env(record: SweepRecord, root: Path, store_url: str) -> dict[str, str]:
    """The ``RUNYARD_*`` variables that make a job's ``runyard.init()`` join its trial in the
    sweeper's store, wherever the launcher runs it: the journal folder, and the store unless it
    is the embedded one of that folder (a runyard server's URL, a PostgreSQL URL). The API key
    is never written into the job's config: jobs inherit ``RUNYARD_API_KEY`` (or the saved
    ``runyard login``) from their environment."""
    env = {
        "RUNYARD_SWEEP_ID": record.id,
        "RUNYARD_PROJECT": record.project,
        "RUNYARD_ENTITY": record.entity,
        "RUNYARD_DIR": str(root),
    }
    if os.environ.get("RUNYARD_BASE_URL"):  # it wins over RUNYARD_STORE: pass it on
        env["RUNYARD_BASE_URL"] = os.environ["RUNYARD_BASE_URL"]
    if os.environ.get("RUNYARD_STORE"):
        env["RUNYARD_STORE"] = os.environ["RUNYARD_STORE"]
    if store_url != default_store_url(root):
        env["RUNYARD_STORE"] = store_url
    return env


def agent_dead(agent: AgentRecord) -> bool:
    if agent.state != "running":
        return False
    if agent.host == hostname() and agent.pid:
        if agent.pid == os.getpid():
            return True  # an earlier sweep of this process, which is over
        try:
            os.kill(agent.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return time.time() - agent.heartbeat_at > agent_timeout()
