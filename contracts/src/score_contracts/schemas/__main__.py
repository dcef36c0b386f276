"""`python -m score_contracts.schemas write|check` (what `make schemas` runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from score_contracts.schemas.committed import IncompatibleChange, problems, write
from score_contracts.schemas.generation import CATALOGUE_PAGE, SCHEMAS_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m score_contracts.schemas",
        description="Generate or check the published JSON Schemas and the event catalogue.",
    )
    parser.add_argument("command", choices=("write", "check"))
    parser.add_argument("--schemas", type=Path, default=SCHEMAS_DIR, help="schemas folder")
    parser.add_argument("--page", type=Path, default=CATALOGUE_PAGE, help="catalogue page")
    parser.add_argument(
        "--allow-incompatible",
        action="store_true",
        help="overwrite committed schemas even with incompatible changes (breaks consumers)",
    )
    args = parser.parse_args(argv)

    if args.command == "check":
        found = problems(args.schemas, args.page)
        for problem in found:
            print(problem, file=sys.stderr)
        if not found:
            print("schemas, index and catalogue match the models")
        return 1 if found else 0

    try:
        changed = write(args.schemas, args.page, allow_incompatible=args.allow_incompatible)
    except IncompatibleChange as refused:
        for problem in refused.problems:
            print(problem, file=sys.stderr)
        print("nothing written", file=sys.stderr)
        return 1
    for file in changed:
        print(f"wrote {file}")
    if not changed:
        print("schemas, index and catalogue already match the models")
    return 0


if __name__ == "__main__":
    sys.exit(main())
