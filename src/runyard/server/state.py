"""What a running app knows: its settings and its store (set once by ``create_app``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request

from runyard.store.sql import SQLStore
from runyard.store.sql_auth import AuthStore

MIB = 2**20


@dataclass(frozen=True)
class ServerSettings:
    store_url: str
    auth: bool
    files_root: Path | None
    max_body: int
    max_file: int
    alert_webhook: str | None = None


@dataclass
class AppState:
    settings: ServerSettings
    store: SQLStore
    auth_store: AuthStore
    #: the artifacts room over this store (runyard.artifacts.sql.SQLArtifactStore)
    artifacts: Any = None
    #: runyard.alerts.AlertDispatcher while the app runs, when a webhook is configured
    alerts: Any = None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.runyard
    return state


def get_store(request: Request) -> SQLStore:
    return app_state(request).store
