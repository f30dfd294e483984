"""runyard's Hydra plugins: the ``runyard`` sweeper and the ``runyard`` job callback.

Hydra imports every public module of this package when it scans for plugins; heavy code
lives in private (``_``-prefixed) modules and in ``runyard.integrations.hydra``.
"""
