"""Composition root of the notifications service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from score_chassis.http.app import create_app
from score_chassis.logs import configure_logging
from score_chassis.runtime import Runtime
from score_notifications import routing
from score_notifications.api import router
from score_notifications.delivery import DEAD_LETTER_CONSUMER, Sender, retry_dead_letter
from score_notifications.sealing import Sealer
from score_notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """\
The regional chambers subscribe to the milestones of their regions, or the country's, and are
told of each one as it is reached: by a webhook signed per the Standard Webhooks
specification, or by e-mail, in Spanish or English. What became of each notification is
published on `SCORE_NOTIFICATIONS` (`notification_delivered`, `notification_failed`) and
answered by `GET /v1/deliveries`. See `docs/notifications.md`.
"""


def build_app(settings: NotificationsSettings | None = None) -> FastAPI:
    settings = settings or NotificationsSettings()
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    key = settings.notifications_secret_key
    if key is None:
        raise RuntimeError(
            "SCORE_NOTIFICATIONS_SECRET_KEY is not set: it encrypts the webhooks' secrets"
        )
    sealer = Sealer(key.get_secret_value())
    sender: Sender | None = None

    def routed() -> None:
        if sender is not None:
            sender.notify()

    runtime = Runtime(
        settings,
        context="notifications",
        migrations=[MIGRATIONS],
        subscriptions=[routing.subscription(on_routed=routed)],
    )
    sender = Sender(
        runtime.database,
        settings,
        sealer,
        source=runtime.source,
        on_recorded=runtime.relay.notify,
    )
    runtime.alongside.append(sender.run)
    runtime.dead_letter_retriers[DEAD_LETTER_CONSUMER] = retry_dead_letter
    app = create_app(
        runtime,
        title="SCORE notifications",
        description=DESCRIPTION,
        routers=[router],
    )
    app.state.settings = settings
    app.state.sealer = sealer
    app.state.sender = sender
    return app
