"""``/health`` (no auth) and ``/viewer`` (who am I)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from runyard import __version__
from runyard.server.auth import principal
from runyard.server.models import Health, Viewer, doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.state import app_state
from runyard.store.sql import SCHEMA_REVISION
from runyard.store.sql_auth import Principal

router = APIRouter(tags=["server"])


@router.get("/health", response_class=ORJSONResponse, responses=doc(Health))
def health(request: Request) -> ORJSONResponse:
    """Liveness and version; needs no key."""
    return json_response(
        {
            "status": "ok",
            "version": __version__,
            "schema_revision": SCHEMA_REVISION,
            "auth": app_state(request).settings.auth,
        }
    )


@router.get("/viewer", response_class=ORJSONResponse, responses=doc(Viewer, 401))
def viewer(request: Request, who: Principal = Depends(principal)) -> ORJSONResponse:  # noqa: B008
    """The key's user, whether it is an admin, and the entities it may use."""
    if who.admin:
        state = app_state(request)
        names = {e for e, _, _ in state.store.list_projects()}
        names.update(e.name for e in state.auth_store.list_entities())
        entities = sorted(names)
    else:
        entities = sorted(who.entities)
    return json_response({"user": who.user, "admin": who.admin, "entities": entities})
