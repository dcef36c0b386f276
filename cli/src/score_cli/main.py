"""`score`: run and operate SCORE Cases from the command line.

Each command lives in its own module, which adds its parser with `register(commands)` and
sets `handler`, a function from the parsed arguments to the exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

from score_cli import (
    credentials,
    dead_letters,
    demo,
    doctor,
    export_events,
    migrate,
    replay,
    republish,
    tail,
    tokens,
    up,
)

COMMANDS = (
    up,
    demo,
    migrate,
    tokens,
    credentials,
    doctor,
    dead_letters,
    replay,
    republish,
    tail,
    export_events,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="score", description="Run and operate SCORE Cases, the SCORE Training case system."
    )
    parser.add_argument("--version", action="version", version=f"score {version('score-cli')}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
