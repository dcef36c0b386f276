"""The AsyncAPI documents: current, valid by the AsyncAPI project's own validator, their
payloads the committed schemas themselves, and saying what each service really does."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from score_chassis.asyncapi import JSON_SCHEMA_FORMAT, NATS_PROTOCOL_VERSION
from score_cli.asyncapi import DOCS_DIR, ROOT, SCHEMAS_DIR, documents
from score_cli.up import installed_services
from score_contracts.events import BY_TYPE, CATALOGUE
from score_contracts.schemas import load_schema

GENERATED = documents()
BY_SERVICE = {path.stem: json.loads(text) for path, text in GENERATED.items()}
INSTALLED_CLI = ROOT / ".cache" / "npm" / "node_modules" / ".bin" / "asyncapi"
"""Where `.ci/run` installs `@asyncapi/cli` from npm."""

DRAFT_07_ALIKE = {
    *("$schema", "$id", "$comment", "$ref", "$defs", "title", "description", "default"),
    *("type", "const", "enum", "anyOf", "properties", "required", "items", "format"),
    *("pattern", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems"),
}
"""Keywords JSON Schema draft-07 and draft 2020-12 both have, meaning the same (`$defs` is
only a place there, which `$ref`'s pointer reaches alike)."""


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.stem)
def test_the_committed_document_is_current(path: Path) -> None:
    assert path.exists(), f"{path} is missing: run `make schemas`"
    assert path.read_text() == GENERATED[path], f"{path} is stale: run `make schemas`"


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        yield from (v for k, v in node.items() if k == "$ref")
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _payload_file(message: dict[str, Any]) -> Path:
    return (DOCS_DIR / message["payload"]["schema"]["$ref"]).resolve()


@pytest.mark.parametrize("service", sorted(BY_SERVICE))
def test_every_event_of_the_service_is_a_send_operation_and_every_ref_resolves(
    service: str,
) -> None:
    document = BY_SERVICE[service]
    assert document["asyncapi"] == "3.0.0"
    sent = {name for name, op in document["operations"].items() if op["action"] == "send"}
    assert sent == {cls.event_type() for cls in CATALOGUE if cls.context == service}
    for ref in _refs(document):
        if ref.startswith("#"):
            _resolve(document, ref)
        else:
            assert (DOCS_DIR / ref).resolve().is_file(), ref


@pytest.mark.parametrize("service", sorted(BY_SERVICE))
def test_each_payload_is_the_committed_envelope_schema_of_its_event(service: str) -> None:
    for name, message in BY_SERVICE[service]["components"]["messages"].items():
        cls = BY_TYPE[name]
        assert message["payload"]["schemaFormat"] == JSON_SCHEMA_FORMAT
        assert _payload_file(message) == SCHEMAS_DIR / cls.schema_path()
        committed = json.loads(_payload_file(message).read_text())
        # The very schema the contracts ship and every service serves.
        assert committed == load_schema(cls.schema_path())
        assert committed["properties"]["type"]["const"] == name
        assert message["contentType"] == "application/cloudevents+json"


@pytest.mark.parametrize("service", sorted(BY_SERVICE))
def test_the_correlation_id_is_where_the_envelope_carries_it(service: str) -> None:
    for message in BY_SERVICE[service]["components"]["messages"].values():
        location = message["correlationId"]["location"]
        assert location == "$message.payload#/correlationid"
        envelope = json.loads(_payload_file(message).read_text())
        assert "correlationid" in envelope["properties"]


def test_the_committed_schemas_mean_the_same_to_a_draft_07_reader() -> None:
    def keywords(node: Any, *, names: bool = False) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if not names:
                    yield key
                    assert not ("$ref" in node and key != "$ref"), f"$ref beside {key}"
                yield from keywords(value, names=not names and key in ("properties", "$defs"))
        elif isinstance(node, list):
            for value in node:
                yield from keywords(value)

    used = {
        k for path in SCHEMAS_DIR.glob("*/*.json") for k in keywords(json.loads(path.read_text()))
    }
    assert used <= DRAFT_07_ALIKE, used - DRAFT_07_ALIKE


def test_each_consumer_receives_the_events_its_filter_selects() -> None:
    received = {
        name: {m.removeprefix("#/components/messages/") for m in _refs(channel["messages"])}
        for document in BY_SERVICE.values()
        for name, channel in document["channels"].items()
        if document["operations"][name]["action"] == "receive"
    }

    def of(context: str) -> set[str]:
        return {cls.event_type() for cls in CATALOGUE if cls.context == context}

    assert received == {
        "indicators-projection-enrolment": of("enrolment"),
        "indicators-projection-visits": of("visits"),
        "visits-views-enrolment": of("enrolment"),
        "notifications-milestones": {"org.ilo.score.indicators.milestone_reached.v1"},
    }


@pytest.mark.nats
def test_the_server_speaks_the_protocol_version_nats_server_announces(nats_url: str) -> None:
    address = urlsplit(nats_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        info = json.loads(connection.makefile("rb").readline().removeprefix(b"INFO "))
    assert str(info["proto"]) == NATS_PROTOCOL_VERSION
    for document in BY_SERVICE.values():
        assert document["servers"]["nats"]["protocolVersion"] == NATS_PROTOCOL_VERSION


def _asyncapi_cli() -> str | None:
    found = shutil.which("asyncapi")
    return found or (str(INSTALLED_CLI) if INSTALLED_CLI.exists() else None)


@pytest.mark.timeout(360)
def test_every_document_passes_the_asyncapi_validator_with_no_warning(tmp_path: Path) -> None:
    cli = _asyncapi_cli()
    if cli is None:
        if os.environ.get("SCORE_REQUIRE_ASYNCAPI") == "1":
            pytest.fail(f"SCORE_REQUIRE_ASYNCAPI=1 but no asyncapi on PATH nor at {INSTALLED_CLI}")
        pytest.skip("no AsyncAPI cli: `npm install --prefix .cache/npm @asyncapi/cli` (.ci/run)")
    # No anonymous usage metrics sent from a test run (the cli sends none under CI=true).
    analytics = tmp_path / "analytics.json"
    analytics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true"}))
    env = {**os.environ, "CI": "true", "ASYNCAPI_METRICS_CONFIG_PATH": str(analytics)}
    # The validator must be able to say no: beside the documents, one with the binding
    # version FastStream used to write, which the NATS bindings do not have.
    wrong = json.loads(GENERATED[DOCS_DIR / "indicators.json"])
    for operation in wrong["operations"].values():
        operation["bindings"] = {"nats": {"bindingVersion": "custom"}}
    for message in wrong["components"]["messages"].values():
        schema = message["payload"]["schema"]
        schema["$ref"] = str((DOCS_DIR / schema["$ref"]).resolve())
    (tmp_path / "wrong.json").write_text(json.dumps(wrong))
    paths = {path.stem: path for path in GENERATED} | {"wrong": tmp_path / "wrong.json"}
    # One document per run of the cli (it takes one): side by side, its start-up being slow.
    runs = {
        name: subprocess.Popen(
            [cli, "validate", str(path), "--fail-severity", "warn", "--diagnostics-format", "text"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
        )
        for name, path in paths.items()
    }
    try:
        outputs = {name: run.communicate(timeout=300)[0] for name, run in runs.items()}
    finally:
        for run in runs.values():
            run.kill()
    codes = {name: run.returncode for name, run in runs.items()}
    assert codes.pop("wrong") != 0 and "bindingVersion" in outputs["wrong"], outputs["wrong"]
    failed = {name: outputs[name] for name, code in codes.items() if code != 0}
    assert not failed, failed


def _client(app: FastAPI) -> httpx.AsyncClient:
    # Not started: the document and the schemas need no runtime.
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service")


@pytest.fixture
async def served(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[dict[str, tuple[httpx.AsyncClient, Any]]]:
    """Each service's app and the document it serves, configured as a deployment would be:
    behind a public address, with a NATS URL that carries the service's user and password."""
    monkeypatch.setenv("SCORE_PUBLIC_URL", "https://score.example.org")
    monkeypatch.setenv("SCORE_NATS_URL", "nats://svc:s3cret-pw@nats.internal:4333")
    out = {}
    for service in installed_services():
        client = _client(importlib.import_module(f"{service.module}.main").build_app())
        out[service.name] = (client, (await client.get("/asyncapi")).json())
    yield out
    for client, _ in out.values():
        await client.aclose()


def test_each_service_serves_its_document_with_the_nats_it_is_configured_with(
    served: dict[str, tuple[httpx.AsyncClient, Any]],
) -> None:
    for _, document in served.values():
        assert document["servers"]["nats"]["host"] == "nats.internal:4333"
        assert "s3cret-pw" not in json.dumps(document)


async def test_a_public_nats_url_is_what_the_served_document_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SCORE_NATS_URL", "nats://svc:pw@nats:4222")
    monkeypatch.setenv("SCORE_PUBLIC_NATS_URL", "nats://events.example.org:4443")
    async with _client(importlib.import_module("score_visits.main").build_app()) as client:
        document = (await client.get("/asyncapi")).json()
    assert document["servers"]["nats"]["host"] == "events.example.org:4443"


async def test_the_served_document_is_the_committed_one_with_its_server_and_schemas_where_served(
    served: dict[str, tuple[httpx.AsyncClient, Any]],
) -> None:
    for name, (client, document) in served.items():
        committed = BY_SERVICE[name]
        for message_name, message in document["components"]["messages"].items():
            ref = message["payload"]["schema"]["$ref"]
            assert ref.startswith("https://score.example.org/schemas/")
            answer = await client.get(urlsplit(ref).path)
            assert answer.status_code == 200, ref
            assert answer.json() == load_schema(BY_TYPE[message_name].schema_path())
            schema = committed["components"]["messages"][message_name]["payload"]["schema"]
            message["payload"]["schema"] = schema
        document["servers"] = committed["servers"]
        assert document == committed
