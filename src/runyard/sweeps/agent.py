"""``runyard agent``: ask the controller for runs and execute the sweep's command for each.

The command runs as an argv list (never through a shell), with the assignment in its
environment (``RUNYARD_SWEEP_ID``, ``RUNYARD_RUN_ID``, ``RUNYARD_SWEEP_PARAMS``), so the child's
``runyard.init()`` joins the assigned run with the sampled values in its config. While it runs
the agent heartbeats; when the controller says the run should stop (early termination, a
canceled sweep) the agent sends SIGTERM, then SIGKILL after a grace period. The child is asked
by the kernel to receive SIGTERM if the agent dies (``PR_SET_PDEATHSIG``), so a killed agent
leaves no orphan training; its run is then marked crashed once its heartbeat times out.

The agent talks to its sweep only through ``store.controller(id)``, ``store.register_agent``
and ``store.agent_heartbeat``, so it works the same against a ``runyard server``
(``--store http://...``/``RUNYARD_BASE_URL``), where every decision is made by the server. A
server that is briefly unreachable (a restart) is waited for (``server_patience``); a missed
heartbeat or stop check is skipped, not fatal.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from rich.console import Console

from runyard._json import sanitize
from runyard.sdk.metadata import hostname
from runyard.sdk.recovery import recover_journals
from runyard.store.base import Store, StoreError, SweepRecord
from runyard.sweeps.command import DEFAULT_COMMAND, CommandError, build_command
from runyard.sweeps.config import SweepConfig, load_sweep_config
from runyard.sweeps.controller import Decision, objective
from runyard.sweeps.hydra_args import HydraProbeError, group_of
from runyard.sweeps.space import nest

_PR_SET_PDEATHSIG = 1
_T = TypeVar("_T")


def _unavailable(exc: StoreError) -> bool:
    """A server that could not be reached or timed out (not a refusal): worth retrying."""
    return type(exc).__name__ == "StoreUnavailableError"


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class AgentError(RuntimeError):
    """The agent cannot go on (the message says why and what to fix)."""


@dataclass
class AgentOptions:
    count: int | None = None
    heartbeat_interval: float = 2.0
    poll_interval: float = 2.0
    stop_grace: float = 15.0
    cwd: Path = field(default_factory=Path.cwd)
    #: seconds to keep retrying a store (server) that cannot be reached before giving up
    server_patience: float = 300.0


@dataclass
class RunOutcome:
    run_id: str
    exit_code: int
    state: str
    value: float | None
    stop_reason: str | None


class Agent:
    """One agent process working on one sweep."""

    def __init__(
        self,
        store: Store,
        sweep: SweepRecord,
        root: Path,
        options: AgentOptions | None = None,
        store_url: str | None = None,
        console: Console | None = None,
    ) -> None:
        self.store = store
        self.sweep = sweep
        self.root = root
        self.options = options or AgentOptions()
        self.store_url = store_url
        self.console = console or Console(stderr=True)
        self.controller = store.controller(sweep.id)
        self.config: SweepConfig = load_sweep_config(sweep.config, require_program=False)
        self.id = f"{hostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.done = 0
        self.best: tuple[float, str] | None = None
        self._hydra: Any = None
        self._status: Any = None  # a rich Status line on a terminal, else None
        self._run_started = 0.0
        self._current: str | None = None

    # -- main loop ------------------------------------------------------------------------------

    def run(self) -> int:
        """Work until the sweep ends or ``count`` runs are done; returns the number of runs."""
        command = self.config.command or DEFAULT_COMMAND
        if not self.config.program and any("${program}" in part for part in command):
            raise AgentError(
                f"sweep {self.sweep.id} has no program, and its command runs ${{program}}: it "
                f"was made for runyard.agent({self.sweep.id!r}, function=...), which runs a "
                "Python function per trial; use that, or create a sweep with a program"
            )
        self._check_program()  # before anything is registered: nothing to clean up
        self._patient(
            "register",
            lambda: self.store.register_agent(self.id, self.sweep.id, hostname(), os.getpid()),
        )
        self._say(f"{self.id} on sweep {self.sweep.path} ({self.config.method})")
        state = "finished"
        if self.console.is_terminal:
            self._status = self.console.status(self._status_text())
            self._status.start()
        try:
            while self.options.count is None or self.done < self.options.count:
                self._check_program()  # gone meanwhile: stop before a trial is made
                decision = self._patient(
                    "next run", lambda: self.controller.next_run(self.id, reclaim=True)
                )
                if decision.kind == "done":
                    self._say(f"sweep over: {decision.reason}")
                    break
                if decision.kind == "wait":
                    self._say(f"waiting: {decision.reason}", once_key="wait")
                    self._beat(None)
                    time.sleep(self.options.poll_interval)
                    continue
                self._last_said = None
                outcome = self._execute(decision)
                self.done += 1
                self._report(outcome)
        except KeyboardInterrupt:
            state = "killed"
            self._say("interrupted; agent stopping")
            raise
        except AgentError:
            state = "failed"
            raise
        finally:
            if self._status is not None:
                self._status.stop()
                self._status = None
            try:
                self.store.agent_heartbeat(self.id, None, self.done, state=state)
            except StoreError as exc:
                self._say(f"[yellow]warning:[/] could not send the last heartbeat: {exc}")
        self._say(f"agent done: {self.done} run(s)" + self._best_text())
        return self.done

    def _check_program(self) -> None:
        """:class:`AgentError` when the command runs ``${program}`` and there is no such
        file in the agent's folder (an agent started in the wrong folder): said before a
        trial is created, so no failed run counts toward run_cap or feeds the search."""
        program = self.config.program
        command = self.config.command or DEFAULT_COMMAND
        if not program or not any("${program}" in part for part in command):
            return
        cwd = Path(self.options.cwd)
        if (cwd / program).expanduser().exists():
            return
        if "/" not in program and os.sep not in program and shutil.which(program):
            return  # a command on PATH
        raise AgentError(
            f"the sweep's program {program!r} is not in {cwd}: start `runyard agent` in the "
            f"folder the program is in (where the sweep was created), e.g. `cd <that folder> && "
            f"runyard agent {self.sweep.id}`; no run was started"
        )

    # -- one run --------------------------------------------------------------------------------

    def _execute(self, decision: Decision) -> RunOutcome:
        assert decision.run_id is not None
        shown = ", ".join(f"{k}={v!r}" for k, v in decision.params.items())
        self._say(f"run {decision.run_id} ({decision.run_name}): {shown}")
        env = self._child_env(decision)
        with tempfile.TemporaryDirectory(prefix="runyard-agent-") as tmp:
            try:
                argv = build_command(
                    self.config.command or DEFAULT_COMMAND,
                    program=self.config.program,
                    params=decision.params,
                    env=env,
                    interpreter=sys.executable,
                    json_file_dir=Path(tmp),
                    hydra=self._hydra_overrides(),
                )
            except (CommandError, HydraProbeError, ValueError) as exc:
                # The same problem would hit every run: fail this one and stop the agent.
                reason = f"cannot build the command: {exc}"
                run_id = decision.run_id
                self._patient("fail", lambda: self.controller.fail_trial(run_id, reason))
                raise AgentError(
                    f"cannot build the command for run {decision.run_id}: {exc}"
                ) from None
            groups = self._hydra_groups()
            if groups:
                # A swept config group's value is an option name, not config content: Hydra
                # composes the content, so only plain keys are put into the run's config.
                plain = {k: v for k, v in decision.params.items() if group_of(k) not in groups}
                env["RUNYARD_SWEEP_PARAMS"] = json.dumps(sanitize(nest(plain)))
            exit_code, stop_reason = self._supervise(argv, env, decision.run_id)
        # If the child died before its records reached the store, apply its journal now, so
        # the run's final state comes from what it logged rather than from a guess.
        recover_journals(self.root, self.store, quiet=True)
        run_id = decision.run_id
        record = self._patient(
            "finish", lambda: self.controller.finish_trial(run_id, exit_code, stop_reason)
        )
        value = None
        if record is not None and self.config.metric is not None:
            value = objective(record.summary, self.config.metric.name, self.config.metric.goal)
        state = record.state if record is not None else "unknown"
        return RunOutcome(decision.run_id, exit_code, state, value, stop_reason)

    def _child_env(self, decision: Decision) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RUNYARD_RUN_")}
        env.update(
            {
                "RUNYARD_SWEEP_ID": self.sweep.id,
                "RUNYARD_RUN_ID": decision.run_id or "",
                # the name the agent prints and the store holds: the run keeps it
                "RUNYARD_SWEEP_RUN_NAME": decision.run_name or "",
                "RUNYARD_SWEEP_PARAMS": json.dumps(sanitize(decision.config)),
                "RUNYARD_PROJECT": self.sweep.project,
                "RUNYARD_ENTITY": self.sweep.entity,
                "RUNYARD_DIR": str(self.root),
            }
        )
        env.pop("RUNYARD_NAME", None)
        if self.store_url:
            env["RUNYARD_STORE"] = self.store_url
            if self.store_url.lower().startswith(("http://", "https://")):
                # The same server and key, whether they came from a flag, the environment or
                # `runyard login`.
                env["RUNYARD_BASE_URL"] = self.store_url
                key = getattr(self.store, "api_key", None)
                if key:
                    env["RUNYARD_API_KEY"] = key
            else:
                env.pop("RUNYARD_BASE_URL", None)
        return env

    def _patient(self, what: str, call: Callable[[], _T]) -> _T:
        """``call()``, retried while the store is unreachable, for ``server_patience`` s."""
        deadline = time.monotonic() + self.options.server_patience
        delay = 0.5
        warned = False
        while True:
            try:
                return call()
            except StoreError as exc:
                if not _unavailable(exc) or time.monotonic() + delay > deadline:
                    raise
                if not warned:
                    warned = True
                    self._say(f"[yellow]{exc}[/]; retrying ({what})")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _beat(self, run_id: str | None) -> None:
        """A heartbeat; a store that is briefly unreachable only costs this one."""
        try:
            self.store.agent_heartbeat(self.id, run_id, self.done)
        except StoreError as exc:
            if not _unavailable(exc):
                raise
            self._say(f"[yellow]warning:[/] heartbeat not sent: {exc}", once_key="beat")

    def _hydra_overrides(self) -> Any:
        command = self.config.command or DEFAULT_COMMAND
        if not any("${args_hydra}" in part for part in command):
            return None
        if self._hydra is None:
            from runyard.sweeps.hydra_args import HydraOverrides

            self._hydra = HydraOverrides(
                program=self.config.program,
                cwd=self.options.cwd,
                interpreter=sys.executable,
                on_warning=lambda text: self._say(f"[yellow]warning:[/] {text}"),
            )
        return self._hydra

    def _hydra_groups(self) -> set[str]:
        if self._hydra is None or not self._hydra.default_argv:
            return set()
        try:
            return set(self._hydra.info_for(self._hydra.default_argv).groups)
        except HydraProbeError:
            return set()

    def _supervise(
        self, argv: list[str], env: dict[str, str], run_id: str
    ) -> tuple[int, str | None]:
        proc = subprocess.Popen(
            argv,
            cwd=self.options.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # only prctl(): safe between fork and exec
        )
        assert proc.stdout is not None
        self._current, self._run_started = run_id, time.monotonic()
        self._refresh_status()
        pump = threading.Thread(target=_pump, args=(proc.stdout, self._child_line), daemon=True)
        pump.start()
        stop_reason: str | None = None
        stop_sent = 0.0
        try:
            while True:
                try:
                    proc.wait(timeout=self.options.heartbeat_interval)
                    break
                except subprocess.TimeoutExpired:
                    pass
                self._beat(run_id)
                self._refresh_status()
                if stop_reason is None:
                    try:
                        stop_reason = self.controller.stop_decisions(run_id)
                    except StoreError as exc:
                        if not _unavailable(exc):
                            raise
                    if stop_reason is not None:
                        self._say(f"stopping run {run_id}: {stop_reason}")
                        proc.send_signal(signal.SIGTERM)
                        stop_sent = time.monotonic()
                elif time.monotonic() - stop_sent > self.options.stop_grace:
                    self._say(
                        f"run {run_id} ignored SIGTERM for {self.options.stop_grace}s: SIGKILL"
                    )
                    proc.kill()
        except BaseException:
            proc.terminate()
            try:
                proc.wait(timeout=self.options.stop_grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            raise
        finally:
            pump.join(timeout=5)
            self._current = None
            self._refresh_status()
        return proc.returncode, stop_reason

    # -- output ---------------------------------------------------------------------------------

    _last_said: str | None = None

    def _say(self, text: str, once_key: str | None = None) -> None:
        if once_key is not None:
            if self._last_said == once_key:
                return
            self._last_said = once_key
        self.console.print(f"[bold cyan]runyard agent[/] {text}", highlight=False)

    def _child_line(self, line: str) -> None:
        if self._status is not None:  # print above the live status line
            self.console.print(line.rstrip("\n"), markup=False, highlight=False)
        else:
            sys.stdout.write(line)
            sys.stdout.flush()

    def _status_text(self) -> str:
        total = f"/{self.options.count}" if self.options.count else ""
        parts = [f"sweep {self.sweep.id}", f"done {self.done}{total}"]
        if self._current is not None:
            elapsed = int(time.monotonic() - self._run_started)
            parts.insert(1, f"run {self._current} running {elapsed}s")
        if self.best is not None and self.config.metric is not None:
            parts.append(f"best {self.config.metric.name} {self.best[0]:.6g}")
        return " · ".join(parts)

    def _refresh_status(self) -> None:
        if self._status is not None:
            self._status.update(self._status_text())

    def _best_text(self) -> str:
        if self.best is None or self.config.metric is None:
            return ""
        return f"; best {self.config.metric.name} = {self.best[0]:.6g} (run {self.best[1]})"

    def _report(self, outcome: RunOutcome) -> None:
        metric = self.config.metric
        if outcome.value is not None and metric is not None:
            better = self.best is None or (
                outcome.value > self.best[0]
                if metric.goal == "maximize"
                else outcome.value < self.best[0]
            )
            if better:
                self.best = (outcome.value, outcome.run_id)
        value = (
            f" {metric.name}={outcome.value:.6g}"
            if metric is not None and outcome.value is not None
            else ""
        )
        total = f"/{self.options.count}" if self.options.count else ""
        self._say(
            f"[{self.done}{total}] run {outcome.run_id} {outcome.state}{value}" + self._best_text()
        )
        self._refresh_status()


def _pump(stream: IO[bytes], emit: Callable[[str], None]) -> None:
    for raw in iter(stream.readline, b""):
        emit(raw.decode("utf-8", errors="replace"))
    stream.close()
