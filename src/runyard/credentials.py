"""API keys and the default server saved by ``runyard login`` (stdlib only).

The file is ``$RUNYARD_CONFIG_DIR/credentials.json`` (default
``$XDG_CONFIG_HOME/runyard/credentials.json``, i.e. ``~/.config/runyard/credentials.json``),
created with mode 0600 in a 0700 folder::

    {"default": "https://runyard.example.com",
     "servers": {"https://runyard.example.com": {"key": "ry_..."}}}

``default`` is the server that ``runyard login`` made the store of this machine; it is used
when neither ``RUNYARD_BASE_URL`` nor ``RUNYARD_STORE`` (nor an explicit store) says otherwise.
A key is looked up by the server's URL when ``RUNYARD_API_KEY`` is not set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

API_PREFIX = "/api/v1"


def is_http_url(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def server_url(url: str) -> str:
    """The canonical form of a server URL: no trailing ``/`` and no ``/api/v1`` suffix."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)].rstrip("/")
    return url


def credentials_path() -> Path:
    base = os.environ.get("RUNYARD_CONFIG_DIR")
    if base:
        return Path(base).expanduser() / "credentials.json"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    root = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return root / "runyard" / "credentials.json"


def load() -> dict[str, Any]:
    """The credentials document (empty if there is no file or it cannot be read)."""
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(data: dict[str, Any]) -> Path:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def default_server() -> str | None:
    """The server ``runyard login`` made this machine's store, if any."""
    value = load().get("default")
    return str(value) if value else None


def key_for(url: str) -> str | None:
    """The saved API key of the server at ``url``, if any."""
    servers = load().get("servers") or {}
    entry = servers.get(server_url(url)) if isinstance(servers, dict) else None
    if isinstance(entry, dict) and entry.get("key"):
        return str(entry["key"])
    return None


def api_key_for(url: str, explicit: str | None = None) -> str | None:
    """The key to send to ``url``: ``explicit``, else ``RUNYARD_API_KEY``, else the saved one."""
    return explicit or os.environ.get("RUNYARD_API_KEY") or key_for(url)


def user_for(url: str, key: str | None) -> str | None:
    """The user ``runyard login`` found ``key`` belongs to on ``url`` (None: not saved, or the
    saved key is another one)."""
    servers = load().get("servers") or {}
    entry = servers.get(server_url(url)) if isinstance(servers, dict) else None
    if isinstance(entry, dict) and entry.get("user") and entry.get("key") == key:
        return str(entry["user"])
    return None


def login(url: str, key: str | None, make_default: bool = True, user: str | None = None) -> Path:
    """Save ``key`` for ``url`` (and make it the default server, and the key's ``user``: the
    entity runs default to); returns the file's path."""
    data = load()
    servers = data.get("servers")
    if not isinstance(servers, dict):
        servers = {}
    url = server_url(url)
    entry: dict[str, str] = {"key": key} if key else {}
    if key and user:
        entry["user"] = user
    servers[url] = entry
    data["servers"] = servers
    if make_default:
        data["default"] = url
    return _save(data)


def logout(url: str | None = None) -> str | None:
    """Forget ``url``'s key (default: the default server); returns the URL forgotten."""
    data = load()
    target = server_url(url) if url else data.get("default")
    if not target:
        return None
    servers = data.get("servers")
    found = isinstance(servers, dict) and target in servers
    if isinstance(servers, dict):
        servers.pop(target, None)
    if data.get("default") == target:
        data.pop("default", None)
        found = True
    if found:
        _save(data)
        return str(target)
    return None
