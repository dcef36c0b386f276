"""`/schemas/…`: the JSON Schemas of the events a service publishes, where `dataschema` says.

Every envelope's `dataschema` is `<the producing service>/schemas/<context>/<event>.v<major>
.data.json` (ADR 023), so a consumer holding an event can fetch the schema its `data` adheres
to from the service that published it. The envelope's own schema is served beside it. The
files are the published ones, read through `importlib.resources` (the wheel's copy when the
contracts are installed from it): the very text committed in `contracts/schemas/`. Those of
the events the service consumes are served too: its AsyncAPI document refers to them here,
as the schemas of what it reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from score_chassis.errors import NotFound
from score_chassis.http.problems import problem_responses
from score_contracts.events import CATALOGUE
from score_contracts.events.base import SCHEMAS_PATH
from score_contracts.schemas import load_schema

SCHEMA_JSON = "application/schema+json"


def schemas_router(context: str, consumed: Iterable[str] = ()) -> APIRouter:
    """The schemas of the events of `context` and of the `consumed` contexts: of `data` and
    of the whole envelope."""
    contexts = {context, *consumed}
    served = {
        path
        for cls in CATALOGUE
        if cls.context in contexts
        for path in (cls.data_schema_path(), cls.schema_path())
    }
    router = APIRouter(tags=["contracts"])
    loaded: dict[str, dict[str, Any]] = {}

    @router.get(
        f"/{SCHEMAS_PATH}/{{context}}/{{name}}",
        summary="The JSON Schema of an event this service publishes (what `dataschema` names) "
        "or consumes",
        response_class=JSONResponse,
        responses={
            200: {
                "description": "A JSON Schema, draft 2020-12",
                "content": {SCHEMA_JSON: {"schema": {"type": "object"}}},
            },
            **problem_responses(404),
        },
    )
    async def schema(context: str, name: str) -> JSONResponse:
        path = f"{context}/{name}"
        if path not in served:
            raise NotFound("event schema", path)
        if path not in loaded:
            loaded[path] = load_schema(path)
        return JSONResponse(loaded[path], media_type=SCHEMA_JSON)

    return router
