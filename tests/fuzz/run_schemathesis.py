"""schemathesis's command line, guarded against a bug of CPython 3.11.7.

On 3.11.7, `ast.parse` of a large module can raise `SystemError: AST constructor recursion
depth mismatch` (fixed in 3.11.8). Hypothesis parses a module's source to describe a lambda
for its reports, and schemathesis's own modules are large enough to hit it: the run then
stops with a runtime error that says nothing about the API under test. A lambda that cannot be
described is described as unknown instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import hypothesis.internal.lambda_sources as lambda_sources
from schemathesis.cli import schemathesis

_describe: Callable[..., str] = lambda_sources._lambda_description


def _described(f: Any, *args: Any, **kwargs: Any) -> str:
    try:
        return _describe(f, *args, **kwargs)
    except SystemError:
        return "lambda: <unknown>"


if __name__ == "__main__":
    lambda_sources._lambda_description = _described
    sys.exit(schemathesis())
