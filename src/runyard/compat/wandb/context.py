"""Who a W&B request acts as, and what every resolver may use.

The wandb client authenticates with HTTP Basic ``api:<key>`` (the key is the password); the door
also takes runyard's own ``Bearer ry_...``. The key is a runyard key, checked by the same
:class:`runyard.store.sql_auth.AuthStore` as ``/api/v1``, so a key reaches exactly the entities
it reaches there: its user and the user's teams (:meth:`Context.entity`). A server without auth
(a loopback ``runyard server``/``runyard ui``) treats every request as its local admin, whose
default entity is the server process's user, the default entity of runyard's own SDK on that
machine.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import cached_property

from runyard.compat.wandb.graphql import GraphQLFieldError
from runyard.compat.wandb.runs import RunWriter
from runyard.sdk.metadata import username
from runyard.server.state import AppState
from runyard.store.sql import SQLStore
from runyard.store.sql_auth import Principal

LOCAL_ADMIN = Principal(user=None, admin=True)


class AuthFailed(Exception):
    """No usable key: answered 401 with this message."""


def request_key(authorization: str | None) -> str | None:
    """The API key in an ``Authorization`` header (Basic ``api:<key>`` or Bearer)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    scheme = scheme.lower()
    value = value.strip()
    if scheme == "bearer":
        return value or None
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        _user, sep, key = decoded.partition(":")
        return key if sep and key else None
    return None


def authenticate(state: AppState, authorization: str | None) -> Principal:
    """The request's principal, or :class:`AuthFailed` saying what to do."""
    if not state.settings.auth:
        return LOCAL_ADMIN
    key = request_key(authorization)
    if key is None:
        raise AuthFailed(
            "this runyard server requires an API key: `wandb login --host <server URL> <key>` "
            "or WANDB_API_KEY=<key>, with a runyard key (`runyard server keys create --user "
            "NAME`, or ask the server's admin)"
        )
    found = state.auth_store.verify(key)
    if found is None:
        raise AuthFailed(
            "the API key is not a valid runyard key of this server (unknown, malformed or "
            "revoked): check WANDB_API_KEY / `wandb login --host`, or ask the server's admin "
            "for a new one"
        )
    return found


@dataclass
class Context:
    """What a resolver gets: the app's state, the caller and how it reached the server."""

    state: AppState
    who: Principal
    base_url: str

    @property
    def store(self) -> SQLStore:
        return self.state.store

    @cached_property
    def writer(self) -> RunWriter:
        return RunWriter(self.state.store)

    @property
    def default_entity(self) -> str:
        return self.who.user or username()

    def teams(self) -> list[str]:
        return sorted(self.who.entities - {self.who.user or ""})

    def entity(self, name: str | None) -> str:
        """``name`` (the caller's default entity when None) after checking the caller may use
        it; a :class:`GraphQLFieldError` naming the fix otherwise."""
        entity = name or self.default_entity
        if self.who.may_access(entity):
            return entity
        teams = ", ".join(self.teams()) or "none"
        raise GraphQLFieldError(
            f"user {self.who.user!r} may not access entity {entity!r}: use your own entity "
            f"({self.who.user}) or a team you belong to ({teams}); an admin can add you with "
            f"`runyard server entities add-member {entity} {self.who.user}`"
        )
