"""The sender: sends the notifications that are due, records every attempt, retries on the
schedule, and ends each notification delivered or failed, with its event.

- **Claimed with a lease.** A due row is claimed by setting `leased_until` (a conditional
  update: two senders cannot both claim it). A sender that dies mid-call leaves the lease to
  run out, and the notification is then sent again with the same `webhook-id`: a receiver
  may see a notification twice, never none, and can tell the repeat by its id.
- **Bounded.** At most `SCORE_NOTIFICATIONS_CONCURRENCY` notifications are in flight, and at
  most `SCORE_NOTIFICATIONS_PER_ENDPOINT` to one host (or to the SMTP server): rows of a host
  that is full are left for later, so a slow endpoint delays only its own notifications.
  Every call is cut after `SCORE_NOTIFICATIONS_TIMEOUT_SECONDS`.
- **Retried.** After a failed attempt the next waits the schedule's next delay
  (`SCORE_NOTIFICATIONS_RETRY_SCHEDULE`), give or take a fifth at random, so that the
  notifications of one outage do not all come back at once. `410 Gone` disables the
  subscription and ends its notifications at once.
- **Recorded with its event.** The attempt, the row's new state and, at the end, the
  `notification_delivered` or `notification_failed` event (and for a failure, a dead letter)
  are written in one transaction; the relay publishes the event on `SCORE_NOTIFICATIONS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import random
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any

import httpx
import sqlalchemy as sa
import structlog
from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import dead_letters, store
from score_chassis.database import Database
from score_chassis.logs import get_logger
from score_contracts.events import MilestoneReached, NotificationDelivered, NotificationFailed
from score_contracts.events.notifications import NotificationEvent
from score_contracts.reference import NATIONAL
from score_contracts.subjects import subject_for
from score_notifications import mail, messages, ssrf, webhook
from score_notifications.sealing import Sealer
from score_notifications.settings import NotificationsSettings
from score_notifications.tables import attempts, deliveries, subscriptions
from score_notifications.webhook import Answer

log = get_logger(__name__)

DEAD_LETTER_CONSUMER = "notifications-delivery"
JITTER = 0.2
"""A retry waits its scheduled delay, give or take this share of it."""

NOTIFICATIONS = Counter(
    "score_notifications_total",
    "Notifications ended, by channel and outcome (delivered, failed, gone)",
    ["channel", "outcome"],
)
ATTEMPTS = Counter(
    "score_notification_attempts_total",
    "Attempts to deliver a notification, by channel and outcome (delivered, failed, gone)",
    ["channel", "outcome"],
)
DELIVERY_SECONDS = Histogram(
    "score_notification_delivery_seconds",
    "From a notification's routing to its delivery",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 86400),
)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def retry_delay(schedule: tuple[float, ...], failed: int) -> float | None:
    """Seconds before the next attempt after `failed` failed ones of this budget, jittered;
    None when the schedule is spent."""
    if failed > len(schedule):
        return None
    delay = schedule[failed - 1]
    return max(0.0, delay * (1 + random.uniform(-JITTER, JITTER)))


_DUE_COLUMNS = (
    deliveries.c.delivery_id,
    deliveries.c.milestone_id,
    deliveries.c.subscription_id,
    deliveries.c.channel,
    deliveries.c.endpoint,
    deliveries.c.scope,
    deliveries.c.milestone,
    deliveries.c.attempts,
    deliveries.c.budget_from,
    deliveries.c.created_at,
    deliveries.c.cause_event_id,
    deliveries.c.correlation_id,
    subscriptions.c.chamber,
    subscriptions.c.url,
    subscriptions.c.sealed_secret,
    subscriptions.c.address,
    subscriptions.c.language,
    subscriptions.c.status.label("subscription_status"),
)


class Sender:
    """Sends due notifications in the background (`Runtime.alongside`)."""

    def __init__(
        self,
        database: Database,
        settings: NotificationsSettings,
        sealer: Sealer,
        *,
        source: str,
        on_recorded: Callable[[], None] = lambda: None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.sealer = sealer
        self.source = source
        self.on_recorded = on_recorded
        self._wake = asyncio.Event()
        self._in_flight: Tally[str] = Tally()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def notify(self) -> None:
        """Look for due notifications now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        structlog.contextvars.clear_contextvars()
        # trust_env=False: a proxy from the environment would make the call to an address
        # that was never checked.
        limits = httpx.Limits(max_connections=self.settings.notifications_concurrency)
        self._client = httpx.AsyncClient(trust_env=False, limits=limits, verify=True)
        try:
            while True:
                try:
                    await self.send_due()
                except Exception as error:  # the database, most likely: look again later
                    log.warning("notification.look_failed", error=type(error).__name__)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.notifications_poll_seconds):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self._client.aclose()

    async def send_due(self) -> int:
        """Claim what is due, within the bounds, and start sending it; how many were started."""
        free = self.settings.notifications_concurrency - len(self._tasks)
        if free <= 0:
            return 0
        claimed = await self._claim(free)
        for row in claimed:
            self._in_flight[row.endpoint] += 1
            task = asyncio.create_task(self._send(row), name=f"notification-{row.delivery_id}")
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._done, endpoint=row.endpoint))
        return len(claimed)

    def _done(self, task: asyncio.Task[None], *, endpoint: str) -> None:
        self._tasks.discard(task)
        self._in_flight[endpoint] -= 1
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("notification.send_failed", error=type(error).__name__)
        self._wake.set()  # room for another

    async def _claim(self, free: int) -> list[Any]:
        now = dt.datetime.now(dt.UTC)
        lease = now + dt.timedelta(seconds=self.settings.lease_seconds)
        per_endpoint = self.settings.notifications_per_endpoint
        unleased = sa.or_(deliveries.c.leased_until.is_(None), deliveries.c.leased_until < now)
        due = (
            sa.select(*_DUE_COLUMNS)
            .join(subscriptions, subscriptions.c.subscription_id == deliveries.c.subscription_id)
            .where(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now, unleased)
            .order_by(deliveries.c.next_attempt_at)
            .limit(free * 4)
        )
        async with self.database.transaction(write=False) as conn:
            candidates = (await conn.execute(due)).all()
        chosen = [
            row
            for row in candidates
            if self._in_flight[row.endpoint] < per_endpoint  # a first sieve, without a lock
        ]
        if not chosen:
            return []
        claimed: list[Any] = []
        counts = Tally(self._in_flight)
        async with self.database.transaction() as conn:
            for row in chosen:
                if len(claimed) >= free or counts[row.endpoint] >= per_endpoint:
                    continue
                taken = await conn.execute(
                    deliveries.update()
                    .where(
                        deliveries.c.delivery_id == row.delivery_id,
                        deliveries.c.status == "pending",
                        unleased,
                    )
                    .values(leased_until=lease)
                )
                if taken.rowcount:
                    claimed.append(row)
                    counts[row.endpoint] += 1
        return claimed

    async def _send(self, row: Any) -> None:
        with structlog.contextvars.bound_contextvars(
            notification_id=row.delivery_id, channel=row.channel
        ):
            if row.subscription_status != "active":
                await self._cancel(row.delivery_id)
                return
            started = dt.datetime.now(dt.UTC)
            try:
                async with asyncio.timeout(self.settings.notifications_timeout_seconds):
                    answer = await self._attempt(row)
            except TimeoutError:
                answer = Answer(status=None, error="Timeout")
            except Exception as error:  # a secret that will not open, say: an attempt failed
                answer = Answer(status=None, error=type(error).__name__)
            await self.record(row, started, answer)

    async def _attempt(self, row: Any) -> Answer:
        milestone = MilestoneReached.model_validate(row.milestone)
        language: messages.Language = row.language
        said = messages.message(
            milestone,
            language,
            country=self.settings.country,
            zone=self.settings.timezone,
            dashboard_url=self.settings.dashboard(),
        )
        if row.channel == "email":
            return await mail.send(self.settings, said, to=row.address, message_id=row.delivery_id)
        try:
            target = await ssrf.checked(row.url, self.settings.allowed_hosts)
        except ssrf.RefusedUrl as refused:
            return Answer(status=None, error=f"refused: the URL {refused}"[:500])
        assert self._client is not None
        return await webhook.call(
            self._client,
            target,
            secret=self.sealer.open(row.sealed_secret),
            message_id=row.delivery_id,
            data=payload(row.delivery_id, milestone, said, language, self.settings.dashboard()),
            seconds=self.settings.notifications_timeout_seconds,
        )

    async def _cancel(self, delivery_id: str) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(
                deliveries.update()
                .where(deliveries.c.delivery_id == delivery_id, deliveries.c.status == "pending")
                .values(status="cancelled", leased_until=None, finished_at=dt.datetime.now(dt.UTC))
            )
        log.info("notification.cancelled")

    async def record(self, row: Any, started: dt.datetime, answer: Answer) -> None:
        """Record the attempt and what follows from it, in one transaction."""
        now = dt.datetime.now(dt.UTC)
        number = row.attempts + 1
        outcome = "delivered" if answer.delivered else "gone" if answer.gone else "failed"
        tried = outcome
        appended = False
        async with self.database.transaction() as conn:
            await conn.execute(
                attempts.insert().values(
                    delivery_id=row.delivery_id,
                    number=number,
                    started_at=started,
                    finished_at=now,
                    outcome=outcome,
                    status_code=answer.status,
                    error=answer.error,
                )
            )
            pending = (deliveries.c.delivery_id == row.delivery_id) & (
                deliveries.c.status == "pending"
            )
            if outcome == "delivered":
                updated = await conn.execute(
                    deliveries.update()
                    .where(pending)
                    .values(status="delivered", attempts=number, leased_until=None, finished_at=now)
                )
                if updated.rowcount:
                    await self._announce(conn, row, NotificationDelivered, number, None, now)
                    appended = True
            elif outcome == "gone":
                error = "HTTP 410: the subscription is disabled"
                await conn.execute(
                    deliveries.update()
                    .where(pending)
                    .values(
                        status="failed",
                        attempts=number,
                        leased_until=None,
                        finished_at=now,
                        last_error=error,
                    )
                )
                await disable(conn, row.subscription_id, "the endpoint answered 410 Gone", now)
                await self._announce(conn, row, NotificationFailed, number, error, now)
                appended = True
            else:
                delay = retry_delay(self.settings.retry_schedule, number - row.budget_from)
                if delay is not None:
                    await conn.execute(
                        deliveries.update()
                        .where(pending)
                        .values(
                            attempts=number,
                            leased_until=None,
                            last_error=answer.error,
                            next_attempt_at=now + dt.timedelta(seconds=delay),
                        )
                    )
                else:
                    updated = await conn.execute(
                        deliveries.update()
                        .where(pending)
                        .values(
                            status="failed",
                            attempts=number,
                            leased_until=None,
                            finished_at=now,
                            last_error=answer.error,
                        )
                    )
                    if updated.rowcount:
                        subject = await self._announce(
                            conn, row, NotificationFailed, number, answer.error, now
                        )
                        await dead_letters.record(
                            conn,
                            consumer=DEAD_LETTER_CONSUMER,
                            subject=subject,
                            event_id=row.delivery_id,
                            deliveries=number,
                            error=f"not delivered after {number} attempts: {answer.error}",
                            payload=json.dumps({"delivery_id": row.delivery_id}).encode(),
                        )
                        appended = True
                        outcome = "dead"
        ATTEMPTS.labels(row.channel, tried).inc()
        if outcome == "delivered":
            NOTIFICATIONS.labels(row.channel, "delivered").inc()
            DELIVERY_SECONDS.labels(row.channel).observe(
                (now - _utc(row.created_at)).total_seconds()
            )
            log.info("notification.delivered", attempts=number)
        elif outcome == "gone":
            NOTIFICATIONS.labels(row.channel, "gone").inc()
            log.warning("notification.gone", attempts=number)
        elif outcome == "dead":
            NOTIFICATIONS.labels(row.channel, "failed").inc()
            log.error("notification.failed", attempts=number, error=answer.error)
        else:
            log.info("notification.attempt_failed", attempts=number, error=answer.error)
        if appended:
            self.on_recorded()

    async def _announce(
        self,
        conn: AsyncConnection,
        row: Any,
        kind: type[NotificationDelivered] | type[NotificationFailed],
        number: int,
        error: str | None,
        now: dt.datetime,
    ) -> str:
        """Append the notification's event to the store; the subject it goes out on."""
        event: NotificationEvent = kind(
            notification_id=row.delivery_id,
            milestone_id=row.milestone_id,
            subscription_id=row.subscription_id,
            chamber=row.chamber,
            channel=row.channel,
            attempts=number,
            last_error=error,
        )
        region = None if row.scope == NATIONAL else row.scope
        subject = subject_for(event, self.settings.country, region)
        stream = f"notification/{row.delivery_id}"
        version = await store.stream_version(conn, stream)
        await store.append(
            conn,
            stream,
            version,
            [store.NewEvent(event=event, subject=subject)],
            source=self.source,
            causation=store.Causation(
                correlation_id=row.correlation_id, causation_id=row.cause_event_id
            ),
            now=now,
            loaded=True,
        )
        return subject


def payload(
    delivery_id: str,
    milestone: MilestoneReached,
    said: messages.Message,
    language: messages.Language,
    dashboard_url: str,
) -> dict[str, Any]:
    """The webhook's `data`: what a chamber's system needs, and the words to forward."""
    return {
        "notification_id": delivery_id,
        "milestone": milestone.model_dump(mode="json"),
        "message": {"language": language, "subject": said.subject, "text": said.sentence},
        "dashboard_url": dashboard_url,
    }


async def disable(
    conn: AsyncConnection, subscription_id: str, reason: str, now: dt.datetime
) -> None:
    """Disable a subscription and end its pending notifications."""
    await conn.execute(
        subscriptions.update()
        .where(subscriptions.c.subscription_id == subscription_id)
        .values(status="disabled", status_reason=reason, changed_at=now)
    )
    await cancel_pending(conn, subscription_id, now)


async def cancel_pending(conn: AsyncConnection, subscription_id: str, now: dt.datetime) -> None:
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.subscription_id == subscription_id, deliveries.c.status == "pending")
        .values(status="cancelled", leased_until=None, finished_at=now)
    )


async def retry_dead_letter(conn: AsyncConnection, letter: dead_letters.DeadLetter) -> None:
    """Queue the dead-lettered notification again, with a fresh budget of attempts: the
    retrier of `score dead-letters retry`, which deletes the dead letter in the same
    transaction. A notification not failed (delivered since, or unknown) is left as it is."""
    try:
        delivery_id = json.loads(letter.payload)["delivery_id"]
    except (ValueError, KeyError, TypeError):
        raise dead_letters.NotRetriable(
            "the dead letter does not name a notification", rule="unreadable-payload"
        ) from None
    await conn.execute(
        deliveries.update()
        .where(deliveries.c.delivery_id == delivery_id, deliveries.c.status == "failed")
        .values(
            status="pending",
            budget_from=deliveries.c.attempts,
            next_attempt_at=dt.datetime.now(dt.UTC),
            leased_until=None,
            finished_at=None,
        )
    )
