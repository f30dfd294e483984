"""Upload and download URLs for run files, signed like presigned object-store URLs.

The wandb client PUTs each file to the URL ``createRunFiles`` handed out, and ``wandb.Api``
downloads a file from the URL ``run.files()`` gave, both without the API key. So a URL carries
its own proof: the key id it was issued to, an expiry, and an HMAC-SHA256 of the method, the run
path, the file name and the expiry, keyed with the stored hash of that key's secret. Any server
worker can check it (the hash is in the store, never sent anywhere), a revoked key voids its
URLs at once, a URL cannot be reused for another run, file or method, and the key's entities
are checked again when the URL is used. A server without auth issues plain URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from runyard.store.sql_auth import AuthStore, Principal

#: Where the door takes uploads: ``PUT {UPLOAD_PREFIX}/{entity}/{project}/{run}/{name}``.
UPLOAD_PREFIX = "/wandb-files"
#: How long an upload URL works: the client re-uploads a live file with its first URL, so for
#: as long as a run may last.
URL_LIFETIME = 30 * 24 * 3600.0


class BadSignature(Exception):
    """The URL was not issued by this server for this file, or has expired."""


def _message(method: str, entity: str, project: str, run_id: str, name: str, expires: int) -> bytes:
    return "\n".join((method, entity, project, run_id, name, str(expires))).encode()


def upload_url(
    base_url: str,
    auth_store: AuthStore | None,
    who: Principal,
    entity: str,
    project: str,
    run_id: str,
    name: str,
) -> str:
    """Where the client PUTs ``name`` of the run."""
    return _signed("PUT", base_url, auth_store, who, entity, project, run_id, name)


def download_url(
    base_url: str,
    auth_store: AuthStore | None,
    who: Principal,
    entity: str,
    project: str,
    run_id: str,
    name: str,
) -> str:
    """Where a client GETs ``name`` of the run."""
    return _signed("GET", base_url, auth_store, who, entity, project, run_id, name)


def _signed(
    method: str,
    base_url: str,
    auth_store: AuthStore | None,
    who: Principal,
    entity: str,
    project: str,
    run_id: str,
    name: str,
) -> str:
    path = "/".join(quote(p, safe="") for p in (entity, project, run_id))
    url = f"{base_url.rstrip('/')}{UPLOAD_PREFIX}/{path}/{quote(name, safe='/')}"
    if auth_store is None or who.key_id is None:
        return url
    found = auth_store.signing_key(who.key_id)
    if found is None:
        return url  # the key was revoked meanwhile: the upload will be refused
    secret = found[0]
    expires = int(time.time() + URL_LIFETIME)
    sig = hmac.new(
        secret.encode(), _message(method, entity, project, run_id, name, expires), hashlib.sha256
    ).hexdigest()
    return f"{url}?{urlencode({'key': who.key_id, 'expires': expires, 'sig': sig})}"


def check_signed(
    method: str,
    auth_store: AuthStore,
    entity: str,
    project: str,
    run_id: str,
    name: str,
    key_id: str | None,
    expires: str | None,
    sig: str | None,
) -> Principal:
    """Who the URL was signed for (as of now), or :class:`BadSignature` saying why not."""
    if not key_id or not expires or not sig:
        raise BadSignature("this file URL is not signed: use the URL the server answered, as it is")
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
        secret.encode(),
        _message(method, entity, project, run_id, name, deadline),
        hashlib.sha256,
    ).hexdigest()
    if not hmac.compare_digest(expected, sig):
        raise BadSignature(
            f"the file URL's signature does not match this run, file and method ({method})"
        )
    return who
