"""Creating a sweep from a sweep.yaml or a dict: what ``runyard sweep FILE`` and
``runyard.sweep(config)`` share (validation, defaults for entity and project, the seed)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from runyard.store.base import Store, SweepRecord
from runyard.sweeps.config import SweepConfig, load_sweep_config

__all__ = ["create_sweep"]


def create_sweep(
    store: Store,
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    require_program: bool = True,
) -> tuple[SweepRecord, SweepConfig]:
    """Validate ``source`` (a sweep.yaml/JSON path or the document as a dict; ``overrides``
    replace its top-level keys) and create the sweep in ``store``.

    ``project``/``entity`` win over the document's; without either, ``RUNYARD_PROJECT`` /
    ``RUNYARD_ENTITY``, else ``uncategorized`` / the user's name. Raises ``SweepConfigError``
    (every problem, one per line) and OSError for a file that cannot be read; nothing is
    created then.
    """
    from runyard.sdk.metadata import username
    from runyard.sdk.names import new_run_id

    config = load_sweep_config(source, require_program=require_program)
    if overrides:
        config = load_sweep_config({**config.raw, **overrides}, require_program=require_program)
    record = store.create_sweep(
        sweep_id=new_run_id(),
        entity=entity or config.entity or os.environ.get("RUNYARD_ENTITY") or username(),
        project=project or config.project or os.environ.get("RUNYARD_PROJECT") or "uncategorized",
        name=name or config.name,
        description=config.description,
        method=config.method,
        config=config.raw,
        seed=seed if seed is not None else secrets.randbelow(2**31),
    )
    return record, config
