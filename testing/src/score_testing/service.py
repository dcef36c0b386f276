"""Running a service's app in-process for API tests, with tokens of any role.

The app runs its whole lifespan (migrations, relay, consumers) against the database and NATS
its settings name; with no NATS reachable the relay simply waits, which is what the fast
tier wants.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from score_chassis.tokens import Role, TokenAuthority
from score_contracts import examples

TEST_SECRET = "test-secret-for-the-test-suite-only-0123456789"


@asynccontextmanager
async def serving(
    app: FastAPI, base_url: str = "http://service"
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to `app` in-process, inside the app's lifespan."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client


def bearer(
    role: Role,
    *,
    regions: Iterable[str] = (),
    trainer_id: str | None = None,
    secret: str = TEST_SECRET,
) -> dict[str, str]:
    """An Authorization header with a fresh token of `role`.

    A trainer token speaks for `trainer_id`, by default the trainer of the contracts'
    examples.
    """
    if role == "trainer" and trainer_id is None:
        trainer_id = examples.TRAINER_ID
    token = TokenAuthority(secret).issue(role, regions=regions, trainer_id=trainer_id)
    return {"Authorization": f"Bearer {token}"}
