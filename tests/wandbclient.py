"""Running the real ``wandb`` client (the dev extra pins it) against a test's runyard server.

Every process gets its own HOME, WANDB_DIR, config and cache folders, no ``WANDB_*``/``RUNYARD_*``
variable of the test process, no error reporting or update check, and a proxy that refuses
everything except 127.0.0.1: a request that would leave this machine (api.wandb.ai, PyPI, an
error reporter) fails at once instead of reaching anything.

A script started in the background (:func:`started`, :func:`start_script`) is killed by its PID
if it still runs when the test is done with it; :func:`wait_for_run` waits until the process's
run is stored with enough steps (or the process ends first, with its output).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runyard.api import Api

#: Nobody listens on the discard port: a proxied (non-local) request is refused at once.
_DEAD_PROXY = "http://127.0.0.1:9"


def wandb_env(
    home: Path,
    base_url: str | None,
    key: str | None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RUNYARD_", "HTTP"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        {
            "HOME": str(home),
            "WANDB_DIR": str(home),
            "WANDB_CONFIG_DIR": str(home / ".config" / "wandb"),
            "WANDB_CACHE_DIR": str(home / ".cache" / "wandb"),
            "WANDB_DATA_DIR": str(home / ".local" / "wandb"),
            "WANDB_ARTIFACT_DIR": str(home / "artifacts"),
            "WANDB_SILENT": "true",
            "WANDB_ERROR_REPORTING": "false",
            "WANDB_X_DISABLE_UPDATE_CHECK": "true",
            "WANDB_DISABLE_CODE": "true",
            "WANDB_DISABLE_GIT": "true",
            "HTTP_PROXY": _DEAD_PROXY,
            "HTTPS_PROXY": _DEAD_PROXY,
            "http_proxy": _DEAD_PROXY,
            "https_proxy": _DEAD_PROXY,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            # `wandb agent` starts `python <program>`: this venv's, which has wandb
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    if base_url is not None:
        env["WANDB_BASE_URL"] = base_url
    if key is not None:
        env["WANDB_API_KEY"] = key
    env.update(extra or {})
    return env


def run_script(
    code: str,
    home: Path,
    base_url: str | None,
    key: str | None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
    name: str = "train.py",
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with the real wandb client in a fresh interpreter, in ``home``."""
    home.mkdir(parents=True, exist_ok=True)
    script = home / name
    script.write_text(textwrap.dedent(code))
    return _run(
        [sys.executable, str(script)], home, wandb_env(home, base_url, key, env), timeout, check
    )


@contextmanager
def started(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], *, stdin: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """``argv`` running in the background (stdout and stderr in one pipe; stdin a pipe too if
    asked), in a session of its own; killed by its PID if it still runs when the block ends."""
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@contextmanager
def start_script(
    code: str,
    home: Path,
    base_url: str | None,
    key: str | None,
    *,
    env: Mapping[str, str] | None = None,
    stdin: bool = False,
    name: str = "train.py",
) -> Iterator[subprocess.Popen[str]]:
    """:func:`run_script` in the background: ``code`` with the real wandb client, in ``home``,
    as :func:`started` runs it."""
    home.mkdir(parents=True, exist_ok=True)
    script = home / name
    script.write_text(textwrap.dedent(code))
    with started(
        [sys.executable, str(script)], home, wandb_env(home, base_url, key, env), stdin=stdin
    ) as proc:
        yield proc


def stoppable_run(init_args: str, steps: int) -> str:
    """The code of a wandb run that logs ``{"i": i}`` ``steps`` times, every 20 ms, until it is
    stopped from the server: it prints ``INTERRUPTED <i>`` (the client's KeyboardInterrupt, as
    W&B's stop button gives) or, never stopped, ``NOT STOPPED``. ``init_args``: wandb.init's
    arguments, as code. The client's stop checker polls every 15 s and its file stream posts
    every 15 s by default; shorter here (timing only: the protocol is the same)."""
    return f"""
import time
import wandb
from wandb.sdk.lib import run_stopping

run_stopping.RunStopChecker.__init__.__kwdefaults__["poll_interval"] = 0.2
run = wandb.init({init_args},
                 settings=wandb.Settings(x_file_stream_transmit_interval=1))
try:
    for i in range({steps}):
        run.log({{"i": i}})
        time.sleep(0.02)
    print("NOT STOPPED")
except KeyboardInterrupt:
    print("INTERRUPTED", i)
    raise
"""


def wait_for_run(
    api: Api,
    path: str,
    proc: subprocess.Popen[str],
    *,
    steps: int | None = None,
    state: str | None = None,
    timeout: float = 120,
) -> None:
    """Wait until the run ``entity/project/id`` (``api``: a runyard ``Api``) is stored, with a
    ``last_step`` of at least ``steps`` and in ``state`` where given, while ``proc`` runs; an
    AssertionError with the process's output if it ends first."""
    entity, project, run_id = path.split("/")
    deadline = time.monotonic() + timeout
    found = None
    while time.monotonic() < deadline:
        found = api.store.find_run(entity, project, run_id)
        if (
            found is not None
            and (steps is None or found.last_step >= steps)
            and state in (None, found.state)
        ):
            return
        if proc.poll() is not None:
            raise AssertionError(
                f"the script ended while waiting for run {path}:\n{proc.communicate()[0]}"
            )
        time.sleep(0.1)
    wanted = f"{state or 'stored'}" + (f" with {steps} steps" if steps is not None else "")
    raise AssertionError(f"run {path} never became {wanted} in {timeout} s: {found}")


def run_cli(
    args: Sequence[str],
    home: Path,
    base_url: str | None,
    key: str | None,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the ``wandb`` command line (``wandb login``, ``wandb sync``, ``wandb sweep``...)."""
    wandb_cli = Path(sys.executable).with_name("wandb")
    return _run([str(wandb_cli), *args], home, wandb_env(home, base_url, key, env), timeout, check)


def start_cli(
    args: Sequence[str],
    home: Path,
    base_url: str | None,
    key: str | None,
    *,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start the ``wandb`` command line in the background (``wandb agent``); the caller ends it
    by its PID."""
    home.mkdir(parents=True, exist_ok=True)
    wandb_cli = Path(sys.executable).with_name("wandb")
    return subprocess.Popen(
        [str(wandb_cli), *args],
        cwd=home,
        env=wandb_env(home, base_url, key, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float, check: bool
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{argv[-1]} failed ({proc.returncode})\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc
