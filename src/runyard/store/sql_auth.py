"""Who may use a server: entities (users and teams), team memberships and API keys.

Used by ``runyard server`` (its auth layer and admin routes) and by ``runyard server keys`` /
``runyard server entities``, which work directly on the store. The tables are created by the
Alembic revision ``0003``.

Keys are ``ry_<key id>_<secret>``. Only the key id and the SHA-256 of the secret are stored; the
whole key is shown once, when it is created. Secrets are 256-bit random strings, so a plain
(unsalted) SHA-256 is enough; it is compared with :func:`hmac.compare_digest`.

Rules: a key belongs to a user. It may read and write the entity named like its user and every
team the user is a member of. Admin keys may touch every entity and manage entities and keys.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from runyard.store.base import StoreError
from runyard.store.sql import SQLStore

_meta = sa.MetaData()

entities = sa.Table(
    "entities",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

memberships = sa.Table(
    "memberships",
    _meta,
    sa.Column("entity", sa.String(128), primary_key=True),
    sa.Column("user", sa.String(128), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    _meta,
    sa.Column("key_id", sa.String(32), primary_key=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("user", sa.String(128), nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("last_used_at", sa.Float),
    sa.Column("revoked_at", sa.Float),
)

ENTITY_KINDS = ("user", "team")
ROLES = ("member", "admin")
KEY_PREFIX = "ry_"
#: ``last_used_at`` is written at most this often per key (seconds), not on every request.
LAST_USED_RESOLUTION = 60.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class AuthError(StoreError):
    """An auth operation was refused (unknown entity, bad name...); the message says why."""


class NotFoundError(AuthError):
    """The entity or key does not exist."""


class ConflictError(AuthError):
    """The entity already exists (with another kind)."""


def check_name(name: str, what: str = "entity") -> str:
    """``name`` if it can name a user or team, else :class:`AuthError` saying what is allowed."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise AuthError(
            f"invalid {what} name {name!r}: use 1-128 letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit"
        )
    return name


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 32:
        return None
    return key_id, secret


@dataclass
class Member:
    user: str
    role: str


@dataclass
class EntityRecord:
    name: str
    kind: str
    created_at: float
    members: list[Member] = field(default_factory=list)


@dataclass
class KeyRecord:
    """An API key as stored (never with its secret)."""

    key_id: str
    user: str
    admin: bool
    description: str | None
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


@dataclass
class CreatedKey:
    """A new key: ``key`` is the whole secret key, shown only this once."""

    key: str
    key_id: str
    user: str
    admin: bool


@dataclass
class Principal:
    """Who a request acts as. ``user`` is None for the local admin of a server without auth."""

    user: str | None
    admin: bool
    key_id: str | None = None
    entities: frozenset[str] = frozenset()

    def may_access(self, entity: str) -> bool:
        return self.admin or entity in self.entities


class AuthStore:
    """Auth data over an :class:`SQLStore`'s engine (cheap to create; holds no state)."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store
        self.engine = store.engine

    # -- entities -------------------------------------------------------------------------------

    def _entity(self, conn: Connection, name: str) -> EntityRecord | None:
        row = conn.execute(
            sa.select(entities.c.name, entities.c.kind, entities.c.created_at).where(
                entities.c.name == name
            )
        ).first()
        if row is None:
            return None
        members = [
            Member(u, r)
            for u, r in conn.execute(
                sa.select(memberships.c.user, memberships.c.role)
                .where(memberships.c.entity == name)
                .order_by(memberships.c.user)
            ).all()
        ]
        return EntityRecord(row[0], row[1], float(row[2]), members)

    def _ensure_entity(self, conn: Connection, name: str, kind: str, now: float) -> EntityRecord:
        found = self._entity(conn, name)
        if found is not None:
            if found.kind != kind:
                raise ConflictError(
                    f"entity {name!r} exists and is a {found.kind}, not a {kind}; "
                    f"choose another name"
                )
            return found
        conn.execute(entities.insert().values(name=name, kind=kind, created_at=now))
        return EntityRecord(name, kind, now, [])

    def create_entity(self, name: str, kind: str) -> EntityRecord:
        """Create a user or team entity (a no-op if it exists with the same kind)."""
        check_name(name)
        if kind not in ENTITY_KINDS:
            raise AuthError(f"invalid entity kind {kind!r}: use 'user' or 'team'")
        with self.engine.begin() as conn:
            return self._ensure_entity(conn, name, kind, time.time())

    def get_entity(self, name: str) -> EntityRecord | None:
        with self.store._read() as conn:
            return self._entity(conn, name)

    def list_entities(self) -> list[EntityRecord]:
        with self.store._read() as conn:
            rows = conn.execute(
                sa.select(entities.c.name, entities.c.kind, entities.c.created_at).order_by(
                    entities.c.name
                )
            ).all()
            members: dict[str, list[Member]] = {}
            for entity, user, role in conn.execute(
                sa.select(memberships.c.entity, memberships.c.user, memberships.c.role).order_by(
                    memberships.c.entity, memberships.c.user
                )
            ).all():
                members.setdefault(entity, []).append(Member(user, role))
        return [EntityRecord(n, k, float(c), members.get(n, [])) for n, k, c in rows]

    def add_member(self, team: str, user: str, role: str = "member") -> EntityRecord:
        """Make ``user`` a member of ``team`` (the user entity is created if absent)."""
        check_name(user, "user")
        if role not in ROLES:
            raise AuthError(f"invalid role {role!r}: use 'member' or 'admin'")
        now = time.time()
        with self.engine.begin() as conn:
            found = self._entity(conn, team)
            if found is None:
                raise NotFoundError(
                    f"no team {team!r}; create it first (`runyard server entities create "
                    f"{team} --team` or POST /api/v1/entities)"
                )
            if found.kind != "team":
                raise AuthError(f"entity {team!r} is a user; only teams have members")
            self._ensure_entity(conn, user, "user", now)
            conn.execute(
                memberships.delete().where(memberships.c.entity == team, memberships.c.user == user)
            )
            conn.execute(
                memberships.insert().values(entity=team, user=user, role=role, created_at=now)
            )
            entity = self._entity(conn, team)
        assert entity is not None
        return entity

    def remove_member(self, team: str, user: str) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                memberships.delete().where(memberships.c.entity == team, memberships.c.user == user)
            )
            return bool(result.rowcount)

    def allowed_entities(self, user: str) -> frozenset[str]:
        """The entities a key of ``user`` may touch: its own and its teams."""
        with self.store._read() as conn:
            return self._allowed(conn, user)

    @staticmethod
    def _allowed(conn: Connection, user: str) -> frozenset[str]:
        teams = conn.execute(
            sa.select(memberships.c.entity).where(memberships.c.user == user)
        ).scalars()
        return frozenset([user, *teams])

    # -- keys -----------------------------------------------------------------------------------

    def create_key(self, user: str, *, admin: bool = False, description: str = "") -> CreatedKey:
        """A new key for ``user`` (whose user entity is created if absent)."""
        check_name(user, "user")
        key_id = secrets.token_hex(8)
        # Letters, digits and '_' only: the wandb client checks a key by what follows its first
        # '-' (on-prem keys are 'prefix-secret'), so a '-' inside could make it refuse the key.
        secret = secrets.token_urlsafe(32).replace("-", "_")
        now = time.time()
        with self.engine.begin() as conn:
            self._ensure_entity(conn, user, "user", now)
            conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    secret_hash=hash_secret(secret),
                    user=user,
                    admin=admin,
                    description=description or None,
                    created_at=now,
                )
            )
        return CreatedKey(f"{KEY_PREFIX}{key_id}_{secret}", key_id, user, admin)

    def list_keys(self, user: str | None = None) -> list[KeyRecord]:
        stmt = sa.select(
            api_keys.c.key_id,
            api_keys.c.user,
            api_keys.c.admin,
            api_keys.c.description,
            api_keys.c.created_at,
            api_keys.c.last_used_at,
            api_keys.c.revoked_at,
        ).order_by(api_keys.c.created_at, api_keys.c.key_id)
        if user is not None:
            stmt = stmt.where(api_keys.c.user == user)
        with self.store._read() as conn:
            return [_to_key(r._mapping) for r in conn.execute(stmt).all()]

    def revoke_key(self, key_id: str) -> KeyRecord:
        """Revoke a key (it stops working at once); :class:`NotFoundError` if unknown."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None:
            raise NotFoundError(f"no API key {key_id!r}; list them with `runyard server keys list`")
        return _to_key(row._mapping)

    def has_keys(self) -> bool:
        """Whether any key that works exists (the server prints how to make the first)."""
        with self.store._read() as conn:
            found = conn.execute(
                sa.select(api_keys.c.key_id).where(api_keys.c.revoked_at.is_(None)).limit(1)
            ).first()
        return found is not None

    def verify(self, key: str) -> Principal | None:
        """The principal of a valid, unrevoked key; None for anything else."""
        parts = split_key(key)
        if parts is None:
            return None
        key_id, secret = parts
        with self.store._read() as conn:
            row = conn.execute(
                sa.select(
                    api_keys.c.secret_hash,
                    api_keys.c.user,
                    api_keys.c.admin,
                    api_keys.c.revoked_at,
                    api_keys.c.last_used_at,
                ).where(api_keys.c.key_id == key_id)
            ).first()
            if row is None:
                # Spend the same time as a real comparison.
                hmac.compare_digest(hash_secret(secret), "0" * 64)
                return None
            secret_hash, user, admin, revoked_at, last_used_at = row
            if not hmac.compare_digest(hash_secret(secret), secret_hash) or revoked_at is not None:
                return None
            allowed = self._allowed(conn, user)
        now = time.time()
        if last_used_at is None or now - float(last_used_at) > LAST_USED_RESOLUTION:
            self._touch(key_id, now)
        return Principal(user=user, admin=bool(admin), key_id=key_id, entities=allowed)

    def signing_key(self, key_id: str) -> tuple[str, Principal] | None:
        """``(stored hash of the secret, principal)`` of an unrevoked key, to sign and check
        URLs issued to that key (the W&B door's upload URLs); None for an unknown or revoked
        key. The hash never leaves the server, so only the server can sign; revoking the key
        voids every URL signed with it, and the principal's entities are those of now."""
        with self.store._read() as conn:
            row = conn.execute(
                sa.select(
                    api_keys.c.secret_hash,
                    api_keys.c.user,
                    api_keys.c.admin,
                    api_keys.c.revoked_at,
                ).where(api_keys.c.key_id == key_id)
            ).first()
            if row is None or row[3] is not None:
                return None
            allowed = self._allowed(conn, row[1])
        return str(row[0]), Principal(
            user=row[1], admin=bool(row[2]), key_id=key_id, entities=allowed
        )

    def _touch(self, key_id: str, now: float) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    api_keys.update().where(api_keys.c.key_id == key_id).values(last_used_at=now)
                )
        except sa.exc.OperationalError:  # pragma: no cover - bookkeeping only, never fatal
            pass

    # -- journals -------------------------------------------------------------------------------

    def journal_entity(self, journal_id: str) -> str | None:
        """The entity of the run a journal writes to, None for a journal never applied."""
        from runyard.store import schema as S

        stmt = (
            sa.select(S.projects.c.entity)
            .select_from(S.journals)
            .join(S.runs, S.runs.c.pk == S.journals.c.run_pk)
            .join(S.projects, S.projects.c.id == S.runs.c.project_id)
            .where(S.journals.c.id == journal_id)
        )
        with self.store._read() as conn:
            found = conn.execute(stmt).scalar()
        return None if found is None else str(found)


def _to_key(row: Any) -> KeyRecord:
    return KeyRecord(
        key_id=row["key_id"],
        user=row["user"],
        admin=bool(row["admin"]),
        description=row["description"],
        created_at=float(row["created_at"]),
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )
