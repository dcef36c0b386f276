"""Composition root of the indicators service."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from score_chassis.consumer import Subscription
from score_chassis.http import create_app
from score_chassis.logs import configure_logging
from score_chassis.runtime import Runtime
from score_contracts.subjects import STREAMS
from score_indicators.api import router
from score_indicators.programme import load_programme
from score_indicators.projection import project
from score_indicators.settings import IndicatorsSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def subscriptions() -> list[Subscription]:
    return [
        Subscription(
            durable="indicators-projection-enrolment", stream=STREAMS["enrolment"], handler=project
        ),
        Subscription(
            durable="indicators-projection-visits", stream=STREAMS["visits"], handler=project
        ),
    ]


def build_app(settings: IndicatorsSettings | None = None) -> FastAPI:
    settings = settings or IndicatorsSettings()
    configure_logging(settings.service_name, level=settings.log_level, fmt=settings.log_format)
    runtime = Runtime(
        settings, context="indicators", migrations=[MIGRATIONS], subscriptions=subscriptions()
    )
    app = create_app(
        runtime,
        title="SCORE indicators",
        description="The programme's running totals, progress to targets and milestones.",
        routers=[router],
    )
    app.state.programme = load_programme(settings.programme_file)
    return app
