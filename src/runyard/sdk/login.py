"""``runyard.login()``: W&B's ``wandb.login`` for a runyard server.

The key is checked with the server (``GET /api/v1/viewer``), then saved with the key's user
in the credentials file of ``runyard login`` (runyard/credentials.py), and the server becomes
this machine's store. Without any server (no ``host``, ``RUNYARD_BASE_URL``, ``WANDB_BASE_URL``
or saved default) there is nothing to log in to: runs use the embedded store.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from runyard.errors import AuthenticationError, UsageError


def server_for(host: str | None) -> str | None:
    """The server to log in to: ``host``, else the environment's, else the saved default."""
    from runyard import credentials
    from runyard.sdk.settings import WANDB_CLOUD_HOSTS

    wandb_url = os.environ.get("WANDB_BASE_URL") or ""
    if any(h in wandb_url.lower() for h in WANDB_CLOUD_HOSTS):
        wandb_url = ""
    url = host or os.environ.get("RUNYARD_BASE_URL") or wandb_url or credentials.default_server()
    if url and not credentials.is_http_url(url):
        raise UsageError(
            f"runyard.login: {url!r} is not a server URL; use http://HOST:PORT or https://..."
        )
    return credentials.server_url(url) if url else None


def login(
    key: str | None = None,
    host: str | None = None,
    relogin: bool | None = None,
    anonymous: str | None = None,
    timeout: int | None = None,
    verify: bool = False,
    force: bool | None = None,
    **_ignored: Any,
) -> bool:
    """Log in to a runyard server (W&B's ``wandb.login``); True once a valid key is saved.

    ``key``: the API key (default: ``RUNYARD_API_KEY``/``WANDB_API_KEY``, then the saved key;
    asked for on a terminal when there is none or ``relogin``). A key the server refuses raises
    :class:`runyard.errors.AuthenticationError`. ``anonymous``, ``timeout``, ``force`` are
    accepted for W&B's signature; ``verify`` is always done when a key is new."""
    from runyard import credentials

    url = server_for(host)
    if url is None:
        return True  # the embedded store needs no key
    saved = credentials.key_for(url)
    env_key = os.environ.get("RUNYARD_API_KEY") or (
        os.environ.get("WANDB_API_KEY") if os.environ.get("WANDB_BASE_URL") else None
    )
    if key is None and not relogin:
        key = env_key or saved
    if key is None:
        if not sys.stdin.isatty():
            raise UsageError(
                f"runyard.login: no API key for {url}; pass key=..., set RUNYARD_API_KEY, or "
                f"run `runyard login {url}` on a terminal"
            )
        import getpass

        key = getpass.getpass(f"API key for {url} (ry_...): ").strip()
    user = check_key(url, key)
    credentials.login(url, key, user=user)
    if not os.environ.get("RUNYARD_SILENT"):
        print(f"runyard: logged in to {url} as {user}", file=sys.stderr)
    return True


def check_key(url: str, key: str) -> str:
    """The key's user on ``url`` (raises ``AuthenticationError`` if the server refuses it)."""
    from runyard.store.http import HTTPStore

    who = HTTPStore(url, key).viewer()
    user = who.get("user")
    if not user:
        raise AuthenticationError(f"the runyard server at {url} did not say whose key this is")
    return str(user)
