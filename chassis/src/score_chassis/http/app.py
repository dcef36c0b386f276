"""The FastAPI application every service is served by: lifespan of the runtime, problem
details (and the pages their types name), correlation ids, `/healthz`, `/readyz`, `/metrics`,
`/asyncapi`, the event schemas, and the dead letters' operations endpoints
(`http/dead_letters.py`)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from score_chassis import dead_letters
from score_chassis.asyncapi import asyncapi_document, nats_server
from score_chassis.commands import Commands
from score_chassis.http.connections import limited_http
from score_chassis.http.dead_letters import dead_letters_router
from score_chassis.http.inputs import ProgrammeCalendar, programme_calendar
from score_chassis.http.problem_pages import problem_pages_router
from score_chassis.http.problems import (
    PROBLEM_JSON,
    Problem,
    document_problems_as_problem_json,
    install_problem_handlers,
)
from score_chassis.http.schemas import schemas_router
from score_chassis.logs import get_logger
from score_chassis.metrics import HTTP_REQUESTS
from score_chassis.runtime import Runtime
from score_chassis.stream_check import stream_check
from score_chassis.tokens import Revocations, TokenAuthority
from score_contracts.events.base import SCHEMAS_PATH
from score_contracts.ids import uuid7

log = get_logger(__name__)

CORRELATION_HEADER = "X-Correlation-ID"
REQUEST_ID_HEADER = "X-Request-ID"
"""The request's own id, made here and sent back: the `causationid` of the events it caused."""
_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def create_app(
    runtime: Runtime,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    commands: Commands[Any] | None = None,
) -> FastAPI:
    """The service's app: `routers` for its endpoints, `commands` for its writes."""
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

    app = FastAPI(
        title=title,
        description=description,
        version="1",
        lifespan=lifespan,
    )
    app.add_middleware(BodyLimit, limit=runtime.settings.max_body_bytes)
    app.state.runtime = runtime
    app.state.commands = commands
    calendar = ProgrammeCalendar.of(runtime.settings)
    app.state.tokens = TokenAuthority(secret.get_secret_value())
    app.state.revocations = revocations
    public_url = runtime.settings.public_base_url()
    install_problem_handlers(app, public_url=public_url)

    app.add_middleware(Correlate, calendar=calendar)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Database reachable; NATS and consumer lag",
        responses={
            200: {"description": "Ready, with each check"},
            503: {
                "description": "Not ready: the database is unreachable, or a view the "
                "service answers from is being rebuilt; with each check",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    )
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
        # Reported, never a reason to refuse traffic (score_chassis.stream_check says why).
        checks["stream"] = await stream_check(runtime) if ready else None
        if ready and (rebuilding := await runtime.rebuilds.under_way()):
            # A view being rebuilt holds part of the history: not ready if reads answer from it
            # (one built beside the served view does not: they answer from that one).
            checks["rebuilding"] = {r.view.name: r.detail for r in rebuilding}
            ready = not any(r.view.served and not r.beside for r in rebuilding)
        return JSONResponse(
            {"status": "ready" if ready else "unready", "checks": checks},
            status_code=200 if ready else 503,
        )

    documents: dict[str, dict[str, Any]] = {}

    @app.get(
        "/asyncapi",
        tags=["operations"],
        summary="AsyncAPI 3.0: the events this service publishes and consumes, on the NATS "
        "it is configured with (SCORE_PUBLIC_NATS_URL, else SCORE_NATS_URL)",
    )
    async def asyncapi() -> dict[str, Any]:
        if "asyncapi" not in documents:
            settings = runtime.settings
            documents["asyncapi"] = asyncapi_document(
                title=title,
                context=runtime.context,
                subscriptions=runtime.subscriptions,
                server=nats_server(settings.public_nats_url or settings.nats_url),
                schemas=f"{public_url}/{SCHEMAS_PATH}",
            )
        return documents["asyncapi"]

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={
            200: {
                "description": "The Prometheus text exposition format",
                "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        # The gauge of dead letters kept now is read from the database at each scrape.
        with contextlib.suppress(Exception):  # the database away: the last known counts
            await dead_letters.measure(runtime.database, runtime.dead_letter_retriers)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    consumed = {subscription.stream.context for subscription in runtime.subscriptions}
    for router in (
        *routers,
        dead_letters_router(),
        schemas_router(runtime.context, consumed),
        problem_pages_router(public_url),
    ):
        app.include_router(router)

    def openapi() -> dict[str, Any]:
        # FastAPI caches the document; the move is made in place and changes nothing twice.
        return document_problems_as_problem_json(FastAPI.openapi(app))

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class Correlate:
    """Gives each request its correlation id (the caller's, if it looks like one: it goes into
    every log line and event), an id of its own (the `causationid` of the events its command
    records) and the programme's calendar, sends both ids back, and times the request into
    `HTTP_REQUESTS`.

    Plain ASGI: Starlette's `BaseHTTPMiddleware` runs the app in a task of its own and streams
    the response through a queue, which costs more than the endpoint of a write.
    """

    def __init__(self, app: ASGIApp, *, calendar: ProgrammeCalendar) -> None:
        self.app = app
        self.calendar = calendar

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(CORRELATION_HEADER, "")
        correlation_id = given if _CORRELATION_ID.fullmatch(given) else uuid7()
        request_id = uuid7()
        state = scope.setdefault("state", {})  # request.state
        state["correlation_id"], state["request_id"] = correlation_id, request_id
        status = 500  # unless the app answers

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers[CORRELATION_HEADER] = correlation_id
                headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.perf_counter()
        try:
            with (
                structlog.contextvars.bound_contextvars(correlation_id=correlation_id),
                programme_calendar(self.calendar),
            ):
                await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            HTTP_REQUESTS.labels(
                scope["method"], getattr(route, "path", "unmatched"), status
            ).observe(time.perf_counter() - started)


class BodyLimit:
    """Refuses a request body over the limit (413, in problem details) before it is parsed:
    at once when its Content-Length says so, without reading it; else as soon as the bytes
    streamed pass the limit. No body is ever held in memory beyond the limit.

    (FastAPI's own `max_body_size` answers a declared one in plain text, from outside every
    exception handler.)
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (declared := _content_length(scope)) is not None:
            if declared > self.limit:
                body = Problem(
                    title="Content Too Large",
                    status=413,
                    detail=f"the body is larger than {self.limit} bytes",
                    instance=scope.get("path"),
                )
                response = JSONResponse(
                    body.model_dump(exclude_none=True), status_code=413, media_type=PROBLEM_JSON
                )
                await response(scope, receive, send)
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised where the app reads the body: its handlers answer it.
                    raise StarletteHTTPException(
                        413, detail=f"the body is larger than {self.limit} bytes"
                    )
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    # More digits than any body could have: beyond the limit, without converting it (an int of
    # thousands of digits is refused by Python itself).
    return int(value) if len(value) <= 18 else 10**18


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run the app until SIGINT or SIGTERM (uvicorn shuts the lifespan down cleanly), each
    request given the time and head size of the service's settings (`http/connections.py`)."""
    import uvicorn

    http = limited_http(app.state.runtime.settings)
    uvicorn.run(app, host=host, port=port, http=http, log_config=None, access_log=False)
