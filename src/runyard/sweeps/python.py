"""Python-defined sweeps, as W&B's: ``sweep_id = runyard.sweep(config, project=...)`` and
``runyard.agent(sweep_id, function=train, count=20)`` (also in a notebook).

``runyard.sweep`` validates the config (a dict, or a sweep.yaml/JSON path) exactly like
``runyard sweep FILE`` (every problem at once, in a ``SweepConfigError``) and creates the sweep
in the usual store (``RUNYARD_BASE_URL``/``runyard login`` for a server, ``RUNYARD_DIR``,
``RUNYARD_STORE``, the nearest ``.runyard`` folder); it needs no ``program``. ``runyard.agent``
runs trials in this process (:class:`~runyard.sweeps.function_agent.FunctionAgent`), or, without
``function``, the sweep's command, as ``runyard agent`` does.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["agent", "sweep"]


def _silent() -> bool:
    return os.environ.get("RUNYARD_SILENT", "").lower() in ("1", "true", "yes")


def sweep(
    sweep: Mapping[str, Any] | str | os.PathLike[str],
    entity: str | None = None,
    project: str | None = None,
    prior_runs: list[str] | None = None,
) -> str:
    """Create a sweep from ``sweep`` (a sweep config dict, or a sweep.yaml path) and return its
    id. ``entity``/``project`` win over the config's (default: ``RUNYARD_ENTITY`` /
    ``RUNYARD_PROJECT``, else your user name / ``uncategorized``). Raises
    ``runyard.sweeps.config.SweepConfigError`` (a ``ValueError``) naming every problem."""
    from runyard.api import Api
    from runyard.sweeps.create import create_sweep

    if prior_runs:
        raise ValueError(
            "runyard.sweep: prior_runs (W&B's seeding of a sweep with existing runs) is not "
            "supported; create the sweep, and its search starts from its own runs"
        )
    if not isinstance(sweep, Mapping | str | os.PathLike):
        raise TypeError(
            f"runyard.sweep: give a sweep config (a dict) or a sweep.yaml path, got {sweep!r}"
        )
    api = Api()
    record, config = create_sweep(
        api.store, sweep, project=project, entity=entity, require_program=False
    )
    if not _silent():
        size = f", {config.parameters.grid_size()} grid cells" if config.method == "grid" else ""
        print(
            f"runyard: created sweep {record.path} ({config.method}{size}); run trials with "
            f"runyard.agent({record.id!r}, function=...)"
        )
    return record.id


def agent(
    sweep_id: str,
    function: Callable[[], Any] | None = None,
    entity: str | None = None,
    project: str | None = None,
    count: int | None = None,
) -> None:
    """Run trials of the sweep ``sweep_id`` (``id`` or ``entity/project/id``) until it ends or
    ``count`` trials are done: ``function()`` once per trial in this process (each trial its own
    run: ``runyard.init()`` in the function joins it, with its parameters in
    ``runyard.config``; an exception fails that trial and the agent goes on; Ctrl-C ends the
    agent cleanly), or without ``function`` the sweep's command, as ``runyard agent`` does.
    Any number of agents, in any processes, may work on one sweep."""
    from runyard.api import Api

    api = Api()
    ref = str(sweep_id).strip("/")
    parts = ref.split("/")
    record = api.store.get_sweep(parts[-1])
    if record is None:
        raise ValueError(
            f"runyard.agent: no sweep {sweep_id!r} in {api.store_url} (create one with "
            "runyard.sweep(config), or check RUNYARD_BASE_URL / RUNYARD_DIR)"
        )
    given = {"entity": entity, "project": project}
    if len(parts) == 3:
        given = {"entity": entity or parts[0], "project": project or parts[1]}
    for key, value in given.items():
        if value is not None and value != getattr(record, key):
            raise ValueError(
                f"runyard.agent: sweep {record.id} is in {record.entity}/{record.project}, not "
                f"{key} {value!r}"
            )
    if function is None:
        from runyard.sweeps.agent import Agent, AgentOptions

        Agent(api.store, record, api.root, AgentOptions(count=count), store_url=api.store_url).run()
        return
    from runyard.sweeps.function_agent import FunctionAgent

    FunctionAgent(api.store, record, api.root, function, count=count, store_url=api.store_url).run()
