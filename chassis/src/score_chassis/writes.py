"""What every write endpoint does: run a command at most once per Idempotency-Key, at the
version If-Match names, and answer with the aggregate's id and new version.

A service names its command handler once:

    WriteNew = Annotated[Write, Depends(creating(handlers.execute))]
    WriteExisting = Annotated[Write, Depends(changing(handlers.execute))]

and an endpoint ends with `return await write(command, id=…)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from score_chassis.api import CausationDep, IfMatchDep, RuntimeDep, Written
from score_chassis.commands import Outcome
from score_chassis.idempotency import Idempotency, IdempotencyDep, write_once
from score_chassis.problems import BODY_ERRORS, problem_responses
from score_chassis.runtime import Runtime
from score_chassis.store import Causation

Execute = Callable[..., Awaitable[Outcome[Any]]]
"""A service's `handlers.execute(runtime, command, *, causation, expected_version,
after_append)`."""

REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with "
        "the same Idempotency-Key",
        "schema": {"type": "string"},
    }
}


def write_route(status_code: int, *errors: int, **extra: Any) -> dict[str, Any]:
    """What the route decorator of a write says: its status, its answer, its errors."""
    return {
        "status_code": status_code,
        "response_model": Written,
        "response_model_exclude_none": True,
        "responses": {
            status_code: {"headers": REPLAYED_HEADER},
            **problem_responses(*errors, *BODY_ERRORS),
        },
        **extra,
    }


@dataclass(frozen=True)
class Write:
    """Runs a command at most once per Idempotency-Key, in the version If-Match names."""

    execute: Execute
    runtime: Runtime
    causation: Causation
    idempotency: Idempotency
    expected_version: int | None
    status_code: int

    async def __call__(
        self, command: object, *, id: str, enrolment_id: str | None = None
    ) -> Written | JSONResponse:
        return await write_once(
            self.runtime.database,
            self.idempotency,
            partial(
                self.execute,
                self.runtime,
                command,
                causation=self.causation,
                expected_version=self.expected_version,
            ),
            lambda outcome: Written(id=id, version=outcome.version, enrolment_id=enrolment_id),
            status_code=self.status_code,
            ttl=self.runtime.idempotency_ttl,
        )


def _status_of(request: Request) -> int:
    # A replay answers with the status the endpoint declares; reading it from the route
    # keeps it stated once, in the decorator.
    status_code: int | None = request.scope["route"].status_code
    return status_code or 200  # FastAPI's default when the decorator names none


def creating(execute: Execute) -> Callable[..., Write]:
    """The dependency of a write that makes a new aggregate: no If-Match."""

    def write(
        request: Request, runtime: RuntimeDep, causation: CausationDep, idempotency: IdempotencyDep
    ) -> Write:
        return Write(execute, runtime, causation, idempotency, None, _status_of(request))

    return write


def changing(execute: Execute) -> Callable[..., Write]:
    """The dependency of a write to an existing aggregate, at the If-Match version if named."""

    def write(
        request: Request,
        runtime: RuntimeDep,
        causation: CausationDep,
        idempotency: IdempotencyDep,
        expected_version: IfMatchDep,
    ) -> Write:
        return Write(
            execute, runtime, causation, idempotency, expected_version, _status_of(request)
        )

    return write
