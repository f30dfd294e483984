"""HTTPArtifactStore: the :class:`~runyard.artifacts.base.ArtifactStore` contract over a
``runyard server`` (``/api/v1/artifacts``, see runyard.server.routes.artifacts).

Blobs stream both ways (files are never read whole into memory). A file above
:data:`~runyard.artifacts.base.PART_SIZE` is uploaded in parts at offsets the server confirms,
so an upload killed half-way resumes at the last confirmed part; a failed part is retried a few
times when the server was unreachable. Blob downloads follow the server's redirect to a
presigned URL when it hands one out (the API key is never sent there).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from runyard.artifacts import base
from runyard.artifacts.base import (
    ArtifactNotFoundError,
    ArtifactStore,
    CollectionRecord,
    GCReport,
    MissingBlobsError,
    RunRef,
    UploadPlan,
    VersionRecord,
)
from runyard.artifacts.manifest import ArtifactError, ManifestEntry
from runyard.store.base import StoreError, StoreUnavailableError
from runyard.store.http import HTTPStore

_CHUNK = 1 << 20
_RETRIES = 5


def _q(*parts: str) -> str:
    return "/".join(quote(p, safe="") for p in parts)


def _version(doc: dict[str, Any]) -> VersionRecord:
    contents = doc.get("contents")
    return VersionRecord(
        entity=doc["entity"],
        project=doc["project"],
        name=doc["name"],
        type=doc["type"],
        version=int(doc["version"]),
        digest=doc["digest"],
        size=int(doc["size"]),
        file_count=int(doc["file_count"]),
        metadata=doc.get("metadata") or {},
        description=doc.get("description"),
        aliases=list(doc.get("aliases") or []),
        created_by=doc.get("created_by"),
        created_at=float(doc["created_at"]),
        id=int(doc.get("id") or 0),
        reused=bool(doc.get("reused")),
        entries=None
        if contents is None
        else [ManifestEntry.from_json(p, e) for p, e in contents.items()],
        source=doc.get("source"),
    )


class HTTPArtifactStore(ArtifactStore):
    """Artifacts of the server behind ``http`` (an :class:`HTTPStore`)."""

    def __init__(self, http: HTTPStore) -> None:
        self.http = http

    def __repr__(self) -> str:
        return f"<HTTPArtifactStore {self.http.url}>"

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return self.http._json(method, path, **kwargs)
        except StoreError as exc:
            text = str(exc)
            if "not_found" in text or "no artifact" in text or "has no version" in text:
                raise ArtifactNotFoundError(text) from None
            raise

    def _stream_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request whose failure to reach the server is retried (uploads of parts and blobs
        are idempotent: content-addressed)."""
        delay = 0.2
        for attempt in range(_RETRIES):
            try:
                response = self.http._client().request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                if attempt == _RETRIES - 1:
                    raise StoreUnavailableError(
                        f"cannot reach the runyard server at {self.http.url} ({exc})"
                    ) from None
                time.sleep(delay)
                delay *= 2
                continue
            if response.status_code in (502, 503, 504) and attempt < _RETRIES - 1:
                time.sleep(delay)
                delay *= 2
                continue
            return response
        raise AssertionError("unreachable")

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code < 400:
            return orjson.loads(response.content) if response.content else None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = {}
        if response.status_code == 409 and "missing" in body:
            raise MissingBlobsError(body["missing"])
        message = (body.get("error") or {}).get("message") or response.text[:300]
        if response.status_code == 404:
            raise ArtifactNotFoundError(message)
        if response.status_code in (401, 403):
            self.http._raise_for(response)
        raise ArtifactError(f"the runyard server refused: {message}")

    # -- logging --------------------------------------------------------------------------------

    def begin(self, entity: str, keys: Sequence[str]) -> UploadPlan:
        doc = self._json("POST", f"/artifacts/{_q(entity)}/blobs/begin", body={"keys": list(keys)})
        return UploadPlan(doc["lease_id"], list(doc["missing"]), dict(doc.get("presigned") or {}))

    def upload(self, entity: str, key: str, path: Path, size: int) -> None:
        url = f"/artifacts/{_q(entity)}/blobs/{key}"
        if size <= base.PART_SIZE:
            for attempt in range(_RETRIES):
                with open(path, "rb") as fh:
                    try:
                        response = self.http._client().put(
                            url, content=iter(lambda: fh.read(_CHUNK), b"")
                        )
                    except httpx.HTTPError as exc:
                        if attempt == _RETRIES - 1:
                            raise StoreUnavailableError(
                                f"uploading {path} to {self.http.url} failed ({exc})"
                            ) from None
                        time.sleep(0.2 * 2**attempt)
                        continue
                self._check(response)
                return
            return
        state = self._check(self._stream_request("GET", f"{url}/upload"))
        if state.get("stored"):
            return
        offset = int(state.get("offset") or 0)
        with open(path, "rb") as fh:
            while True:
                end = min(size, offset + base.PART_SIZE)
                fh.seek(offset)
                final = end >= size

                def body(start: int = offset, stop: int = end) -> Iterator[bytes]:
                    fh.seek(start)
                    left = stop - start
                    while left > 0:
                        chunk = fh.read(min(_CHUNK, left))
                        if not chunk:
                            raise ArtifactError(f"{path} got shorter while it was uploaded")
                        left -= len(chunk)
                        yield chunk

                response = self._stream_request(
                    "PUT",
                    url,
                    params={"offset": offset, "final": "true" if final else "false"},
                    content=body(),
                    headers={"content-length": str(end - offset)},
                )
                if response.status_code == 400 and b"resume there" in response.content:
                    state = self._check(self._stream_request("GET", f"{url}/upload"))
                    if state.get("stored"):
                        return
                    offset = int(state.get("offset") or 0)
                    continue
                self._check(response)
                if final:
                    return
                offset = end

    def upload_presigned(
        self, entity: str, key: str, path: Path, size: int, instructions: dict[str, Any]
    ) -> None:
        """PUT the file to the presigned URL ``begin`` handed out (no API key there), then ask
        the server to verify and store it."""
        headers = {**dict(instructions.get("headers") or {}), "content-length": str(size)}
        for attempt in range(_RETRIES):
            try:
                with open(path, "rb") as fh, httpx.Client(timeout=self.http._timeout) as plain:
                    response = plain.request(
                        instructions.get("method", "PUT"),
                        instructions["url"],
                        content=iter(lambda: fh.read(_CHUNK), b""),
                        headers=headers,
                    )
            except httpx.HTTPError:
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.2 * 2**attempt)
                continue
            if response.status_code >= 400:
                raise ArtifactError(
                    f"the object store refused the upload of {path} ({response.status_code}: "
                    f"{response.text[:200]})"
                )
            break
        self._check(self._stream_request("POST", f"/artifacts/{_q(entity)}/blobs/{key}/complete"))

    def commit(
        self,
        entity: str,
        project: str,
        name: str,
        type: str,
        entries: Sequence[ManifestEntry],
        *,
        metadata: dict[str, Any] | None = None,
        description: str | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
        lease_id: str | None = None,
        source: str | None = None,
    ) -> VersionRecord:
        body = {
            "name": name,
            "type": type,
            "contents": {e.path: e.to_json() for e in entries},
            "metadata": metadata or {},
            "description": description,
            "aliases": list(aliases),
            "run_id": run_id,
            "lease_id": lease_id,
            "source": source,
        }
        from runyard._json import sanitize

        response = self._stream_request(
            "POST",
            f"/artifacts/{_q(entity, project)}/versions",
            content=orjson.dumps(sanitize(body)),
            headers={"content-type": "application/json"},
        )
        return _version(self._check(response))

    # -- reading --------------------------------------------------------------------------------

    def collections(
        self, entity: str, project: str, type: str | None = None
    ) -> list[CollectionRecord]:
        docs = self._json("GET", f"/artifacts/{_q(entity, project)}", params={"type": type})
        return [CollectionRecord(**d) for d in docs]

    def versions(self, entity: str, project: str, name: str) -> list[VersionRecord]:
        docs = self._json("GET", f"/artifacts/{_q(entity, project, name)}/versions")
        return [_version(d) for d in docs]

    def get(self, entity: str, project: str, name: str, ref: str = "latest") -> VersionRecord:
        return _version(
            self._json("GET", f"/artifacts/{_q(entity, project, name)}/versions/{_q(ref)}")
        )

    def _blob_response(self, entity: str, key: str, headers: dict[str, str]) -> httpx.Response:
        client = self.http._client()
        request = client.build_request(
            "GET", f"/artifacts/{_q(entity)}/blobs/{key}", headers=headers
        )
        response = client.send(request, stream=True)
        if response.status_code in (301, 302, 303, 307, 308):
            location = response.headers["location"]
            response.close()
            # A presigned URL: plain GET, no API key.
            response = httpx.Client(timeout=client.timeout).send(
                httpx.Request("GET", location, headers=headers), stream=True
            )
        if response.status_code >= 400:
            response.read()
            self._check(response)
        return response

    def _iter(self, response: httpx.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_bytes(_CHUNK)
        finally:
            response.close()

    def open_blob(self, entity: str, key: str) -> Iterator[bytes]:
        return self._iter(self._blob_response(entity, key, {}))

    def open_blob_range(self, entity: str, key: str, start: int, end: int) -> Iterator[bytes]:
        response = self._blob_response(entity, key, {"range": f"bytes={start}-{end - 1}"})
        if response.status_code != 206:
            from runyard.artifacts.transfer import _skip

            return _skip(self._iter(response), start, end)
        return self._iter(response)

    # -- lineage --------------------------------------------------------------------------------

    def _vpath(self, v: VersionRecord) -> str:
        return f"/artifacts/{_q(v.entity, v.project, v.name)}/versions/v{v.version}"

    def use(self, version: VersionRecord, run: RunRef) -> None:
        self._json("POST", f"{self._vpath(version)}/usage", body=run.__dict__)

    def used_by(self, version: VersionRecord) -> list[RunRef]:
        return [RunRef(**d) for d in self._json("GET", f"{self._vpath(version)}/usage")]

    def run_artifacts(
        self, entity: str, project: str, run_id: str
    ) -> tuple[list[VersionRecord], list[VersionRecord]]:
        doc = self._json("GET", f"/runs/{_q(entity, project, run_id)}/artifacts")
        return [_version(d) for d in doc["logged"]], [_version(d) for d in doc["used"]]

    # -- editing --------------------------------------------------------------------------------

    def set_aliases(
        self, version: VersionRecord, add: Sequence[str] = (), remove: Sequence[str] = ()
    ) -> VersionRecord:
        doc = self._json(
            "POST",
            f"{self._vpath(version)}/aliases",
            body={"add": list(add), "remove": list(remove)},
        )
        return self.get(version.entity, version.project, version.name, f"v{doc['version']}")

    def delete(self, version: VersionRecord, *, force: bool = False) -> int:
        doc = self._json(
            "DELETE", self._vpath(version), params={"force": "true" if force else None}
        )
        return int(doc["freed"])

    def gc(self, *, dry_run: bool = False) -> GCReport:
        doc = self._json("POST", "/artifacts/gc", params={"dry_run": "true" if dry_run else None})
        return GCReport(**doc)
