"""Persistence: the ``Store`` contract, its SQL implementation and its HTTP client."""

import os
import threading
from pathlib import Path

from runyard.store.base import (
    JournalBatch,
    RunConflictError,
    RunQuery,
    RunRecord,
    Store,
    StoreError,
)

__all__ = [
    "JournalBatch",
    "RunConflictError",
    "RunQuery",
    "RunRecord",
    "Store",
    "StoreError",
    "open_store",
    "resolve_store_url",
]


def open_store(url: str, api_key: str | None = None) -> Store:
    """The store at ``url``, shared by the threads of this process (one per URL and process).

    ``http://`` and ``https://`` URLs are a ``runyard server`` (:class:`HTTPStore`; ``api_key``
    defaults to ``RUNYARD_API_KEY``, then to the key ``runyard login`` saved); anything else is
    an SQLAlchemy URL (:class:`SQLStore`), whose schema is created or upgraded on first open.
    A forked child gets its own objects.
    """
    from runyard.credentials import is_http_url, server_url

    if is_http_url(url):
        from runyard.store.http import HTTPStore

        key: tuple[str, int, str | None] = (server_url(url), os.getpid(), api_key)
        with _OPEN_LOCK:
            store = _OPEN.get(key)
            if store is None:
                store = _OPEN[key] = HTTPStore(url, api_key)
            return store

    from runyard.store.sql import SQLStore, normalize_url

    key = (normalize_url(url), os.getpid(), None)
    with _OPEN_LOCK:
        store = _OPEN.get(key)
        if store is None:
            store = _OPEN[key] = SQLStore(url)
        return store


def resolve_store_url(explicit: str | None, root: Path) -> str:
    """Which store to use: ``explicit`` (``--store``, ``init(settings=...)``), else
    ``RUNYARD_BASE_URL`` (a server), else ``RUNYARD_STORE``, else the server ``runyard login``
    made the default, else the embedded SQLite store in ``root``."""
    from runyard.credentials import default_server
    from runyard.store.locate import default_store_url

    return (
        explicit
        or os.environ.get("RUNYARD_BASE_URL")
        or os.environ.get("RUNYARD_STORE")
        or default_server()
        or default_store_url(root)
    )


def _forget_inherited_stores() -> None:
    global _OPEN_LOCK
    _OPEN_LOCK = threading.Lock()
    for store in list(_OPEN.values()):
        store.after_fork()
    _OPEN.clear()


_OPEN: dict[tuple[str, int, str | None], Store] = {}
_OPEN_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_forget_inherited_stores)
