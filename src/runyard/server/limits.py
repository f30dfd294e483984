"""A request body size limit (413), counted as the body arrives.

A ``Content-Length`` above the limit is refused before anything is read; a body without one
(chunked) is counted chunk by chunk and refused as soon as it passes the limit, so no request
can make the server buffer more than the limit. File uploads have their own, larger limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runyard.server.errors import ApiError, error_response

_FILE_UPLOAD = re.compile(
    r"^/api/v1/(runs/[^/]+/[^/]+/[^/]+/files/.+|artifacts/[^/]+/blobs/[^/]+)$"
)


class BodyTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit), "too_large")


def too_large_message(limit: int) -> str:
    return (
        f"request body larger than the server's limit of {limit} bytes "
        f"({limit / 2**20:g} MiB); send smaller batches or raise --max-body-mb/--max-file-mb"
    )


class BodySizeLimit:
    """ASGI middleware: at most ``max_body`` bytes per request (``max_file`` for file PUTs)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body: int,
        max_file: int,
        file_paths: Sequence[re.Pattern[str]] = (),
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_file = max_file
        #: PUT paths that carry a whole file: /api/v1's run files and those given
        self.file_paths = (_FILE_UPLOAD, *file_paths)

    def limit_for(self, scope: Scope) -> int:
        if scope.get("method") == "PUT":
            path = scope.get("path", "")
            if any(p.match(path) for p in self.file_paths):
                return self.max_file
        return self.max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    response = error_response(413, "too_large", too_large_message(limit))
                    await response(scope, receive, send)
                    return
                break
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            response = error_response(413, exc.code, exc.message)
            await response(scope, receive, send)
