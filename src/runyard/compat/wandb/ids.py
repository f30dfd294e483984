"""Opaque ids handed to W&B clients (W&B calls them storage ids: ``run.id`` in ``wandb.Api``).

A run's id names its path and, in ``upsertBucket``'s answer, the writer session it belongs to:
the client sends that id back with each later ``upsertBucket`` of the session, which is how the
door tells a session's updates from a resume (a resuming client sends the id that
``RunResumeStatus`` gave it, which names no session). See :mod:`runyard.compat.wandb.runs`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import orjson


def _encode(parts: list[str]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def _decode(text: str) -> list[str] | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        parts = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        return None
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        return None
    return parts


@dataclass(frozen=True)
class RunRef:
    entity: str
    project: str
    run_id: str
    session: str | None = None


def run_storage_id(entity: str, project: str, run_id: str, session: str | None = None) -> str:
    parts = ["Run", entity, project, run_id]
    if session:
        parts.append(session)
    return _encode(parts)


def parse_run_storage_id(text: str | None) -> RunRef | None:
    if not text:
        return None
    parts = _decode(text)
    if not parts or parts[0] != "Run" or len(parts) not in (4, 5):
        return None
    return RunRef(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None)


def node_id(kind: str, *names: str) -> str:
    """An id for other nodes (projects, entities, sweeps, agents): ``kind`` and names."""
    return _encode([kind, *names])


def padded_node_id(kind: str, *names: str) -> str:
    """:func:`node_id` in standard, padded base64, as W&B's own ids are: the client decodes an
    artifact's id to hex for its ``wandb-artifact://<hex>/path`` references (and encodes it
    back to look the artifact up), which needs the padding. :func:`parse_node_id` reads both."""
    return base64.standard_b64encode(orjson.dumps([kind, *names])).decode()


def parse_node_id(text: str | None, kind: str) -> list[str] | None:
    if not text:
        return None
    parts = _decode(text)
    if not parts or parts[0] != kind:
        return None
    return parts[1:]
