"""Rebuilding a service's view from the streams that feed it, for operators: the endpoints
`score replay` calls. The service does the work, since it owns the view and its consumers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, status
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from pydantic import BaseModel, Field

from score_chassis.api import RuntimeDep
from score_chassis.auth import Principal, require
from score_chassis.consumer import IdempotentConsumer, rebuild
from score_chassis.problems import PROBLEM_JSON, Problem, problem_responses
from score_chassis.runtime import Runtime

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
    """How far a view has been built from the streams that feed it."""

    consumers: list[str] = Field(description="The durable consumers that build the view")
    streams: list[str]
    processed: int = Field(
        description="Events applied to the view, counted by stream sequence over its streams"
    )
    last_sequence: int = Field(description="The streams' last sequences now, added up")
    pending: int = Field(description="Events not yet applied")
    done: bool = Field(description="The view holds every event of its streams")


def replay_router(view: str, durables: Sequence[str], *, description: str) -> APIRouter:
    """`POST` and `GET /v1/ops/replay/<view>`: rebuild the view that `durables` feed."""
    router = APIRouter(prefix="/v1/ops", tags=["operations"])

    @router.post(
        f"/replay/{view}",
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Drop the {view} and rebuild it from its streams",
        description=f"{description} Clears it and its consumers' record of what they handled "
        "in one transaction, then consumes the streams again from their first event. Answers "
        "at once; follow the rebuild with `GET`. Asking again starts over.",
        responses=_RESPONSES,
    )
    async def start_replay(runtime: RuntimeDep, _: Admin) -> ReplayProgress:
        consumers = _consumers(runtime, durables)
        try:
            await rebuild(consumers)
            return await _progress(consumers)
        except (NatsError, JetStreamError, ConnectionError, TimeoutError) as error:
            raise _nats_unreachable(error) from None

    @router.get(
        f"/replay/{view}",
        summary=f"How far the {view} is built from its streams",
        responses=_RESPONSES,
    )
    async def replay_progress(runtime: RuntimeDep, _: Admin) -> ReplayProgress:
        try:
            return await _progress(_consumers(runtime, durables))
        except (NatsError, JetStreamError, ConnectionError, TimeoutError) as error:
            raise _nats_unreachable(error) from None

    return router


def _consumers(runtime: Runtime, durables: Sequence[str]) -> list[IdempotentConsumer]:
    if not runtime.nats.connected:
        raise _nats_unreachable(ConnectionError("not connected"))
    return [runtime.consumer(durable) for durable in durables]


async def _progress(consumers: Sequence[IdempotentConsumer]) -> ReplayProgress:
    progress = [await consumer.progress() for consumer in consumers]
    return ReplayProgress(
        consumers=[consumer.name for consumer in consumers],
        streams=[consumer.subscription.stream.name for consumer in consumers],
        processed=sum(p.processed for p in progress),
        last_sequence=sum(p.last_sequence for p in progress),
        pending=sum(p.pending for p in progress),
        done=all(p.done for p in progress),
    )


def _nats_unreachable(error: Exception) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=f"NATS is not reachable ({type(error).__name__}): a view is rebuilt from its "
        "streams. Try again when it is back (a view already cleared is rebuilt then anyway)",
    )
