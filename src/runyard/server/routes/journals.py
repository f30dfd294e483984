"""The write path: journal batches (create, resume, append to, heartbeat and finish runs).

``POST /journals/{id}/batches`` is the hot path: the body is parsed by hand
(:mod:`runyard.server.batch`) and applied by :meth:`Store.apply` in the threadpool. Batches
are idempotent by their records' ``seq``: a re-sent batch is a no-op answering the same mark.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from runyard.server.auth import principal, require_entity
from runyard.server.batch import BATCH_SCHEMA, parse_batch
from runyard.server.errors import ApiError
from runyard.server.models import AppliedOut, doc
from runyard.server.responses import ORJSONResponse, json_response
from runyard.server.state import AppState, app_state
from runyard.store.sql_auth import Principal

router = APIRouter(tags=["journals"])

JournalId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")]


def _check_journal_owner(state: AppState, who: Principal, journal_id: str) -> None:
    if who.admin:
        return
    owner = state.auth_store.journal_entity(journal_id)
    if owner is not None and not who.may_access(owner):
        raise ApiError(
            403,
            f"journal {journal_id!r} writes to a run of entity {owner!r}, which user "
            f"{who.user!r} may not access",
            "forbidden",
        )


@router.get(
    "/journals/{journal_id}", response_class=ORJSONResponse, responses=doc(AppliedOut, 401, 403)
)
def journal_progress(
    journal_id: JournalId,
    request: Request,
    who: Principal = Depends(principal),  # noqa: B008
) -> ORJSONResponse:
    """The journal's last applied ``seq`` (0 if the server never saw it)."""
    state = app_state(request)
    _check_journal_owner(state, who, journal_id)
    return json_response({"applied_seq": state.store.journal_progress(journal_id)})


def _ingest(state: AppState, who: Principal, journal_id: str, body: bytes) -> int:
    batch = parse_batch(journal_id, body)
    require_entity(who, batch.header["entity"])
    _check_journal_owner(state, who, journal_id)
    applied = state.store.apply(batch)
    if state.alerts is not None and any(r[1] == "alert" for r in batch.records):
        state.alerts.wake()  # delivery runs on the dispatcher's thread, never this request's
    return applied


@router.post(
    "/journals/{journal_id}/batches",
    response_class=ORJSONResponse,
    responses=doc(AppliedOut, 401, 403, 409, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": BATCH_SCHEMA}},
        }
    },
)
async def apply_batch(
    journal_id: JournalId,
    request: Request,
    who: Principal = Depends(principal),  # noqa: B008
) -> ORJSONResponse:
    """Apply a batch of journal records; answers the journal's applied mark.

    409 when the header's run id exists and the header does not resume it.
    """
    body = await request.body()
    state = app_state(request)
    applied = await run_in_threadpool(_ingest, state, who, journal_id, body)
    return json_response({"applied_seq": applied})
