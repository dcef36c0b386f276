"""`docs/events.md`: the event catalogue for people, written from the published schemas.

Rendering the page from the same schemas that are committed (and from the examples the tests
validate) is what keeps it from drifting: the freshness check compares it like a schema.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Final

from score_contracts.events import CATALOGUE, EnterpriseEnrolled, Event
from score_contracts.examples import example, example_envelope
from score_contracts.schemas.generation import (
    DECIMAL,
    GENERATED_NOTE,
    JsonSchema,
    envelope_attributes,
    envelope_schema,
    subject_filter,
    subject_template,
)
from score_contracts.subjects import CONTEXTS, STREAMS

SCHEMAS_LINK: Final = "../contracts/schemas"
"""The schemas folder as seen from `docs/`."""

_INTRO: Final = """\
Every event travels as a [CloudEvents 1.0](https://github.com/cloudevents/spec) envelope in
structured JSON mode (`Content-Type: application/cloudevents+json`), on the NATS subject
`score.<country>.<region>.<context>.<event_name>.v<major>` (`national` when the event has no
region) of its context's JetStream stream. The `data` of the envelope is the event's payload.
Each type has two JSON Schemas (draft 2020-12) in
[`contracts/schemas/`](../contracts/schemas/), listed in
[`index.json`](../contracts/schemas/index.json): `<event>.v<major>.data.json`, of `data`
alone, which the envelope's `dataschema` names (the producing service serves it at that
URL, `http://<service>/schemas/<context>/<event>.v<major>.data.json`), and
`<event>.v<major>.json`, of the whole envelope. Both ship in the `score-contracts` wheel
(`score_contracts.schemas.load_schema`). How to consume the streams: [consumers.md](consumers.md).

Within a major version the only change is a new optional field, so a consumer ignores fields
it does not know. Any other change is a new major version: a new type, subject and schema,
published beside the old one for a deprecation period.

**Connecting.** The broker lets no one in without credentials (ADR 021). A downstream reader
gets its own from the operator (`score credentials create --subjects 'score.bo.santa_cruz.>'`):
a `nats://user:password@host:port` URL, an inbox prefix to set in its client (its replies may
arrive nowhere else) and a consumer name. With those it creates a durable pull consumer of
that name on any `SCORE_*` stream, filtered to its subjects (one filter, in the create
request, as current clients send it), fetches and acknowledges; it can publish nothing. See
[operations.md](operations.md#the-broker-users-and-permissions) for the operator's side."""


def catalogue_page() -> str:
    """The Markdown of `docs/events.md`."""
    lines = [
        "# Event catalogue",
        "",
        f"<!-- {GENERATED_NOTE} -->",
        "",
        _INTRO,
        "",
        *_contents(),
        *_envelope_section(),
    ]
    for context in CONTEXTS:
        events = [cls for cls in CATALOGUE if cls.context == context]
        if events:
            lines += [f"## {context}", ""]
            for cls in events:
                lines += _event_section(cls)
    lines += _shared_types()
    return "\n".join(lines).rstrip("\n") + "\n"


def _contents() -> list[str]:
    lines = [
        "| type | NATS subject filter | CloudEvents subject | stream | schema |",
        "|---|---|---|---|---|",
    ]
    for cls in CATALOGUE:
        lines.append(
            f"| `{cls.event_type()}` | `{subject_filter(cls)}` | `{cls.aggregate}/<id>` "
            f"| `{STREAMS[cls.context].name}` | {_schema_link(cls)} |"
        )
    return [*lines, ""]


def _envelope_section() -> list[str]:
    envelope = example_envelope(
        example(EnterpriseEnrolled),
        event_id="0161fb9c-9b7c-7a1e-8c41-5f0e2b7d9a33",
        stream_version=2,
        time=dt.datetime(2018, 3, 12, 15, 4, 11, tzinfo=dt.UTC),
        correlation_id="0161fb9c-9a10-7c2f-b6a4-17e3c0d2f8e5",
        causation_id="0161fb9c-9a10-7c2f-b6a4-17e3c0d2f8e5",
    )
    return [
        "## Envelope",
        "",
        "No personal data on the public streams: not in the attributes, and not in `data`,",
        "where the fields marked as personal data are absent (ADR 011). They are kept by the",
        "producing service and shown by its API to the roles that record them.",
        "",
        *_table(envelope_attributes()),
        "For example, an enrolment as published:",
        "",
        "```json",
        json.dumps(envelope.model_dump(mode="json"), indent=2, ensure_ascii=False),
        "```",
        "",
    ]


def _event_section(cls: type[Event]) -> list[str]:
    schema = envelope_schema(cls)
    payload = _definition(schema, schema["properties"]["data"])
    lines = [f"### {cls.event_name} (v{cls.major})", ""]
    if description := payload.get("description"):
        lines += [_prose(description), ""]
    lines += [
        f"- type: `{cls.event_type()}`",
        f"- NATS subject: `{subject_template(cls)}`",
        f"- CloudEvents subject: `{cls.aggregate}/<{cls.aggregate}_id>`",
        f"- stream: `{STREAMS[cls.context].name}`",
        f"- schema of `data`: {_link(cls.data_schema_path())}, `$id` `{cls.data_schema_uri()}`",
        f"- schema of the envelope: {_schema_link(cls)}, `$id` `{cls.schema_uri()}`",
        "",
        *_table(payload),
        "Example `data`, as published:",
        "",
        "```json",
        json.dumps(
            cls.public_data(example(cls).model_dump(mode="json")), indent=2, ensure_ascii=False
        ),
        "```",
        "",
    ]
    return lines


def _shared_types() -> list[str]:
    """The parts that payloads share (Headcount, Money …), each described once."""
    events = {cls.__name__ for cls in CATALOGUE}
    shared: dict[str, JsonSchema] = {}
    for cls in CATALOGUE:
        for name, definition in envelope_schema(cls)["$defs"].items():
            if name not in events:
                shared.setdefault(name, definition)
    lines = ["## Shared types", ""]
    for name, definition in sorted(shared.items()):
        lines += [f"### {name}", ""]
        if description := definition.get("description"):
            lines += [_prose(description), ""]
        lines += _table(definition)
    return lines


def _table(definition: JsonSchema) -> list[str]:
    required = set(definition.get("required", ()))
    lines = ["| field | type | required | notes |", "|---|---|---|---|"]
    for name, field in definition["properties"].items():
        cells = (
            f"`{name}`",
            _type(field),
            "yes" if name in required else "no",
            _notes(field),
        )
        lines.append("| " + " | ".join(_cell(text) for text in cells) + " |")
    return [*lines, ""]


def _type(field: JsonSchema) -> str:
    if ref := field.get("$ref"):
        name = str(ref).rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if alternatives := field.get("anyOf"):
        kinds = [_type(one) for one in alternatives if one.get("type") != "null"]
        nullable = len(kinds) < len(alternatives)
        return " or ".join(kinds) + (" or null" if nullable else "")
    if "const" in field:
        return f"`{json.dumps(field['const'], ensure_ascii=False)}`"
    if "enum" in field:
        return " or ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in field["enum"])
    kind = field.get("type", "any")
    if kind == "array":
        return f"list of {_type(field.get('items', {}))}"
    if kind == "string" and field.get("pattern") == DECIMAL:
        return "decimal (string)"
    if kind == "string" and "format" in field:
        return f"string ({field['format']})"
    return str(kind)


def _notes(field: JsonSchema) -> str:
    notes: list[str] = []
    if description := field.get("description"):
        notes.append(str(description).rstrip("."))
    constrained = [field, *(one for one in field.get("anyOf", ()) if one.get("type") != "null")]
    for schema in constrained:
        notes += _constraints(schema)
        if "items" in schema:
            notes += [f"each {note}" for note in _constraints(schema["items"])]
    default = field.get("default")
    if default is not None:
        notes.append(f"default `{json.dumps(default, ensure_ascii=False)}`")
    return "; ".join(notes)


def _constraints(schema: JsonSchema) -> list[str]:
    notes: list[str] = []
    for low, high, unit in (
        ("minLength", "maxLength", " characters"),
        ("minItems", "maxItems", " items"),
        ("minimum", "maximum", ""),
    ):
        notes += _range(schema.get(low), schema.get(high), unit)
    if "exclusiveMinimum" in schema:
        notes.append(f"more than {schema['exclusiveMinimum']}")
    if "exclusiveMaximum" in schema:
        notes.append(f"less than {schema['exclusiveMaximum']}")
    if "pattern" in schema and schema["pattern"] != DECIMAL:
        notes.append(f"pattern `{schema['pattern']}`")
    return notes


def _range(low: Any, high: Any, unit: str) -> list[str]:
    if low is not None and high is not None:
        return [f"{low} to {high}{unit}"]
    if low is not None:
        return [f"at least {low}{unit}"]
    if high is not None:
        return [f"at most {high}{unit}"]
    return []


def _definition(root: JsonSchema, field: JsonSchema) -> JsonSchema:
    name = str(field["$ref"]).rsplit("/", 1)[-1]
    definition: JsonSchema = root["$defs"][name]
    return definition


def _schema_link(cls: type[Event]) -> str:
    return _link(cls.schema_path())


def _link(path: str) -> str:
    return f"[`{path}`]({SCHEMAS_LINK}/{path})"


def _cell(text: str) -> str:
    # A pipe ends a Markdown table cell, even inside backticks.
    return _prose(text).replace("|", "\\|").replace("\n", " ")


def _prose(text: str) -> str:
    """`text` with `<…>` outside code spans escaped, so that it is not taken for HTML."""
    pieces = text.split("`")
    for outside in range(0, len(pieces), 2):
        pieces[outside] = pieces[outside].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(pieces)
