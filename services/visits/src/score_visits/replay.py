"""Rebuilding the local views from the enrolment stream, for operators (`score replay
visits-views` calls these endpoints)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from pydantic import BaseModel, Field

from score_chassis.api import RuntimeDep
from score_chassis.auth import Principal, require
from score_chassis.consumer import IdempotentConsumer
from score_chassis.problems import PROBLEM_JSON, Problem, problem_responses
from score_chassis.runtime import Runtime
from score_visits.views import DURABLE

router = APIRouter(prefix="/v1/ops", tags=["operations"])

Admin = Annotated[Principal, Depends(require("admin"))]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **problem_responses(401, 403),
    503: {
        "model": Problem,
        "description": "NATS is not reachable",
        "content": {PROBLEM_JSON: {}},
    },
}


class ReplayProgress(BaseModel):
    """How far the views have been built from the enrolment stream."""

    consumer: str = Field(description="The durable consumer that builds the views")
    stream: str
    processed: int = Field(
        description="The stream sequence up to which every event is applied to the views"
    )
    last_sequence: int = Field(description="The stream's last sequence now")
    pending: int = Field(description="Events not yet applied")
    done: bool = Field(description="The views hold every event of the stream")


@router.post(
    "/replay/views",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Drop the views of enterprises and trainers and rebuild them from the stream",
    description="Clears the views and the consumer's record of what it handled in one "
    "transaction, then consumes `SCORE_ENROLMENT` again from its first event. Answers at once; "
    "follow the rebuild with `GET`. Until it is done, visits for enterprises the views have not "
    "reached yet are refused as *not known yet* (409, retryable). Asking again starts over.",
    responses=_RESPONSES,
)
async def replay_views(runtime: RuntimeDep, _: Admin) -> ReplayProgress:
    consumer = _consumer(runtime)
    try:
        await consumer.rebuild()
        return await _progress(consumer)
    except (NatsError, JetStreamError, ConnectionError, TimeoutError) as error:
        raise _nats_unreachable(error) from None


@router.get(
    "/replay/views",
    summary="How far the views are built from the stream",
    responses=_RESPONSES,
)
async def replay_progress(runtime: RuntimeDep, _: Admin) -> ReplayProgress:
    try:
        return await _progress(_consumer(runtime))
    except (NatsError, JetStreamError, ConnectionError, TimeoutError) as error:
        raise _nats_unreachable(error) from None


def _consumer(runtime: Runtime) -> IdempotentConsumer:
    if not runtime.nats.connected:
        raise _nats_unreachable(ConnectionError("not connected"))
    return runtime.consumer(DURABLE)


async def _progress(consumer: IdempotentConsumer) -> ReplayProgress:
    progress = await consumer.progress()
    return ReplayProgress(
        consumer=consumer.name,
        stream=consumer.subscription.stream.name,
        processed=progress.processed,
        last_sequence=progress.last_sequence,
        pending=progress.pending,
        done=progress.done,
    )


def _nats_unreachable(error: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"NATS is not reachable ({type(error).__name__}): the views are rebuilt from "
        "its stream. Try again when it is back (views already cleared are rebuilt then anyway)",
    )
