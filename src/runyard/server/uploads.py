"""Streamed uploads: a request body handed to synchronous code as an iterator of chunks.

The store's write methods are synchronous (``Store.put_file`` streams an iterable of chunks
into the content-addressed blob store, runyard.blobs, which hashes, verifies and publishes it
atomically). A route runs that call in a worker thread with :func:`put_streamed`; the thread
pulls the body chunk by chunk from the event loop, so neither side ever holds the whole body
(a 1 GiB upload costs the server a few chunks of memory). The size limit is the app's
``BodySizeLimit`` middleware (413, counted as the body arrives) plus ``max_size`` given to the
store. Artifacts reuse this for their files: ``await put_streamed(request, lambda chunks:
store.put_file(..., chunks))`` or any other callable that consumes the chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import anyio.from_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

T = TypeVar("T")


def _chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """The body's chunks, from a worker thread of the request's event loop."""

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while True:
        chunk = anyio.from_thread.run(next_chunk)
        if chunk is None:
            return
        if chunk:
            yield chunk


async def put_streamed(request: Request, consume: Callable[[Iterator[bytes]], T]) -> T:
    """Run ``consume(chunks)`` in a worker thread, ``chunks`` being the request body as it
    arrives; its result. Errors raised by ``consume`` (or by the body's limit) propagate."""
    stream = request.stream().__aiter__()
    return await run_in_threadpool(lambda: consume(_chunks(stream)))
