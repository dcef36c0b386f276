"""What a service runs besides its HTTP API: its database, NATS connection, outbox relay,
consumers and the rebuilds of its views, started and stopped together."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.commands import Commands, Route
from score_chassis.consumer import IdempotentConsumer, Subscription
from score_chassis.database import Database
from score_chassis.dead_letters import Retrier
from score_chassis.idempotency import forget_expired
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.logs import get_logger
from score_chassis.migrate import NotMigrated, check_migrated, migrate
from score_chassis.rebuild import Rebuilds
from score_chassis.relay import OutboxRelay
from score_chassis.settings import ServiceSettings
from score_chassis.tables import dead_letters
from score_chassis.tasks import cancel_until_done
from score_chassis.unit_of_work import SqlUnitOfWork
from score_contracts.subjects import STREAMS

log = get_logger(__name__)

V = TypeVar("V")


@dataclass
class Runtime:
    settings: ServiceSettings
    context: str
    """The context whose stream this service produces (enrolment, visits …)."""
    migrations: Sequence[Path] = ()
    subscriptions: Sequence[Subscription] = ()
    database: Database = field(init=False)
    nats: NatsConnection = field(init=False)
    relay: OutboxRelay = field(init=False)
    consumers: list[IdempotentConsumer] = field(init=False)
    rebuilds: Rebuilds = field(init=False)
    """The views its subscriptions build, and their rebuilds: background work of the runtime,
    never of the request that asks for one."""
    alongside: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)
    """Background work of the service's own (a watch of its views, say), added once the
    runtime is made: each started with it, after its consumers, and cancelled when it stops."""
    dead_letter_retriers: dict[str, Retrier] = field(init=False)
    """Who retries a dead letter, by the consumer name it was recorded under: each consumer its
    own (`IdempotentConsumer.retry_dead_letter`); a service adds one for what it records itself
    (`dead_letters.py`)."""
    _tasks: list[asyncio.Task[None]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        s = self.settings
        self.database = Database(s.database_url)
        self.nats = NatsConnection(
            s.nats_url,
            name=s.service_name,
            user=s.nats_user,
            password=s.nats_password.get_secret_value() if s.nats_password else None,
            creds=s.nats_creds,
        )
        self.relay = OutboxRelay(
            self.database,
            self.nats,
            batch_size=s.relay_batch_size,
            poll_seconds=s.relay_poll_seconds,
            base_url=s.public_base_url(),
            provision=self._provision_stream,
        )
        self.consumers = [self._consumer_of(sub) for sub in self.subscriptions]
        # Those that build a view beside the served one, started by its rebuild only.
        besides = [self._consumer_of(sub.besides()) for sub in self.subscriptions if sub.beside]
        self.rebuilds = Rebuilds(self.database, self.consumers, beside=besides)
        self.dead_letter_retriers = {c.name: c.retry_dead_letter for c in self.consumers}

    def _consumer_of(self, subscription: Subscription) -> IdempotentConsumer:
        s = self.settings
        return IdempotentConsumer(
            subscription,
            self.database,
            self.nats,
            batch_size=s.consumer_batch_size,
            max_deliver=s.consumer_max_deliver,
            ack_wait=s.consumer_ack_wait_seconds,
            replicas=s.stream_replicas,
        )

    def consumer(self, durable: str) -> IdempotentConsumer:
        """The running consumer of the subscription named `durable`."""
        for consumer in self.consumers:
            if consumer.name == durable:
                return consumer
        raise KeyError(f"no consumer {durable!r} in this service")

    @property
    def source(self) -> str:
        """The CloudEvents `source` of what this service produces."""
        return f"/score/{self.settings.country}/{self.context}"

    async def start(self) -> None:
        if self.settings.migrate_on_start:
            await migrate(self.database, list(self.migrations))
        else:  # a deploy migrates first (`score migrate`): only check that it did
            try:
                await check_migrated(self.database, list(self.migrations))
            except NotMigrated as error:
                log.error("database.not_migrated", error=str(error))
                raise
        self.nats.start()
        self._tasks.append(asyncio.create_task(self._provision(), name="provision-stream"))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))
        self.relay.start()
        for consumer in self.consumers:
            consumer.start()
        self.rebuilds.start()
        for work in self.alongside:
            self._tasks.append(asyncio.create_task(work(), name=getattr(work, "__name__", None)))
        log.info("service.started", context=self.context)

    async def _provision(self) -> None:
        # Each producer creates and updates its own stream when it starts, and makes it again
        # whenever its relay finds it gone (a broker back without its data, ADR 026).
        while True:
            await self.nats.ready.wait()
            try:
                await self._provision_stream()
                self.relay.notify()
                return
            except Exception as error:  # NATS went away again: wait for it
                log.warning("stream.provision_failed", error=repr(error))
                await asyncio.sleep(1.0)

    async def _provision_stream(self) -> None:
        await ensure_stream(
            self.nats.jetstream, STREAMS[self.context], replicas=self.settings.stream_replicas
        )

    async def dead_letter_count(self) -> int:
        async with self.database.transaction(write=False) as conn:
            result = await conn.execute(sa.select(sa.func.count()).select_from(dead_letters))
            return int(result.scalar_one())

    @property
    def idempotency_ttl(self) -> dt.timedelta:
        return dt.timedelta(hours=self.settings.idempotency_ttl_hours)

    def commands(
        self, routes: Mapping[type, Route[Any, Any, Any, V]], views: Callable[[AsyncConnection], V]
    ) -> Commands[V]:
        """The service's commands on its database, waking the relay when they append."""
        unit_of_work = SqlUnitOfWork(
            self.database, source=self.source, views=views, idempotency_ttl=self.idempotency_ttl
        )
        return Commands(unit_of_work, routes, on_appended=self.relay.notify)

    async def _housekeeping(self) -> None:
        while True:
            try:
                forgotten = await forget_expired(self.database, self.idempotency_ttl)
                if forgotten:
                    log.info("idempotency.keys_forgotten", count=forgotten)
            except Exception as error:  # the database may be briefly away; try next time
                log.warning("housekeeping.failed", error=repr(error))
            await asyncio.sleep(3600)

    async def stop(self) -> None:
        for task in self._tasks:
            await cancel_until_done(task)
        await self.rebuilds.stop()
        for consumer in self.consumers:
            await consumer.stop()
        await self.relay.stop()
        await self.nats.close()
        await self.database.dispose()
        log.info("service.stopped")
