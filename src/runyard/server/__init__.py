"""``runyard server``: one shared store over HTTP (FastAPI), for a team.

Modules: ``app`` (the application and its factories), ``state`` (settings and the store of a
running app), ``auth`` (API keys → :class:`~runyard.store.sql_auth.Principal`), ``errors``
(the ``{"error": {"code", "message"}}`` shape and exception mapping), ``limits`` (the request
body size limit), ``responses`` (orjson responses with non-finite float markers), ``batch``
(parsing a journal batch by hand: the hot path), ``models`` (request and documented response
shapes), ``serialize`` (records → JSON documents), ``routes/`` (one module per API area) and
``cli`` (``runyard server``, ``runyard server keys|entities``).

The server keeps no state between requests beyond the store: any number of worker processes
(``--workers``), on any number of hosts sharing one PostgreSQL, serve the same API.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_PREFIX", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy: `runyard --help` imports the server's CLI module, not FastAPI.
    if name in __all__:
        from runyard.server import app

        return getattr(app, name)
    raise AttributeError(name)
