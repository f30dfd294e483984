"""File URLs the door hands out (run files, artifact files and manifests), signed like
presigned object-store URLs.

The wandb client PUTs each file to the URL ``createRunFiles``/``createArtifactFiles`` handed
out, and downloads files (``wandb.Api``, ``use_artifact``) from the URLs the server gave, all
without its API key. So a URL carries its own proof: the key id it was issued to, an expiry, and
an HMAC-SHA256 of the method, the path and the expiry, keyed with the stored hash of that key's
secret. Any server worker can check it (the hash is in the store, never sent anywhere), a
revoked key voids its URLs at once, a URL cannot be reused for another path or method, and the
key's entities are checked again when the URL is used. A server without auth issues plain URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from urllib.parse import quote, urlencode

from runyard.store.sql_auth import AuthStore, Principal

#: Run files: ``{UPLOAD_PREFIX}/{entity}/{project}/{run}/{name}`` (PUT and GET).
UPLOAD_PREFIX = "/wandb-files"
#: Artifact files and manifests: ``{ARTIFACT_PREFIX}/{entity}/...`` (see ``artifacts.py``).
ARTIFACT_PREFIX = "/wandb-artifacts"
#: How long a URL works: the client re-uploads a live file with its first URL, so for as long
#: as a run may last.
URL_LIFETIME = 30 * 24 * 3600.0


class BadSignature(Exception):
    """The URL was not issued by this server for this path, or has expired."""


def _message(method: str, path: str, expires: int) -> bytes:
    return f"{method}\n{path}\n{expires}".encode()


def path_of(*parts: str) -> str:
    """A URL path from its decoded parts (``/`` inside the last part is kept)."""
    return "/".join(parts)


def signed_url(
    base_url: str,
    path: str,
    method: str,
    auth_store: AuthStore | None,
    who: Principal,
    extra: Mapping[str, str] | None = None,
) -> str:
    """``base_url + path`` (``path`` decoded, it is quoted here), signed for ``method``."""
    url = base_url.rstrip("/") + quote(path, safe="/")
    query = dict(extra or {})
    if auth_store is not None and who.key_id is not None:
        found = auth_store.signing_key(who.key_id)
        if found is not None:  # a key revoked meanwhile: the request will be refused
            expires = int(time.time() + URL_LIFETIME)
            sig = hmac.new(
                found[0].encode(), _message(method, path, expires), hashlib.sha256
            ).hexdigest()
            query.update({"key": who.key_id, "expires": str(expires), "sig": sig})
    return f"{url}?{urlencode(query)}" if query else url


def check_signed(
    method: str, path: str, query: Mapping[str, str], auth_store: AuthStore
) -> Principal:
    """Who the URL was signed for (with the entities of now), or :class:`BadSignature`."""
    key_id, expires, sig = query.get("key"), query.get("expires"), query.get("sig")
    if not key_id or not expires or not sig:
        raise BadSignature("this file URL is not signed: use the URL the server answered")
    try:
        deadline = int(expires)
    except ValueError:
        raise BadSignature("the file URL's expiry is not a number") from None
    if deadline < time.time():
        raise BadSignature("the file URL has expired: ask the server for a new one")
    found = auth_store.signing_key(key_id)
    if found is None:
        raise BadSignature("the key this file URL was issued to is unknown or revoked")
    secret, who = found
    expected = hmac.new(
        secret.encode(), _message(method, path, deadline), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, sig):
        raise BadSignature(f"the file URL's signature does not match this path and {method}")
    return who


def run_file_path(entity: str, project: str, run_id: str, name: str) -> str:
    return path_of(UPLOAD_PREFIX, entity, project, run_id, name)
