"""Who a request acts as: ``Authorization: Bearer ry_<key id>_<secret>`` → a Principal.

Without auth (a server on a loopback address started without ``--auth``) every request is
the local admin. With auth: 401 for a missing, malformed, unknown or revoked key; 403 for an
entity the key's user may not touch (its own entity and its teams), and for admin routes
called without an admin key. Every message says what to do.
"""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from runyard.server.errors import ApiError
from runyard.server.state import app_state
from runyard.store.sql_auth import Principal

LOCAL_ADMIN = Principal(user=None, admin=True)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key, `ry_<key id>_<secret>` (`runyard server keys create`).",
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="runyard"'}


def unauthorized(message: str) -> ApiError:
    return ApiError(401, message, "unauthorized", headers=_CHALLENGE)


def principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
) -> Principal:
    """The request's principal (a FastAPI dependency; runs in the threadpool: it reads the
    key from the store)."""
    state = app_state(request)
    if not state.settings.auth:
        return LOCAL_ADMIN
    if credentials is None:
        raise unauthorized(
            "this server requires an API key: send 'Authorization: Bearer ry_...' "
            "(create one with `runyard server keys create --user NAME`, or ask the server's "
            "admin; log in with `runyard login`)"
        )
    found = state.auth_store.verify(credentials.credentials)
    if found is None:
        raise unauthorized(
            "the API key is unknown, malformed or revoked: check the key you sent "
            "(RUNYARD_API_KEY) or ask the server's admin for a new one"
        )
    return found


def require_entity(who: Principal, entity: str) -> None:
    """403 unless ``who`` may read and write ``entity``."""
    if who.may_access(entity):
        return
    teams = ", ".join(sorted(who.entities - {who.user or ""})) or "none"
    raise ApiError(
        403,
        f"user {who.user!r} may not access entity {entity!r}: use your own entity "
        f"({who.user}) or a team you belong to ({teams}); "
        f"an admin can add you with `runyard server entities add-member {entity} {who.user}`",
        "forbidden",
    )


def require_admin(who: Principal) -> None:
    if who.admin:
        return
    raise ApiError(
        403,
        f"this route needs an admin key and the key of user {who.user!r} is not one; "
        f"an admin key is made with `runyard server keys create --admin --user NAME`",
        "forbidden",
    )


def admin_principal(who: Principal = Depends(principal)) -> Principal:  # noqa: B008
    require_admin(who)
    return who
