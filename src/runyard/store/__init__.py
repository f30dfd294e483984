"""Persistence: the ``Store`` contract and its SQL implementation."""

from runyard.store.base import (
    JournalBatch,
    RunConflictError,
    RunQuery,
    RunRecord,
    Store,
    StoreError,
)

__all__ = ["JournalBatch", "RunConflictError", "RunQuery", "RunRecord", "Store", "StoreError"]


def open_store(url: str) -> Store:
    """The store at ``url``, shared by the threads of this process (one per URL and process).

    The schema is created or upgraded on first open. A forked child gets its own objects.
    """
    import os

    from runyard.store.sql import SQLStore, normalize_url

    key = (normalize_url(url), os.getpid())
    with _OPEN_LOCK:
        store = _OPEN.get(key)
        if store is None:
            store = _OPEN[key] = SQLStore(url)
        return store


def _forget_inherited_stores() -> None:
    global _OPEN_LOCK
    _OPEN_LOCK = threading.Lock()
    for store in list(_OPEN.values()):
        store.after_fork()
    _OPEN.clear()


import os as _os  # noqa: E402
import threading  # noqa: E402

_OPEN: dict[tuple[str, int], Store] = {}
_OPEN_LOCK = threading.Lock()
_os.register_at_fork(after_in_child=_forget_inherited_stores)
