"""``RunyardLogger`` for PyTorch Lightning (the ``lightning`` package): Lightning's
``WandbLogger`` habits, writing to runyard's store; no server or wandb package needed.

    from lightning.pytorch import Trainer
    from runyard.integrations.lightning import RunyardLogger

    logger = RunyardLogger(project="mnist", log_model=True)
    logger.watch(model, log="all", log_freq=100)
    Trainer(logger=logger, callbacks=[ModelCheckpoint(monitor="val_loss")]).fit(model, data)

Importing this module imports ``lightning`` (``import runyard`` does not). For the standalone
``pytorch_lightning`` package use ``runyard.integrations.pytorch_lightning``. See
docs/integrations.md; the behaviour is in runyard/integrations/_lightning_logger.py.
"""

from __future__ import annotations

try:
    from lightning.pytorch.loggers.logger import Logger
except ImportError as exc:  # say what to install, not just the missing module
    raise ImportError(
        f"runyard.integrations.lightning needs the lightning package ({exc}); "
        f"install it with: pip install lightning"
    ) from exc

from runyard.integrations._lightning_logger import RunyardLoggerMixin


class RunyardLogger(RunyardLoggerMixin, Logger):
    """A ``lightning.pytorch.loggers.Logger`` logging into a runyard run (docs/integrations.md)."""


__all__ = ["RunyardLogger"]
