"""`score`: run and operate SCORE Cases from the command line.

Each command lives in its own module, which adds its parser with `register(commands)` and
sets `handler`, a function from the parsed arguments to the exit code.

What the chassis logs while a command runs (its NATS connection, say) goes to stderr, as a
service's does: stdout is the command's answer alone, which `--json` makes one JSON document.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import version

import structlog

from score_chassis.logs import configure_logging
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
    if not structlog.is_configured():  # in a process of its own; a test's may have been
        configure_logging("score", level="info", fmt="auto")
    handler: Callable[[argparse.Namespace], int] = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
