"""Content-addressed blob stores (run files, media, artifact contents).

The interface and its contract are in :mod:`runyard.blobs.base`; :class:`LocalBlobStore` keeps
blobs in a directory. :func:`open_blob_store` turns a location into a store: a path or a
``file://`` URL is local; other schemes (``s3://...``) come from implementations registered
with :func:`register_scheme`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from runyard.blobs.base import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    BlobDigestMismatchError,
    BlobError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    BlobWriter,
    InvalidBlobKeyError,
    ResumableUpload,
    check_upload_id,
    key_of_bytes,
    key_of_file,
    make_key,
    new_hasher,
    parse_key,
)
from runyard.blobs.local import LocalBlobStore

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "BlobDigestMismatchError",
    "BlobError",
    "BlobInfo",
    "BlobNotFoundError",
    "BlobStore",
    "BlobTooLargeError",
    "BlobWriter",
    "InvalidBlobKeyError",
    "LocalBlobStore",
    "ResumableUpload",
    "check_upload_id",
    "key_of_bytes",
    "key_of_file",
    "make_key",
    "new_hasher",
    "open_blob_store",
    "parse_key",
    "register_scheme",
]

_SCHEMES: dict[str, Callable[[str], BlobStore]] = {}


def _open_s3(url: str) -> BlobStore:
    from runyard.blobs.s3 import S3BlobStore  # boto3 is an extra: runyard[s3]

    return S3BlobStore.from_url(url)


def register_scheme(scheme: str, factory: Callable[[str], BlobStore]) -> None:
    """Make :func:`open_blob_store` open URLs ``<scheme>://...`` with ``factory(url)``."""
    _SCHEMES[scheme.lower()] = factory


def open_blob_store(location: str | os.PathLike[str], *, fsync: bool = False) -> BlobStore:
    """The blob store at ``location``: a directory path, ``file:///path``, or a URL whose
    scheme was registered (:func:`register_scheme`)."""
    if isinstance(location, os.PathLike):
        return LocalBlobStore(location, fsync=fsync)
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    if scheme == "file":
        return LocalBlobStore(Path(unquote(parts.path)), fsync=fsync)
    if len(scheme) <= 1:  # a plain path (or a Windows drive letter)
        return LocalBlobStore(Path(location), fsync=fsync)
    factory = _SCHEMES.get(scheme) or (_open_s3 if scheme == "s3" else None)
    if factory is None:
        known = ", ".join(sorted({"file", "s3", *_SCHEMES})) or "file"
        raise BlobError(
            f"no blob store for {scheme}:// URLs ({location!r}); known schemes: {known}, "
            "or a directory path"
        )
    return factory(location)
