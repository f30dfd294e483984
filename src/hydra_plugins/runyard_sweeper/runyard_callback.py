"""Registers the ``runyard`` job callback: ``hydra/callbacks=runyard``.

Hydra imports this module when it scans its plugins, before composing the config, so it only
declares the config node (light imports); the callback itself is
``runyard.integrations.hydra.callback.RunyardCallback``, imported when Hydra instantiates it.

No ``from __future__ import annotations`` here: Hydra executes plugin modules without putting
them in ``sys.modules``, where ``dataclass`` cannot evaluate string annotations (the import
fails, and with it every Hydra app of the environment).
"""

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore


@dataclass
class RunyardCallbackConf:
    """Parameters of ``RunyardCallback``; ``null`` means: from the program's
    ``runyard.init()``, the ``RUNYARD_*`` environment or runyard's defaults."""

    _target_: str = "runyard.integrations.hydra.callback.RunyardCallback"
    project: str | None = None
    entity: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    mode: str | None = None
    save_hydra_files: bool = True


# The hydra/callbacks group is in Hydra's own defaults list (empty), so the option is chosen
# with `hydra/callbacks=runyard`, or `override hydra/callbacks: runyard` in a defaults list.
ConfigStore.instance().store(
    group="hydra/callbacks",
    name="runyard",
    node={"runyard": RunyardCallbackConf},
    provider="runyard",
)
