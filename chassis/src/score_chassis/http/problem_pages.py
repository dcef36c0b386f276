"""`/problems/<slug>`: the page each problem type's URI names (RFC 9457 says a type's URI
should resolve to documentation for people), short enough to read where the error was met.
"""

from __future__ import annotations

import re
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from score_chassis.errors import NotFound
from score_chassis.http.problems import PROBLEM_TYPES, ProblemType, problem_responses

_CODE = re.compile(r"`([^`]+)`")


def problem_pages_router(public_url: str) -> APIRouter:
    """A page for every type in `PROBLEM_TYPES`, at the path its URI names."""
    router = APIRouter(tags=["contracts"])

    @router.get(
        "/problems/{slug}",
        summary="What a problem type means and what to do (the page its `type` URI names)",
        response_class=HTMLResponse,
        responses={200: {"description": "A short HTML page"}, **problem_responses(404)},
    )
    async def problem_page(slug: str) -> HTMLResponse:
        kind = PROBLEM_TYPES.get(slug)
        if kind is None:
            raise NotFound("problem type", slug)
        return HTMLResponse(page(kind, public_url))

    return router


def page(kind: ProblemType, public_url: str) -> str:
    """The HTML page of `kind`: its title, status and URI, what it means, what to do."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(kind.title)}: a SCORE Cases problem</title>
<style>body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.5 }}
code {{ background: #f2f2f2; padding: 0 .2em }}</style>
</head>
<body>
<h1>{escape(kind.title)}</h1>
<p>HTTP {kind.status}, problem type <code>{escape(kind.uri(public_url))}</code></p>
<h2>What it means</h2>
<p>{_prose(kind.meaning)}</p>
<h2>What to do</h2>
<p>{_prose(kind.remedy)}</p>
</body>
</html>
"""


def _prose(text: str) -> str:
    """`text` as HTML, its `code` spans as `<code>`."""
    return _CODE.sub(r"<code>\1</code>", escape(text, quote=False))
