"""The dead letters of a service, for operators: the endpoints `score dead-letters` calls.

Every service has them, whatever it consumes. Admin only. A listing leaves the payload out: it
holds the event's personal data (names, tax ids, e-mails), and a listing is what gets pasted
into a ticket. One dead letter read by its id carries it, for the operator who needs to see why
an event failed; that read is logged, with the token's id (ADR 020).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, Field

from score_chassis import dead_letters
from score_chassis.dead_letters import DeadLetter, Retry
from score_chassis.errors import NotFound
from score_chassis.http.auth import require
from score_chassis.http.inputs import RuntimeDep
from score_chassis.http.problems import PROBLEM_JSON, Problem, problem_responses
from score_chassis.logs import get_logger
from score_chassis.tokens import Principal

log = get_logger(__name__)

Admin = Annotated[Principal, Depends(require("admin"))]
LetterId = Annotated[int, Path(ge=1, description="The dead letter's id, as listed")]
ConsumerName = Annotated[
    str | None,
    Query(min_length=1, max_length=100, description="Only this consumer's (as listed)"),
]

ERROR_SHOWN = 500
"""A listing shows this many characters of each error; the dead letter by its id, all."""


class DeadLetterSummary(BaseModel):
    id: int
    consumer: str = Field(description="Who gave up on it: a durable consumer, or the service's")
    subject: str
    stream_sequence: int | None
    event_id: str | None
    event_type: str | None = Field(description="The CloudEvent type, if the payload names one")
    deliveries: int = Field(description="Attempts so far: deliveries, then one per retry")
    error: str = Field(description="Why the last attempt failed (cut; whole by its id)")
    recorded_at: dt.datetime

    @classmethod
    def of(cls, letter: DeadLetter, *, error_limit: int | None = ERROR_SHOWN) -> DeadLetterSummary:
        error = letter.error
        if error_limit is not None and len(error) > error_limit:
            error = f"{error[:error_limit]}…"
        return cls(
            id=letter.id,
            consumer=letter.consumer,
            subject=letter.subject,
            stream_sequence=letter.stream_sequence,
            event_id=letter.event_id,
            event_type=letter.event_type,
            deliveries=letter.deliveries,
            error=error,
            recorded_at=letter.recorded_at,
        )


class DeadLetterPage(BaseModel):
    items: list[DeadLetterSummary] = Field(description="Newest first")
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class DeadLetterDetail(DeadLetterSummary):
    payload: str = Field(
        description="The message as it arrived, as UTF-8 (bytes that are not are replaced). "
        "Holds personal data: keep it out of tickets and chats"
    )


class RetryOutcome(BaseModel):
    id: int
    consumer: str
    event_id: str | None
    outcome: Literal["retried", "failed", "refused"] = Field(
        description="`retried`: applied, and the dead letter is gone; `failed`: it failed "
        "again, and the dead letter is kept with the new error and one more attempt; "
        "`refused`: no retry can help (`detail` says why; discard it)"
    )
    detail: str

    @classmethod
    def of(cls, retry: Retry) -> RetryOutcome:
        return cls(
            id=retry.id,
            consumer=retry.consumer,
            event_id=retry.event_id,
            outcome=retry.outcome,
            detail=retry.detail,
        )


class RetryReport(BaseModel):
    retried: int
    failed: int
    refused: int
    outcomes: list[RetryOutcome] = Field(description="One per dead letter tried, oldest first")


REFUSED: dict[int | str, dict[str, Any]] = {
    409: {
        "model": Problem,
        "description": "No retry can help: rule `unknown-consumer` (this service no longer has "
        "the consumer that recorded it) or `unreadable-payload` (not an event its consumer "
        "reads). Discard it once dealt with",
        "content": {PROBLEM_JSON: {}},
    }
}


def dead_letters_router() -> APIRouter:
    """`/v1/ops/dead-letters`: list, read, retry and discard the service's dead letters."""
    router = APIRouter(prefix="/v1/ops/dead-letters", tags=["operations"])

    @router.get(
        "",
        summary="Dead letters, newest first (without their payloads)",
        responses=problem_responses(401, 403, 422),
    )
    async def list_dead_letters(
        runtime: RuntimeDep,
        _: Admin,
        consumer: ConsumerName = None,
        limit: Annotated[int, Query(ge=1, le=200, description="At most this many")] = 50,
        cursor: Annotated[
            int | None, Query(ge=1, description="The `next_cursor` of the previous page")
        ] = None,
    ) -> DeadLetterPage:
        async with runtime.database.transaction(write=False) as conn:
            letters = await dead_letters.latest(
                conn, consumer=consumer, limit=limit + 1, before=cursor
            )
        items = [DeadLetterSummary.of(letter) for letter in letters[:limit]]
        more = len(letters) > limit
        return DeadLetterPage(items=items, next_cursor=items[-1].id if more else None)

    @router.post(
        "/retry",
        summary="Retry every dead letter (or a consumer's), oldest first",
        description="Each is retried once, in its own transaction, and the report says what "
        "became of each. Those that fail again or are refused stay.",
        responses=problem_responses(401, 403, 422),
    )
    async def retry_all(
        runtime: RuntimeDep, principal: Admin, consumer: ConsumerName = None
    ) -> RetryReport:
        log.info("dead_letter.retry_all_asked", consumer=consumer, token_id=principal.token_id)
        outcomes = await dead_letters.retry_all(
            runtime.database, runtime.dead_letter_retriers, consumer=consumer
        )

        def counted(outcome: str) -> int:
            return sum(1 for o in outcomes if o.outcome == outcome)

        return RetryReport(
            retried=counted("retried"),
            failed=counted("failed"),
            refused=counted("refused"),
            outcomes=[RetryOutcome.of(o) for o in outcomes],
        )

    @router.get(
        "/{letter_id}",
        summary="One dead letter, with its payload",
        description="The payload holds the event's personal data: the read is logged with the "
        "token's id.",
        responses=problem_responses(401, 403, 404, 422),
    )
    async def read_dead_letter(
        runtime: RuntimeDep, principal: Admin, letter_id: LetterId
    ) -> DeadLetterDetail:
        async with runtime.database.transaction(write=False) as conn:
            letter = await dead_letters.get(conn, letter_id)
        if letter is None:
            raise NotFound("dead letter", str(letter_id))
        log.info("dead_letter.payload_read", id=letter_id, token_id=principal.token_id)
        summary = DeadLetterSummary.of(letter, error_limit=None)
        return DeadLetterDetail(
            **summary.model_dump(), payload=letter.payload.decode("utf-8", "replace")
        )

    @router.post(
        "/{letter_id}/retry",
        summary="Retry one dead letter",
        description="Its consumer applies it again, through its inbox (an event handled "
        "meanwhile changes nothing), and the dead letter is deleted in the same transaction. "
        "`200` whether it worked or failed again: `outcome` says which.",
        responses={**problem_responses(401, 403, 404, 422), **REFUSED},
    )
    async def retry_one(runtime: RuntimeDep, principal: Admin, letter_id: LetterId) -> RetryOutcome:
        log.info("dead_letter.retry_asked", id=letter_id, token_id=principal.token_id)
        retry = await dead_letters.retry(runtime.database, runtime.dead_letter_retriers, letter_id)
        return RetryOutcome.of(retry)

    @router.delete(
        "/{letter_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        summary="Discard one dead letter for good",
        description="For one no retry can help, or already dealt with another way. Its payload "
        "is gone with it (the event itself stays in its stream).",
        responses=problem_responses(401, 403, 404, 422),
    )
    async def discard(runtime: RuntimeDep, principal: Admin, letter_id: LetterId) -> Response:
        log.info("dead_letter.discard_asked", id=letter_id, token_id=principal.token_id)
        await dead_letters.discard(runtime.database, letter_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)

    return router
