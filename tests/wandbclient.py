"""Running the real ``wandb`` client (the dev extra pins it) against a test's runyard server.

Every process gets its own HOME, WANDB_DIR, config and cache folders, no ``WANDB_*``/``RUNYARD_*``
variable of the test process, no error reporting or update check, and a proxy that refuses
everything except 127.0.0.1: a request that would leave this machine (api.wandb.ai, PyPI, an
error reporter) fails at once instead of reaching anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

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
