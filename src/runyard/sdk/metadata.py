"""What a run records about where it ran: host, program, command line, Python, git."""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def hostname() -> str:
    return socket.gethostname()


def username() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "local"


def process_metadata() -> dict[str, Any]:
    """Cheap facts, taken at ``init()``."""
    main = sys.modules.get("__main__")
    program = getattr(main, "__file__", None)
    return {
        "host": hostname(),
        "user": username(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "program": os.path.abspath(program) if program else "<interactive>",
        "args": list(sys.argv[1:]),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }


def git_metadata(start: str | os.PathLike[str]) -> dict[str, Any]:
    """Commit, branch, remote and dirty state of the git checkout containing ``start``.

    Runs ``git`` (a few ms), so the SDK calls it from a background thread.
    """

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args],
                cwd=start,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
                env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git": {
            "commit": commit,
            "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "remote": git("config", "--get", "remote.origin.url"),
            "dirty": bool(status),
            "root": git("rev-parse", "--show-toplevel"),
        }
    }


def program_dir() -> Path:
    main = sys.modules.get("__main__")
    program = getattr(main, "__file__", None)
    return Path(program).resolve().parent if program else Path.cwd()
