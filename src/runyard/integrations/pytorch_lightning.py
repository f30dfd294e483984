"""``RunyardLogger`` for the standalone ``pytorch_lightning`` package (``import
pytorch_lightning as pl``): the same logger as ``runyard.integrations.lightning``, built on
``pytorch_lightning.loggers.Logger`` so that ``pl.Trainer`` accepts it. See docs/integrations.md.
"""

from __future__ import annotations

try:
    from pytorch_lightning.loggers.logger import Logger
except ImportError as exc:  # say what to install, not just the missing module
    raise ImportError(
        f"runyard.integrations.pytorch_lightning needs the pytorch_lightning package ({exc}); "
        f"install it with: pip install pytorch-lightning"
    ) from exc

from runyard.integrations._lightning_logger import RunyardLoggerMixin


class RunyardLogger(RunyardLoggerMixin, Logger):
    """A ``pytorch_lightning.loggers.Logger`` logging into a runyard run."""


__all__ = ["RunyardLogger"]
