"""S3BlobStore: blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, moto...), via boto3.

Layout under ``s3://bucket/prefix``::

    <prefix>/sha256/ab/abcdef0123...   one object per blob
    <prefix>/.uploads/<upload id>      a resumable upload (an S3 multipart upload) until complete

Why boto3: resumable uploads need S3's multipart API itself (``ListMultipartUploads`` to find an
upload a killed process started, ``ListParts`` for its offset, ``UploadPart``,
``CompleteMultipartUpload``) and presigned URLs; boto3 exposes all of it, is maintained by AWS,
is the client every S3-compatible server tests against, and its managed ``copy`` does the
multipart server-side copy above 5 GB. (obstore is faster per request but hides multipart
state inside one process, so an upload cannot be resumed by another; s3fs adds fsspec and an
async layer on top of the same botocore.) Configuration is boto3's: ``AWS_ENDPOINT_URL`` for a
non-AWS server, ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_DEFAULT_REGION``.

Atomic publish: a writer given ``expected_key`` buffers up to :data:`INLINE` bytes and then
``PutObject``s the blob once its digest is checked; larger content goes to a multipart upload at
the final key that is completed only when the digest matches (aborted otherwise), so an object
appears whole or not at all. Without ``expected_key`` a large blob is staged under ``.uploads/``
and copied (server-side) once its key is known.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from runyard.blobs.base import (
    CHUNK_SIZE,
    DEFAULT_ALGORITHM,
    BlobDigestMismatchError,
    BlobError,
    BlobInfo,
    BlobNotFoundError,
    BlobStore,
    BlobTooLargeError,
    BlobWriter,
    ResumableUpload,
    check_upload_id,
    new_hasher,
    parse_key,
)

#: Content up to this size is buffered and sent in one PutObject.
INLINE = 8 << 20
#: Part size of the writer's multipart uploads (S3 needs >= 5 MiB for all but the last part).
PART = 8 << 20


def _client_error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class S3BlobStore(BlobStore):
    """A :class:`~runyard.blobs.base.BlobStore` in ``bucket`` under ``prefix``."""

    supports_resumable = True

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        if client is None:
            try:
                import boto3
            except ImportError:
                raise BlobError("s3:// blob stores need boto3: pip install 'runyard[s3]'") from None
            from botocore.config import Config

            client = boto3.client(
                "s3", config=Config(retries={"max_attempts": 5, "mode": "standard"})
            )
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        parts = urlsplit(url)
        if not parts.netloc:
            raise BlobError(f"{url!r}: an S3 location is s3://bucket[/prefix]")
        return cls(parts.netloc, parts.path)

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}')"

    def _name(self, rest: str) -> str:
        return f"{self.prefix}/{rest}" if self.prefix else rest

    def object_key(self, key: str) -> str:
        algorithm, hexdigest = parse_key(key)
        return self._name(f"{algorithm}/{hexdigest[:2]}/{hexdigest}")

    def writer(self, *, expected_key: str | None = None, max_size: int | None = None) -> BlobWriter:
        if expected_key is not None:
            parse_key(expected_key)
        return _S3Writer(self, expected_key, max_size)

    def stat(self, key: str) -> BlobInfo | None:
        name = self.object_key(key)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise BlobError(f"s3://{self.bucket}/{name}: {exc}") from exc
        return BlobInfo(key, int(head["ContentLength"]))

    def open(self, key: str) -> BinaryIO:
        name = self.object_key(key)
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise BlobNotFoundError(f"no blob {key}") from None
            raise BlobError(f"s3://{self.bucket}/{name}: {exc}") from exc
        body: BinaryIO = obj["Body"]
        return body

    def delete(self, key: str) -> bool:
        if self.stat(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        return True

    def keys(self) -> Iterator[str]:
        base = self._name(f"{DEFAULT_ALGORITHM}/")
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=base
        ):
            for obj in page.get("Contents", []):
                key = f"{DEFAULT_ALGORITHM}:{obj['Key'].rsplit('/', 1)[-1]}"
                try:
                    parse_key(key)
                except BlobError:
                    continue
                yield key

    def presign_get(self, key: str, expires: int = 900) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=expires,
        )
        return url

    def _staged(self, upload_id: str) -> str:
        return self._name(f".uploads/p-{check_upload_id(upload_id)}")

    def presign_upload(self, upload_id: str, expires: int = 900) -> dict[str, Any] | None:
        url = self.client.generate_presigned_url(
            "put_object",
            Params={"Bucket": self.bucket, "Key": self._staged(upload_id)},
            ExpiresIn=expires,
        )
        return {"url": url, "method": "PUT", "headers": {}}

    def complete_presigned(
        self, upload_id: str, *, expected_key: str, hashers: Sequence[Any] = ()
    ) -> BlobInfo:
        algorithm = parse_key(expected_key)[0]
        name = self._staged(upload_id)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
        except Exception as exc:
            if _client_error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise BlobNotFoundError(f"nothing was uploaded for {upload_id}") from None
            raise BlobError(f"s3://{self.bucket}/{name}: {exc}") from exc
        try:
            digest = new_hasher(algorithm)
            size = 0
            for chunk in body.iter_chunks(CHUNK_SIZE):
                digest.update(chunk)
                for h in hashers:
                    h.update(chunk)
                size += len(chunk)
            key = f"{algorithm}:{digest.hexdigest()}"
            if key != expected_key:
                raise BlobDigestMismatchError(expected_key, key)
            if self.stat(key) is None:
                self.client.copy(
                    {"Bucket": self.bucket, "Key": name}, self.bucket, self.object_key(key)
                )
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        return BlobInfo(key, size)

    def resumable(self, upload_id: str, *, expected_key: str) -> ResumableUpload:
        parse_key(expected_key)
        return _S3Resumable(self, check_upload_id(upload_id), expected_key)


class _S3Writer(BlobWriter):
    def __init__(self, store: S3BlobStore, expected: str | None, max_size: int | None) -> None:
        self._store = store
        self._expected = expected
        self._max = max_size
        self._algorithm = parse_key(expected)[0] if expected else DEFAULT_ALGORITHM
        self._hash = new_hasher(self._algorithm)
        self._buf = bytearray()
        self._mpu: tuple[str, str] | None = None  # (object name, upload id)
        self._parts: list[dict[str, Any]] = []
        self.size = 0
        self._done = False
        self._info: BlobInfo | None = None

    def _target(self) -> str:
        if self._expected is not None:
            return self._store.object_key(self._expected)
        return self._store._name(f".uploads/w-{uuid.uuid4().hex}")

    def _flush_part(self) -> None:
        s = self._store
        if self._mpu is None:
            name = self._target()
            created = s.client.create_multipart_upload(Bucket=s.bucket, Key=name)
            self._mpu = (name, created["UploadId"])
        name, upload_id = self._mpu
        number = len(self._parts) + 1
        answer = s.client.upload_part(
            Bucket=s.bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=bytes(self._buf)
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        self._buf.clear()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._done:
            raise ValueError("write to a closed blob writer")
        n = len(data)
        if self._max is not None and self.size + n > self._max:
            self.abort()
            raise BlobTooLargeError(self._max)
        self._hash.update(data)
        self._buf += data
        self.size += n
        if len(self._buf) >= PART and (self._mpu is not None or self.size > INLINE):
            self._flush_part()

    def commit(self) -> BlobInfo:
        if self._info is not None:
            return self._info
        if self._done:
            raise ValueError("commit of an aborted blob writer")
        s = self._store
        key = f"{self._algorithm}:{self._hash.hexdigest()}"
        try:
            if self._expected is not None and key != self._expected:
                raise BlobDigestMismatchError(self._expected, key)
            final = s.object_key(key)
            if self._mpu is None:
                if s.stat(key) is None:
                    s.client.put_object(Bucket=s.bucket, Key=final, Body=bytes(self._buf))
            else:
                if self._buf or not self._parts:
                    self._flush_part()
                name, upload_id = self._mpu
                if name == final and s.stat(key) is not None:
                    s.client.abort_multipart_upload(Bucket=s.bucket, Key=name, UploadId=upload_id)
                else:
                    s.client.complete_multipart_upload(
                        Bucket=s.bucket,
                        Key=name,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": self._parts},
                    )
                    if name != final:
                        if s.stat(key) is None:
                            s.client.copy({"Bucket": s.bucket, "Key": name}, s.bucket, final)
                        s.client.delete_object(Bucket=s.bucket, Key=name)
                self._mpu = None
        finally:
            self.abort()
        self._info = BlobInfo(key, self.size)
        return self._info

    def abort(self) -> None:
        if self._mpu is not None:
            name, upload_id = self._mpu
            with contextlib.suppress(Exception):
                self._store.client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=name, UploadId=upload_id
                )
            self._mpu = None
        self._buf = bytearray()
        self._done = True


class _S3Resumable(ResumableUpload):
    """A multipart upload at ``<prefix>/.uploads/<id>``: found again by ``ListMultipartUploads``,
    its offset is the sum of its parts (``ListParts``); ``complete`` finishes it, verifies the
    object by reading it back, copies it to its blob key and removes the staged object."""

    def __init__(self, store: S3BlobStore, upload_id: str, expected_key: str) -> None:
        self.upload_id = upload_id
        self.expected_key = expected_key
        self._store = store
        self._name = store._name(f".uploads/{upload_id}")

    def _find(self, create: bool) -> str | None:
        s = self._store
        found = s.client.list_multipart_uploads(Bucket=s.bucket, Prefix=self._name)
        for upload in found.get("Uploads", []):
            if upload["Key"] == self._name:
                return str(upload["UploadId"])
        if not create:
            return None
        return str(s.client.create_multipart_upload(Bucket=s.bucket, Key=self._name)["UploadId"])

    def _parts(self, mpu: str) -> list[dict[str, Any]]:
        s = self._store
        parts: list[dict[str, Any]] = []
        marker = 0
        while True:
            page = s.client.list_parts(
                Bucket=s.bucket, Key=self._name, UploadId=mpu, PartNumberMarker=marker
            )
            parts += page.get("Parts", [])
            if not page.get("IsTruncated"):
                return sorted(parts, key=lambda p: p["PartNumber"])
            marker = page["NextPartNumberMarker"]

    @property
    def offset(self) -> int:
        mpu = self._find(create=False)
        return 0 if mpu is None else sum(int(p["Size"]) for p in self._parts(mpu))

    def append(self, chunks: Any, offset: int) -> int:
        s = self._store
        mpu = self._find(create=True)
        assert mpu is not None
        parts = self._parts(mpu)
        current = sum(int(p["Size"]) for p in parts)
        if offset != current:
            raise BlobError(
                f"upload {self.upload_id} is at offset {current}, not {offset}: resume there"
            )
        body = io.BytesIO()
        for chunk in chunks:
            body.write(chunk)
        size = body.tell()
        body.seek(0)
        s.client.upload_part(
            Bucket=s.bucket, Key=self._name, UploadId=mpu, PartNumber=len(parts) + 1, Body=body
        )
        return current + size

    def complete(self, hashers: Sequence[Any] = ()) -> BlobInfo:
        s = self._store
        mpu = self._find(create=True)
        assert mpu is not None
        parts = self._parts(mpu)
        if not parts:  # an empty blob
            s.client.upload_part(
                Bucket=s.bucket, Key=self._name, UploadId=mpu, PartNumber=1, Body=b""
            )
            parts = self._parts(mpu)
        s.client.complete_multipart_upload(
            Bucket=s.bucket,
            Key=self._name,
            UploadId=mpu,
            MultipartUpload={
                "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
            },
        )
        try:
            algorithm = parse_key(self.expected_key)[0]
            digest = new_hasher(algorithm)
            size = 0
            body = s.client.get_object(Bucket=s.bucket, Key=self._name)["Body"]
            for chunk in body.iter_chunks(CHUNK_SIZE):
                digest.update(chunk)
                for h in hashers:
                    h.update(chunk)
                size += len(chunk)
            key = f"{algorithm}:{digest.hexdigest()}"
            if key != self.expected_key:
                raise BlobDigestMismatchError(self.expected_key, key)
            if s.stat(key) is None:
                s.client.copy({"Bucket": s.bucket, "Key": self._name}, s.bucket, s.object_key(key))
        finally:
            s.client.delete_object(Bucket=s.bucket, Key=self._name)
        return BlobInfo(key, size)

    def abort(self) -> None:
        mpu = self._find(create=False)
        if mpu is not None:
            self._store.client.abort_multipart_upload(
                Bucket=self._store.bucket, Key=self._name, UploadId=mpu
            )
