"""The peer of B1 and B2: registering an enterprise the way the `eventsourcing` library's
documentation shows, behind a FastAPI endpoint like ours.

`POST /v1/enterprises` takes the same body as SCORE Cases' (validated by a pydantic model of
the same fields), makes one new `Enterprise` aggregate and saves its one event, and answers
`201 {"id", "version"}`. It does less than ours, on purpose, and the comparison says so: no
token is checked, no Idempotency-Key remembered, no outbox row written, no tax id looked up;
the endpoint is synchronous, as the library is, so FastAPI runs it in its thread pool.

Persistence is the library's own, chosen by its environment variables: `PERSISTENCE_MODULE=
eventsourcing.sqlite` with `SQLITE_DBNAME`, or `eventsourcing.postgres` with `POSTGRES_DBNAME`,
`POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USER`, `POSTGRES_PASSWORD`. Run it with one
uvicorn worker:

    uvicorn bench.peers.eventsourcing_peer:app --port 8200 --workers 1
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from fastapi import FastAPI
from pydantic import BaseModel, Field, StringConstraints, field_validator

# Bolivia's departments, as SCORE Cases knows them: the peer refuses what ours refuses.
REGIONS = frozenset(
    {
        "beni",
        "chuquisaca",
        "cochabamba",
        "la_paz",
        "oruro",
        "pando",
        "potosi",
        "santa_cruz",
        "tarija",
    }
)

Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Headcount(BaseModel):
    women: int = Field(ge=0)
    men: int = Field(ge=0)


class RegisterEnterpriseBody(BaseModel):
    country: str = Field(default="bo", pattern=r"^[a-z]{2}$")
    region: str
    name: Line
    tax_id: Line
    sector: Line
    chamber: Line
    workforce: Headcount
    registered_on: dt.date = Field(default_factory=dt.date.today)
    size_exception_reason: Line | None = None

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}")
        return region


class Written(BaseModel):
    id: str
    version: int


class Enterprise(Aggregate):
    """An enterprise, registered: the aggregate's first event carries every field."""

    @event("Registered")
    def __init__(
        self,
        *,
        country: str,
        region: str,
        name: str,
        tax_id: str,
        sector: str,
        chamber: str,
        workforce: dict[str, int],
        registered_on: str,
        size_exception_reason: str | None,
    ) -> None:
        self.country = country
        self.region = region
        self.name = name
        self.tax_id = tax_id
        self.sector = sector
        self.chamber = chamber
        self.workforce = workforce
        self.registered_on = registered_on
        self.size_exception_reason = size_exception_reason


class Enterprises(Application[UUID]):
    def register(self, body: RegisterEnterpriseBody) -> Enterprise:
        fields: dict[str, Any] = body.model_dump(mode="json")
        enterprise = Enterprise(**fields)
        self.save(enterprise)
        return enterprise


enterprises = Enterprises()
app = FastAPI(title="eventsourcing peer")


@app.post("/v1/enterprises", status_code=201)
def register_enterprise(body: RegisterEnterpriseBody) -> Written:
    enterprise = enterprises.register(body)
    return Written(id=str(enterprise.id), version=enterprise.version)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
