"""The ``runyard`` Hydra sweeper: ``python train.py -m hydra/sweeper=runyard``.

Hydra imports this module whenever it scans for plugins (every Hydra app start), so it holds
only the plugin class and its structured config; the sweeper's work is done by
:mod:`runyard.integrations.hydra.sweeper`, imported when the sweeper is instantiated.
See ``docs/hydra-sweeper.md``.

No ``from __future__ import annotations`` here: Hydra executes plugin modules without putting
them in ``sys.modules``, and ``dataclasses`` then cannot resolve string annotations.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


@dataclass
class RunyardMetricConf:
    """The objective. Unset fields come from ``sweep_config``, else the defaults below."""

    #: summary key of the objective; default ``return_value`` (the task function's return value)
    name: str | None = None
    #: ``minimize`` (default) or ``maximize``
    goal: str | None = None
    #: the sweep finishes once a finished trial reaches this value
    target: float | None = None


@dataclass
class RunyardSweeperConf:
    """``hydra/sweeper=runyard`` (every option is documented in docs/hydra-sweeper.md)."""

    _target_: str = "hydra_plugins.runyard_sweeper.runyard_sweeper.RunyardSweeper"
    #: grid | random | bayes (default: sweep_config's method, else grid when every parameter
    #: has a finite set of values, else bayes)
    method: str | None = None
    #: trials in the sweep (its run_cap); default: sweep_config's run_cap, else the whole grid
    #: for grid and 20 for random/bayes
    n_trials: int | None = None
    #: jobs launched together; default: the launcher's n_jobs (joblib) or 1
    max_batch_size: int | None = None
    metric: RunyardMetricConf = field(default_factory=RunyardMetricConf)
    #: several objectives, hydra-optuna-sweeper's way: [minimize, maximize] (the task returns
    #: a tuple/list, one value per objective); a single string is metric.goal
    direction: Any = None
    #: several objectives by name: [{name: val/loss, goal: minimize}, ...] (as in sweep.yaml)
    metrics: Any = None
    #: where the objective comes from: auto | return_value | summary
    objective: str = "auto"
    #: W&B's early_terminate block (hyperband / asha), stored with the sweep; empty = none
    #: (a mapping, not None, so that `hydra.sweeper.early_terminate={type:hyperband,...}` and
    #: `+hydra.sweeper.early_terminate.min_iter=3` merge into it)
    early_terminate: dict[str, Any] = field(default_factory=dict)
    #: search space in Hydra's sweep grammar: {key or group: "choice(...)" / "interval(...)" ...}
    #: (typed Any: a None Dict node makes `hydra.sweeper.params={lr:'0.1,0.2'}` crash in
    #: OmegaConf, and an empty Dict node in Hydra's struct config refuses new keys)
    params: Any = None
    #: a sweep.yaml whose parameters/method/metric/... the sweep starts from
    sweep_config: str | None = None
    #: resume this sweep ([entity/project/]id) instead of creating one
    sweep_id: str | None = None
    project: str | None = None
    entity: str | None = None
    #: display name of the sweep
    name: str | None = None
    #: seed of the search (default: random)
    seed: int | None = None
    #: the program `runyard agent` runs to join the sweep (default: the app's script)
    program: str | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="runyard", node=RunyardSweeperConf, provider="runyard"
)


class RunyardSweeper(Sweeper):
    """Hydra's sweeper interface, delegating to :class:`runyard.integrations.hydra.sweeper.
    RunyardSweeperImpl` (imported here, not at plugin scan time)."""

    def __init__(self, **options: Any) -> None:
        from runyard.integrations.hydra.sweeper import RunyardSweeperImpl

        self._impl = RunyardSweeperImpl(**options)

    def setup(
        self,
        *,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self._impl.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        return self._impl.sweep(arguments)
