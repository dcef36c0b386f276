"""The service's events and the standard library's records share one chain and one format.

Each test configures logging as a service does and puts it back as it was afterwards: the
configuration is the process's (the root logger's handlers, structlog's chain).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from score_chassis.logs import configure_logging, get_logger

KEYS = {"event", "level", "timestamp", "service"}


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    written = capsys.readouterr().err
    return [json.loads(line) for line in written.splitlines()]


def test_a_stdlib_record_is_rendered_like_the_services_own_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("enrolment", level="info", fmt="json")

    logging.getLogger("alembic.runtime.migration").info("Running upgrade %s -> %s", "a", "b")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    with structlog.contextvars.bound_contextvars(correlation_id="c-1"):
        get_logger("score_chassis.relay").info("relay.published", count=3)
        logging.getLogger("nats.aio.client").warning("connection lost")

    alembic, uvicorn, ours, nats = _lines(capsys)
    for line in (alembic, uvicorn, ours, nats):
        assert KEYS <= line.keys()
        assert line["service"] == "enrolment"
    assert alembic["event"] == "Running upgrade a -> b"
    assert alembic["level"] == "info"
    assert alembic["logger"] == "alembic.runtime.migration"
    assert uvicorn["logger"] == "uvicorn.error"
    assert ours == {**ours, "event": "relay.published", "count": 3, "correlation_id": "c-1"}
    # A library's record carries the ids bound where it was made, as the service's do.
    assert nats["correlation_id"] == "c-1"
    assert nats["level"] == "warning"


def test_an_exception_stays_on_its_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("visits", level="info", fmt="json")

    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        get_logger("score_visits.api").exception("command.failed")

    from_uvicorn, ours = _lines(capsys)
    assert from_uvicorn["level"] == "error"
    assert "ValueError: boom" in from_uvicorn["exception"]
    assert "ValueError: boom" in ours["exception"]


def test_levels_are_honoured_for_the_service_and_for_uvicorn(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("enrolment", level="warning", fmt="json")

    get_logger("score_chassis.relay").info("relay.published")
    logging.getLogger("uvicorn.error").info("Application startup complete.")
    logging.getLogger("alembic.runtime.migration").info("Running upgrade")
    get_logger("score_chassis.relay").warning("relay.waiting")

    assert [line["event"] for line in _lines(capsys)] == ["relay.waiting"]


def test_a_librarys_chatter_below_warning_is_never_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("enrolment", level="debug", fmt="json")

    # What these would say at debug is a statement with its parameters: personal data.
    statement = "INSERT INTO events VALUES (?, ?)", ("Textiles Illimani", "1029384756")
    logging.getLogger("aiosqlite").debug("executing %s", statement)
    logging.getLogger("sqlalchemy.engine.Engine").info("%s", statement)
    logging.getLogger("multipart.multipart").debug("Calling on_field_data with data %r", b"x")
    logging.getLogger("uvicorn.access").info('"POST /v1/enterprises HTTP/1.1" 201')
    logging.getLogger("aiosqlite").warning("a connection was not closed")

    assert [line["event"] for line in _lines(capsys)] == ["a connection was not closed"]


def test_configuring_again_leaves_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("enrolment", fmt="json")
    configure_logging("enrolment", fmt="json")

    logging.getLogger("uvicorn.error").info("once")

    assert [line["event"] for line in _lines(capsys)] == ["once"]


def test_console_output_on_request(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("enrolment", fmt="console")

    logging.getLogger("uvicorn.error").info("Application startup complete.")
    get_logger("score_chassis.relay").info("relay.published", count=3)

    written = capsys.readouterr().err.splitlines()
    assert len(written) == 2
    assert "Application startup complete." in written[0]
    assert "relay.published" in written[1] and "count=3" in written[1]
    with pytest.raises(json.JSONDecodeError):
        json.loads(written[0])
