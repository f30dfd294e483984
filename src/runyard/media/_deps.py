"""Optional dependencies: imported when a media type needs them, with the install line."""

from __future__ import annotations

import importlib
from typing import Any


class MissingDependencyError(ImportError):
    """A media type needs a package that is not installed."""


def require(module: str, packages: str, feature: str) -> Any:
    """``import module`` or a :class:`MissingDependencyError` naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs {packages}: pip install 'runyard[media]' (or pip install "
            f"{packages}); importing {module} failed: {exc}"
        ) from exc
