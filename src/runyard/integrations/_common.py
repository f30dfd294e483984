"""What the framework loggers share (runyard/integrations/lightning.py, transformers.py).

Nothing here imports a framework: these are runyard-side helpers for the run a logger starts,
adopts, finishes and, when the framework logs again after a finish (``trainer.test()`` after
``trainer.fit()``), resumes.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from runyard.sdk.config import ConfigError, to_plain
from runyard.sdk.settings import Settings

if TYPE_CHECKING:
    from runyard.sdk.run import Run


def default_project(fallback: str) -> str | None:
    """``fallback`` unless a project is set some other way (``RUNYARD_PROJECT``,
    ``WANDB_PROJECT``, the Hydra callback's job), which ``init()`` then uses (``None``)."""
    from runyard.sdk import state

    base = Settings()
    if state._job_context is not None:
        base = state._job_context.settings.merged(base)
    return None if base.resolved().project else fallback


def check_init_kwargs(owner: str, kwargs: Mapping[str, Any]) -> None:
    """Refuse, at construction, keyword arguments ``runyard.init`` does not take (rather than
    at the first log, deep inside the framework)."""
    from runyard.sdk.state import init

    known = inspect.signature(init).parameters
    unknown = sorted(k for k in kwargs if k not in known)
    if unknown:
        raise TypeError(
            f"{owner}: unknown argument(s) {unknown}; extra keyword arguments go to "
            f"runyard.init(), which takes {', '.join(known)}"
        )


def plain_params(params: Any) -> dict[str, Any]:
    """Hyperparameters (a dict, ``argparse.Namespace``, OmegaConf config, dataclass) as plain
    JSON-able data for ``config.update``: values runyard cannot store (callables, modules,
    tensors' devices...) become their ``str()``, as the frameworks' W&B loggers do."""
    if params is None:
        return {}
    try:
        plain = to_plain(params)
    except ConfigError:
        plain = _lenient(params)
    if not isinstance(plain, dict):
        raise TypeError(
            f"runyard: hyperparameters must be a dict, Namespace or OmegaConf/dataclass config, "
            f"got {type(params).__name__}"
        )
    return plain


def _lenient(value: Any, level: int = 1) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _lenient(v, level + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lenient(v, level + 1) for v in value]
    try:
        return to_plain(value, level=level)
    except ConfigError:
        return str(value)


def start_or_adopt(
    init_kwargs: Mapping[str, Any], owner: str, warn: bool = True
) -> tuple[Run, bool]:
    """The run a logger writes to: the current run if there is one (a sweep's trial, a run the
    user started; with ``warn`` a warning says so), else a new one. Returns
    ``(run, started_here)``."""
    import warnings

    from runyard.sdk.state import current_run, init

    current = current_run()
    if current is not None:
        if not warn:
            return current, False
        warnings.warn(
            f"{owner}: a runyard run is already in progress ({current.path}); logging to it. "
            f"Call runyard.finish() before creating the {owner} to get a run of its own.",
            stacklevel=3,
        )
        return current, False
    return init(**init_kwargs), True


def reopen(run: Run) -> Run:
    """``run`` again after it was finished: the same id, resumed (its steps go on; the store
    hands back its metric definitions and summary aggregates, sdk/resume.py)."""
    from runyard.sdk.state import current_run, init

    return init(
        id=run.id,
        project=run.project,
        entity=run.entity,
        resume="must",
        reinit="create_new" if current_run() is not None else None,
    )


def end_run(run: Run, failed: bool) -> None:
    """Finish ``run``: failed (with the traceback of the exception being handled, if any;
    ``killed`` for Ctrl-C) or finished."""
    if run._finished:
        return
    if not failed:
        run.finish()
        return
    exc = sys.exc_info()[1]
    if exc is not None:
        run.mark_failed(exc)
    else:
        run.finish(exit_code=1)
