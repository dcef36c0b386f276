"""What every event payload shares: its name, context, major version and aggregate."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints

from score_contracts.reference import COUNTRY_CODE, DEFAULT_CURRENCY, MODULES

TYPE_PREFIX = "org.ilo.score"
SCHEMA_PREFIX = "urn:org.ilo.score:schema"
SCHEMAS_PATH = "schemas"
"""The path under which every service serves the schemas of its events."""

ID_PATTERN = r"^[A-Za-z0-9_.:-]+$"
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Count = Annotated[int, Strict(), Field(ge=0, le=1_000_000)]
"""A number of people: an integer, never `"20"` or `20.0` (strict: a count that arrives as
text or as a float is a client's mistake to be told of, not a value to guess at)."""
ModuleNumber = Annotated[int, Field(ge=1, le=max(MODULES))]
Delivery = Literal["direct", "partner"]
Sex = Literal["female", "male"]
Amount = Annotated[
    str,
    StringConstraints(pattern=r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?$"),
    Field(description="A non-negative decimal number written as a string, e.g. '1250.50'."),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Country = Annotated[str, StringConstraints(pattern=COUNTRY_CODE.pattern)]


class Payload(BaseModel):
    """A plain, frozen value. Unknown fields are ignored so that consumers read newer
    minor versions (which may add optional fields) without failing."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Headcount(Payload):
    """People counted by sex."""

    women: Count
    men: Count

    @property
    def total(self) -> int:
        return self.women + self.men


class Money(Payload):
    amount: Amount
    currency: Currency = DEFAULT_CURRENCY

    @property
    def value(self) -> Decimal:
        return Decimal(self.amount)


class Event(Payload):
    """Base of every event payload (the `data` of the envelope)."""

    context: ClassVar[str]
    event_name: ClassVar[str]
    major: ClassVar[int] = 1
    aggregate: ClassVar[str]
    """The kind of aggregate the event belongs to: enterprise, trainer, visit, milestone …"""
    personal_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields holding personal data: kept in the producer's store and shown by its API to
    the roles that record them, but never published (see `public_data`, ADR 011)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_name" in cls.__dict__ and not hasattr(cls, "aggregate"):
            raise TypeError(f"{cls.__name__} must name its aggregate")

    @classmethod
    def event_type(cls) -> str:
        """The CloudEvents `type`, e.g. `org.ilo.score.enrolment.enterprise_enrolled.v1`."""
        return f"{TYPE_PREFIX}.{cls.context}.{cls.event_name}.v{cls.major}"

    @classmethod
    def schema_uri(cls) -> str:
        return f"{SCHEMA_PREFIX}:{cls.context}:{cls.event_name}:v{cls.major}"

    @classmethod
    def schema_path(cls) -> str:
        """Where the committed JSON Schema of the whole envelope lives, relative to
        `contracts/schemas/` (and to the `/schemas/` path each service serves)."""
        return f"{cls.context}/{cls.event_name}.v{cls.major}.json"

    @classmethod
    def data_schema_path(cls) -> str:
        """Where the committed JSON Schema of `data` alone lives, beside the envelope's."""
        return f"{cls.context}/{cls.event_name}.v{cls.major}.data.json"

    @classmethod
    def data_schema_uri(cls) -> str:
        """The `$id` of the schema of `data`: the same wherever the schema is served."""
        return f"{cls.schema_uri()}:data"

    @classmethod
    def dataschema(cls, base_url: str) -> str:
        """The CloudEvents `dataschema` of the producer at `base_url`: where it serves the
        schema of `data` (CloudEvents 1.0: the schema `data` adheres to), an absolute URL."""
        return f"{base_url.rstrip('/')}/{SCHEMAS_PATH}/{cls.data_schema_path()}"

    @classmethod
    def public_data(cls, data: dict[str, Any]) -> dict[str, Any]:
        """`data` as the public streams carry it: without the personal fields."""
        if not cls.personal_fields:
            return data
        return {name: value for name, value in data.items() if name not in cls.personal_fields}

    @property
    def aggregate_id(self) -> str:
        value = getattr(self, f"{self.aggregate}_id")
        assert isinstance(value, str)
        return value

    @property
    def aggregate_subject(self) -> str:
        """The CloudEvents `subject`: `enterprise/<id>`, `visit/<id>` …"""
        return f"{self.aggregate}/{self.aggregate_id}"


__all__ = [
    "Amount",
    "Count",
    "Country",
    "Currency",
    "Delivery",
    "Event",
    "Headcount",
    "Id",
    "ModuleNumber",
    "Money",
    "Payload",
    "Sex",
    "Text",
]
