"""The committed AsyncAPI documents: current, and saying what each service really does."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from score_cli.asyncapi import documents
from score_contracts.events import CATALOGUE

GENERATED = documents()


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.stem)
def test_the_committed_document_is_current(path: Any) -> None:
    assert path.exists(), f"{path} is missing: run `make schemas`"
    assert path.read_text() == GENERATED[path], f"{path} is stale: run `make schemas`"


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[unquote(part).replace("~1", "/").replace("~0", "~")]
    return node


@pytest.mark.parametrize("path", sorted(GENERATED), ids=lambda p: p.stem)
def test_every_event_of_the_service_is_a_send_operation_and_every_ref_resolves(path: Any) -> None:
    document = json.loads(GENERATED[path])
    assert document["asyncapi"] == "3.0.0"
    context = path.stem
    sent = {name for name, op in document["operations"].items() if op["action"] == "send"}
    assert sent == {cls.event_type() for cls in CATALOGUE if cls.context == context}

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [
                r for v in node.values() for r in refs(v)
            ]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        _resolve(document, ref)


def test_the_indicators_document_names_its_durable_consumers() -> None:
    document = json.loads(next(t for p, t in GENERATED.items() if p.stem == "indicators"))
    received = {n for n, op in document["operations"].items() if op["action"] == "receive"}
    assert received == {"indicators-projection-enrolment", "indicators-projection-visits"}
