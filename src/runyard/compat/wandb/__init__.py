"""The W&B door: the unmodified ``wandb`` client (and the framework loggers built on it) logs
into a runyard server.

Mounted by ``runyard server``'s app with one call, :func:`mount`; everything else is inside:

* :mod:`.graphql`  the GraphQL engine: graphql-core parses, each top-level field has a
  resolver, answers are projected on the query (tolerant of query texts changing between client
  releases; unknown operations answer a GraphQL error, never an HTTP 5xx);
* :mod:`.resolvers` (runs), and the other resolver modules that register in the same table;
* :mod:`.runs`     what the wire messages become: journal batches through ``Store.apply``, the
  write path of runyard's own SDK, so a run is stored exactly as a native one;
* :mod:`.convert`  the pure wire-form ↔ stored-form conversions;
* :mod:`.context`  auth (Basic ``api:<key>`` → runyard keys and entities) and the resolver
  context; :mod:`.uploads` signed upload URLs; :mod:`.routes` the HTTP routes.

docs/wandb-compat.md says what works, what does not and how to migrate.
"""

from __future__ import annotations

import re

from fastapi import FastAPI

from runyard.compat.wandb.uploads import ARTIFACT_PREFIX, UPLOAD_PREFIX

__all__ = ["UPLOAD_PATH", "mount"]

#: Request paths that carry whole files (the server's larger body limit applies to them): run
#: files, artifact files and artifact manifests.
UPLOAD_PATH = re.compile(
    "^(" + re.escape(UPLOAD_PREFIX) + "/[^/]+/[^/]+/[^/]+/.+"
    "|" + re.escape(ARTIFACT_PREFIX) + "/[^/]+/(file|draft-manifest)/[^/]+)$"
)


def mount(app: FastAPI) -> None:
    """Serve the W&B wire protocol on ``app`` (its ``app.state.runyard`` holds the store)."""
    from runyard.compat.wandb.routes import router

    app.include_router(router)
