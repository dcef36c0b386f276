"""What every write endpoint does over HTTP: pass its command, with the request's
Idempotency-Key, If-Match and correlation id, to the service's `Commands`, and answer.

    @router.post("/enterprises", **write_route(201, 401, 403, 409, 422, answer=Written))
    async def register_enterprise(_: Writer, body: RegisterEnterpriseBody, write: NewWrite):
        return await write(RegisterEnterprise(enterprise_id=uuid7(), **dict(body)))

`NewWrite` is for a command that makes a new aggregate (no If-Match), `ExistingWrite` for one
to an existing aggregate. The app's `state.commands` (set by `create_app`) routes them.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from score_chassis.commands import Commands, Idempotency, KeyReused, Replayed
from score_chassis.http.inputs import IfMatch, causation_of, expected_version
from score_chassis.http.problems import BODY_ERRORS, invalid_input, problem_responses
from score_chassis.store import Causation
from score_chassis.tokens import InvalidToken, TokenAuthority

REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with "
        "the same Idempotency-Key",
        "schema": {"type": "string"},
    }
}


def write_route(
    status_code: int,
    *errors: int,
    answer: type[BaseModel],
    described: Mapping[int, Mapping[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """What the route decorator of a write says: its status, its answer, its errors (with
    those of any body: 400 unreadable, 413 too large). `described` adds to an error's entry
    (a 409's rules, a header it carries)."""
    responses: dict[int | str, dict[str, Any]] = {
        status_code: {"headers": REPLAYED_HEADER},
        **problem_responses(*errors, *BODY_ERRORS),
    }
    for code, more in (described or {}).items():
        responses[code] = {**responses[code], **more}
    return {
        "status_code": status_code,
        "response_model": answer,
        "response_model_exclude_none": True,
        "responses": responses,
        **extra,
    }


@dataclass(frozen=True)
class Write:
    """Runs a command at most once per Idempotency-Key, at the version If-Match names."""

    commands: Commands[Any]
    causation: Causation
    idempotency: Idempotency | None
    expected_version: int | None

    async def __call__(self, command: object) -> BaseModel | JSONResponse:
        try:
            answer = await self.commands.execute(
                command,
                causation=self.causation,
                expected_version=self.expected_version,
                idempotency=self.idempotency,
            )
        except KeyReused:
            raise invalid_input(
                "header",
                "idempotency-key",
                "was already used for a different request",
                rule="idempotency-key-reused",
            ) from None
        if isinstance(answer, Replayed):
            return JSONResponse(
                answer.body,
                status_code=answer.status_code,
                headers={"Idempotent-Replayed": "true"},
            )
        return answer


IdempotencyKey = Annotated[
    str | None,
    Header(
        description="Any unique string (a UUID, say). A retry with the same key and "
        "body returns the first answer and changes nothing.",
        max_length=200,
    ),
]


async def _idempotency(request: Request, key: str | None) -> Idempotency | None:
    if key is None:
        return None
    body = await request.body()
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
    # A replay answers with the status the endpoint declares: read from the route, so it is
    # stated once, in the decorator (FastAPI's default is 200 when it names none).
    status_code: int = request.scope["route"].status_code or 200
    return Idempotency(owner=_owner(request), key=key, fingerprint=digest, status_code=status_code)


def _owner(request: Request) -> str:
    """Keys belong to whoever the token names (the auth dependency refuses bad tokens)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        with contextlib.suppress(InvalidToken):
            authority: TokenAuthority = request.app.state.tokens
            return authority.verify(token).subject
    return "anonymous"


async def _write(request: Request, key: str | None, version: int | None) -> Write:
    # The headers are parameters of the one dependency, and the rest is read from the
    # request: FastAPI resolves each dependency on every request, and a write pays for each.
    commands: Commands[Any] = request.app.state.commands
    return Write(commands, causation_of(request), await _idempotency(request, key), version)


async def _new(request: Request, idempotency_key: IdempotencyKey = None) -> Write:
    return await _write(request, idempotency_key, None)


async def _existing(
    request: Request, idempotency_key: IdempotencyKey = None, if_match: IfMatch = None
) -> Write:
    return await _write(request, idempotency_key, expected_version(if_match))


NewWrite = Annotated[Write, Depends(_new)]
"""The write of a command that makes a new aggregate: no If-Match."""
ExistingWrite = Annotated[Write, Depends(_existing)]
"""The write of a command to an existing aggregate, at the If-Match version if named."""
