"""The enterprise list: a read model of one row per enterprise, for listing by region and for
finding an enterprise by its tax id.

Each row is written in the transaction that appends the enterprise's events, so the list is
never behind the store. It keeps the one rule that spans enterprises, that a tax id is
registered once in a country: a registration's row is inserted unless its tax id is taken,
and one taken is refused, naming its holder. The unique index is the whole check, so two
registrations of one tax id at the same moment, in two streams, cannot both pass, and a
registration needs no look-up before it (one round trip less on PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.commands import Outcome
from score_chassis.decider import Refused
from score_chassis.prepared import Prepared
from score_chassis.upsert import insert_on
from score_contracts.events import EnterpriseRegistered
from score_enrolment.domain.enterprise import Enterprise

metadata = sa.MetaData()

enterprises = sa.Table(
    "enrolment_enterprises",
    metadata,
    sa.Column("enterprise_id", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("tax_id", sa.String(500), nullable=False),
    sa.Column("tax_key", sa.String(500), nullable=False),
    sa.Column("sector", sa.String(500), nullable=False),
    sa.Column("chamber", sa.String(500), nullable=False),
    sa.Column("workforce_women", sa.Integer, nullable=False),
    sa.Column("workforce_men", sa.Integer, nullable=False),
    sa.Column("registered_on", sa.Date, nullable=False),
    sa.Column("withdrawn_on", sa.Date, nullable=True),
    sa.UniqueConstraint("country", "tax_key", name="uq_enrolment_enterprises_tax_key"),
    sa.Index("ix_enrolment_enterprises_region", "region", "enterprise_id"),
)


def tax_key(tax_id: str) -> str:
    """A tax id as compared: written with or without spaces, dots or dashes, it is one id."""
    return re.sub(r"[\s./-]", "", tax_id).upper()


# The statements of the enterprise commands (score_chassis.prepared).
_HOLDER = Prepared(
    sa.select(enterprises.c.enterprise_id).where(
        enterprises.c.country == sa.bindparam("country"),
        enterprises.c.tax_key == sa.bindparam("tax_key"),
    )
)
_CLAIM = {
    dialect: Prepared(
        insert_on(dialect, enterprises)
        .on_conflict_do_nothing(index_elements=["country", "tax_key"])
        .returning(enterprises.c.enterprise_id)
    )
    for dialect in ("sqlite", "postgresql")
}
"""A registration's row, inserted unless its tax id is taken: the row's id, or no row."""
_UPDATE = Prepared(enterprises.update().where(enterprises.c.enterprise_id == sa.bindparam("b_id")))


async def tax_id_holder(conn: AsyncConnection, country: str, tax_id: str) -> str | None:
    """The enterprise registered with `tax_id` in `country`, if there is one."""
    rows = await _HOLDER.rows(conn, {"country": country, "tax_key": tax_key(tax_id)})
    return str(rows[0][0]) if rows else None


async def record(conn: AsyncConnection, outcome: Outcome[Enterprise]) -> None:
    """Bring the enterprise's row to the state the append left it in; a registration whose
    tax id is another enterprise's is `Refused`, and its transaction appends nothing."""
    if not outcome.events:
        return
    state = outcome.state
    current: dict[str, Any] = {
        "version": outcome.version,
        "name": state.name,
        "sector": state.sector,
        "chamber": state.chamber,
        "workforce_women": state.workforce.women,
        "workforce_men": state.workforce.men,
        "withdrawn_on": state.withdrawn_on,
    }
    if not isinstance(outcome.events[0], EnterpriseRegistered):
        await _UPDATE.rows(conn, {"b_id": state.enterprise_id, **current})
        return
    claimed = await _CLAIM[conn.dialect.name].rows(
        conn,
        {
            "enterprise_id": state.enterprise_id,
            "country": state.country,
            "region": state.region,
            "tax_id": state.tax_id,
            "tax_key": tax_key(state.tax_id),
            "registered_on": state.registered_on,
            **current,
        },
    )
    if not claimed:
        holder = await tax_id_holder(conn, state.country, state.tax_id)
        raise Refused(
            f"an enterprise with this tax id is already registered: {holder}",
            rule="tax-id-registered-once",
        )


async def page(
    conn: AsyncConnection,
    *,
    country: str | None,
    regions: Sequence[str] | None,
    after: str | None,
    limit: int,
) -> list[sa.Row[Any]]:
    """Up to `limit` enterprises in id order (which is registration order: ids are UUIDv7),
    after the id `after`, of `country` and `regions` where given."""
    query = sa.select(enterprises).order_by(enterprises.c.enterprise_id).limit(limit)
    if country is not None:
        query = query.where(enterprises.c.country == country)
    if regions is not None:
        query = query.where(enterprises.c.region.in_(regions))
    if after is not None:
        query = query.where(enterprises.c.enterprise_id > after)
    return list(await conn.execute(query))


class EnterpriseList:
    """The enterprise list on the connection of one transaction (the `EnterpriseViews` port
    that the service's routes use)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def record(self, outcome: Outcome[Enterprise]) -> None:
        await record(self.conn, outcome)
