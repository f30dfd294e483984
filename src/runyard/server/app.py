"""The FastAPI application.

``create_app(store_url, ...)`` builds an app over one store; :func:`app_from_env` builds it
from ``RUNYARD_SERVER_*`` variables, which is how ``runyard server`` starts uvicorn (and how to
run it under any ASGI server: ``uvicorn --factory runyard.server.app:app_from_env``):

=============================  ===================================================
``RUNYARD_SERVER_STORE``       store URL (required)
``RUNYARD_SERVER_AUTH``        ``1``/``0`` (default ``1``: keys required)
``RUNYARD_SERVER_FILES_ROOT``  where run files are kept (default: the store's)
``RUNYARD_SERVER_MAX_BODY_MB`` request body limit (default 64)
``RUNYARD_SERVER_MAX_FILE_MB`` file upload limit (default 1024)
``RUNYARD_SERVER_ARTIFACTS``   artifact blobs: a directory or ``s3://bucket/prefix``
``RUNYARD_SERVER_PRESIGN``     ``1``: presigned download URLs (s3:// artifacts)
``RUNYARD_SERVER_ALERT_WEBHOOK`` URL that alerts (``run.alert``) are posted to
=============================  ===================================================
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from runyard import __version__
from runyard.compat import wandb as wandb_compat
from runyard.server.dashboard import mount_dashboard
from runyard.server.errors import install_handlers
from runyard.server.limits import BodySizeLimit
from runyard.server.responses import ORJSONResponse
from runyard.server.routes import (
    admin,
    analysis,
    artifacts,
    files,
    journals,
    media,
    meta,
    runs,
    sweeps,
    workspace,
)
from runyard.server.state import MIB, AppState, ServerSettings
from runyard.store import open_store
from runyard.store.sql import SQLStore, normalize_url
from runyard.store.sql_auth import AuthStore

API_PREFIX = "/api/v1"
DEFAULT_MAX_BODY_MB = 64.0
DEFAULT_MAX_FILE_MB = 1024.0


def open_server_store(store_url: str, files_root: str | os.PathLike[str] | None) -> SQLStore:
    """The store the server serves (migrated to the current schema)."""
    if files_root:
        return SQLStore(store_url, files_root=files_root)
    store = open_store(store_url)
    if not isinstance(store, SQLStore):  # pragma: no cover - open_store returns SQL stores
        raise TypeError(f"the server needs an SQL store, got {type(store).__name__}")
    return store


def create_app(
    store_url: str,
    *,
    auth: bool = True,
    files_root: str | os.PathLike[str] | None = None,
    max_body_mb: float = DEFAULT_MAX_BODY_MB,
    max_file_mb: float = DEFAULT_MAX_FILE_MB,
    artifacts_location: str | None = None,
    presign: bool = False,
    alert_webhook: str | None = None,
) -> FastAPI:
    """The API over the store at ``store_url`` (migrations run here, once per process).

    With ``alert_webhook``, each worker runs an alert dispatcher (runyard.alerts) while the
    app runs: alerts stored by any worker or replica are posted there, once each."""
    if alert_webhook:
        from runyard.alerts.webhook import WebhookNotifier

        WebhookNotifier(alert_webhook).close()  # a malformed URL fails now, not at first alert
    store = open_server_store(store_url, files_root)
    settings = ServerSettings(
        store_url=normalize_url(store_url),
        auth=auth,
        files_root=Path(files_root) if files_root else None,
        max_body=int(max_body_mb * MIB),
        max_file=int(max_file_mb * MIB),
        alert_webhook=alert_webhook or None,
    )
    app = FastAPI(
        lifespan=_lifespan,
        title="runyard server",
        version=__version__,
        description="Experiment tracking and sweeps: one shared store over HTTP. "
        "See docs/server-api.md.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        default_response_class=ORJSONResponse,
    )
    app.state.runyard = AppState(settings=settings, store=store, auth_store=AuthStore(store))
    app.state.runyard.artifacts = artifacts.open_artifacts(store, artifacts_location, presign)
    install_handlers(app)
    artifacts.install_handlers(app)
    for module in (meta, journals, runs, files, sweeps, admin, analysis, workspace, artifacts):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(media.router, prefix=API_PREFIX)  # the dashboard's media panels
    wandb_compat.mount(app)  # the W&B wire protocol: /graphql, /files/..., /wandb-files/...
    mount_dashboard(app)  # /, /index.html and /assets/*: none overlap /api/v1
    app.add_middleware(
        BodySizeLimit,
        max_body=settings.max_body,
        max_file=settings.max_file,
        file_paths=[wandb_compat.UPLOAD_PATH],
    )
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: AppState = app.state.runyard
    url = state.settings.alert_webhook
    if url:
        from runyard.alerts import AlertDispatcher, WebhookNotifier

        state.alerts = AlertDispatcher(state.store, WebhookNotifier(url))
    try:
        yield
    finally:
        if state.alerts is not None:
            state.alerts.close(timeout=2.0)
            state.alerts = None


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a number (megabytes)") from None


def app_from_env() -> FastAPI:
    """The app configured by ``RUNYARD_SERVER_*`` variables (a uvicorn ``--factory``)."""
    store_url = os.environ.get("RUNYARD_SERVER_STORE")
    if not store_url:
        raise RuntimeError("set RUNYARD_SERVER_STORE to the store URL the server should serve")
    return create_app(
        store_url,
        auth=_env_bool("RUNYARD_SERVER_AUTH", True),
        files_root=os.environ.get("RUNYARD_SERVER_FILES_ROOT") or None,
        max_body_mb=_env_float("RUNYARD_SERVER_MAX_BODY_MB", DEFAULT_MAX_BODY_MB),
        max_file_mb=_env_float("RUNYARD_SERVER_MAX_FILE_MB", DEFAULT_MAX_FILE_MB),
        artifacts_location=os.environ.get("RUNYARD_SERVER_ARTIFACTS") or None,
        presign=_env_bool("RUNYARD_SERVER_PRESIGN", False),
        alert_webhook=os.environ.get("RUNYARD_SERVER_ALERT_WEBHOOK") or None,
    )
