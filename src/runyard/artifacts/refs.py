"""References: artifact entries that point at content stored elsewhere, tracked, not copied.

``s3://bucket/key`` or ``s3://bucket/prefix/`` (every object under the prefix): one entry per
object with its ETag as the digest (and ``extra.versionID`` when the bucket is versioned), read
with boto3 (the ``runyard[s3]`` extra; ``AWS_ENDPOINT_URL`` and the usual AWS variables pick the
endpoint and credentials). ``file:///path`` (a file or a directory): the base64 MD5 of each file.
With ``checksum=False`` a reference is one entry whose digest is the URI itself (W&B's rule).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from runyard.artifacts.manifest import ArtifactError, ManifestEntry, check_path


def s3_client() -> Any:
    try:
        import boto3
    except ImportError:
        raise ArtifactError("s3:// references need boto3: pip install 'runyard[s3]'") from None
    return boto3.client("s3")


def _md5_b64(path: str) -> str:
    with open(path, "rb") as fh:
        return base64.b64encode(hashlib.file_digest(fh, "md5").digest()).decode()


def reference_entries(
    uri: str, name: str | None, checksum: bool, max_objects: int | None
) -> list[ManifestEntry]:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not checksum:
        base = name or (parts.path.rstrip("/").rsplit("/", 1)[-1] or parts.netloc)
        return [ManifestEntry(check_path(base), uri, 0, ref=uri)]
    limit = max_objects or 10_000_000
    if scheme == "s3":
        client = s3_client()
        bucket, key = parts.netloc, parts.path.lstrip("/")
        entries: list[ManifestEntry] = []
        single: dict[str, Any] | None = None
        if key and not key.endswith("/"):
            try:
                single = client.head_object(Bucket=bucket, Key=key)
            except Exception:
                single = None
        if single is not None:
            path = name or key.rsplit("/", 1)[-1]
            extra = {"etag": single["ETag"]}
            if single.get("VersionId"):
                extra["versionID"] = single["VersionId"]
            return [
                ManifestEntry(
                    check_path(path),
                    single["ETag"].strip('"'),
                    int(single["ContentLength"]),
                    ref=f"s3://{bucket}/{key}",
                    extra=extra,
                )
            ]
        prefix = key if not key or key.endswith("/") else key + "/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) :]
                if not rel or rel.endswith("/"):
                    continue
                path = f"{name.rstrip('/')}/{rel}" if name else rel
                entries.append(
                    ManifestEntry(
                        check_path(path),
                        obj["ETag"].strip('"'),
                        int(obj["Size"]),
                        ref=f"s3://{bucket}/{obj['Key']}",
                        extra={"etag": obj["ETag"]},
                    )
                )
                if len(entries) > limit:
                    raise ArtifactError(
                        f"{uri} has more than max_objects={limit} objects: raise max_objects"
                    )
        if not entries:
            raise ArtifactError(f"{uri}: no object at that key or under that prefix")
        return entries
    if scheme == "file":
        local = Path(unquote(parts.path))
        if local.is_file():
            return [
                ManifestEntry(
                    check_path(name or local.name),
                    _md5_b64(str(local)),
                    local.stat().st_size,
                    ref=local.as_uri(),
                )
            ]
        if not local.is_dir():
            raise ArtifactError(f"{uri}: no such file or directory")
        out: list[ManifestEntry] = []
        for dirpath, _dirs, files in os.walk(local):
            for fname in sorted(files):
                full = Path(dirpath) / fname
                rel = full.relative_to(local).as_posix()
                path = f"{name.rstrip('/')}/{rel}" if name else rel
                out.append(
                    ManifestEntry(
                        check_path(path),
                        _md5_b64(str(full)),
                        full.stat().st_size,
                        ref=full.as_uri(),
                    )
                )
                if len(out) > limit:
                    raise ArtifactError(f"{uri} has more than max_objects={limit} files")
        return out
    raise ArtifactError(
        f"add_reference({uri!r}): runyard tracks s3:// and file:// references "
        "(http(s):// ones are not supported yet)"
    )


def fetch_reference(entry: ManifestEntry, dest: Path) -> None:
    """Download a checksummed reference to ``dest``, checking it still is what was logged."""
    assert entry.ref is not None
    parts = urlsplit(entry.ref)
    tmp = dest.with_name(f".{dest.name}.runyard-ref")
    if parts.scheme == "s3":
        client = s3_client()
        args: dict[str, Any] = {"Bucket": parts.netloc, "Key": parts.path.lstrip("/")}
        if entry.extra.get("versionID"):
            args["VersionId"] = entry.extra["versionID"]
        obj = client.get_object(**args)
        etag = obj["ETag"].strip('"')
        with open(tmp, "wb") as out:
            for chunk in obj["Body"].iter_chunks(1 << 20):
                out.write(chunk)
        if etag != entry.digest:
            tmp.unlink()
            raise ArtifactError(
                f"reference {entry.ref} changed since it was logged (ETag {etag}, logged "
                f"{entry.digest}); log a new version or use allow_missing_references=True"
            )
    elif parts.scheme == "file":
        shutil.copyfile(unquote(parts.path), tmp)
        if _md5_b64(str(tmp)) != entry.digest:
            tmp.unlink()
            raise ArtifactError(f"reference {entry.ref} changed since it was logged")
    else:
        raise ArtifactError(f"cannot download reference {entry.ref}")
    os.replace(tmp, dest)
