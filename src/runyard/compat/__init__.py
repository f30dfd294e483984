"""Doors for other trackers' own clients into a runyard server.

``runyard.compat.wandb`` serves the W&B wire protocol (GraphQL, the file stream, uploads), so
that the unmodified ``wandb`` client, and the framework loggers built on it, log into runyard's
store. Each door translates its protocol into runyard's own :class:`runyard.store.base.Store`
calls; nothing below it knows which client wrote a run.
"""
