"""Where the embedded store lives, resolved once per process.

Order: an explicit setting → ``RUNYARD_DIR`` → the nearest existing ``.runyard`` folder up from
the *original* working directory → a new ``.runyard`` there. The original working directory is
Hydra's launch directory when running under Hydra (``hydra.job.chdir=True`` moves the process
into ``outputs/...``), so every job of a multirun lands in one store, never one per job folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DIR_NAME = ".runyard"
DB_NAME = "runyard.db"


def original_cwd() -> Path:
    """The directory the user launched from, seeing through Hydra's ``chdir``."""
    if "hydra" in sys.modules:
        try:
            from hydra.core.hydra_config import HydraConfig

            if HydraConfig.initialized():
                return Path(HydraConfig.get().runtime.cwd)
        except Exception:
            pass
    return Path.cwd()


def resolve_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``.runyard`` folder to use (created if needed)."""
    if explicit:
        root = Path(explicit).expanduser()
    elif os.environ.get("RUNYARD_DIR"):
        root = Path(os.environ["RUNYARD_DIR"]).expanduser()
    else:
        start = original_cwd().resolve()
        root = start / DIR_NAME
        for parent in (start, *start.parents):
            candidate = parent / DIR_NAME
            if candidate.is_dir():
                root = candidate
                break
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def default_store_url(root: Path) -> str:
    return f"sqlite:///{root / DB_NAME}"


def journal_dir(root: Path) -> Path:
    return root / "journal"
