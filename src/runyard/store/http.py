"""HTTPStore: the ``Store`` contract over a ``runyard server`` (docs/server-api.md).

The SDK, ``runyard sweep``, ``runyard agent`` and ``runyard.Api`` use it exactly like the SQL
store; every call is one request to ``<server>/api/v1``. Notes:

* **One ``httpx.Client`` per process** (keep-alive connections, bounded timeouts), created on
  first use and re-created in a forked child (the parent's sockets are never used there).
* **Errors.** A server that cannot be reached, times out or answers 502/503/504 raises
  :class:`StoreUnavailableError`: the caller may retry (the shipper does, with backoff).
  401/403 raise :class:`StoreAuthError` with the fix; 409 on a journal batch raises
  :class:`~runyard.store.base.RunConflictError`; 404 is ``None`` where the contract returns
  ``None``.
* **Retries here are only the safe ones**: a request that never reached the server (connection
  refused, connect timeout) is retried twice within about half a second, and an idempotent
  request whose keep-alive connection turned out dead is retried once. Anything else is the
  caller's decision: a journal batch is idempotent by ``seq`` and is simply sent again.
* **Run paths.** The contract reads a run's history by its ``pk``; the API addresses runs by
  ``entity/project/run_id``. Every :class:`RunRecord` (and sweep trial) this store returns
  remembers its path, so pass ``pk`` values obtained from this store.
* ``sweep_transaction`` and ``metric_values`` exist only on the server: sweep decisions are
  made there (:meth:`HTTPStore.controller` returns an :class:`HTTPSweepControl`).
"""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NoReturn, TypeVar
from urllib.parse import quote

import httpx
import orjson

from runyard._json import dumps_doc, restore, sanitize
from runyard.credentials import API_PREFIX, api_key_for, server_url
from runyard.errors import AuthenticationError
from runyard.store.base import (
    AgentRecord,
    AlertRecord,
    BatchRejectedError,
    FileData,
    FileRecord,
    FileTooLargeError,
    JournalBatch,
    RunActiveError,
    RunConflictError,
    RunDeletion,
    RunQuery,
    RunRecord,
    Series,
    Store,
    StoreError,
    StoreUnavailableError,
    SweepRecord,
    SweepTransaction,
    SystemRows,
    TrialRecord,
    WorkspaceRecord,
)

if TYPE_CHECKING:
    from runyard.sweeps.controller import SweepControl

_T = TypeVar("_T")

#: Seconds to wait for a connection, and for anything else (read, write, pool).
CONNECT_TIMEOUT = 5.0
TIMEOUT = 60.0
#: Runs fetched per request when listing without a limit.
PAGE = 1000
_JSON = {"content-type": "application/json"}
_DUMPS_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class ServerRefusedError(StoreError):
    """The server answered with an error status (other than auth, conflict and unavailable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class StoreAuthError(StoreError, AuthenticationError):
    """The server refused the API key (401) or the key may not do this (403); a W&B
    ``wandb.errors.AuthenticationError`` too. ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def _file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _stream_chunks(stream: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := stream.read(size):
        yield chunk


class _ResponseReader(io.RawIOBase):
    """A streamed response body as a readable binary file (closing it closes the response)."""

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chunks = response.iter_bytes(1 << 20)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n

    def close(self) -> None:
        self._response.close()
        super().close()


def _build(cls: type[_T], doc: Any) -> _T:
    """A record dataclass from a JSON object, ignoring fields this client does not know."""
    if not isinstance(doc, dict):
        raise StoreError(f"unexpected answer from the server: {str(doc)[:200]}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    try:
        return cls(**{k: v for k, v in doc.items() if k in names})
    except TypeError as exc:
        raise StoreError(f"unexpected {cls.__name__} from the server: {exc}") from None


class HTTPStore(Store):
    """A store served by ``runyard server`` at ``url`` (``http(s)://host[:port]``).

    ``api_key`` defaults to ``RUNYARD_API_KEY``, then to the key ``runyard login`` saved for
    this URL; without one, requests carry no credentials (a server started without ``--auth``).
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.url = server_url(url)
        self.api_url = self.url + API_PREFIX
        self.api_key = api_key_for(self.url, api_key)
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._lock = threading.Lock()
        self._client_obj: httpx.Client | None = None
        self._client_pid = 0
        #: run pk -> (entity, project, run_id), learnt from every run this store returned
        self._paths: dict[int, tuple[str, str, str]] = {}
        self._sweep_paths: dict[str, tuple[str, str]] = {}
        self._agent_sweeps: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<HTTPStore {self.url}>"

    # -- transport ------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        client = self._client_obj
        if client is not None and self._client_pid == os.getpid():
            return client
        with self._lock:
            if self._client_obj is None or self._client_pid != os.getpid():
                from runyard import __version__

                headers = {"user-agent": f"runyard/{__version__}"}
                if self.api_key:
                    headers["authorization"] = f"Bearer {self.api_key}"
                self._client_obj = httpx.Client(
                    base_url=self.api_url,
                    headers=headers,
                    timeout=self._timeout,
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
                )
                self._client_pid = os.getpid()
            return self._client_obj

    def after_fork(self) -> None:
        # The parent's connections are the parent's: forget them without closing them.
        self._client_obj = None
        self._lock = threading.Lock()

    def close(self) -> None:
        client, self._client_obj = self._client_obj, None
        if client is not None and self._client_pid == os.getpid():
            client.close()

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content: Any = None,
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """Send one request; ``None`` for a 404 when ``missing_ok``. Raises the store errors."""
        if body is not None:
            content = orjson.dumps(sanitize(body), option=_DUMPS_OPTIONS)
            headers = _JSON
        if params:
            params = {k: v for k, v in params.items() if v is not None}
        connect_tries = 0
        stale_retried = False
        while True:
            try:
                response = self._client().request(
                    method, path, params=params, content=content, headers=headers
                )
                break
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the server: always safe to try again, briefly.
                connect_tries += 1
                if connect_tries <= 2:
                    time.sleep(0.1 * connect_tries)
                    continue
                raise StoreUnavailableError(
                    f"cannot reach the runyard server at {self.url} ({_reason(exc)})"
                ) from None
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                # Usually a keep-alive connection the server closed (e.g. it restarted).
                if idempotent and not stale_retried:
                    stale_retried = True
                    continue
                raise StoreUnavailableError(
                    f"the runyard server at {self.url} dropped the connection ({_reason(exc)})"
                ) from None
            except httpx.TimeoutException as exc:
                raise StoreUnavailableError(
                    f"the runyard server at {self.url} did not answer in time ({_reason(exc)})"
                ) from None
            except httpx.HTTPError as exc:
                raise StoreUnavailableError(
                    f"request to the runyard server at {self.url} failed ({_reason(exc)})"
                ) from None
        if response.status_code < 400:
            return response
        if response.status_code == 404 and missing_ok:
            return None
        self._raise_for(response)

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        status = response.status_code
        message = _error_message(response)
        if status == 401:
            raise StoreAuthError(
                f"the runyard server at {self.url} refused the request: {message} "
                f"({'the API key is not valid' if self.api_key else 'no API key was sent'}). "
                f"Set RUNYARD_API_KEY to a valid key or run `runyard login {self.url}`"
            )
        if status == 403:
            raise StoreAuthError(
                f"the runyard server at {self.url} does not allow this API key: {message}. "
                f"Ask an admin for access, or use another key (RUNYARD_API_KEY or "
                f"`runyard login {self.url} --key KEY`)",
                403,
            )
        if status == 409:
            raise RunConflictError(message)
        if status == 413:
            raise FileTooLargeError(message, 0)
        if status in (502, 503, 504):
            raise StoreUnavailableError(
                f"the runyard server at {self.url} is unavailable ({status}: {message})"
            )
        if status >= 500:
            raise ServerRefusedError(
                status, f"the runyard server at {self.url} failed ({status}: {message})"
            )
        raise ServerRefusedError(status, message)

    def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        idempotent: bool = True,
        missing_ok: bool = False,
    ) -> Any:
        response = self._request(
            method,
            path,
            params=params,
            body=body,
            idempotent=idempotent,
            missing_ok=missing_ok,
        )
        if response is None:
            return None
        try:
            return restore(orjson.loads(response.content))
        except orjson.JSONDecodeError:
            raise StoreError(
                f"the runyard server at {self.url} sent something that is not JSON "
                f"({response.status_code}, {response.text[:200]!r}); is {self.url} a runyard "
                f"server?"
            ) from None

    # -- records --------------------------------------------------------------------------------

    def _run(self, doc: Any) -> RunRecord:
        record = _build(RunRecord, doc)
        self._paths[record.pk] = (record.entity, record.project, record.run_id)
        return record

    def _sweep(self, doc: Any) -> SweepRecord:
        record = _build(SweepRecord, doc)
        self._sweep_paths[record.id] = (record.entity, record.project)
        return record

    def _trial(self, doc: Any, sweep_id: str) -> TrialRecord:
        record = _build(TrialRecord, doc)
        where = self._sweep_paths.get(sweep_id)
        if where is not None:
            self._paths[record.pk] = (*where, record.run_id)
        return record

    def _run_path(self, run_pk: int) -> str:
        found = self._paths.get(run_pk)
        if found is None:
            raise StoreError(
                f"run pk {run_pk} is unknown to this client; get the run first "
                f"(find_run or list_runs), then use its pk"
            )
        return "/runs/" + "/".join(quote(part, safe="") for part in found)

    @staticmethod
    def _file_path(entity: str, project: str, run_id: str, name: str) -> str:
        parts = name.split("/")
        if (
            not name
            or name.startswith("/")
            or "\0" in name
            or any(p in ("", ".", "..") for p in parts)
        ):
            raise StoreError(
                f"invalid file name {name!r}: use a relative path without '.', '..' or empty parts"
            )
        run = "/".join(quote(p, safe="") for p in (entity, project, run_id))
        return f"/runs/{run}/files/" + "/".join(quote(p, safe="") for p in parts)

    # -- writes ---------------------------------------------------------------------------------

    def apply(self, batch: JournalBatch) -> int:
        # The hot path: one orjson.dumps for the whole batch. Records are in journal form
        # already (values validated by log(), non-finite floats as markers, read back from
        # the journal file), so only the small documents are sanitized here.
        content = orjson.dumps(
            {
                "header": sanitize(batch.header),
                "records": batch.records,
                "summary": sanitize(batch.summary),
                "metric_defs": sanitize(batch.metric_defs),
                "heartbeat_at": batch.heartbeat_at,
            },
            option=_DUMPS_OPTIONS,
        )
        try:
            response = self._request(
                "POST",
                f"/journals/{quote(batch.journal_id, safe='')}/batches",
                content=content,
            )
        except FileTooLargeError as exc:  # 413: split, then the record alone may fit
            raise BatchRejectedError(str(exc)) from None
        except ServerRefusedError as exc:
            if exc.status in (400, 413, 422, 500):
                # The server cannot take this batch (a record it cannot hold, too large, or
                # a server bug on some input): the shipper splits it. A 500 may be transient,
                # which the shipper allows for by retrying before it sets a record aside.
                raise BatchRejectedError(str(exc), certain=exc.status != 500) from None
            raise
        assert response is not None
        return int(orjson.loads(response.content)["applied_seq"])

    def journal_progress(self, journal_id: str) -> int:
        doc = self._json("GET", f"/journals/{quote(journal_id, safe='')}")
        return int(doc.get("applied_seq") or 0)

    def mark_run_state(
        self, run_pk: int, state: str, failure: str | None = None, only_if_running: bool = True
    ) -> bool:
        doc = self._json(
            "POST",
            f"{self._run_path(run_pk)}/state",
            body={"state": state, "failure": failure, "only_if_running": only_if_running},
        )
        return bool(doc.get("changed"))

    # -- reads ----------------------------------------------------------------------------------

    def find_run(self, entity: str, project: str, run_id: str) -> RunRecord | None:
        path = "/".join(quote(p, safe="") for p in (entity, project, run_id))
        doc = self._json("GET", f"/runs/{path}", missing_ok=True)
        return None if doc is None else self._run(doc)

    def list_runs(self, query: RunQuery) -> list[RunRecord]:
        if query.run_ids is not None and not query.run_ids:
            return []
        params: dict[str, Any] = {
            "entity": query.entity,
            "project": query.project,
            "state": ",".join(query.states) if query.states else None,
            "sweep_id": query.sweep_id,
            "run_id": ",".join(query.run_ids) if query.run_ids is not None else None,
            "sort": "-created_at" if query.order_desc else "created_at",
        }
        out: list[RunRecord] = []
        while True:
            want = PAGE if query.limit is None else min(PAGE, query.limit - len(out))
            doc = self._json("GET", "/runs", params={**params, "limit": want, "offset": len(out)})
            page = [self._run(d) for d in doc.get("runs") or []]
            out.extend(page)
            total = int(doc.get("total") or 0)
            if not page or len(out) >= total:
                break
            if query.limit is not None and len(out) >= query.limit:
                break
        return out

    def query_runs(
        self,
        entity: str | None,
        project: str | None,
        filter: Mapping[str, Any] | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        *,
        entities: Sequence[str] | None = None,
    ) -> tuple[list[RunRecord], int]:
        """``GET /runs`` with the filter (as JSON), sort, limit and offset: the server's store
        does the work. Pages of :data:`PAGE` runs when ``limit`` is larger or None."""
        from runyard.query import check_order, compile_filter

        compile_filter(filter)  # a bad filter is a QueryError here, as with a local store
        check_order(sort)
        if entities is not None:
            if not entities:
                return [], 0
            allowed = {"entity": {"$in": list(entities)}}
            filter = {"$and": [dict(filter), allowed]} if filter else allowed
        params: dict[str, Any] = {
            "entity": entity,
            "project": project,
            "filter": dumps_doc(filter) if filter else None,
            "sort": sort or None,
        }
        out: list[RunRecord] = []
        total = 0
        while True:
            want = PAGE if limit is None else min(PAGE, limit - len(out))
            doc = self._json(
                "GET",
                "/runs",
                params={**params, "limit": max(1, want), "offset": offset + len(out)},
            )
            total = int(doc.get("total") or 0)
            if want <= 0:  # limit 0: only the count
                break
            page = [self._run(d) for d in doc.get("runs") or []]
            out.extend(page)
            if not page or offset + len(out) >= total:
                break
            if limit is not None and len(out) >= limit:
                break
        return out, total

    def runs_by_id_prefix(
        self,
        prefix: str,
        entity: str | None = None,
        project: str | None = None,
        limit: int = 10,
        *,
        entities: Sequence[str] | None = None,
    ) -> list[RunRecord]:
        """``GET /runs?id_prefix=``: the server's store finds them (among the runs the key
        may see)."""
        if not prefix or (entities is not None and not entities):
            return []
        doc = self._json(
            "GET",
            "/runs",
            params={"id_prefix": prefix, "entity": entity, "project": project, "limit": limit},
        )
        found = [self._run(d) for d in doc.get("runs") or []]
        if entities is not None:
            found = [r for r in found if r.entity in set(entities)]
        return found

    # -- editing and deleting runs --------------------------------------------------------------

    def _run_url(self, entity: str, project: str, run_id: str) -> str:
        return "/runs/" + "/".join(quote(p, safe="") for p in (entity, project, run_id))

    def update_run(self, entity: str, project: str, run_id: str, **changes: Any) -> RunRecord:
        """``PATCH /runs/{entity}/{project}/{id}`` with the changed fields."""
        from runyard.store.base import check_run_update

        body = check_run_update(changes)  # the same message here as with a local store
        try:
            doc = self._json(
                "PATCH", self._run_url(entity, project, run_id), body=body, missing_ok=True
            )
        except ServerRefusedError as exc:
            raise StoreError(str(exc)) from None
        if doc is None:
            raise LookupError(f"no run {entity}/{project}/{run_id} on {self.url}")
        return self._run(doc)

    def delete_run(
        self,
        entity: str,
        project: str,
        run_id: str,
        *,
        force: bool = False,
        dry_run: bool = False,
    ) -> RunDeletion:
        """``DELETE /runs/{entity}/{project}/{id}``: the server deletes (with its blob GC)."""
        try:
            doc = self._json(
                "DELETE",
                self._run_url(entity, project, run_id),
                params={"force": "true" if force else None, "dry_run": "true" if dry_run else None},
                missing_ok=True,
                idempotent=dry_run,
            )
        except RunConflictError as exc:
            raise RunActiveError(str(exc)) from None
        if doc is None:
            raise LookupError(f"no run {entity}/{project}/{run_id} on {self.url}")
        return _build(RunDeletion, doc)

    def viewer(self) -> dict[str, Any]:
        """Who the API key is: ``{"user", "admin", "entities"}`` (``StoreAuthError`` if the
        server refuses the key)."""
        found = self._json("GET", "/viewer")
        return found if isinstance(found, dict) else {}

    # -- dashboard workspaces: the key's user is the server's to decide ----------------------------

    def _workspace_path(self, entity: str, project: str) -> str:
        return f"/projects/{quote(entity, safe='')}/{quote(project, safe='')}/workspace"

    def get_workspace(self, entity: str, project: str, user: str | None) -> WorkspaceRecord | None:
        scope = "auto" if user is not None else "project"
        doc = self._json("GET", self._workspace_path(entity, project), params={"scope": scope})
        if not doc or doc.get("doc") is None:
            return None
        return _build(WorkspaceRecord, doc)

    def put_workspace(
        self, entity: str, project: str, scope: str, user: str | None, doc: dict[str, Any]
    ) -> WorkspaceRecord:
        out = self._json(
            "PUT", self._workspace_path(entity, project), params={"scope": scope}, body=doc
        )
        return _build(WorkspaceRecord, out)

    def delete_workspace(self, entity: str, project: str, scope: str, user: str | None) -> bool:
        out = self._json("DELETE", self._workspace_path(entity, project), params={"scope": scope})
        return bool(out.get("deleted"))

    def list_projects(self) -> list[tuple[str, str, int]]:
        return [
            (d["entity"], d["project"], int(d.get("runs") or 0))
            for d in self._json("GET", "/projects")
        ]

    def metric_names(self, run_pk: int) -> list[str]:
        return [str(n) for n in self._json("GET", f"{self._run_path(run_pk)}/metrics")]

    def history(
        self,
        run_pk: int,
        keys: Sequence[str] | None = None,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> list[dict[str, Any]]:
        if keys is not None and not keys:
            return []
        params = {
            "keys": ",".join(keys) if keys is not None else None,
            "min_step": min_step,
            "max_step": max_step,
        }
        doc = self._json("GET", f"{self._run_path(run_pk)}/history", params=params)
        return list(doc.get("rows") or [])

    def console(self, run_pk: int, limit: int | None = None) -> list[tuple[str, float, str]]:
        doc = self._json("GET", f"{self._run_path(run_pk)}/console", params={"limit": limit})
        return [(str(s), float(t), str(x)) for s, t, x in doc.get("lines") or []]

    def series(
        self,
        run_pk: int,
        key: str,
        samples: int = 2000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> Series:
        doc = self._json(
            "GET",
            f"{self._run_path(run_pk)}/series",
            params={"key": key, "samples": samples, "min_step": min_step, "max_step": max_step},
        )
        return Series(
            key=str(doc.get("key", key)),
            steps=[int(s) for s in doc.get("steps") or []],
            values=[float(v) for v in doc.get("values") or []],
            total=int(doc.get("total") or 0),
            downsampled=bool(doc.get("downsampled")),
        )

    def system_metrics(
        self, run_pk: int, samples: int | None = None, keys: Sequence[str] | None = None
    ) -> SystemRows:
        if keys is not None and not keys:
            return SystemRows([], 0, False)
        params = {"samples": samples, "keys": ",".join(keys) if keys is not None else None}
        doc = self._json("GET", f"{self._run_path(run_pk)}/system", params=params)
        return SystemRows(
            rows=list(doc.get("rows") or []),
            total=int(doc.get("total") or 0),
            downsampled=bool(doc.get("downsampled")),
        )

    def alerts(self, run_pk: int) -> list[AlertRecord]:
        doc = self._json("GET", f"{self._run_path(run_pk)}/alerts")
        return [_build(AlertRecord, d) for d in doc.get("alerts") or []]

    def metric_values(self, run_pks: Sequence[int], key: str) -> dict[int, list[Any]]:
        raise StoreError(
            "metric_values is not available over HTTP: early stopping is decided by the "
            "server (use store.controller(sweep_id).stop_decisions(run_id))"
        )

    # -- files ----------------------------------------------------------------------------------

    def put_file(
        self,
        entity: str,
        project: str,
        run_id: str,
        name: str,
        data: FileData,
        *,
        expected_key: str | None = None,
        max_size: int | None = None,
    ) -> FileRecord:
        """Upload a run's file as a streamed request body (a path or file object is read in
        chunks; the server streams it into its blob store and answers 413 over its limit)."""
        path = self._file_path(entity, project, run_id, name)
        headers: dict[str, str] = {"content-type": "application/octet-stream"}
        if expected_key is not None:
            headers["x-runyard-blob"] = expected_key
        body: Any
        size: int | None = None
        if isinstance(data, bytes | bytearray | memoryview):
            body = bytes(data)
            size = len(body)
        elif isinstance(data, Path):
            size = data.stat().st_size
            body = _file_chunks(data)
        elif hasattr(data, "read"):
            body = _stream_chunks(data)  # type: ignore[arg-type]
        else:
            body = data
        if size is not None:
            if max_size is not None and size > max_size:
                raise FileTooLargeError(
                    f"{name} has {size} bytes, more than the limit of {max_size}", max_size
                )
            headers["content-length"] = str(size)
        response = self._request(
            "PUT", path, content=body, headers=headers, idempotent=isinstance(body, bytes)
        )
        assert response is not None
        return _build(FileRecord, orjson.loads(response.content))

    def link_file(
        self, entity: str, project: str, run_id: str, name: str, key: str
    ) -> FileRecord | None:
        """``PUT`` with ``x-runyard-link: <key>`` and no body: the server names content it
        already holds for this entity; 409 (→ ``None``) means: upload it."""
        path = self._file_path(entity, project, run_id, name)
        try:
            response = self._request(
                "PUT", path, content=b"", headers={"x-runyard-link": key}, idempotent=True
            )
        except RunConflictError:
            return None
        assert response is not None
        return _build(FileRecord, orjson.loads(response.content))

    def open_file(
        self, entity: str, project: str, run_id: str, name: str
    ) -> tuple[FileRecord, BinaryIO]:
        path = self._file_path(entity, project, run_id, name)
        request = self._client().build_request("GET", path)
        try:
            response = self._client().send(request, stream=True)
        except httpx.HTTPError as exc:
            raise StoreUnavailableError(
                f"cannot reach the runyard server at {self.url} ({_reason(exc)})"
            ) from None
        if response.status_code >= 400:
            response.read()
            response.close()
            if response.status_code == 404:
                raise FileNotFoundError(f"run {entity}/{project}/{run_id} has no file {name!r}")
            self._raise_for(response)
        size = int(response.headers.get("content-length") or -1)
        digest = response.headers.get("x-runyard-sha256")
        record = FileRecord(name, size, time.time(), digest)
        return record, _ResponseReader(response)  # type: ignore[return-value]

    def read_file(self, entity: str, project: str, run_id: str, name: str) -> bytes:
        path = self._file_path(entity, project, run_id, name)
        response = self._request("GET", path, missing_ok=True)
        if response is None:
            raise FileNotFoundError(f"run {entity}/{project}/{run_id} has no file {name!r}")
        return response.content

    def list_files(self, entity: str, project: str, run_id: str) -> list[FileRecord]:
        run = "/".join(quote(p, safe="") for p in (entity, project, run_id))
        doc = self._json("GET", f"/runs/{run}/files", missing_ok=True)
        return [_build(FileRecord, d) for d in doc or []]

    # -- sweeps ---------------------------------------------------------------------------------

    def create_sweep(
        self,
        *,
        sweep_id: str,
        entity: str,
        project: str,
        name: str | None,
        description: str | None,
        method: str,
        config: dict[str, Any],
        seed: int,
    ) -> SweepRecord:
        body = {
            "sweep_id": sweep_id,
            "entity": entity,
            "project": project,
            "name": name,
            "description": description,
            "method": method,
            "config": config,
            "seed": seed,
        }
        return self._sweep(self._json("POST", "/sweeps", body=body))

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        doc = self._json("GET", f"/sweeps/{quote(sweep_id, safe='')}", missing_ok=True)
        return None if doc is None else self._sweep(doc)

    def list_sweeps(
        self, entity: str | None = None, project: str | None = None
    ) -> list[SweepRecord]:
        docs = self._json("GET", "/sweeps", params={"entity": entity, "project": project})
        return [self._sweep(d) for d in docs]

    def set_sweep_state(self, sweep_id: str, state: str) -> SweepRecord:
        doc = self._json(
            "POST",
            f"/sweeps/{quote(sweep_id, safe='')}/state",
            body={"state": state},
            missing_ok=True,
        )
        if doc is None:
            raise StoreError(f"no sweep {sweep_id!r}")
        return self._sweep(doc)

    def sweep_transaction(self, sweep_id: str) -> AbstractContextManager[SweepTransaction]:
        raise StoreError(
            "sweep transactions run on the runyard server, not over HTTP; use "
            "store.controller(sweep_id) for sweep decisions"
        )

    def sweep_trials(self, sweep_id: str) -> list[TrialRecord]:
        if sweep_id not in self._sweep_paths:
            self.get_sweep(sweep_id)  # learns the project the trials' runs are in
        docs = self._json("GET", f"/sweeps/{quote(sweep_id, safe='')}/runs", missing_ok=True)
        if docs is None:
            raise StoreError(f"no sweep {sweep_id!r}")
        return [self._trial(d, sweep_id) for d in docs]

    def register_agent(self, agent_id: str, sweep_id: str, host: str, pid: int) -> AgentRecord:
        doc = self._json(
            "POST",
            f"/sweeps/{quote(sweep_id, safe='')}/agents",
            body={"agent_id": agent_id, "host": host, "pid": pid},
        )
        self._agent_sweeps[agent_id] = sweep_id
        return _build(AgentRecord, doc)

    def agent_heartbeat(
        self, agent_id: str, current_run_id: str | None, runs_done: int, state: str = "running"
    ) -> None:
        sweep_id = self._agent_sweeps.get(agent_id)
        if sweep_id is None:
            raise StoreError(f"agent {agent_id!r} was not registered through this client")
        self._json(
            "POST",
            f"/sweeps/{quote(sweep_id, safe='')}/agents/{quote(agent_id, safe='')}/heartbeat",
            body={"current_run_id": current_run_id, "runs_done": runs_done, "state": state},
        )

    def controller(self, sweep_id: str) -> SweepControl:
        # Imported here: the sweep modules pull in scipy, which a training process never needs.
        from runyard.store.http_sweeps import HTTPSweepControl

        return HTTPSweepControl(self, sweep_id)


def _error_message(response: httpx.Response) -> str:
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = response.text.strip()
        return f"HTTP {response.status_code}" + (f": {text[:300]}" if text else "")
    if isinstance(doc, dict):
        error = doc.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if doc.get("detail"):
            return str(doc["detail"])
    return f"HTTP {response.status_code}: {str(doc)[:300]}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
