"""Hydra integration: the job callback (``hydra/callbacks=runyard``) and the sweeper
(``hydra/sweeper=runyard``)."""
