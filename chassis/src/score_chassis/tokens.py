"""Bearer tokens with roles, verified locally by every service.

A token is a JWT signed with the key in `SCORE_AUTH_SECRET` (HS256). It carries its role,
the regions a chamber is bound to, an expiry and an id (`jti`). No service calls another to
check a token; revoked token ids live in a JetStream key-value bucket that every service
watches, so a revocation reaches all of them within moments.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable
from typing import Any, Final, Literal, get_args

import jwt
import sqlalchemy as sa
from nats.js.errors import BucketNotFoundError
from pydantic import BaseModel, ConfigDict

from score_chassis import upsert
from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection
from score_chassis.logs import get_logger
from score_chassis.tables import revoked_tokens
from score_chassis.tasks import cancel_until_done
from score_contracts.ids import uuid7

log = get_logger(__name__)

Role = Literal["admin", "staff", "trainer", "chamber", "reader"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
ALGORITHM: Final = "HS256"
ISSUER: Final = "score-cases"
REVOKED_BUCKET: Final = "SCORE_REVOKED_TOKENS"
DEFAULT_TTL: Final = dt.timedelta(days=30)
MINIMUM_SECRET_LENGTH: Final = 32
VERIFIED_KEPT: Final = 4096
"""How many verified tokens a service remembers, so as not to decode them on every request."""


class Principal(BaseModel):
    """Who is asking: what a verified token says."""

    model_config = ConfigDict(frozen=True)

    token_id: str
    subject: str
    role: Role
    regions: tuple[str, ...] = ()
    trainer_id: str | None = None
    """The trainer a `trainer` token speaks for."""
    expires_at: dt.datetime

    def sees_region(self, region: str | None) -> bool:
        """A chamber sees only its own regions; every other role sees all."""
        return self.role != "chamber" or (region is not None and region in self.regions)

    def acts_for_trainer(self, trainer_id: str) -> bool:
        """A trainer acts for themself only; staff and admin for any trainer."""
        return self.role != "trainer" or self.trainer_id == trainer_id


class InvalidToken(Exception):
    pass


class TokenAuthority:
    """Issues and verifies tokens with one shared secret.

    A token verified once is remembered until it expires: the same string carries the same
    signed claims, so decoding it again on each request would only cost time (a tenth of a
    write's). Revocation is checked on every request, apart from this (`Revocations`).
    """

    def __init__(self, secret: str) -> None:
        if len(secret) < MINIMUM_SECRET_LENGTH:
            raise ValueError(f"the auth secret must be at least {MINIMUM_SECRET_LENGTH} characters")
        self._secret = secret
        self._verified: dict[str, Principal] = {}

    def issue(
        self,
        role: Role,
        *,
        regions: Iterable[str] = (),
        ttl: dt.timedelta = DEFAULT_TTL,
        subject: str | None = None,
        trainer_id: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        regions = tuple(regions)
        if role == "chamber" and not regions:
            raise ValueError("a chamber token is bound to at least one region")
        if (role == "trainer") != (trainer_id is not None):
            raise ValueError("a trainer token, and only a trainer token, names its trainer")
        now = dt.datetime.now(dt.UTC)
        token_id = uuid7()
        claims = {
            "iss": ISSUER,
            "sub": subject or f"{role}:{token_id}",
            "jti": token_id,
            "iat": now,
            "exp": now + ttl,
            "role": role,
            "regions": list(regions),
            **({"trainer": trainer_id} if trainer_id else {}),
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        principal = self._verified.get(token)
        if principal is None:
            principal = self._decode(token)
            if len(self._verified) >= VERIFIED_KEPT:
                del self._verified[next(iter(self._verified))]  # the longest remembered
            self._verified[token] = principal
        if principal.expires_at <= dt.datetime.now(dt.UTC):
            del self._verified[token]
            raise InvalidToken("Signature has expired")
        return principal

    def _decode(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "jti", "sub", "iss"]},
            )
            return Principal(
                token_id=claims["jti"],
                subject=claims["sub"],
                role=claims["role"],
                regions=tuple(claims.get("regions") or ()),
                trainer_id=claims.get("trainer"),
                expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
            )
        except (jwt.PyJWTError, KeyError, ValueError) as error:
            raise InvalidToken(str(error)) from None


class Revocations:
    """The set of revoked token ids, kept current from the shared key-value bucket.

    Each id is also kept in the service's own database, and loaded from it before the
    service answers anyone: a service restarted while NATS is away still refuses every token
    it has ever seen revoked.
    """

    def __init__(self, nats: NatsConnection, database: Database) -> None:
        self.nats = nats
        self.database = database
        self.revoked: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def __contains__(self, token_id: object) -> bool:
        return token_id in self.revoked

    async def start(self) -> None:
        async with self.database.transaction(write=False) as conn:
            known = await conn.execute(sa.select(revoked_tokens.c.token_id))
            self.revoked.update(known.scalars())
        self._task = asyncio.create_task(self._watch(), name="revocations")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_until_done(self._task)

    async def _watch(self) -> None:
        while True:
            await self.nats.ready.wait()
            try:
                kv = await bucket(self.nats)
                watcher = await kv.watchall()
                async for entry in watcher:
                    if entry is not None and entry.key and entry.operation is None:
                        await self._remember(entry.key)
            except Exception as error:  # NATS went away: the watch resumes when it is back
                log.warning("auth.revocation_watch_interrupted", error=type(error).__name__)
                await asyncio.sleep(1.0)

    async def _remember(self, token_id: str) -> None:
        self.revoked.add(token_id)
        async with self.database.transaction() as conn:
            await conn.execute(
                upsert.insert(conn, revoked_tokens)
                .values(token_id=token_id, revoked_at=dt.datetime.now(dt.UTC))
                .on_conflict_do_nothing()
            )


async def bucket(nats: NatsConnection) -> Any:
    js = nats.jetstream
    try:
        return await js.key_value(REVOKED_BUCKET)
    except BucketNotFoundError:
        from nats.js.api import KeyValueConfig

        return await js.create_key_value(KeyValueConfig(bucket=REVOKED_BUCKET, history=1))


async def revoke(nats: NatsConnection, token_id: str) -> None:
    kv = await bucket(nats)
    await kv.put(token_id, dt.datetime.now(dt.UTC).isoformat().encode())


WRITERS: Final[tuple[Role, ...]] = ("admin", "staff")
READERS: Final[tuple[Role, ...]] = ROLES
