"""RFC 9457 problem details for every error an API answers.

A problem of the API's own has a type from `PROBLEM_TYPES`, the one list of them: its `type`
is the absolute URI `<the service's public URL>/problems/<slug>`, where the service answers
a page saying what the problem means and what to do (`http/problem_pages.py`). An error the
HTTP status says all of (400, 401, 403, 405, 413, 500) is `about:blank`, as RFC 9457 has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from score_chassis.decider import Invalid, NotKnownYet, Refused
from score_chassis.errors import NotFound, Rebuilding, VersionMismatch
from score_chassis.logs import get_logger
from score_chassis.store import ConcurrencyError

PROBLEM_JSON = "application/problem+json"

log = get_logger(__name__)

RETRY_AFTER_SECONDS = 1
"""What a `NotKnownYet` refusal suggests waiting before a retry: events usually arrive in
well under a second."""

REBUILD_RETRY_AFTER_SECONDS = 5
"""What a read of a view being rebuilt suggests waiting: a rebuild takes seconds to minutes."""


@dataclass(frozen=True, slots=True)
class ProblemType:
    """A kind of problem the API answers, and what its page tells the person who meets it."""

    slug: str
    title: str
    status: int
    meaning: str
    remedy: str

    @property
    def path(self) -> str:
        return f"/problems/{self.slug}"

    def uri(self, public_url: str) -> str:
        """The problem's `type`, at the service whose public address is `public_url`."""
        return f"{public_url.rstrip('/')}{self.path}"


INVALID_INPUT = ProblemType(
    "invalid-input",
    "Invalid input",
    422,
    "The request does not have the form the API asks for: a field is missing, of the wrong "
    "type or out of range, or a date lies outside the programme's calendar. `errors` names "
    "each field, where it was (body, query, header) and the rule it breaks.",
    "Correct the fields `errors` names and send the request again: sent unchanged, it fails again.",
)
REFUSED = ProblemType(
    "refused",
    "Refused",
    409,
    "The request was well formed, but a rule of the programme refuses it given what is "
    "recorded (module 1 comes first, no enrolment after a withdrawal …); `rule` names the rule "
    "and `detail` says why.",
    "Do not retry: the answer stays the same while the facts do. Change the request, or first "
    "record what the rule asks for.",
)
NOT_KNOWN_YET = ProblemType(
    "not-known-yet",
    "Not known yet",
    409,
    "The request rests on a fact this service learns from another service's events, which "
    "has not reached it yet (an enterprise registered a moment ago, say); `rule`, ending in "
    "`-not-known-yet`, names the fact. Events usually arrive in well under a second.",
    "Retry after the `Retry-After` seconds, with the same `Idempotency-Key`. If the answer "
    "persists, the other service's events are not arriving: tell the operators.",
)
NOT_FOUND = ProblemType(
    "not-found",
    "Not found",
    404,
    "Nothing is recorded under this id here; `detail` names what was looked for.",
    "Check the id, and that you asked the service that records such things.",
)
VERSION_MISMATCH = ProblemType(
    "version-mismatch",
    "Version mismatch",
    412,
    "`If-Match` names a version the resource is not at: it changed since you read it.",
    "Read the resource again, decide again on what it says now, and send the request with its "
    "current version.",
)
REBUILDING = ProblemType(
    "rebuilding",
    "Being rebuilt",
    503,
    "The view this read answers from is being rebuilt from its streams (an operator's "
    "replay); `detail` says how far. A partly rebuilt view is never answered.",
    "Ask again after the `Retry-After` seconds.",
)
CONCURRENT_CHANGE = ProblemType(
    "concurrent-change",
    "Concurrent change",
    409,
    "Another request changed the same resource while this one was decided; nothing of this "
    "one was recorded.",
    "Retry the request, with the same `Idempotency-Key`.",
)

PROBLEM_TYPES: dict[str, ProblemType] = {
    kind.slug: kind
    for kind in (
        INVALID_INPUT,
        REFUSED,
        NOT_KNOWN_YET,
        NOT_FOUND,
        VERSION_MISMATCH,
        REBUILDING,
        CONCURRENT_CHANGE,
    )
}
"""Every problem type the API answers, by slug: the one list of them."""


class FieldError(BaseModel):
    field: str
    reason: str
    location: str = "body"
    rule: str | None = Field(
        default=None, description="What the value breaks, e.g. `date-in-future`, `int_type`"
    )


REASON_LIMIT = 300
"""A reason is cut to this many characters: an error never echoes a huge value back."""


class Problem(BaseModel):
    """The body of every error response."""

    type: str = Field(
        default="about:blank",
        description="An absolute URI: `<the service>/problems/<slug>`, a page saying what the "
        "problem means and what to do; `about:blank` when the status says all",
    )
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    rule: str | None = None
    errors: list[FieldError] | None = None


def invalid_input(
    location: str, field: str, reason: str, *, rule: str = "value_error"
) -> RequestValidationError:
    """A 422 naming one field outside the body's model: a header, a query parameter, or a
    field whose rule needs more than the body (a region of the settings' country)."""
    return RequestValidationError([{"loc": (location, field), "msg": reason, "type": rule}])


def problem(request: Request, status: int, title: str, type_: str, **extra: Any) -> JSONResponse:
    body = Problem(title=title, status=status, type=type_, instance=request.url.path, **extra)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON
    )


ERRORS_LISTED = 20
"""A 422 names at most this many errors, then says how many more there were: a body of a
megabyte with sixty thousand wrong fields would otherwise be answered with eight."""


def _field_errors(error: RequestValidationError) -> list[FieldError]:
    out = []
    found = error.errors()
    for item in found[:ERRORS_LISTED]:
        location, *path = item.get("loc", ("body",))
        # pydantic names union members and validators in the path; keep the field names.
        names = [str(p) for p in path if not (isinstance(p, str) and "[" in p)]
        reason = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(
            FieldError(
                field=".".join(names)[:REASON_LIMIT] or str(location),
                reason=_cut(reason),
                location=str(location),
                rule=str(item.get("type", "invalid")),
            )
        )
    if len(found) > ERRORS_LISTED:
        more = len(found) - ERRORS_LISTED
        out.append(FieldError(field="(more)", reason=f"and {more} more", rule="too_many_errors"))
    return out


def _cut(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else f"{text[:REASON_LIMIT]}…"


def install_problem_handlers(app: FastAPI, *, public_url: str) -> None:
    """Answer every error in problem details, typed at the service's `public_url`."""

    def typed(request: Request, kind: ProblemType, **extra: Any) -> JSONResponse:
        return problem(request, kind.status, kind.title, kind.uri(public_url), **extra)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = _field_errors(error)
        return typed(
            request,
            INVALID_INPUT,
            detail="; ".join(f"{e.field}: {e.reason}" for e in errors),
            errors=errors,
        )

    @app.exception_handler(Invalid)
    async def _invalid(request: Request, error: Invalid) -> JSONResponse:
        errors = [FieldError(field=error.field, reason=error.reason, rule=error.rule)]
        return typed(
            request,
            INVALID_INPUT,
            detail=f"{error.field}: {error.reason}",
            rule=error.rule,
            errors=errors,
        )

    @app.exception_handler(Refused)
    async def _refused(request: Request, error: Refused) -> JSONResponse:
        return typed(request, REFUSED, detail=error.message, rule=error.rule)

    @app.exception_handler(NotKnownYet)
    async def _not_known_yet(request: Request, error: NotKnownYet) -> JSONResponse:
        # A handler for the subclass wins over the one for `Refused` (Starlette walks the MRO).
        response = typed(request, NOT_KNOWN_YET, detail=error.message, rule=error.rule)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, error: NotFound) -> JSONResponse:
        return typed(request, NOT_FOUND, detail=str(error))

    @app.exception_handler(VersionMismatch)
    async def _version_mismatch(request: Request, error: VersionMismatch) -> JSONResponse:
        return typed(request, VERSION_MISMATCH, detail=str(error))

    @app.exception_handler(Rebuilding)
    async def _rebuilding(request: Request, error: Rebuilding) -> JSONResponse:
        response = typed(request, REBUILDING, detail=str(error))
        response.headers["Retry-After"] = str(REBUILD_RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(ConcurrencyError)
    async def _conflict(request: Request, error: ConcurrencyError) -> JSONResponse:
        return typed(
            request,
            CONCURRENT_CHANGE,
            detail="the resource changed while the request was decided; retry",
            rule="concurrent-change",
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        # The type only: the text of a database error can quote personal data.
        log.error("request.failed", path=request.url.path, error=type(error).__name__)
        return problem(
            request,
            500,
            "Internal server error",
            "about:blank",
            detail="the request failed: retry it with the same Idempotency-Key, or ask operators",
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        headers = dict(error.headers or {})
        detail = str(error.detail)
        if error.status_code == 405:
            # Starlette names the methods of the first route on the path only.
            allowed = allowed_methods(app, request.url.path)
            headers["Allow"] = ", ".join(allowed)
            detail = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        elif error.status_code == 400:
            detail = "the body could not be read as JSON (is it UTF-8?)"
        response = problem(
            request,
            error.status_code,
            _title(error.status_code),
            "about:blank",
            detail=detail,
        )
        response.headers.update(headers)
        return response


def _title(status: int) -> str:
    # RFC 9110's name: Python's table still has RFC 7231's "Request Entity Too Large".
    return "Content Too Large" if status == 413 else HTTPStatus(status).phrase


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods some route of the app serves on `path`, asked of the routing itself."""
    return [
        method
        for method in _METHODS
        if any(
            route.matches({"type": "http", "path": path, "method": method, "root_path": ""})[0]
            == Match.FULL
            for route in app.router.routes
        )
    ]


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "description": description, "content": {PROBLEM_JSON: {}}}
    for code, description in {
        400: "The body is not readable JSON (not UTF-8)",
        401: "No token, or an invalid, expired or revoked one",
        403: "The token's role or regions do not allow this",
        404: "Unknown id",
        409: "A rule of the domain refused the command (the rule is named)",
        412: "If-Match names a version the resource is not at",
        413: "The body is larger than the limit (`SCORE_MAX_BODY_BYTES`, 1 MiB by default)",
        422: "Invalid input (each bad field is named, with the rule it breaks)",
    }.items()
}
"""The error responses of a write endpoint, for the OpenAPI document."""


BODY_ERRORS = (400, 413)
"""What any endpoint that reads a body can answer before it looks at the body's content."""


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses an endpoint can give, and only those, for its OpenAPI document."""
    return {code: PROBLEM_RESPONSES[code] for code in sorted(set(codes))}


def rebuilding_response(view: str) -> dict[int | str, dict[str, Any]]:
    """The 503 of a read that answers from `view` (e.g. "the indicators' projection")."""
    return {
        503: {
            "model": Problem,
            "description": f"{view[0].upper()}{view[1:]} is being rebuilt from its streams "
            f"(problem type `…{REBUILDING.path}`; the detail says how far): retry after "
            "`Retry-After` seconds. Never answered with a partly rebuilt view.",
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before asking again",
                    "schema": {"type": "integer"},
                }
            },
            "content": {PROBLEM_JSON: {}},
        }
    }


def document_problems_as_problem_json(openapi: dict[str, Any]) -> dict[str, Any]:
    """Move error bodies in an OpenAPI document from `application/json` to
    `application/problem+json`, the media type they are answered with.

    FastAPI puts a response model under the route's media type, which is JSON; a
    `content` entry for another media type only adds to it. And it documents a 422 it adds by
    itself (a route that names none) with its own `HTTPValidationError`, which is never
    answered: every invalid request is answered with a `Problem`.
    """
    problem = {"$ref": "#/components/schemas/Problem"}
    for path in openapi.get("paths", {}).values():
        for operation in path.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                if schema.get("$ref", "").endswith("/HTTPValidationError"):
                    schema = content["application/json"]["schema"] = problem
                # Only problem bodies: an unready `/readyz` answers its checks, in JSON.
                if str(code).startswith(("4", "5")) and schema.get("$ref", "").endswith("/Problem"):
                    content[PROBLEM_JSON] = content.pop("application/json")
    return openapi
