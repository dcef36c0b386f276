"""The tokens as FastAPI dependencies: `Reader`, `Writer`, `require(*roles)`; a bad, expired or
revoked token is a 401, a role not allowed a 403."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from score_chassis.tokens import (
    READERS,
    WRITERS,
    InvalidToken,
    Principal,
    Revocations,
    Role,
    TokenAuthority,
)

_bearer = HTTPBearer(auto_error=False, description="A token from `score tokens create`")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits a valid, unrevoked token of one of `roles`.

    Like every dependency of the chassis it is `async`, and cheap: FastAPI runs a plain
    `def` dependency on a worker thread, and the hand-over costs more than the check.
    """

    async def admit(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None:
            raise _unauthorized("a bearer token is required")
        authority: TokenAuthority = request.app.state.tokens
        revocations: Revocations = request.app.state.revocations
        try:
            principal = authority.verify(credentials.credentials)
        except InvalidToken:
            raise _unauthorized("the token is invalid or expired") from None
        if principal.token_id in revocations:
            raise _unauthorized("the token has been revoked")
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role} may not do this; needs one of {', '.join(roles)}",
            )
        request.state.principal = principal
        return principal

    return admit


Writer = Annotated[Principal, Depends(require(*WRITERS))]
Reader = Annotated[Principal, Depends(require(*READERS))]
