"""HTTP API of the notifications service: the chambers' subscriptions, and what became of
each notification.

Admins and chambers manage subscriptions; every other role is refused (403): a subscription
holds a chamber's endpoint or address, which is the chamber's business. A chamber names only
its own regions; a subscription it makes belongs to the regions of its token, and any chamber
token bound to all of them sees, lists and deletes it (a renewed token too). One an admin
makes belongs to the regions it is for. An admin sees every subscription. A secret is shown
once, in the answer to the POST that made it; an address and a secret are never logged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import secrets
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.errors import NotFound
from score_chassis.http.auth import require
from score_chassis.http.inputs import Body, Line, RegionSlug, RuntimeDep, path_id
from score_chassis.http.problems import BODY_ERRORS, invalid_input, problem_responses
from score_chassis.logs import get_logger
from score_chassis.tokens import Principal, Role
from score_contracts.ids import uuid7
from score_contracts.reference import ALL_REGIONS, REGIONS, quoted
from score_notifications import ssrf
from score_notifications.delivery import cancel_pending
from score_notifications.messages import Language
from score_notifications.sealing import Sealer
from score_notifications.settings import NotificationsSettings
from score_notifications.tables import attempts, deliveries, subscriptions

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["notifications"])

MANAGERS: tuple[Role, ...] = ("admin", "chamber")
Manager = Annotated[Principal, Depends(require(*MANAGERS))]

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SECRET_RANGE = (24, 64)
"""How many bytes a given secret may hold (Standard Webhooks: 24 to 64)."""
_PART = r"[^@\s\x00-\x1f\x7f<>,;]+"
_ADDRESS = re.compile(rf"^{_PART}@{_PART}\.{_PART}$")


# Bodies and answers.


class ChannelBody(Body):
    kind: Literal["webhook", "email"]
    url: str | None = Field(
        default=None,
        max_length=2000,
        description="A webhook's http(s) URL; it must resolve to public addresses only",
        examples=["https://camara.example.bo/score/hooks"],
    )
    secret: str | None = Field(
        default=None,
        max_length=200,
        description="A webhook's Standard Webhooks secret, `whsec_` and the base64 of 24 to 64 "
        "bytes; left out, one is made and answered once",
    )
    address: str | None = Field(
        default=None, max_length=320, description="An e-mail channel's address"
    )


class SubscriptionBody(Body):
    chamber: Line = Field(examples=["Cámara de Industria, Comercio y Servicios de Tarija"])
    regions: list[RegionSlug] = Field(
        default_factory=list,
        max_length=len(ALL_REGIONS),
        description="The regions whose milestones the chamber is told of",
    )
    national: bool = Field(default=False, description="Also the country's milestones")
    channel: ChannelBody
    language: Language = Field(default="es", description="`es` (the default) or `en`")


class ChannelView(BaseModel):
    kind: Literal["webhook", "email"]
    url: str | None = None
    address: str | None = None


class SubscriptionView(BaseModel):
    id: str
    chamber: str
    regions: list[str]
    national: bool
    channel: ChannelView
    language: Language
    status: Literal["active", "disabled"]
    status_reason: str | None = Field(
        default=None, description="Why it is disabled (its endpoint answered 410 Gone)"
    )
    created_at: dt.datetime


class SubscriptionCreated(SubscriptionView):
    secret: str | None = Field(
        default=None,
        description="A webhook's secret, the one given or the one made: shown this once, "
        "never again",
    )


class SubscriptionList(BaseModel):
    items: list[SubscriptionView]


class MilestoneView(BaseModel):
    milestone_id: str
    indicator: str
    scope: str
    threshold: str = Field(description="A decimal number, as the event writes it")
    value: str
    reached_at: dt.datetime
    phase: str | None = None


class AttemptView(BaseModel):
    number: int
    started_at: dt.datetime
    finished_at: dt.datetime
    outcome: Literal["delivered", "failed", "gone"]
    status_code: int | None
    error: str | None


class DeliveryView(BaseModel):
    id: str = Field(description="Also the webhook's `webhook-id`")
    subscription_id: str
    milestone: MilestoneView
    channel: Literal["webhook", "email"]
    status: Literal["pending", "delivered", "failed", "cancelled"]
    attempts: int
    last_error: str | None
    created_at: dt.datetime
    next_attempt_at: dt.datetime | None = Field(description="While pending: when it is tried")
    finished_at: dt.datetime | None
    attempt_log: list[AttemptView]


class DeliveryList(BaseModel):
    items: list[DeliveryView]


# Whose is what.


def owns(principal: Principal, owner_regions: list[str]) -> bool:
    """An admin manages every subscription; a chamber those of regions all its own."""
    if principal.role == "admin":
        return True
    return bool(owner_regions) and set(owner_regions) <= set(principal.regions)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _view(row: Any) -> SubscriptionView:
    channel = ChannelView(kind=row.channel, url=row.url, address=row.address)
    return SubscriptionView(
        id=row.subscription_id,
        chamber=row.chamber,
        regions=list(row.regions),
        national=row.national,
        channel=channel,
        language=row.language,
        status=row.status,
        status_reason=row.status_reason,
        created_at=_utc(row.created_at),
    )


async def _visible(conn: AsyncConnection, principal: Principal, subscription_id: str) -> Any:
    row = (
        await conn.execute(
            sa.select(subscriptions).where(
                subscriptions.c.subscription_id == subscription_id,
                subscriptions.c.status != "deleted",
            )
        )
    ).first()
    if row is None or not owns(principal, list(row.owner_regions)):
        # Another chamber's subscription is as unknown to this one as a missing one.
        raise NotFound("subscription", subscription_id)
    return row


# Checks of a body beyond its shape.


def _checked_regions(body: SubscriptionBody, principal: Principal, country: str) -> list[str]:
    known = REGIONS[country]
    regions: list[str] = []
    for region in body.regions:
        if region not in known:
            raise invalid_input(
                "body",
                "regions",
                f"unknown region {quoted(region)} for country {country!r}; "
                f"one of {', '.join(known)}",
                rule="unknown-region",
            )
        if region not in regions:
            regions.append(region)
    if not regions and not body.national:
        raise invalid_input(
            "body",
            "regions",
            "name at least one region, or national: true",
            rule="nothing-to-subscribe-to",
        )
    if principal.role == "chamber" and not set(regions) <= set(principal.regions):
        raise HTTPException(403, detail="a chamber subscribes to its own regions only")
    return regions


def checked_secret(secret: str | None) -> str:
    """The secret given, if it is a Standard Webhooks one; else a new one."""
    if secret is None:
        return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    low, high = SECRET_RANGE
    reason = f"must be {SECRET_PREFIX!r} and the base64 of {low} to {high} bytes"
    if not secret.startswith(SECRET_PREFIX):
        raise invalid_input("body", "channel.secret", reason, rule="webhook-secret")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_input("body", "channel.secret", reason, rule="webhook-secret") from None
    if not SECRET_RANGE[0] <= len(key) <= SECRET_RANGE[1]:
        raise invalid_input("body", "channel.secret", reason, rule="webhook-secret")
    return secret


async def _checked_channel(
    channel: ChannelBody, settings: NotificationsSettings
) -> tuple[str | None, str | None, str | None]:
    """The channel's url, secret and address, checked: a 422 naming the field otherwise."""
    if channel.kind == "webhook":
        if channel.address is not None:
            raise invalid_input(
                "body", "channel.address", "is for an e-mail channel", rule="not-for-this-kind"
            )
        if not channel.url:
            raise invalid_input("body", "channel.url", "a webhook needs a URL", rule="missing")
        try:
            await ssrf.checked(channel.url, settings.allowed_hosts)
        except ssrf.RefusedUrl as refused:
            raise invalid_input("body", "channel.url", str(refused), rule="webhook-url") from None
        return channel.url, checked_secret(channel.secret), None
    for name in ("url", "secret"):
        if getattr(channel, name) is not None:
            raise invalid_input(
                "body", f"channel.{name}", "is for a webhook channel", rule="not-for-this-kind"
            )
    if not channel.address:
        raise invalid_input(
            "body", "channel.address", "an e-mail channel needs an address", rule="missing"
        )
    if not _ADDRESS.fullmatch(channel.address):
        raise invalid_input(
            "body", "channel.address", "is not an e-mail address", rule="email-address"
        )
    return None, None, channel.address


# Endpoints.

_ERRORS = problem_responses(401, 403, 404)


@router.post(
    "/subscriptions",
    status_code=201,
    summary="Subscribe a chamber to the milestones of its regions, or the country's",
    description="A webhook (signed per Standard Webhooks) or an e-mail address, told of each "
    "milestone reached from now on in `regions` (each region on its own) and, with "
    "`national`, the country's. A chamber names its own regions only. A webhook's URL must "
    "resolve to public addresses (422 on `channel.url` otherwise, unless its host is in "
    "`SCORE_WEBHOOK_ALLOWED_HOSTS`). The secret is answered here, once.",
    response_model=SubscriptionCreated,
    responses=problem_responses(401, 403, 422, *BODY_ERRORS),
)
async def create_subscription(
    request: Request, runtime: RuntimeDep, principal: Manager, body: SubscriptionBody
) -> SubscriptionCreated:
    settings: NotificationsSettings = request.app.state.settings
    sealer: Sealer = request.app.state.sealer
    regions = _checked_regions(body, principal, settings.country)
    url, secret, address = await _checked_channel(body.channel, settings)
    owner = list(principal.regions) if principal.role == "chamber" else regions
    now = dt.datetime.now(dt.UTC)
    subscription_id = uuid7()
    values = {
        "subscription_id": subscription_id,
        "chamber": body.chamber,
        "regions": regions,
        "national": body.national,
        "channel": body.channel.kind,
        "url": url,
        "sealed_secret": sealer.seal(secret) if secret is not None else None,
        "address": address,
        "language": body.language,
        "owner_regions": sorted(owner),
        "status": "active",
        "status_reason": None,
        "created_at": now,
        "changed_at": now,
    }
    async with runtime.database.transaction() as conn:
        await conn.execute(subscriptions.insert().values(**values))
    log.info(
        "subscription.created",
        subscription_id=subscription_id,
        channel=body.channel.kind,
        regions=regions,
        national=body.national,
    )
    view = _view(_Row(values))
    return SubscriptionCreated(**view.model_dump(), secret=secret)


class _Row:
    """A mapping's values as attributes, as a selected row has them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


@router.get(
    "/subscriptions",
    summary="The subscriptions the token manages",
    response_model=SubscriptionList,
    responses=problem_responses(401, 403),
)
async def list_subscriptions(runtime: RuntimeDep, principal: Manager) -> SubscriptionList:
    async with runtime.database.transaction(write=False) as conn:
        rows = (
            await conn.execute(
                sa.select(subscriptions)
                .where(subscriptions.c.status != "deleted")
                .order_by(subscriptions.c.created_at, subscriptions.c.subscription_id)
            )
        ).all()
    return SubscriptionList(
        items=[_view(row) for row in rows if owns(principal, list(row.owner_regions))]
    )


SubscriptionId = Annotated[str, path_id("The subscription's id")]


@router.get(
    "/subscriptions/{subscription_id}",
    summary="A subscription (never its secret)",
    response_model=SubscriptionView,
    responses=_ERRORS,
)
async def get_subscription(
    runtime: RuntimeDep, principal: Manager, subscription_id: SubscriptionId
) -> SubscriptionView:
    async with runtime.database.transaction(write=False) as conn:
        return _view(await _visible(conn, principal, subscription_id))


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=204,
    summary="End a subscription: nothing more is sent to it, pending notifications included",
    response_class=Response,
    responses=_ERRORS,
)
async def delete_subscription(
    runtime: RuntimeDep, principal: Manager, subscription_id: SubscriptionId
) -> Response:
    now = dt.datetime.now(dt.UTC)
    async with runtime.database.transaction() as conn:
        await _visible(conn, principal, subscription_id)
        await conn.execute(
            subscriptions.update()
            .where(subscriptions.c.subscription_id == subscription_id)
            .values(status="deleted", changed_at=now, sealed_secret=None)
        )
        await cancel_pending(conn, subscription_id, now)
    log.info("subscription.deleted", subscription_id=subscription_id)
    return Response(status_code=204)


@router.get(
    "/deliveries",
    summary="The notifications of the token's subscriptions, newest first, with every attempt",
    response_model=DeliveryList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_deliveries(
    runtime: RuntimeDep,
    principal: Manager,
    subscription_id: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Only this subscription's"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> DeliveryList:
    async with runtime.database.transaction(write=False) as conn:
        if subscription_id is not None:
            await _visible(conn, principal, subscription_id)
            wanted = [subscription_id]
        else:
            rows = await conn.execute(
                sa.select(subscriptions.c.subscription_id, subscriptions.c.owner_regions)
            )
            wanted = [r.subscription_id for r in rows if owns(principal, list(r.owner_regions))]
        found = (
            await conn.execute(
                sa.select(deliveries)
                .where(deliveries.c.subscription_id.in_(wanted))
                .order_by(deliveries.c.created_at.desc(), deliveries.c.delivery_id)
                .limit(limit)
            )
        ).all()
        logged = (
            await conn.execute(
                sa.select(attempts)
                .where(attempts.c.delivery_id.in_([row.delivery_id for row in found]))
                .order_by(attempts.c.delivery_id, attempts.c.number, attempts.c.id)
            )
        ).all()
    by_delivery: dict[str, list[AttemptView]] = {}
    for attempt in logged:
        by_delivery.setdefault(attempt.delivery_id, []).append(
            AttemptView(
                number=attempt.number,
                started_at=_utc(attempt.started_at),
                finished_at=_utc(attempt.finished_at),
                outcome=attempt.outcome,
                status_code=attempt.status_code,
                error=attempt.error,
            )
        )
    return DeliveryList(
        items=[
            DeliveryView(
                id=row.delivery_id,
                subscription_id=row.subscription_id,
                milestone=MilestoneView.model_validate(row.milestone),
                channel=row.channel,
                status=row.status,
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=_utc(row.created_at),
                next_attempt_at=_utc(row.next_attempt_at) if row.status == "pending" else None,
                finished_at=_utc(row.finished_at),
                attempt_log=by_delivery.get(row.delivery_id, []),
            )
            for row in found
        ]
    )
