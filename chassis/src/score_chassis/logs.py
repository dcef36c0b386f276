"""Structured logging: one chain for the service's own events and for every standard-library
record (uvicorn's, Alembic's, SQLAlchemy's, nats-py's), rendered as one JSON object per line
when not on a terminal, with correlation ids bound per request and per message.

Event payloads are never logged: they carry personal data. Nor is what a library says below
warning, except the lifecycle of uvicorn and Alembic: a library's debug and info lines may
carry SQL statements with their parameters (aiosqlite logs every call with its arguments)
or a request's body (python-multipart).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

# Below warning, the records written are the service's own (`score_*` loggers) and those of
# these loggers and their children.
LIFECYCLE_LOGGERS = ("uvicorn.error", "alembic")


def configure_logging(service: str, *, level: str = "info", fmt: str = "auto") -> None:
    """Send structlog's events and the standard library's records to stderr, rendered alike.

    `fmt` is `json`, `console` or `auto` (console on a terminal, else JSON); `level` is the
    lowest level written, for the service's own events and uvicorn's and Alembic's records.
    """
    threshold = logging.getLevelNamesMapping()[level.upper()]
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())

    def add_service(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        # On every line, from every thread: a context variable would miss a library's thread.
        event_dict.setdefault("service", service)
        return event_dict

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]
    rendering: list[Processor] = [structlog.processors.StackInfoRenderer()]
    if json_output:
        rendering += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        # A plain traceback: a rich one shows each frame's local variables, personal data.
        rendering.append(
            structlog.dev.ConsoleRenderer(
                colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback
            )
        )

    handler = _StderrHandler()
    # The service's own events are rendered by structlog and written at once, not passed
    # through the standard library's records and handler: that cost a sixth of a write's CPU.
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=lambda name="", *_: _StderrLogger(name, handler),
        cache_logger_on_first_use=True,
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
        )
    )
    handler.addFilter(_spoken)
    root = logging.getLogger()
    for installed in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(installed)  # configured again (a test builds many apps): one handler
    root.addHandler(handler)
    root.setLevel(threshold)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(name)
    return logger


def _spoken(record: logging.LogRecord) -> bool:
    """Whether a record is written: a warning or worse always; below, if ours or lifecycle."""
    name = record.name
    return (
        record.levelno >= logging.WARNING
        or name.startswith("score_")
        or any(name == logger or name.startswith(f"{logger}.") for logger in LIFECYCLE_LOGGERS)
    )


class _StderrLogger:
    """Where structlog writes a service's rendered events: the `sys.stderr` of the moment, under
    the lock of the handler that writes the standard library's records, so lines never mix."""

    def __init__(self, name: str, handler: logging.Handler) -> None:
        self.name = name  # for add_logger_name
        self._handler = handler

    def msg(self, message: str) -> None:
        with self._handler.lock or contextlib.nullcontext():
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = error = critical = exception = msg


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to the `sys.stderr` of the moment, which a test harness may have replaced."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # under the handler's lock: `handle` holds it
        super().emit(record)
