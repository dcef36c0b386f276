"""The published JSON Schemas, generated from the event models.

Each event type has two schemas: one of its payload alone, which the envelope's
`dataschema` names (CloudEvents 1.0: the schema `data` adheres to), and one of the whole
CloudEvents envelope, with that payload as `data`, pinned to the type. Both are generated
from the same model, so they cannot disagree. The schemas are made in pydantic's
serialization mode because they describe the JSON a producer writes: decimals, for
instance, go on the wire as strings, and a consumer in any language must expect exactly that.
"""

from __future__ import annotations

import inspect
import json
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from score_contracts.envelope import Envelope
from score_contracts.events import CATALOGUE, Event
from score_contracts.events.base import SCHEMAS_PATH
from score_contracts.reference import DEFAULT_COUNTRY
from score_contracts.subjects import STREAMS, subject_for

JsonSchema = dict[str, Any]

DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

CONTRACTS_DIR: Final = Path(__file__).resolve().parents[3]
REPOSITORY_SCHEMAS: Final = CONTRACTS_DIR / "schemas"
"""Where the committed schemas live in the repository, `contracts/schemas/`: what
`make schemas` writes."""
PACKAGED_SCHEMAS: Final = "published_schemas"
"""The same files inside the installed package (the wheel's `score_contracts/published_schemas`)."""


def published_schemas() -> Traversable:
    """The folder of published schemas, found through `importlib.resources`: the package's
    own copy when installed from the wheel, the repository's in a checkout."""
    packaged = resources.files("score_contracts") / PACKAGED_SCHEMAS
    return packaged if packaged.is_dir() else REPOSITORY_SCHEMAS


def load_schema(path: str) -> JsonSchema:
    """A published schema by its path in the schemas folder (`index.json`'s `schema` and
    `data_schema`, e.g. `enrolment/enterprise_enrolled.v1.data.json`)."""
    file = published_schemas()
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"not a schema path: {path!r}")
        file = file / part
    schema: JsonSchema = json.loads(file.read_text(encoding="utf-8"))
    return schema


def _schemas_dir() -> Path:
    found = published_schemas()
    return found if isinstance(found, Path) else REPOSITORY_SCHEMAS


SCHEMAS_DIR: Final = _schemas_dir()
"""The published schemas as a folder: the wheel's copy when installed from it, else
`contracts/schemas/`."""
IN_REPOSITORY: Final = SCHEMAS_DIR == REPOSITORY_SCHEMAS
CATALOGUE_PAGE: Final = CONTRACTS_DIR.parent / "docs" / "events.md" if IN_REPOSITORY else None
"""`docs/events.md`, in a checkout only: the wheel does not carry the docs."""
INDEX: Final = "index.json"

GENERATED_NOTE: Final = (
    "Generated from score_contracts by `make schemas` "
    "(python -m score_contracts.schemas write); do not edit."
)


DECIMAL: Final = r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
"""How a decimal is written on the wire: `str(Decimal)`, exponent included."""


class WireSchema(GenerateJsonSchema):
    """Pydantic's schema generation, saying which strings a decimal is written as."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        generated = super().decimal_schema(schema)
        if self.mode == "serialization" and generated.get("type") == "string":
            generated.setdefault("pattern", DECIMAL)
        return generated


def envelope_schema(cls: type[Event]) -> JsonSchema:
    """The JSON Schema of an envelope carrying a `cls` event, as published."""
    # A generic envelope schema whose `data` is `cls`: the payload and its parts land in
    # `$defs`, referenced from `data`.
    generated = Envelope[cls].model_json_schema(  # type: ignore[valid-type]
        mode="serialization", schema_generator=WireSchema
    )
    properties: dict[str, JsonSchema] = generated["properties"]
    # Pin the attributes that a schema for one event type can state exactly.
    properties["type"] = {**properties["type"], "const": cls.event_type()}
    # The producer's own address starts `dataschema` (each service serves the schemas of its
    # events), so only the path after it is pinned.
    properties["dataschema"] = {
        **properties["dataschema"],
        "format": "uri",
        "pattern": dataschema_pattern(cls),
    }
    properties["source"] = {**properties["source"], "pattern": f"^/score/[a-z]{{2}}/{cls.context}$"}
    properties["subject"] = {**properties["subject"], "pattern": f"^{cls.aggregate}/.+$"}
    return {
        "$schema": DIALECT,
        "$id": cls.schema_uri(),
        "title": cls.event_type(),
        "description": _description(cls),
        "$comment": GENERATED_NOTE,
        "type": "object",
        "properties": properties,
        "required": _required_on_the_wire(generated),
        "$defs": generated["$defs"],
    }


def data_schema(cls: type[Event]) -> JsonSchema:
    """The JSON Schema of a `cls` event's `data` as published: what `dataschema` names."""
    generated = cls.model_json_schema(mode="serialization", schema_generator=WireSchema)
    return {
        "$schema": DIALECT,
        "$id": cls.data_schema_uri(),
        "title": f"{cls.event_type()} data",
        "description": _data_description(cls),
        "$comment": GENERATED_NOTE,
        "type": "object",
        "properties": generated["properties"],
        "required": generated.get("required", []),
        **({"$defs": generated["$defs"]} if "$defs" in generated else {}),
    }


def dataschema_pattern(cls: type[Event]) -> str:
    """What `dataschema` matches: any producer's address, then the path of `data`'s schema."""
    path = f"/{SCHEMAS_PATH}/{cls.data_schema_path()}".replace(".", r"\.")
    return f"^https?://[^/?#]+(/[^?#]*)?{path}$"


def envelope_attributes() -> JsonSchema:
    """The envelope's attributes (all but `data`), as any event type has them."""
    generated = Envelope[Event].model_json_schema(mode="serialization", schema_generator=WireSchema)
    attributes = {k: v for k, v in generated["properties"].items() if k != "data"}
    required = [name for name in _required_on_the_wire(generated) if name != "data"]
    return {"type": "object", "properties": attributes, "required": required}


def _required_on_the_wire(generated: JsonSchema) -> list[str]:
    # The model defaults `specversion`, so pydantic calls it optional; CloudEvents (and
    # `parse_envelope`) require it on the wire.
    return ["specversion", *generated["required"]]


def subject_filter(cls: type[Event]) -> str:
    """The NATS subject filter matching `cls` events of every country and region."""
    return _subject(cls, country="*", region="*")


def subject_template(cls: type[Event]) -> str:
    """`cls`'s subject for people: `score.<country>.<region>.enrolment.….v1`."""
    return _subject(cls, country="<country>", region="<region>")


def _subject(cls: type[Event], *, country: str, region: str) -> str:
    # Built from a real subject so that the naming rule stays in one place, `subject_for`.
    tokens = subject_for(cls, DEFAULT_COUNTRY, None).split(".")
    tokens[1:3] = [country, region]  # score.<country>.<region>.<context>.…
    return ".".join(tokens)


def index() -> dict[str, Any]:
    """Every event type with its schema file, NATS subject filter and stream."""
    return {
        "$comment": GENERATED_NOTE,
        "events": {
            cls.event_type(): {
                "schema": cls.schema_path(),
                "$id": cls.schema_uri(),
                "data_schema": cls.data_schema_path(),
                "data_schema_id": cls.data_schema_uri(),
                "subject": subject_filter(cls),
                "stream": STREAMS[cls.context].name,
                "aggregate": cls.aggregate,
            }
            for cls in CATALOGUE
        },
    }


def render_json(value: Any) -> str:
    """JSON as committed: indented, non-ASCII kept readable, one final newline."""
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def generated_schemas() -> dict[str, JsonSchema]:
    """Every event's two schemas (envelope, data), by path relative to the schemas folder."""
    schemas: dict[str, JsonSchema] = {}
    for cls in CATALOGUE:
        schemas[cls.schema_path()] = envelope_schema(cls)
        schemas[cls.data_schema_path()] = data_schema(cls)
    return schemas


def _data_description(cls: type[Event]) -> str:
    text = (
        f"The `data` of the `{cls.event_name}` event (v{cls.major}) of the {cls.context} "
        "context: the schema its envelope's `dataschema` names."
    )
    own = cls.__dict__.get("__doc__")
    return f"{inspect.cleandoc(own)}\n\n{text}" if own else text


def _description(cls: type[Event]) -> str:
    text = (
        f"The `{cls.event_name}` event (v{cls.major}) of the {cls.context} context in its "
        "CloudEvents 1.0 envelope (structured JSON mode), published on NATS subject "
        f"`{subject_template(cls)}`."
    )
    own = cls.__dict__.get("__doc__")
    return f"{inspect.cleandoc(own)}\n\n{text}" if own else text
