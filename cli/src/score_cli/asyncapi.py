"""The committed AsyncAPI documents, one per service, in `docs/asyncapi/`.

`python -m score_cli.asyncapi write` regenerates them from the services as they are built
(their event models and subscriptions); `check` fails when a committed one is stale. They
differ from what a service serves at `/asyncapi` in two things only: the server is a
variable (no one deployment's address), and the payloads refer to the committed schemas by
their path from here, `../../contracts/schemas/…`, rather than at the service.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from score_chassis.asyncapi import DOCUMENTED_SERVER, asyncapi_document
from score_chassis.runtime import Runtime
from score_cli.up import installed_services

ROOT = Path(__file__).resolve().parents[3]
DOCS_DIR = ROOT / "docs" / "asyncapi"
SCHEMAS_DIR = ROOT / "contracts" / "schemas"


def documents() -> dict[Path, str]:
    """What each installed service's AsyncAPI document should say, by file."""
    # Building an app starts nothing; it needs only settings that validate.
    os.environ.setdefault("SCORE_AUTH_SECRET", "x" * 32)
    os.environ.setdefault("SCORE_DATABASE_URL", "sqlite+aiosqlite:///:memory:")
    os.environ.setdefault("SCORE_NOTIFICATIONS_SECRET_KEY", "x" * 32)
    out: dict[Path, str] = {}
    for service in installed_services():
        app = importlib.import_module(f"{service.module}.main").build_app()
        runtime: Runtime = app.state.runtime
        document: dict[str, Any] = asyncapi_document(
            title=app.title,
            context=runtime.context,
            subscriptions=runtime.subscriptions,
            server=DOCUMENTED_SERVER,
            schemas=os.path.relpath(SCHEMAS_DIR, DOCS_DIR),
        )
        out[DOCS_DIR / f"{service.name}.json"] = json.dumps(document, indent=2) + "\n"
    return out


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    stale = [
        path for path, text in documents().items() if not path.exists() or path.read_text() != text
    ]
    if command == "write":
        DOCS_DIR.mkdir(parents=True, exist_ok=True)
        for path, text in documents().items():
            path.write_text(text)
        return 0
    for path in stale:
        print(f"{path} is stale: run `make schemas`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
