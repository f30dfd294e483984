"""Administration (admin keys): entities (users, teams), memberships, API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from runyard.server.auth import admin_principal
from runyard.server.models import (
    CreatedKeyOut,
    EntityIn,
    EntityOut,
    KeyIn,
    KeyOut,
    MemberIn,
    doc,
)
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.serialize import nested, record
from runyard.server.state import app_state
from runyard.store.sql_auth import Principal

router = APIRouter(tags=["admin"])

Admin = Annotated[Principal, Depends(admin_principal)]
EntityName = Annotated[str, Path(min_length=1, max_length=128)]
KeyId = Annotated[str, Path(min_length=1, max_length=32)]


@router.get("/entities", response_class=ORJSONResponse, responses=doc(list[EntityOut], 401, 403))
def list_entities(request: Request, who: Admin) -> ORJSONResponse:
    """Users and teams with their members."""
    return json_response([nested(e) for e in app_state(request).auth_store.list_entities()])


@router.post(
    "/entities", response_class=ORJSONResponse, responses=doc(EntityOut, 401, 403, 409, 422)
)
def create_entity(body: EntityIn, request: Request, who: Admin) -> ORJSONResponse:
    """Create a user or a team (a no-op if it exists with the same kind; 409 otherwise)."""
    entity = app_state(request).auth_store.create_entity(body.name, body.kind)
    return json_response(nested(entity))


@router.post(
    "/entities/{name}/members",
    response_class=ORJSONResponse,
    responses=doc(EntityOut, 400, 401, 403, 404, 422),
)
def add_member(name: EntityName, body: MemberIn, request: Request, who: Admin) -> ORJSONResponse:
    """Add a user to a team (the user entity is created if absent)."""
    entity = app_state(request).auth_store.add_member(name, body.user, body.role)
    return json_response(nested(entity))


@router.get("/keys", response_class=ORJSONResponse, responses=doc(list[KeyOut], 401, 403))
def list_keys(
    request: Request,
    who: Admin,
    user: Annotated[str | None, Query(max_length=128)] = None,
) -> ORJSONResponse:
    """API keys (never their secrets)."""
    return json_response([record(k) for k in app_state(request).auth_store.list_keys(user)])


@router.post("/keys", response_class=ORJSONResponse, responses=doc(CreatedKeyOut, 401, 403, 422))
def create_key(body: KeyIn, request: Request, who: Admin) -> ORJSONResponse:
    """A new key for a user (created if absent); the response is the only time the secret
    is shown."""
    created = app_state(request).auth_store.create_key(
        body.user, admin=body.admin, description=body.description
    )
    return json_response(record(created))


@router.delete(
    "/keys/{key_id}", response_class=ORJSONResponse, responses=doc(KeyOut, 401, 403, 404)
)
def revoke_key(key_id: KeyId, request: Request, who: Admin) -> ORJSONResponse:
    """Revoke a key: it stops working at once."""
    return json_response(record(app_state(request).auth_store.revoke_key(key_id)))
