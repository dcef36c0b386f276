"""The FastAPI application every service is served by: lifespan of the runtime, problem
details, correlation ids, `/healthz`, `/readyz`, `/metrics`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from score_chassis.api import set_programme_timezone
from score_chassis.asyncapi import asyncapi_document
from score_chassis.auth import Revocations, TokenAuthority
from score_chassis.logs import get_logger
from score_chassis.metrics import HTTP_REQUESTS
from score_chassis.problems import document_problems_as_problem_json, install_problem_handlers
from score_chassis.runtime import Runtime
from score_contracts.ids import uuid7

log = get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"


def create_app(
    runtime: Runtime, *, title: str, description: str, routers: Sequence[APIRouter]
) -> FastAPI:
    secret = runtime.settings.auth_secret
    if secret is None:
        raise RuntimeError("SCORE_AUTH_SECRET is not set: it signs and verifies every token")
    revocations = Revocations(runtime.nats, runtime.database)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        await revocations.start()  # before answering anyone
        try:
            yield
        finally:
            await revocations.stop()
            await runtime.stop()

    app = FastAPI(title=title, description=description, version="1", lifespan=lifespan)
    app.state.runtime = runtime
    set_programme_timezone(runtime.settings.timezone)
    app.state.tokens = TokenAuthority(secret.get_secret_value())
    app.state.revocations = revocations
    install_problem_handlers(app)

    @app.middleware("http")
    async def correlate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        correlation_id = request.headers.get(CORRELATION_HEADER) or uuid7()
        request.state.correlation_id = correlation_id
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            response = await call_next(request)
        route = request.scope.get("route")
        HTTP_REQUESTS.labels(
            request.method, getattr(route, "path", "unmatched"), response.status_code
        ).observe(time.perf_counter() - started)
        response.headers[CORRELATION_HEADER] = correlation_id
        return response

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database reachable; NATS and consumer lag")
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        ready = True
        try:
            await runtime.database.ping()
            checks["database"] = "ok"
        except Exception as error:
            ready = False
            checks["database"] = f"down: {type(error).__name__}"
        # NATS being down does not make the service unready: writes still land in the
        # outbox and are published when it is back. It is reported, not required.
        checks["nats"] = "ok" if runtime.nats.connected else "disconnected"
        checks["outbox_pending"] = await runtime.relay.pending_count() if ready else None
        checks["dead_letters"] = await runtime.dead_letter_count() if ready else None
        checks["consumers"] = {c.name: {"lag": c.lag} for c in runtime.consumers}
        if ready and (rebuilding := await runtime.rebuilds.under_way()):
            # A view being rebuilt holds part of the history: not ready if reads answer from it.
            checks["rebuilding"] = {r.view.name: r.detail for r in rebuilding}
            ready = not any(r.view.served for r in rebuilding)
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": checks},
            status_code=200 if ready else 503,
        )

    documents: dict[str, dict[str, Any]] = {}

    @app.get(
        "/asyncapi",
        tags=["operations"],
        summary="AsyncAPI 3.0: the events this service publishes and consumes",
    )
    async def asyncapi() -> dict[str, Any]:
        if "asyncapi" not in documents:  # generated on first use: it costs start-up time
            documents["asyncapi"] = asyncapi_document(
                title=title, context=runtime.context, subscriptions=runtime.subscriptions
            )
        return documents["asyncapi"]

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        # FastAPI caches the document; the move is made in place and changes nothing twice.
        return document_problems_as_problem_json(FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run the app until SIGINT or SIGTERM (uvicorn shuts the lifespan down cleanly)."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
