"""Errors as ``{"error": {"code": ..., "message": ...}}``: every 4xx names the problem and the fix.

Store exceptions map to statuses here, so routes can let them propagate: a run conflict is a
409, a store refusal (bad file name...) a 400, a missing file a 404, a value the database
cannot hold (out of range, NUL character) a 422. A malformed request is never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from runyard.limits import MAX_DEPTH
from runyard.query import QueryError
from runyard.server.responses import ORJSONResponse
from runyard.store.base import (
    BatchRejectedError,
    FileTooLargeError,
    RunConflictError,
    StoreError,
    StoreUnavailableError,
)
from runyard.store.sql_auth import ConflictError, NotFoundError
from runyard.sweeps.config import SweepConfigError

log = logging.getLogger("runyard.server")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal",
}


class ApiError(StarletteHTTPException):
    """An HTTP error with a machine-readable ``code`` and a message saying what to do."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, headers)
        self.code = code or _CODES.get(status, "error")
        self.message = message


def invalid(message: str) -> ApiError:
    return ApiError(422, message)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> ORJSONResponse:
    return ORJSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)] or ["body"]
    return ".".join(parts)


def validation_message(errors: Any) -> str:
    out = []
    for err in list(errors)[:10]:
        out.append(f"{_loc(err.get('loc', ()))}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(out)


def install_handlers(app: FastAPI) -> None:
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = getattr(exc, "code", None) or _CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, message, headers)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid", validation_message(exc.errors()))

    async def store_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, RunConflictError | ConflictError):
            return error_response(409, "conflict", str(exc))
        if isinstance(exc, NotFoundError):
            return error_response(404, "not_found", str(exc))
        if isinstance(exc, StoreUnavailableError):  # the database is restarting, locked, full
            log.warning("store unavailable: %s", exc)
            return error_response(503, "unavailable", str(exc), {"Retry-After": "1"})
        if isinstance(exc, BatchRejectedError):
            return error_response(422, "invalid", str(exc))
        if isinstance(exc, FileTooLargeError):
            return error_response(413, "too_large", str(exc))
        return error_response(400, "bad_request", str(exc))

    async def file_missing(request: Request, exc: Exception) -> Response:
        return error_response(404, "not_found", str(exc))

    async def query_error(request: Request, exc: Exception) -> Response:
        return error_response(422, "invalid", str(exc))

    async def integrity_error(request: Request, exc: Exception) -> Response:
        log.info("integrity error: %s", exc)
        return error_response(
            409, "conflict", "the object already exists (or refers to one that does not)"
        )

    async def data_error(request: Request, exc: Exception) -> Response:
        log.info("data error: %s", exc)
        return error_response(
            422,
            "invalid",
            "a value cannot be stored (out of range, too long or containing a NUL character)",
        )

    async def too_deep(request: Request, exc: Exception) -> Response:
        # A safety net: the edges refuse documents past runyard.limits.MAX_DEPTH by name, so
        # only some input nobody measured yet gets here; it is the request's fault either way.
        log.info("recursion error on %s %s", request.method, request.url.path)
        return error_response(
            422,
            "invalid",
            f"the request holds a value nested too deeply to process; runyard keeps at most "
            f"{MAX_DEPTH} levels of objects and arrays (runyard.limits.MAX_DEPTH)",
        )

    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", f"internal server error: {type(exc).__name__}")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StoreError, store_error)
    app.add_exception_handler(FileNotFoundError, file_missing)
    app.add_exception_handler(QueryError, query_error)
    app.add_exception_handler(SweepConfigError, query_error)
    app.add_exception_handler(sa.exc.IntegrityError, integrity_error)
    app.add_exception_handler(sa.exc.DataError, data_error)
    app.add_exception_handler(OverflowError, data_error)
    app.add_exception_handler(RecursionError, too_deep)
    app.add_exception_handler(Exception, internal_error)
